"""The layer, optimiser, loss, model and callback constructors refuse a bad argument, naming it.

Each row: a call with one bad argument, the error type, and the words its one-line message must contain.
"""

from __future__ import annotations

import pytest

import minicnn as mc
from minicnn import callbacks, layers, losses, optimizers
from minicnn.data.batches import Batches

ROWS = [
    # layers
    (lambda: layers.Conv2D(True, 3), TypeError, "Conv2D: filters must be a whole number of at least 1, got True"),
    (lambda: layers.Conv2D(0, 3), ValueError, "Conv2D: filters must be a whole number of at least 1, got 0"),
    (lambda: layers.Conv2D(4.0, 3), TypeError, "Conv2D: filters must be a whole number"),
    (
        lambda: layers.Conv2D(4, 3.0),
        ValueError,
        "Conv2D: kernel_size must be a positive int or a pair of them, got 3.0",
    ),
    (lambda: layers.Conv2D(4, (3, True)), ValueError, "Conv2D: kernel_size must be a positive int or a pair"),
    (lambda: layers.Conv2D(4, "3"), ValueError, "Conv2D: kernel_size must be a positive int or a pair"),
    (lambda: layers.Conv2D(4, 3, strides=0), ValueError, "Conv2D: strides must be a positive int or a pair"),
    (lambda: layers.Conv2D(4, 3, padding=None), ValueError, "Conv2D: unknown padding None"),
    (lambda: layers.Conv2D(4, 3, activation="gelu"), ValueError, "unknown activation 'gelu'"),
    (lambda: layers.Conv2D(4, 3, activation=["relu"]), ValueError, "unknown activation ['relu']"),
    (lambda: layers.Conv2D(4, 3, kernel_initializer=None), ValueError, "unknown initializer None"),
    (lambda: layers.Conv2D(4, 3, name=7), TypeError, "Conv2D: name must be a str or None, got 7"),
    (lambda: layers.Conv2D(4, 3, input_shape=(8.0, 8, 1)), ValueError, "input_shape must be a positive int or a tuple"),
    (lambda: layers.Conv2D(4, 3, input_shape=True), ValueError, "input_shape must be a positive int or a tuple"),
    (lambda: layers.Conv2D(4, 3, input_shape="8"), ValueError, "input_shape must be a positive int or a tuple"),
    (lambda: layers.Dense(0), ValueError, "Dense: units must be a whole number of at least 1, got 0"),
    (lambda: layers.Dense("8"), TypeError, "Dense: units must be a whole number of at least 1, got '8' (str)"),
    (lambda: layers.Dense(8, activation=1), ValueError, "unknown activation 1"),
    (lambda: layers.Dropout("0.5"), TypeError, "Dropout: rate must be a number in [0, 1), got '0.5' (str)"),
    (lambda: layers.Dropout(1.0), ValueError, "Dropout: rate must be in [0, 1), got 1.0"),
    (lambda: layers.Dropout(float("nan")), ValueError, "Dropout: rate must be in [0, 1), got nan"),
    (lambda: layers.Dropout(0.5, seed=-1), ValueError, "Dropout: seed must be a whole number of at least 0"),
    (lambda: layers.Dropout(0.5, seed=1.5), TypeError, "Dropout: seed must be a whole number"),
    (lambda: layers.MaxPool2D(0), ValueError, "MaxPool2D: pool_size must be a positive int or a pair"),
    (lambda: layers.MaxPool2D(2, strides=(1, 2, 3)), ValueError, "MaxPool2D: strides must be a positive int or a pair"),
    (lambda: layers.Flatten(name=["f"]), TypeError, "Flatten: name must be a str or None"),
    # optimisers and the loss
    (lambda: optimizers.Adam("0.01"), TypeError, "Adam: learning_rate must be a number in (0, inf), got '0.01' (str)"),
    (lambda: optimizers.Adam(0), ValueError, "Adam: learning_rate must be in (0, inf), got 0"),
    (lambda: optimizers.Adam(beta_1=1.0), ValueError, "Adam: beta_1 must be in [0, 1), got 1.0"),
    (lambda: optimizers.Adam(beta_2=-0.1), ValueError, "Adam: beta_2 must be in [0, 1), got -0.1"),
    (lambda: optimizers.Adam(epsilon=-1e-7), ValueError, "Adam: epsilon must be in [0, inf)"),
    (lambda: optimizers.Adam(epsilon=None), TypeError, "Adam: epsilon must be a number"),
    (lambda: optimizers.SGD(float("inf")), ValueError, "SGD: learning_rate must be in (0, inf), got inf"),
    (lambda: optimizers.SGD(float("nan")), ValueError, "SGD: learning_rate must be in (0, inf), got nan"),
    (lambda: optimizers.SGD(True), TypeError, "SGD: learning_rate must be a number in (0, inf), got True"),
    (lambda: optimizers.SGD(0.1, momentum=1), ValueError, "SGD: momentum must be in [0, 1), got 1"),
    (lambda: losses.BinaryCrossentropy(from_logits="yes"), TypeError, "BinaryCrossentropy: from_logits must be True"),
    # the model
    (lambda: mc.Sequential(layers.Dense(1)), TypeError, "Sequential: layers must be a list of Layer objects"),
    (lambda: mc.Sequential([layers.Dense(1), "relu"]), TypeError, "Sequential: layers[1] must be a Layer, got 'relu'"),
    (lambda: mc.Sequential([layers.Dense(1)], seed=-1), ValueError, "Sequential: seed must be a whole number of at"),
    (lambda: mc.Sequential([layers.Dense(1)], seed=0.5), TypeError, "Sequential: seed must be a whole number"),
    (lambda: mc.Sequential([layers.Dense(1)], name=None), TypeError, "Sequential: name must be a str, got None"),
    # callbacks
    (lambda: callbacks.EarlyStopping(patience=-1), ValueError, "EarlyStopping: patience must be a whole number of at"),
    (lambda: callbacks.EarlyStopping(patience=1.5), TypeError, "EarlyStopping: patience must be a whole number"),
    (lambda: callbacks.EarlyStopping(mode="best"), ValueError, "EarlyStopping: mode must be one of 'auto', 'min'"),
    (lambda: callbacks.EarlyStopping(monitor=None), TypeError, "EarlyStopping: monitor must be the name of a log"),
    (lambda: callbacks.EarlyStopping(min_delta="0"), TypeError, "EarlyStopping: min_delta must be a number"),
    (lambda: callbacks.EarlyStopping(restore_best_weights=1), TypeError, "restore_best_weights must be True or False"),
    (lambda: callbacks.ModelCheckpoint(None), TypeError, "ModelCheckpoint: filepath must be a str or a path"),
    (lambda: callbacks.ModelCheckpoint("c-{}.npz"), ValueError, "ModelCheckpoint: filepath 'c-{}.npz' may only hold"),
    (lambda: callbacks.ModelCheckpoint("c-{epoch.npz"), ValueError, "is not a valid format string"),
    (lambda: callbacks.ModelCheckpoint("c.npz", save_best_only="yes"), TypeError, "save_best_only must be True"),
    (lambda: callbacks.ModelCheckpoint("c.npz", initial_value_threshold="0.3"), TypeError, "initial_value_threshold"),
    (lambda: callbacks.CSVLogger(3), TypeError, "CSVLogger: filename must be a str or a path, got 3"),
    (lambda: callbacks.CSVLogger("h.csv", append="yes"), TypeError, "CSVLogger: append must be True or False"),
    # a Batches source
    (lambda: Batches([1, 2], [0, 1], batch_size="2"), TypeError, "Batches: batch_size must be a whole number"),
    (lambda: Batches([1, 2], [0, 1], seed=-1), ValueError, "Batches: seed must be a whole number of at least 0"),
    (lambda: Batches(5, [0, 1]), TypeError, "Batches: x must be an array with one row per sample, got 5"),
    (lambda: Batches([1, 2], [0, 1], transform=3), TypeError, "Batches: transform must be a function"),
]


@pytest.mark.parametrize("call, error, words", ROWS)
def test_a_bad_constructor_argument_is_one_clear_error(call, error, words):
    with pytest.raises(error) as raised:
        call()
    message = str(raised.value)
    assert words in message, message
    assert "\n" not in message


def test_good_arguments_still_work():
    assert layers.Conv2D(4, (3, 5), strides=[1, 2]).kernel_size == (3, 5)
    import numpy as np

    assert layers.Dense(np.int64(3)).units == 3  # NumPy's ints are whole numbers too
    assert optimizers.Adam(np.float32(1e-3), epsilon=0).epsilon == 0.0
    assert layers.Dropout(0).rate == 0.0
    assert callbacks.ModelCheckpoint("ckpt-{epoch:02d}-{val_loss:.3f}.npz").fields == ["epoch", "val_loss"]
