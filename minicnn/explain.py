"""Grad-CAM: where the network looks (Selvaraju et al., 2017). Arrays in, heatmaps out.

For one image and one class c, with A (h, w, K) the output of a convolution layer (its K
feature maps, after its ReLU) and s_c the score of class c *before* the last activation (the
logit: Grad-CAM's y^c):

    alpha_k = mean_{i, j} ds_c / dA[i, j, k]          how much channel k raises the score, on average
    cam     = relu(sum_k alpha_k A[:, :, k])           (h, w): where those channels fire
    heatmap = upsample(cam) to the input's (H, W), divided by its maximum (all 0 when cam is)

The gradient ds_c/dA is the chain rule through every layer after the chosen one: each layer's own
``backward``, called directly (a plain function, see layers/base.py), from the seed ds_c/dz = 1 at
the last layer's pre-activation z. The score is:

* a sigmoid output (1 unit, P(Normal) in the study): target "normal" or 1 -> s = z, the logit of
  Normal; "pneumonia" or 0 -> s = -z (the logit of Pneumonia, since 1 - sigmoid(z) = sigmoid(-z));
* a K-unit output (softmax): target k (an int) -> s = z_k, the logit of class k;
* target None: each image's predicted class (p > 0.5 for a sigmoid; the largest output otherwise).

The ReLU keeps only the evidence *for* the class; channels whose mean gradient is negative count
against it. The upsampling is bilinear (pixel centres aligned, as PIL's and OpenCV's resize), so a
heatmap from a coarse layer is smooth on the image. Dividing by the maximum puts every map in
[0, 1] per image; a map that is 0 everywhere says that no channel of that layer speaks for the class.

Grad-CAM reads the model and changes nothing in it: its weights, and the grads its layers hold
(restored after the backward passes), stay as they were.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minicnn import backend, checks
from minicnn.layers import Conv2D, Layer
from minicnn.layers.activations import Activation, Identity

TARGET_NAMES = {"normal": 1, "pneumonia": 0}
"""The targets a sigmoid output (P(Normal), as in the study) accepts by name."""


def grad_cam(
    model: Any, images: Any, layer: str | Layer | None = None, target: int | str | None = None, batch_size: int = 32
) -> np.ndarray:
    """Grad-CAM heatmaps of ``images`` for class ``target``, from the feature maps of ``layer``.

    Parameters
    ----------
    model : Sequential
        A built model.
    images : array_like of shape (N, H, W, C)
        Images as ``model.predict`` takes them (the same preprocessing), on the host.
    layer : str or Layer, optional
        The convolution layer (or any layer with an (h, w, K) output) whose feature maps are
        weighed, by name or the object itself; by default the last Conv2D.
    target : int or str, optional
        For a 1-unit sigmoid output: "normal" or 1 (the logit), "pneumonia" or 0 (minus the
        logit). For a K-unit output: a class index 0..K-1. None: each image's predicted class.
    batch_size : int, default 32
        Images per forward and backward pass.

    Returns
    -------
    numpy.ndarray of shape (N, H, W), float64
        One heatmap per image, in [0, 1], of the input's height and width.

    Raises
    ------
    TypeError, ValueError
        An unbuilt model, a layer that is not in it or has no (h, w, K) output, a target the
        output does not have, or images of the wrong shape (each message names the argument).
    """
    where = "grad_cam"
    model.require_built()
    index = _layer_index(model, layer)
    units = int(np.prod(model.output_shape))
    target = _check_target(target, units)
    batch_size = checks.check_whole_number(where, "batch_size", batch_size, 1)
    images = model.checked_images(where, "images", images)
    height, width = model.input_shape[:2]
    layers = model.layers
    saved_grads = [dict(layer.grads) for layer in layers]  # the backward passes below overwrite them
    heatmaps = []
    try:
        for start in range(0, len(images), batch_size):
            x = backend.to_device(np.asarray(images[start : start + batch_size]), dtype=model.dtype)
            feature_maps, gradient = _feature_maps_and_gradient(layers, index, x, target, units)
            heatmaps.append(backend.to_numpy(_heatmap(feature_maps, gradient, height, width)))
    finally:
        for layer, grads in zip(layers, saved_grads, strict=True):  # in place: the same dicts as before
            layer.grads.clear()
            layer.grads.update(grads)
    return np.concatenate(heatmaps) if heatmaps else np.zeros((0, height, width))


def _feature_maps_and_gradient(layers: list[Layer], index: int, x: Any, target: int | None, units: int) -> tuple:
    """(A, ds/dA) for one batch: A (n, h, w, K) the output of ``layers[index]``, s each image's score.

    Every layer is called directly (a plain function, as layers/base.py promises): forward in
    inference mode, then backward from the score down to the chosen layer's output.
    """
    xp = backend.array_module()
    for position, layer in enumerate(layers):
        x = layer.forward(x, training=False)
        if position == index:
            feature_maps = x
    output = x.reshape(len(x), units)
    # The seed ds/dz at the last layer's pre-activation z (n, units): which logit, with which sign.
    if target is None:  # each image's predicted class
        target_index = (output[:, 0] > 0.5).astype(int) if units == 1 else output.argmax(axis=1)
    else:
        target_index = xp.full(len(x), target)
    if units == 1:  # sigmoid: +z for Normal (1), -z for Pneumonia (0)
        seed = (2.0 * target_index - 1.0).reshape(-1, 1).astype(x.dtype)
    else:
        seed = (xp.arange(units)[None, :] == target_index[:, None]).astype(x.dtype)
    seed = seed.reshape(x.shape)
    last = layers[-1]
    if isinstance(last, Activation) and not isinstance(last, Identity):  # a separate Sigmoid/Softmax layer
        later = layers[index + 1 : -1]  # the seed is its input's gradient: skip it
    elif hasattr(last, "backward_from_dz") and index < len(layers) - 1:
        seed = last.backward_from_dz(seed)  # the last layer's own math, after its activation
        later = layers[index + 1 : -1]
    else:  # no activation to skip (or the chosen layer is the last one)
        later = layers[index + 1 :]
    gradient = seed
    for layer in reversed(later):
        gradient = layer.backward(gradient)
    return feature_maps, gradient


def _heatmap(feature_maps: Any, gradient: Any, height: int, width: int) -> Any:
    """relu(sum_k alpha_k A_k), alpha_k = the spatial mean of dA_k: (n, h, w, K) twice -> (n, H, W) in [0, 1]."""
    xp = backend.array_module()
    alpha = gradient.mean(axis=(1, 2), keepdims=True)  # (n, 1, 1, K)
    cam = xp.maximum((alpha * feature_maps).sum(axis=3), 0)  # (n, h, w)
    rows = bilinear_matrix(height, cam.shape[1])  # (H, h)
    columns = bilinear_matrix(width, cam.shape[2])  # (W, w)
    cam = rows @ cam.astype(np.float64) @ columns.T  # (H, h) @ (n, h, w) @ (w, W) -> (n, H, W)
    peak = cam.max(axis=(1, 2), keepdims=True)
    return xp.where(peak > 0, cam / xp.where(peak > 0, peak, 1), 0)


def bilinear_matrix(out_size: int, in_size: int) -> Any:
    """The (out_size, in_size) matrix R of linear interpolation along one axis: resized = R @ values.

    Output pixel i samples the input at (i + 0.5) * in_size / out_size - 0.5 (pixel centres
    aligned), clamped to the first and last input pixel; each row has two weights summing to 1.

    Examples
    --------
    >>> bilinear_matrix(4, 2).tolist()
    [[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]]
    """
    xp = backend.array_module()
    position = xp.clip((xp.arange(out_size) + 0.5) * in_size / out_size - 0.5, 0, in_size - 1)
    left = xp.floor(position).astype(int)
    right = xp.minimum(left + 1, in_size - 1)
    weight = position - left
    matrix = xp.zeros((out_size, in_size))
    matrix[xp.arange(out_size), left] += 1 - weight
    matrix[xp.arange(out_size), right] += weight
    return matrix


def _layer_index(model: Any, layer: str | Layer | None) -> int:
    """The position in ``model.layers`` of the layer whose feature maps Grad-CAM weighs."""
    layers = model.layers
    if layer is None:
        convs = [position for position, candidate in enumerate(layers) if isinstance(candidate, Conv2D)]
        if not convs:
            raise ValueError("grad_cam: the model has no Conv2D layer; name the layer whose feature maps to use")
        return convs[-1]
    names = [candidate.name for candidate in layers]
    if isinstance(layer, str):
        if layer not in names:
            raise ValueError(f"grad_cam: layer {layer!r} is not in the model; its layers are {names}")
        index = names.index(layer)
    elif isinstance(layer, Layer):
        matches = [position for position, candidate in enumerate(layers) if candidate is layer]
        if not matches:
            raise ValueError(f"grad_cam: layer {layer.describe()} is not a layer of this model; its layers are {names}")
        index = matches[0]
    else:
        raise TypeError(f"grad_cam: layer must be a layer name, a Layer or None, got {checks.describe(layer)}")
    if len(layers[index].output_shape) != 3:
        raise ValueError(
            f"grad_cam: layer {layers[index].describe()} has output shape {layers[index].output_shape}; "
            "Grad-CAM needs feature maps (h, w, K): choose a convolution or pooling layer"
        )
    return index


def _check_target(target: int | str | None, units: int) -> int | None:
    """The class index of ``target`` for an output of ``units`` units (1: a sigmoid), or None."""
    if target is None:
        return None
    allowed = '"normal" or 1, "pneumonia" or 0, or None' if units == 1 else f"a class index 0..{units - 1} or None"
    if isinstance(target, str) and units == 1 and target.lower() in TARGET_NAMES:
        return TARGET_NAMES[target.lower()]
    if checks.is_whole_number(target) and 0 <= target < max(units, 2):
        return int(target)
    raise ValueError(f"grad_cam: target must be {allowed} for an output of {units} unit(s), got {target!r}")
