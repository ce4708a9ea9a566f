"""Callbacks check their settings against the logs of the fit at its start, and CSVLogger keeps every figure.

A ModelCheckpoint or EarlyStopping that needs an entry the fit will not log (``val_loss``
without validation data) is an error before epoch 1, not a KeyError after it.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

import minicnn as mc
from minicnn import layers
from minicnn.callbacks import CSVLogger, EarlyStopping, ModelCheckpoint


def small_model() -> mc.Sequential:
    model = mc.Sequential([layers.Flatten(input_shape=(3, 3, 1)), layers.Dense(1, activation="sigmoid")], seed=0)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


X = np.random.default_rng(0).random((8, 3, 3, 1), dtype=np.float32)
Y = (np.arange(8) % 2).astype(np.float32)

ROWS = [
    (lambda tmp: ModelCheckpoint(tmp / "c-{val_loss:.3f}.npz"), "ModelCheckpoint: filepath field {val_loss} will not"),
    (lambda tmp: ModelCheckpoint(tmp / "c-{epoch}-{los}.npz"), "filepath field {los} will not be in the logs"),
    (lambda tmp: ModelCheckpoint(tmp / "c.npz", save_best_only=True), "ModelCheckpoint: monitor 'val_loss' will not"),
    (lambda tmp: EarlyStopping(), "EarlyStopping: monitor 'val_loss' will not be in the logs of this fit"),
    (lambda tmp: EarlyStopping(monitor="val_accuracy"), "which hold loss, accuracy, seconds"),
]


@pytest.mark.parametrize("make, words", ROWS)
def test_a_callback_that_needs_a_missing_log_entry_fails_before_epoch_1(tmp_path, make, words):
    model = small_model()
    before = model.get_weights()
    with pytest.raises(ValueError) as raised:
        model.fit(X, Y, epochs=2, verbose=0, callbacks=[make(tmp_path)])
    assert words in str(raised.value), str(raised.value)
    assert model.completed_epochs == 0 and list(tmp_path.iterdir()) == []
    assert all(np.array_equal(old, new) for old, new in zip(before, model.get_weights(), strict=True))


def test_the_same_callbacks_work_with_validation_data(tmp_path):
    model = small_model()
    checkpoint = ModelCheckpoint(tmp_path / "c-{epoch}-{val_loss:.3f}.npz", save_best_only=True)
    model.fit(X, Y, epochs=2, verbose=0, validation_split=0.25, callbacks=[checkpoint, EarlyStopping(patience=5)])
    assert len(list(tmp_path.glob("c-*.npz"))) >= 1


def test_csv_logger_appending_new_columns_keeps_every_figure(tmp_path):
    path = tmp_path / "history.csv"
    model = small_model()
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[CSVLogger(path)])
    model.fit(X, Y, epochs=2, initial_epoch=1, verbose=0, validation_data=(X, Y), callbacks=[CSVLogger(path, True)])
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "seconds", "val_loss", "val_accuracy"]
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert rows[0]["val_loss"] == "" and float(rows[1]["val_loss"]) == pytest.approx(
        model.history.history["val_loss"][-1]
    )


@pytest.mark.parametrize("name", ["best.keras", "best-{epoch}.h5", "best.weights.h5"])
def test_model_checkpoint_refuses_a_keras_file_name_before_training(tmp_path, name):
    with pytest.raises(ValueError, match="a Keras format; minicnn writes its own .npz format"):
        ModelCheckpoint(tmp_path / name)
