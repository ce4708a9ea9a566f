"""model.summary() and the memory report with layers whose parameters are not all trained.

BatchNormalization keeps its moving statistics in ``params`` but no gradient trains them
(``non_trainable_params``, declared empty on every Layer): the summary counts them as
non-trainable, and the memory report gives them no gradient and no optimiser moments. The
name column is as wide as the longest "name (Class)".
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import minicnn as mc
from minicnn import layers
from minicnn.layers.base import Layer


def model_with_batch_normalization() -> mc.Sequential:
    """conv (4 filters) -> BN over 4 channels -> global pooling -> dense: 40 + 16 (8 moving) + 0 + 5 weights."""
    return mc.Sequential(
        [
            layers.Conv2D(4, 3, input_shape=(8, 8, 1)),
            layers.BatchNormalization(),
            layers.GlobalAveragePooling2D(),
            layers.Dense(1, activation="sigmoid"),
        ]
    )


def test_every_layer_declares_its_non_trainable_params():
    assert Layer.non_trainable_params == ()
    assert layers.Dense(3).non_trainable_params == ()
    assert layers.BatchNormalization.non_trainable_params == ("moving_mean", "moving_variance")


def test_trainable_params_leave_out_the_moving_statistics():
    model = model_with_batch_normalization()
    normalization = model.layers[1]
    assert normalization.count_params() == 16 and normalization.count_trainable_params() == 8
    dense = model.layers[-1]
    assert dense.count_trainable_params() == dense.count_params() == 5


def test_the_memory_report_gives_moving_statistics_no_gradient_and_no_moments():
    model = model_with_batch_normalization()
    itemsize = 4  # float32
    estimate = model.memory_estimate(batch_size=2)
    total, trainable = model.count_params(), model.count_params() - 8
    assert estimate["weights"] == total * itemsize
    assert estimate["gradients"] == trainable * itemsize
    assert estimate["optimizer state (Adam: 2 per weight)"] == 2 * trainable * itemsize


def test_the_gradients_the_report_counts_are_the_ones_a_step_fills():
    """After one training step, the gradients that exist are exactly the trainable parameters."""
    model = model_with_batch_normalization()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.train_on_batch(np.random.default_rng(0).random((2, 8, 8, 1)), np.array([0.0, 1.0]))
    filled = sum(math.prod(gradient.shape) for _, _, gradient in model.parameters() if gradient is not None)
    assert filled * 4 == model.memory_estimate(2)["gradients"]


@pytest.mark.parametrize("batch_size", [None, 32])
def test_the_name_column_fits_the_longest_name(batch_size):
    model = model_with_batch_normalization()
    lines = []
    model.summary(batch_size=batch_size, print_fn=lines.append)
    text = "\n".join(lines)
    header = next(line for line in text.splitlines() if line.startswith("Layer (type)"))
    shape_column = header.index("Output Shape")
    longest = "global_average_pooling2d (GlobalAveragePooling2D)"
    assert len(longest) + 1 < shape_column  # at least one space before the next column
    row = next(line for line in text.splitlines() if line.startswith(longest))
    assert row[shape_column:].startswith("(None, 4)")
    assert "Trainable params: 53" in text and "Non-trainable params: 8" in text


def test_short_names_keep_keras_widths():
    model = mc.Sequential([layers.Dense(2, input_shape=(3,))])
    lines = []
    model.summary(print_fn=lines.append)
    header = next(line for line in "\n".join(lines).splitlines() if line.startswith("Layer (type)"))
    assert header.index("Output Shape") == 29 and header.index("Param #") == 29 + 26
