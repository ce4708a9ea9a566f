"""Grad-CAM: a constructed case where the answer is known and the gradient matters, and the chain rule checked."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, layers
from minicnn.explain import bilinear_matrix, grad_cam
from minicnn.gradcheck import numerical_gradient


def quadrant_means(heatmap: np.ndarray) -> dict[str, float]:
    h, w = heatmap.shape[0] // 2, heatmap.shape[1] // 2
    return {
        "top-left": heatmap[:h, :w].mean(),
        "top-right": heatmap[:h, w:].mean(),
        "bottom-left": heatmap[h:, :w].mean(),
        "bottom-right": heatmap[h:, w:].mean(),
    }


def constructed_case():
    """Two feature maps. Channel 0 fires strongly (5) in the top-left quadrant; channel 1 fires weakly (1)
    in the top-right one. The output (a sigmoid) reads only channel 1 in the top-right quadrant.

    The convolution is 1x1 with stride 2 (an identity on the two channels, every second pixel), so its
    8x8 input gives 4x4 feature maps that Grad-CAM must upsample back to 8x8.
    """
    model = mc.Sequential(
        [
            layers.Conv2D(2, 1, strides=2, activation="relu", input_shape=(8, 8, 2)),
            layers.Flatten(),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    conv, _, dense = model.layers
    conv.params["kernel"][...] = backend.to_device(np.eye(2, dtype=conv.dtype).reshape(1, 1, 2, 2))
    conv.params["bias"][...] = 0
    weights = np.zeros((4, 4, 2), dtype=dense.dtype)
    weights[:2, 2:, 1] = 0.5  # channel 1, top-right quadrant of the 4x4 maps: the only thing the output reads
    dense.params["kernel"][...] = backend.to_device(weights.reshape(32, 1))
    dense.params["bias"][...] = -1.0
    images = np.zeros((3, 8, 8, 2), dtype=np.float32)
    images[:, :4, :4, 0] = 5.0  # strong, but ignored by the output
    images[:, :4, 4:, 1] = 1.0  # weak, and all the output depends on
    images[1, 4:, :4, 0] = 3.0  # another strong, ignored blob on one image
    images[2] *= 2
    return model, images


def test_grad_cam_lights_the_quadrant_the_output_depends_on_not_the_strongest_one(backend_name):
    model, images = constructed_case()
    heatmaps = grad_cam(model, images, target="normal")
    assert heatmaps.shape == (3, 8, 8) and heatmaps.min() >= 0 and heatmaps.max() == 1.0
    for heatmap in heatmaps:
        means = quadrant_means(heatmap)
        assert max(means, key=means.get) == "top-right", means
        # only the bilinear upsampling lets a little of the top-right bleed over its edges
        assert means["top-right"] > 0.5 and max(means["top-left"], means["bottom-left"], means["bottom-right"]) < 0.1
        # and nothing at all farther than one input pixel from that quadrant
        assert heatmap[:, :3].max() == heatmap[5:].max() == 0.0
    # A plain activation map (the feature maps summed over channels, upsampled the same way) fails:
    # it lights the strong top-left blob, which the output ignores.
    conv_output = backend.to_numpy(model.layers[0].forward(backend.to_device(images)))
    plain = bilinear_matrix(8, 4) @ conv_output.sum(axis=3) @ bilinear_matrix(8, 4).T
    for activation_map in backend.to_numpy(plain):
        means = quadrant_means(activation_map)
        assert max(means, key=means.get) == "top-left", means


def test_the_other_class_finds_no_evidence_here_and_targets_name_the_same_classes():
    """For Pneumonia the score is minus the logit: channel 1 counts against it, so the ReLU leaves nothing."""
    model, images = constructed_case()
    np.testing.assert_array_equal(grad_cam(model, images, target="pneumonia"), 0.0)
    np.testing.assert_array_equal(grad_cam(model, images, target=0), grad_cam(model, images, target="Pneumonia"))
    np.testing.assert_array_equal(grad_cam(model, images, target=1), grad_cam(model, images, target="normal"))
    # None: each image's predicted class. Here p = sigmoid(0.5 * 4 * value - 1): image 0 (value 1) is
    # p = 0.73, Normal, image 2 (value 2) too; so None equals "normal" on them.
    predicted = model.predict(images)[:, 0] > 0.5
    assert predicted.all()
    np.testing.assert_array_equal(grad_cam(model, images), grad_cam(model, images, target="normal"))


def test_grad_cam_equals_the_chain_rule_done_by_central_differences(float64):
    """On a small study-like network (conv, pool, conv, dense), alpha_k from the layers' backward passes
    equals the mean of ds/dA_k by central differences of the layers after the chosen one."""
    model = mc.Sequential(
        [
            layers.Conv2D(3, 3, activation="relu", input_shape=(9, 9, 1)),
            layers.MaxPool2D(2),
            layers.Conv2D(4, 2, activation="relu"),
            layers.Flatten(),
            layers.Dense(5, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(1, activation="sigmoid"),
        ],
        seed=3,
    )
    rng = np.random.default_rng(0)
    images = rng.normal(size=(2, 9, 9, 1))
    for layer in model.layers:  # biases that keep most ReLUs active, so the gradient is rich
        if "bias" in layer.params:
            layer.params["bias"][...] = 0.1
    heatmaps = grad_cam(model, images, layer="conv2d_1", target="pneumonia")
    for image, heatmap in zip(images, heatmaps, strict=True):
        x = backend.to_device(image[None])
        for layer in model.layers[:3]:
            x = layer.forward(x)
        feature_maps = backend.to_numpy(x).copy()

        def score(feature_maps=feature_maps, after=model.layers[3:-1], dense=model.layers[-1]) -> float:
            """Minus the logit of Normal, from the feature maps on."""
            y = backend.to_device(feature_maps)
            for layer in after:
                y = layer.forward(y, training=False)
            z = y @ dense.params["kernel"] + dense.params["bias"]
            return -float(z.sum())

        gradient = numerical_gradient(score, feature_maps)
        cam = np.maximum((gradient.mean(axis=(1, 2), keepdims=True) * feature_maps).sum(axis=3)[0], 0)
        expected = bilinear_matrix(9, cam.shape[0]) @ cam @ bilinear_matrix(9, cam.shape[1]).T
        expected = expected / expected.max() if expected.max() > 0 else expected
        np.testing.assert_allclose(heatmap, expected, rtol=0, atol=1e-7)


def test_grad_cam_changes_nothing_in_the_model():
    model, images = constructed_case()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.train_on_batch(images, np.ones(3))
    weights = model.get_weights()
    grads = [(name, backend.to_numpy(grad).copy()) for name, _, grad in model.parameters()]
    grad_cam(model, images, target=1, batch_size=2)
    for before, after in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    for (name, before), (_, _, after) in zip(grads, model.parameters(), strict=True):
        np.testing.assert_array_equal(before, backend.to_numpy(after), err_msg=name)


def test_bilinear_upsampling_keeps_constants_and_interpolates_between_centres():
    matrix = backend.to_numpy(bilinear_matrix(8, 4))
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    np.testing.assert_allclose(matrix @ np.arange(4.0), [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3])
    np.testing.assert_array_equal(backend.to_numpy(bilinear_matrix(5, 5)), np.eye(5))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"target": "viral"}, ValueError, r'target must be "normal" or 1, "pneumonia" or 0, or None .* got \'viral\''),
        ({"target": 2}, ValueError, "target must be .* for an output of 1 unit"),
        ({"layer": "dense_7"}, ValueError, r"layer 'dense_7' is not in the model; its layers are \['conv2d'"),
        ({"layer": "flatten"}, ValueError, r"has output shape \(32,\); Grad-CAM needs feature maps \(h, w, K\)"),
        ({"layer": 3}, TypeError, "layer must be a layer name, a Layer or None, got 3"),
    ],
)
def test_bad_arguments_are_refused_naming_them(kwargs, error, message):
    model, images = constructed_case()
    with pytest.raises(error, match=message):
        grad_cam(model, images, **kwargs)


def test_a_model_without_a_convolution_must_name_its_layer():
    model = mc.Sequential([layers.Flatten(input_shape=(4, 4, 1)), layers.Dense(1, activation="sigmoid")])
    with pytest.raises(ValueError, match="the model has no Conv2D layer"):
        grad_cam(model, np.zeros((1, 4, 4, 1)))
