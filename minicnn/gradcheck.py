"""Numerical gradient checks: is a layer's backward really the derivative of its forward?

Central differences estimate a derivative from two forward passes:

    dL/dw  ~  (L(w + h) - L(w - h)) / (2h)        error O(h^2)

To check a whole layer with one scalar L we draw a random upstream gradient g
(the shape of the output) and use L = sum(forward(x) * g); then the analytic
dL/dx is exactly backward(g), and the same for every parameter.

Float32 has only ~7 significant digits, too few to tell a bug from rounding, so
checks run in float64 (``backend.set_default_dtype("float64")`` before building).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from minicnn import backend


@dataclass
class GradientReport:
    """Max relative error per checked array ("input", "kernel", "bias", ...)."""

    errors: dict[str, float] = field(default_factory=dict)

    @property
    def max_error(self) -> float:
        """The largest relative error of all checked arrays (0.0 when none was checked)."""
        return max(self.errors.values(), default=0.0)

    def passed(self, tolerance: float = 1e-6) -> bool:
        """Whether every relative error is below ``tolerance``."""
        return self.max_error < tolerance

    def __str__(self) -> str:
        rows = [
            f"  {name:<10} max relative error {error:.2e}  {'ok' if error < 1e-6 else 'MISMATCH'}"
            for name, error in self.errors.items()
        ]
        return "gradient check (float64 central differences)\n" + "\n".join(rows)


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max |a - n| / max(max |a|, max |n|): the error relative to the gradient's own scale.

    Comparing element by element would blow up where both values are ~0 (pure rounding noise).

    Parameters
    ----------
    analytic, numeric : numpy.ndarray
        Two estimates of the same gradient, of one shape.

    Returns
    -------
    float
        0.0 when both are all zeros.
    """
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0))
    if scale == 0.0:
        return 0.0
    return float(np.abs(analytic - numeric).max() / scale)


def numerical_gradient(f: Callable[[], float], array: Any, step: float = 1e-6) -> np.ndarray:
    """dF/darray by central differences, perturbing ``array`` in place one element at a time.

    Parameters
    ----------
    f : callable
        ``f()`` computes the scalar F from the current values of ``array``.
    array : ndarray
        A C-contiguous float64 array; each element is moved by +step and -step, then restored.
    step : float, default 1e-6
        The h of (F(w + h) - F(w - h)) / (2h).

    Returns
    -------
    numpy.ndarray
        dF/darray, of the shape of ``array``, float64, on the host.
    """
    if not array.flags.c_contiguous:
        raise ValueError("numerical_gradient perturbs the array through a flat view; pass a contiguous array")
    gradient = np.zeros(array.shape)
    flat = array.reshape(-1)  # a view (the array is contiguous): writing into it changes ``array``
    for index in range(flat.size):
        original = float(flat[index])
        flat[index] = original + step
        plus = f()
        flat[index] = original - step
        minus = f()
        flat[index] = original
        gradient.reshape(-1)[index] = (plus - minus) / (2 * step)
    return gradient


def check_layer(layer: Any, x: Any, training: bool = False, seed: int = 0, step: float = 1e-6) -> GradientReport:
    """Compare ``layer.backward`` with central differences for the input and every parameter.

    Parameters
    ----------
    layer : Layer
        A built layer with float64 parameters.
    x : ndarray of shape (N, *input_shape)
        A float64 input on the active backend; it is perturbed and restored.
    training : bool, default False
        The forward mode; the layer's state (e.g. Dropout's mask counter) is reset before
        every forward so each pass sees the same randomness.
    seed : int, default 0
        Seeds the random upstream gradient g.
    step : float, default 1e-6
        The central-difference step h.

    Returns
    -------
    GradientReport
        The relative error of dL/dx ("input") and of every parameter's gradient.

    Raises
    ------
    TypeError
        ``x`` or a parameter is not float64.
    """
    if str(x.dtype) != "float64" or any(str(p.dtype) != "float64" for p in layer.params.values()):
        raise TypeError(
            "gradient checks need float64 inputs and parameters: "
            "call backend.set_default_dtype('float64') before building the layer"
        )
    state = layer.get_state()
    output = layer.forward(x, training=training)
    upstream = backend.to_device(np.random.default_rng(seed).standard_normal(output.shape))

    def loss() -> float:
        layer.set_state(state)
        return float((layer.forward(x, training=training) * upstream).sum())

    loss()  # the analytic backward must see the same forward state as the numeric passes
    # upstream goes in as it is: a layer never writes into dy, and one that did would fail here,
    # because the numerical passes below read upstream again.
    analytic = {"input": backend.to_numpy(layer.backward(upstream)).copy()}
    analytic.update({name: backend.to_numpy(grad).copy() for name, grad in layer.grads.items()})
    report = GradientReport()
    report.errors["input"] = relative_error(analytic["input"], numerical_gradient(loss, x, step))
    for name, value in layer.params.items():
        if name in layer.non_trainable_params:  # no gradient: BatchNormalization's moving statistics
            continue
        report.errors[name] = relative_error(analytic[name], numerical_gradient(loss, value, step))
    return report


def check_loss(loss: Any, y_pred: Any, y_true: Any, sample_weight: Any = None, step: float = 1e-6) -> GradientReport:
    """Compare ``loss.backward()`` with central differences of ``loss.forward`` w.r.t. y_pred.

    Parameters
    ----------
    loss : minicnn.losses.Loss
        The loss to check.
    y_pred : ndarray
        Float64 predictions (probabilities or logits); perturbed and restored.
    y_true : ndarray of the shape of y_pred
        Labels.
    sample_weight : ndarray of shape (N,), optional
        Per-sample weights.
    step : float, default 1e-6
        The central-difference step h.

    Returns
    -------
    GradientReport
        The relative error of dL/dy_pred, under "y_pred".
    """

    def value() -> float:
        return float(loss.forward(y_pred, y_true, sample_weight))

    value()
    analytic = backend.to_numpy(loss.backward())
    return GradientReport({"y_pred": relative_error(analytic, numerical_gradient(value, y_pred, step))})
