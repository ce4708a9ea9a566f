"""load_model refuses a file whose stored config or arrays cannot make a model, naming the file.

The config is checked against the file's own arrays *before* any layer allocates a parameter,
so a file from someone else cannot decide how much memory is allocated. Each row changes one
entry of a good file and gives the words the error must contain.
"""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest

import minicnn as mc
from minicnn import layers
from minicnn.files import ModelFileError


def saved_model(path):
    model = mc.Sequential(
        [
            layers.Conv2D(2, 3, activation="relu", input_shape=(6, 6, 1)),
            layers.MaxPool2D(2),
            layers.Flatten(),
            layers.Dense(1, activation="sigmoid"),
        ],
        seed=0,
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(np.zeros((4, 6, 6, 1), np.float32), np.array([0, 1, 0, 1]), verbose=0)
    model.save(path)
    return model


def rewrite(path, change):
    """Apply ``change(arrays, config)`` to the file at ``path`` (config is the decoded architecture)."""
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    original = arrays["config"]
    config = json.loads(str(original))
    change(arrays, config)
    if arrays.get("config") is original:  # the change edited the decoded config, not the entry itself
        arrays["config"] = np.array(json.dumps(config))
    np.savez(path, **arrays)


def layer_config(config, index):
    return config["layers"][index]["config"]


ROWS = [
    (lambda a, c: layer_config(c, 0).update(filters=10**9), "gives layer parameter 'conv2d/kernel' the shape"),
    (lambda a, c: layer_config(c, 0).update(filters=-1), "Conv2D: filters must be a whole number of at least 1"),
    (lambda a, c: layer_config(c, 0).update(kernel_size=[3, 3, 3]), "Conv2D: kernel_size must be a positive int"),
    (lambda a, c: layer_config(c, 0).update(padding="full"), "Conv2D: unknown padding 'full'"),
    (lambda a, c: layer_config(c, 0).update(colour="red"), "unexpected keyword argument 'colour'"),
    (lambda a, c: layer_config(c, 3).update(units=5), "'dense/kernel' the shape (8, 5), but the file stores (8, 1)"),
    (lambda a, c: c["layers"][0].update(class_name="Conv3D"), "unknown layer class 'Conv3D' in the config"),
    (lambda a, c: c.update(layers={"a": 1}), "the config has no list of layers"),
    (lambda a, c: c.update(input_shape=[-6, 6, 1]), "input_shape must be a positive int or a tuple"),
    (lambda a, c: c.update(input_shape=[12, 12, 1]), "'dense/kernel' the shape (50, 1), but the file stores (8, 1)"),
    (lambda a, c: c.update(seed="0"), "Sequential: seed must be a whole number"),
    (lambda a, c: c.update(dtype="float16"), "unknown dtype 'float16'"),
    (lambda a, c: c["compile"]["optimizer"].update(learning_rate="fast"), "Adam: learning_rate must be a number"),
    (lambda a, c: c["compile"].update(metrics="accuracy"), "compile: metrics must be a list of names"),
    (lambda a, c: a.pop("weights/dense/bias"), "missing ['dense/bias']"),
    (lambda a, c: a.update({"weights/extra/kernel": np.zeros(3)}), "unexpected ['extra/kernel']"),
    (lambda a, c: a.update({"weights/dense/bias": np.array([np.nan])}), "'dense/bias' holds 1 NaN or infinite"),
    (lambda a, c: a.update({"weights/dense/bias": np.array(["0"])}), "'dense/bias' must hold numbers, got dtype <U1"),
    (lambda a, c: a.update({"optimizer/m/dense/bias": np.zeros(5)}), "optimiser slot 'm/dense/bias' has shape (5,)"),
    (lambda a, c: a.pop("optimizer/iterations"), "no step counter"),
    (lambda a, c: a.update(config=np.array("{not json")), "Expecting property name"),
    (lambda a, c: a.pop("config"), "the entry 'config' is missing"),
    (lambda a, c: a.update(training=np.array(json.dumps({"history": {}}))), "the entry 'completed_epochs' is missing"),
]


@pytest.mark.parametrize("change, words", ROWS)
def test_a_bad_model_file_is_one_error_naming_the_file(tmp_path, change, words):
    path = tmp_path / "model.npz"
    saved_model(path)
    rewrite(path, change)
    with pytest.raises(ModelFileError) as raised:
        mc.load_model(path)
    message = str(raised.value)
    assert words in message, message
    assert message.startswith(f"load_model: {path}: ") and "\n" not in message


def test_a_huge_stored_config_allocates_nothing_before_it_is_refused(tmp_path):
    path = tmp_path / "model.npz"
    saved_model(path)
    rewrite(path, lambda a, c: layer_config(c, 0).update(filters=10**9))  # 67 GiB of kernel if built
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match="but the file stores"):
            mc.load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20


def test_an_entry_that_declares_more_than_it_holds_is_refused_before_numpy_allocates_it(tmp_path):
    import io as bytes_io
    import zipfile

    path = tmp_path / "model.npz"
    saved_model(path)
    header = bytes_io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (2**34,)})
    with zipfile.ZipFile(path, "a") as archive:  # 64 GiB declared, 16 bytes present
        archive.writestr("weights/dense/huge.npy", header.getvalue() + bytes(16))
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match="'weights/dense/huge.npy' declares an array of shape .17179869184,"):
            mc.load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20
    with zipfile.ZipFile(tmp_path / "compressed.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("format.npy", b"x" * 100)
    with pytest.raises(ModelFileError, match="'format.npy' is compressed or larger than the file"):
        mc.load_model(tmp_path / "compressed.npz")


def test_paths_that_are_not_model_files(tmp_path):
    with pytest.raises(ModelFileError, match=f"{tmp_path} is a folder, not a model file"):
        mc.load_model(tmp_path)
    with pytest.raises(ModelFileError, match="model file not found"):
        mc.load_model(tmp_path / "missing.npz")


def test_a_good_file_still_loads_exactly(tmp_path):
    path = tmp_path / "model.npz"
    model = saved_model(path)
    loaded = mc.load_model(path)
    for mine, theirs in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert loaded.completed_epochs == 1 and loaded.optimizer.iterations == model.optimizer.iterations
