"""The model summary: Keras's table of layers, and a memory report for one training step.

Used by :meth:`minicnn.Sequential.summary`; works on any built model (it only reads
each layer's ``describe()``, shapes, parameter counts (all, and the trainable ones:
``count_trainable_params``, without ``non_trainable_params``) and ``workspace_bytes``, and the
model's ``relu_folds()``: the ReLUs its fast mode folds into the max pool after them).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def format_bytes(size: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def summary_text(model: Any, batch_size: int | None = None) -> str:
    """The table Layer (type) | Output Shape | Param #, plus a memory report when ``batch_size`` is given.

    Parameters
    ----------
    model : Sequential
        A built model.
    batch_size : int, optional
        Adds the columns Params, Output and Workspace (bytes) and the estimate of
        :func:`memory_estimate`.

    Returns
    -------
    str
        The text, lines joined by newlines.
    """
    itemsize = np.dtype(model.dtype).itemsize
    names = [layer.describe() for layer in model.layers]
    shapes = [f"(None, {', '.join(map(str, layer.output_shape))})" for layer in model.layers]
    # Keras's widths, widened where a name or a shape would run into the next column.
    columns = [
        ("Layer (type)", max([29, *(len(name) + 2 for name in names)])),
        ("Output Shape", max([26, *(len(shape) + 2 for shape in shapes)])),
        ("Param #", 12),
    ]
    if batch_size:
        columns += [("Params", 12), ("Output", 12), ("Workspace", 12)]
    width = sum(size for _, size in columns)
    lines = [f'Model: "{model.name}"', "_" * width, "".join(title.ljust(size) for title, size in columns), "=" * width]
    for index, layer in enumerate(model.layers):
        cells = [names[index], shapes[index], f"{layer.count_params():,}"]
        if batch_size:
            cells += [
                format_bytes(layer.count_params() * itemsize),
                format_bytes(batch_size * math.prod(layer.output_shape) * itemsize),
                format_bytes(layer.workspace_bytes(batch_size)),
            ]
        lines.append("".join(cell.ljust(size) for cell, (_, size) in zip(cells, columns, strict=True)))
        lines.append("=" * width if index == len(model.layers) - 1 else "_" * width)
    total = model.count_params()
    trainable = trainable_params(model)  # all but BatchNormalization's moving statistics, which no gradient trains
    lines += [
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
    ]
    lines += relu_fold_lines(model)
    if batch_size:
        lines += ["", f"Memory estimate for one training step at batch size {batch_size} ({model.dtype}):"]
        lines += [
            f"  {label:<46}{format_bytes(size):>12}" for label, size in memory_estimate(model, batch_size).items()
        ]
    return "\n".join(lines)


def trainable_params(model: Any) -> int:
    """Scalars of the model's parameters that a gradient trains (each layer's ``non_trainable_params`` left out)."""
    return sum(layer.count_trainable_params() for layer in model.layers)


def relu_fold_lines(model: Any) -> list[str]:
    """The ReLUs that fit, evaluate and predict fold into the max pool after them, one line per pair (none: [])."""
    folds = model.relu_folds()
    if not folds:
        return []
    return [
        "ReLU folded into the next max pool in fit, evaluate and predict (max(0, a, b, ...); layers/base.py):",
        *(f"  the ReLU of {layer.name} is applied by {pool.name}" for layer, pool in folds),
    ]


def memory_estimate(model: Any, batch_size: int) -> dict[str, int]:
    """Bytes for one training step with Adam, by kind. An estimate: NumPy's own temporaries come on top.

    Parameters
    ----------
    model : Sequential
        A built model.
    batch_size : int
        Samples per step.

    Returns
    -------
    dict of str to int
        Bytes for weights, gradients, optimiser state, the input batch, the layer outputs,
        the input gradients and the im2col workspace, and their "total". Gradients and the
        optimiser's two moments exist only for the trainable weights: BatchNormalization's
        moving statistics count once, as weights.
    """
    itemsize = np.dtype(model.dtype).itemsize
    parameters = model.count_params() * itemsize
    trainable = trainable_params(model) * itemsize
    outputs = sum(batch_size * math.prod(layer.output_shape) * itemsize for layer in model.layers)
    # In training every layer but the first returns dL/dx, the size of its input; the large
    # layers keep that array as a buffer from step to step, so all of them count, not just the largest.
    input_gradients = sum(batch_size * math.prod(layer.input_shape) * itemsize for layer in model.layers[1:])
    estimate = {
        "weights": parameters,
        "gradients": trainable,
        "optimizer state (Adam: 2 per weight)": 2 * trainable,  # per trainable weight: the moments m and v
        "input batch": batch_size * math.prod(model.input_shape) * itemsize,
        "layer outputs kept for backward": outputs,
        "input gradients (dL/dx of every layer)": input_gradients,
        "im2col workspace (shared by all Conv2D)": max(layer.workspace_bytes(batch_size) for layer in model.layers),
    }
    estimate["total"] = sum(estimate.values())
    return estimate
