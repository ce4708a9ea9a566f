"""BatchNormalization: central differences in both modes, its plain twin, Keras's numbers, and the model around it.

Reference values: tests/fixtures/keras_reference.npz, written by benchmarks/keras_reference.py with
Keras 3 in float64 (see tests/fixtures/README.md). Compared to a tolerance, never bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
from minicnn import backend, layers, optimizers, plain
from minicnn.gradcheck import check_layer, numerical_gradient, relative_error
from minicnn.layers import BatchNormalization
from minicnn.layers.base import model_owns_memory
from minicnn.plain import normalization as plain_bn

REFERENCE = Path(__file__).parents[1] / "fixtures" / "keras_reference.npz"
WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")

bn_cases = st.fixed_dictionaries(
    {
        "shape": st.sampled_from([(3, 2), (4, 1), (2, 3, 2, 2), (1, 2, 3, 1), (3, 1, 1, 3)]),
        "training": st.booleans(),
        "center": st.booleans(),
        "scale": st.booleans(),
        "momentum": st.floats(0.0, 1.0),
        "seed": st.integers(0, 2**16),
    }
)


def host(array):
    return backend.to_numpy(array).copy()


def build_bn(case, dtype="float64"):
    """A built layer with random gamma, beta and moving statistics (not Keras's 1, 0, 0, 1: those hide mistakes)."""
    rng = np.random.default_rng(case["seed"])
    layer = BatchNormalization(momentum=case["momentum"], center=case["center"], scale=case["scale"])
    layer.build(case["shape"][1:])
    for key in layer.params:
        values = rng.uniform(0.5, 2.0, size=layer.params[key].shape) if key in ("gamma", "moving_variance") else None
        values = rng.normal(size=layer.params[key].shape) if values is None else values
        layer.params[key][...] = backend.to_device(values.astype(dtype))
    x = rng.normal(1.0, 2.0, size=case["shape"]).astype(dtype)
    dy = rng.normal(size=case["shape"]).astype(dtype)
    return layer, x, dy


@settings(max_examples=40)
@given(case=bn_cases)
def test_gradients_match_central_differences_in_training_and_inference(case, float64, backend_name):
    """dL/dx, dL/dgamma, dL/dbeta against float64 central differences.

    The cases have M >= 3 values per channel. With M = 1, training gives x_hat = 0 and dL/dx = 0
    exactly; with M = 2, x_hat = +-d / sqrt(d**2 + epsilon) (d half the difference of the two values)
    is +-1 whatever x, up to epsilon, so dL/dx is about epsilon / d**3 small: in both cases central
    differences of a loss of size 1 would measure their own rounding noise (1e-16 / 1e-6 = 1e-10).
    """
    layer, x, _ = build_bn(case)
    report = check_layer(layer, backend.to_device(x), training=case["training"])
    expected = {"input"} | ({"gamma"} if case["scale"] else set()) | ({"beta"} if case["center"] else set())
    assert set(report.errors) == expected  # the moving statistics have no gradient to check
    assert report.passed(1e-6), str(report)


def test_the_moving_statistics_follow_keras_s_update_and_inference_uses_them(float64):
    layer, x, _ = build_bn({"shape": (4, 3, 3, 2), "center": True, "scale": True, "momentum": 0.9, "seed": 1})
    before = {key: host(value) for key, value in layer.params.items()}
    layer.forward(x, training=False)  # inference changes nothing
    for key, value in before.items():
        np.testing.assert_array_equal(host(layer.params[key]), value)
    layer.forward(x, training=True)
    mean, variance = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))  # var divides by M, as Keras
    np.testing.assert_allclose(host(layer.params["moving_mean"]), 0.9 * before["moving_mean"] + 0.1 * mean)
    np.testing.assert_allclose(host(layer.params["moving_variance"]), 0.9 * before["moving_variance"] + 0.1 * variance)
    gamma, beta = host(layer.params["gamma"]), host(layer.params["beta"])
    moving_mean, moving_variance = host(layer.params["moving_mean"]), host(layer.params["moving_variance"])
    expected = gamma * (x - moving_mean) / np.sqrt(moving_variance + 1e-3) + beta
    np.testing.assert_allclose(host(layer.forward(x, training=False)), expected, rtol=1e-12)
    # in training the batch is normalised by its own statistics: mean 0 and variance var / (var + eps) per channel
    x_hat = (host(layer.forward(x, training=True)) - beta) / gamma
    np.testing.assert_allclose(x_hat.mean(axis=(0, 1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(x_hat.var(axis=(0, 1, 2)), variance / (variance + 1e-3), rtol=1e-12)


# ---- the plain twin ---------------------------------------------------------------------------


def plain_results(case, layer, x, dy):
    """(y, dx, dgamma, dbeta, moving_mean, moving_variance) from minicnn.plain, with the layer's parameters."""
    params = {key: host(value) for key, value in layer.params.items()}
    channels = x.shape[-1]
    gamma = params.get("gamma", np.ones(channels, x.dtype))
    beta = params.get("beta", np.zeros(channels, x.dtype))
    if case["training"]:
        y, cache = plain.batch_norm_forward_train(x, gamma, beta, layer.epsilon)
        dx, dgamma, dbeta = plain.batch_norm_backward_train(dy, cache)
        mean, var = cache[4], cache[5]
        moving = (
            plain.moving_average(params["moving_mean"], mean, layer.momentum),
            plain.moving_average(params["moving_variance"], var, layer.momentum),
        )
    else:
        y, cache = plain.batch_norm_forward_inference(
            x, gamma, beta, params["moving_mean"], params["moving_variance"], layer.epsilon
        )
        dx, dgamma, dbeta = plain.batch_norm_backward_inference(dy, cache)
        moving = (params["moving_mean"], params["moving_variance"])
    return y, dx, dgamma, dbeta, *moving


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@settings(max_examples=30)
@given(case=bn_cases)
def test_the_fast_layer_equals_its_plain_twin_called_directly_and_in_a_model(case, dtype):
    """Within rounding: both compute the same statistics, but the fast backward uses the closed form and
    the plain one goes node by node, so they round differently. The bound, 64 M eps times the size of the
    values (M values per channel; eps of the dtype), covers the sums of M terms the two compute in
    different ways, with room to spare; a wrong formula is off by O(1)."""
    previous = backend.default_dtype()
    backend.set_default_dtype(dtype)
    try:
        layer, x, dy = build_bn(case, dtype)
        expected = plain_results(case, layer, x, dy)
        params = {key: host(value) for key, value in layer.params.items()}
        y, dx = host(layer.forward(x, training=case["training"])), host(layer.backward(dy))
        direct = (y, dx, host(layer.grads.get("gamma", expected[2])), host(layer.grads.get("beta", expected[3])))
        direct += (host(layer.params["moving_mean"]), host(layer.params["moving_variance"]))
        # the same layer inside a model that owns the memory (kept buffers), after an Identity so it computes dx
        model = mc.Sequential([layers.Identity(input_shape=x.shape[1:]), layer])
        for key, value in params.items():
            layer.params[key][...] = value
        with model_owns_memory(model.layers):
            owned = (host(model.forward(x, training=case["training"])), host(model.backward(dy.copy())))
        owned += (host(layer.grads.get("gamma", expected[2])), host(layer.grads.get("beta", expected[3])))
        owned += (host(layer.params["moving_mean"]), host(layer.params["moving_variance"]))
    finally:
        backend.set_default_dtype(previous)
    count = x.size // x.shape[-1]
    eps = np.finfo(dtype).eps
    names = ("y", "dx", "dgamma", "dbeta", "moving_mean", "moving_variance")
    for name, fast, fast_owned, reference in zip(names, direct, owned, expected, strict=True):
        np.testing.assert_array_equal(fast_owned, fast, err_msg=f"{name}: the fast mode must not change a bit")
        scale = max(1.0, float(np.abs(reference).max()))
        np.testing.assert_allclose(fast, reference, rtol=0, atol=64 * count * eps * scale, err_msg=name)


@settings(max_examples=25)
@given(case=bn_cases)
def test_the_plain_backward_equals_central_differences(case):
    """The plain track is right on its own, not only equal to the fast layer."""
    rng = np.random.default_rng(case["seed"])
    x = rng.normal(size=case["shape"])
    channels = x.shape[-1]
    gamma, beta = rng.uniform(0.5, 2.0, channels), rng.normal(size=channels)
    moving_mean, moving_variance = rng.normal(size=channels), rng.uniform(0.5, 2.0, channels)
    dy = rng.normal(size=x.shape)
    if case["training"]:

        def loss() -> float:
            return float((plain.batch_norm_forward_train(x, gamma, beta)[0] * dy).sum())

        analytic = plain.batch_norm_backward_train(dy, plain.batch_norm_forward_train(x, gamma, beta)[1])
    else:

        def loss() -> float:
            y, _ = plain.batch_norm_forward_inference(x, gamma, beta, moving_mean, moving_variance)
            return float((y * dy).sum())

        cache = plain.batch_norm_forward_inference(x, gamma, beta, moving_mean, moving_variance)[1]
        analytic = plain.batch_norm_backward_inference(dy, cache)
    for name, array, gradient in zip(("x", "gamma", "beta"), (x, gamma, beta), analytic, strict=True):
        error = relative_error(gradient, numerical_gradient(loss, array))
        assert error < 1e-6, f"{name}: relative error {error:.2e}"


# ---- Keras ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_reference():
    with np.load(REFERENCE, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


@pytest.mark.parametrize("case", ["bn_image", "bn_vector"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_training_then_inference_agree_with_keras(case, dtype, keras_reference, backend_name):
    """One training call (outputs, gradients, the moving statistics it updates), then inference with those.

    Tolerances: Keras computed in float64 and adds in its own order, so in float64 the two agree to
    rounding, a few eps (1e-12 leaves a wide margin over the 5e-16 of the largest value measured); in
    float32 every value carries a relative rounding of 6e-8 per operation, and a batch-norm output goes
    through about ten of them and sums of up to 36 terms: rtol 1e-5 (measured: 2e-7 of the largest value).
    """
    reference = {key.split("/", 1)[1]: value for key, value in keras_reference.items() if key.startswith(f"{case}/")}
    tolerance = {"float64": 1e-12, "float32": 1e-5}[dtype]
    previous = backend.default_dtype()
    backend.set_default_dtype(dtype)
    try:
        layer = BatchNormalization(momentum=0.9, epsilon=1e-3)
        layer.build(reference["x"].shape[1:])
        for key in WEIGHTS:
            layer.params[key][...] = backend.to_device(reference[key].astype(dtype))
        for mode, x in (("train", reference["x"]), ("inference", reference["x_inference"])):
            y = layer.forward(backend.to_device(x.astype(dtype)), training=mode == "train")
            dx = layer.backward(backend.to_device(reference[f"{mode}/dy"].astype(dtype)))
            results = {"y": y, "dx": dx, "dgamma": layer.grads["gamma"], "dbeta": layer.grads["beta"]}
            if mode == "train":
                results["moving_mean_after"] = layer.params["moving_mean"]
                results["moving_variance_after"] = layer.params["moving_variance"]
            for name, value in results.items():
                expected = reference[f"{mode}/{name}"]
                np.testing.assert_allclose(
                    host(value), expected, rtol=tolerance, atol=tolerance * np.abs(expected).max(), err_msg=name
                )
    finally:
        backend.set_default_dtype(previous)


def test_weights_are_in_keras_s_order_and_count_as_keras_counts():
    """gamma, beta, moving_mean, moving_variance (Keras's get_weights order); 4 C params, 2 C non-trainable."""
    model = mc.Sequential([layers.Conv2D(3, 3, input_shape=(6, 6, 1)), layers.BatchNormalization()])
    names = [name for name, _, _ in model.parameters()]
    assert names[2:] == [f"batch_normalization/{key}" for key in WEIGHTS]
    assert [w.shape for w in model.get_weights()][2:] == [(3,)] * 4
    np.testing.assert_array_equal(np.stack(model.get_weights()[2:]), [[1] * 3, [0] * 3, [0] * 3, [1] * 3])
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert "Total params: 42" in text and "Trainable params: 36" in text and "Non-trainable params: 6" in text
    assert model.layers[1].count_params() == 12
    no_shift = BatchNormalization(center=False, scale=False)
    no_shift.build((5,))
    assert list(no_shift.params) == ["moving_mean", "moving_variance"]


def test_the_optimizer_never_touches_the_moving_statistics_and_they_are_saved(tmp_path):
    """A training step moves gamma and beta by Adam and the moving statistics only by their average; a saved
    model loads them back, so its predictions (inference: moving statistics) are the same."""
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(8, 4)).astype("float32")
    y = (x[:, 0] > 2).astype("float32")
    model = mc.Sequential([layers.BatchNormalization(momentum=0.5, input_shape=(4,)), layers.Dense(1, "sigmoid")])
    model.compile(optimizer=optimizers.Adam(0.1), loss="binary_crossentropy")
    bn = model.layers[0]
    before = {key: host(value) for key, value in bn.params.items()}
    model.train_on_batch(x, y)
    np.testing.assert_allclose(host(bn.params["moving_mean"]), 0.5 * before["moving_mean"] + 0.5 * x.mean(axis=0))
    np.testing.assert_allclose(
        host(bn.params["moving_variance"]), 0.5 * before["moving_variance"] + 0.5 * x.var(axis=0), rtol=1e-6
    )
    assert not np.array_equal(host(bn.params["gamma"]), before["gamma"])  # trained
    assert not any("moving" in key for key in model.optimizer.slots)  # no Adam moments for them
    loaded = mc.load_model(model.save(tmp_path / "bn.npz"))
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.layers[0].get_config() == bn.get_config()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"momentum": 1.5}, ValueError, r"BatchNormalization: momentum must be in \[0, 1\], got 1.5"),
        ({"epsilon": 0}, ValueError, r"BatchNormalization: epsilon must be in \(0, inf\), got 0"),
        ({"center": "yes"}, TypeError, "BatchNormalization: center must be True or False, got 'yes'"),
        ({"axis": 1.0}, TypeError, r"BatchNormalization: axis must be an int \(the last axis: -1\), got 1.0"),
    ],
)
def test_bad_arguments_are_refused_naming_them(kwargs, error, message):
    with pytest.raises(error, match=message):
        BatchNormalization(**kwargs)


def test_an_axis_other_than_the_channels_is_refused_at_build():
    BatchNormalization(axis=3).build((4, 4, 2))  # the last axis of (N, 4, 4, 2), counted from the batch axis
    with pytest.raises(ValueError, match=r"axis must be the last \(channel\) axis, -1 or 3 for inputs \(N, 4, 4, 2\)"):
        BatchNormalization(axis=1).build((4, 4, 2))


def test_the_plain_module_is_named_by_the_fast_one():
    assert "minicnn.plain.normalization.batch_norm_forward_train" in BatchNormalization.forward.__doc__
    assert plain_bn.moving_average(np.array([1.0]), np.array([3.0]), 0.75) == pytest.approx(1.5)
