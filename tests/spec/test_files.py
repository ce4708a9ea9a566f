"""Saving, loading, checkpoints and resuming: bit-exact, atomic, and loud about bad files."""

from __future__ import annotations

import csv
import os
import signal

import numpy as np
import pytest
from test_model import small_model, toy_data

import minicnn as mc
from minicnn import files, layers
from minicnn.callbacks import Callback, CSVLogger, InterruptAtBatchEnd, ModelCheckpoint


def test_save_and_load_model_round_trip_bit_exactly(tmp_path):
    x, y = toy_data(32)
    model = small_model()
    model.fit(x, y, epochs=2, verbose=0)
    path = model.save(tmp_path / "model.npz")
    loaded = mc.load_model(path)
    assert loaded.get_config() == model.get_config()
    for expected, actual in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.completed_epochs == 2 and loaded.optimizer.iterations == model.optimizer.iterations
    with np.load(path, allow_pickle=False) as archive:  # nothing in the file needs pickle
        assert "config" in archive.files


def test_save_weights_and_load_weights(tmp_path):
    source, target = small_model(seed=1), small_model(seed=2)
    source.save_weights(tmp_path / "w.npz")
    target.load_weights(tmp_path / "w.npz")
    for expected, actual in zip(source.get_weights(), target.get_weights(), strict=True):
        np.testing.assert_array_equal(actual, expected)


def test_resume_equals_an_uninterrupted_run(tmp_path):
    """3 epochs, or 1 epoch + save + load + 2 more: the same weights, bit for bit (dropout included)."""
    x, y = toy_data(96)
    uninterrupted = small_model(seed=5)
    uninterrupted.fit(x, y, batch_size=16, epochs=3, verbose=0)

    first = small_model(seed=5)
    first.fit(x, y, batch_size=16, epochs=1, verbose=0)
    first.save(tmp_path / "checkpoint.npz")
    resumed = mc.load_model(tmp_path / "checkpoint.npz")
    history = resumed.fit(x, y, batch_size=16, epochs=3, initial_epoch=resumed.completed_epochs, verbose=0)

    for expected, actual in zip(uninterrupted.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_array_equal(actual, expected)
    assert history.history["loss"] == uninterrupted.history.history["loss"]


def test_weights_of_another_shape_are_refused_with_names(tmp_path):
    small_model().save_weights(tmp_path / "w.npz")
    wider = mc.Sequential(
        [
            layers.Conv2D(6, 3, activation="relu", input_shape=(8, 8, 1)),
            layers.MaxPool2D(2),
            layers.Flatten(),
            layers.Dropout(0.25),
            layers.Dense(8, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    with pytest.raises(
        files.ModelFileError, match=r"'conv2d/kernel' has shape \(3, 3, 1, 4\) but the model expects \(3, 3, 1, 6\)"
    ):
        wider.load_weights(tmp_path / "w.npz")
    other = mc.Sequential([layers.Dense(1, input_shape=(4,))])
    with pytest.raises(
        files.ModelFileError, match=r"missing nothing, unexpected \['conv2d/bias', 'conv2d/kernel', 'dense_1/bias'"
    ):
        other.load_weights(tmp_path / "w.npz")


def test_corrupt_foreign_and_missing_files_are_named(tmp_path):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(files.ModelFileError, match="corrupt.npz is not a readable .npz"):
        mc.load_model(corrupt)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    with pytest.raises(files.ModelFileError, match="foreign.npz is not a minicnn model file"):
        mc.load_model(foreign)
    with pytest.raises(files.ModelFileError, match="model file not found"):
        mc.load_model(tmp_path / "nothing.npz")


def test_truncated_checkpoint_is_refused(tmp_path):
    path = small_model().save(tmp_path / "m.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(files.ModelFileError, match="m.npz"):
        mc.load_model(path)


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    model = small_model()
    path = model.save(tmp_path / "ckpt.npz")
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of writing

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # no temporary file left behind


def test_model_checkpoint_best_only_and_csv_logger(tmp_path):
    x, y = toy_data(64)
    model = small_model()
    checkpoint = ModelCheckpoint(tmp_path / "best.npz", monitor="val_loss", save_best_only=True)
    every = ModelCheckpoint(tmp_path / "epoch-{epoch:02d}.npz", monitor="val_loss")
    logger = CSVLogger(tmp_path / "log.csv")
    history = model.fit(x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[checkpoint, every, logger])
    assert sorted(p.name for p in tmp_path.glob("epoch-*.npz")) == ["epoch-01.npz", "epoch-02.npz", "epoch-03.npz"]
    best_epoch = int(np.argmin(history.history["val_loss"]))
    best = mc.load_model(tmp_path / "best.npz")
    assert best.completed_epochs == best_epoch + 1
    with open(tmp_path / "log.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"} <= set(rows[0])
    assert float(rows[2]["val_loss"]) == pytest.approx(history.history["val_loss"][2])


class InterruptAt(Callback):
    """Simulates Ctrl-C right after batch ``batch`` of epoch ``epoch`` (both 0-based)."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_epoch_begin(self, epoch, logs=None):
        self.current_epoch = epoch

    def on_train_batch_end(self, batch, logs):
        if (self.current_epoch, batch) == (self.epoch, self.batch):
            raise KeyboardInterrupt


def test_interrupted_mid_epoch_resumes_exactly(tmp_path):
    """Stopped after batch 3 of epoch 2, saved, loaded, resumed: same weights and history as one run."""
    x, y = toy_data(96)
    uninterrupted = small_model(seed=5)
    uninterrupted.fit(x, y, batch_size=16, epochs=3, verbose=0)

    run = small_model(seed=5)
    with pytest.raises(KeyboardInterrupt):
        run.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[InterruptAt(epoch=1, batch=2)])
    run.save(tmp_path / "checkpoint.npz")
    resumed = mc.load_model(tmp_path / "checkpoint.npz")
    assert resumed.completed_epochs == 1 and resumed.partial_epoch["batches"] == 3
    history = resumed.fit(x, y, batch_size=16, epochs=3, initial_epoch=resumed.completed_epochs, verbose=0)

    for expected, actual in zip(uninterrupted.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_array_equal(actual, expected)
    assert history.history["loss"] == uninterrupted.history.history["loss"]


def test_ctrl_c_stops_at_the_end_of_the_batch(tmp_path):
    """A real SIGINT during batch 1 is held until that batch is complete, then raised."""

    class SendCtrlC(Callback):
        def on_train_batch_end(self, batch, logs):
            if batch == 1:
                os.kill(os.getpid(), signal.SIGINT)

    x, y = toy_data(64)
    model = small_model()
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[SendCtrlC(), InterruptAtBatchEnd()])
    assert model.partial_epoch == {**model.partial_epoch, "epoch": 0, "batches": 2}
    assert signal.getsignal(signal.SIGINT) is previous  # the usual Ctrl-C handling is back


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_every_writer_follows_the_umask(tmp_path, umask):
    from minicnn.plots import plot_history

    previous = os.umask(umask)
    try:
        written = [
            files.write_atomic(tmp_path / "plain.bin", lambda file: file.write(b"x")),
            files.write_npz_atomic(tmp_path / "arrays.npz", {"format": np.array(files.FORMAT)}),
            plot_history({"loss": [1.0, 0.5]}, tmp_path / "curves.png"),
        ]
    finally:
        os.umask(previous)
    for path in written:
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path.name
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["arrays.npz", "curves.png", "plain.bin"]


def test_a_text_file_is_not_a_model_file_and_gets_no_pickle_advice(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("these are not weights\n")
    with pytest.raises(files.ModelFileError, match="notes.txt is not a minicnn model file") as error:
        mc.load_model(text)
    assert "pickle" not in str(error.value)


def test_a_model_file_whose_config_says_linear_still_loads_as_identity(tmp_path):
    """Files written before the identity layer was renamed (class "Linear") load, train and save on."""
    model = mc.Sequential([layers.Identity(input_shape=(8, 8, 1)), *small_model().layers], seed=0)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    x, y = toy_data(16)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    arrays = model.file_arrays()
    config = files.decode_json(arrays["config"])
    assert config["layers"][0]["class_name"] == "Identity"
    config["layers"][0]["class_name"] = "Linear"  # as an older minicnn wrote it
    arrays["config"] = files.encode_json(config)
    path = files.write_npz_atomic(tmp_path / "old.npz", arrays)
    loaded = mc.load_model(path)
    assert type(loaded.layers[0]) is layers.Identity and loaded.layers[0].name == "identity"
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    loaded.fit(x, y, batch_size=8, epochs=2, initial_epoch=1, verbose=0)
    model.fit(x, y, batch_size=8, epochs=2, initial_epoch=1, verbose=0)
    for expected, actual in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(actual, expected)


def test_the_saving_functions_are_the_models_methods(tmp_path):
    from minicnn import saving

    x, y = toy_data(16)
    model = small_model()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    by_function = saving.save_model(model, tmp_path / "function.npz")
    by_method = model.save(tmp_path / "method.npz")
    written = [files.read_npz(path) for path in (by_function, by_method)]
    assert list(written[0]) == list(written[1])  # the same entries, in the same order
    for key in written[0]:
        np.testing.assert_array_equal(written[0][key], written[1][key], err_msg=key)
    saving.save_weights(model, tmp_path / "weights.npz")
    other = small_model(seed=9)
    saving.load_weights(other, tmp_path / "weights.npz")
    for expected, actual in zip(model.get_weights(), other.get_weights(), strict=True):
        np.testing.assert_array_equal(actual, expected)
