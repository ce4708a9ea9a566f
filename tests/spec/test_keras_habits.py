"""Keras habits (#23): Input, building on add, model(x), Keras file names refused, every activation loads."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, files, layers, saving
from minicnn.layers import activations
from minicnn.model import LAYER_CLASSES


def summary_lines(model: mc.Sequential) -> list[str]:
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    return lines


def image_layers() -> list[layers.Layer]:
    """A small CNN without input_shape, fresh each call."""
    return [layers.Conv2D(2, 3, activation="relu"), layers.MaxPool2D(2), layers.Flatten(), layers.Dense(1)]


def reference_model(seed: int = 3) -> mc.Sequential:
    """The same CNN the old way: input_shape on the first layer."""
    _, *rest = image_layers()
    first = layers.Conv2D(2, 3, activation="relu", input_shape=(8, 8, 1))
    return mc.Sequential([first, *rest], seed=seed)


def assert_same_model(model: mc.Sequential, reference: mc.Sequential) -> None:
    assert model.built
    assert [layer.name for layer in model.layers] == [layer.name for layer in reference.layers]
    assert summary_lines(model) == summary_lines(reference)
    for mine, theirs in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)  # the same seeds, on this machine


# ---- Input ----------------------------------------------------------------------------------
def test_input_first_in_the_list_builds_the_model_like_input_shape():
    model = mc.Sequential([mc.Input((8, 8, 1)), *image_layers()], seed=3)
    assert_same_model(model, reference_model())
    assert model.input_shape == (8, 8, 1)
    assert all(isinstance(layer, layers.Layer) for layer in model.layers)  # Input is not one of the layers
    assert len(model.layers) == 4
    assert mc.Input is layers.Input


def test_input_added_first_then_each_add_builds_its_layer():
    model = mc.Sequential(seed=3)
    model.add(layers.Input((8, 8, 1)))
    assert not model.built
    for count, layer in enumerate(image_layers(), start=1):
        model.add(layer)
        assert model.built and len(model.layers) == count
        assert layer.input_shape is not None  # built on the shape the layer before gives
    assert_same_model(model, reference_model())


def test_an_int_shape_is_a_vector_and_a_bad_shape_is_refused():
    assert layers.Input(4).shape == (4,)
    assert layers.Input([2, 3]).shape == (2, 3)
    for bad in [(0, 3), (), None, "4", (2.5,)]:
        with pytest.raises(ValueError, match="Input: shape must be a positive int"):
            layers.Input(bad)


def test_input_must_come_first_and_only_once():
    with pytest.raises(ValueError, match=r"Input\(shape=\(3,\)\) must come first, got it after dense \(Dense\)"):
        mc.Sequential([layers.Dense(1), layers.Input(3)])
    model = mc.Sequential([layers.Input(3)])
    with pytest.raises(ValueError, match="after another Input"):
        model.add(layers.Input(3))
    with pytest.raises(ValueError, match=r"has input_shape=\(5,\), but the model starts with Input\(shape=\(3,\)\)"):
        model.add(layers.Dense(1, input_shape=(5,)))
    model.add(layers.Dense(1, input_shape=(3,)))  # the same shape twice is fine
    assert model.built


def test_input_models_save_and_load_as_the_same_file_as_input_shape_models(tmp_path):
    model = mc.Sequential([layers.Input((8, 8, 1)), *image_layers()], seed=3)
    assert model.get_config() == reference_model().get_config()  # so old files and new ones are alike
    rebuilt = mc.Sequential.from_config(model.get_config())
    assert_same_model(rebuilt, model)
    loaded = mc.load_model(model.save(tmp_path / "model.npz"))
    assert_same_model(loaded, model)


# ---- building on add --------------------------------------------------------------------------
def test_add_builds_as_soon_as_the_first_layer_knows_its_input_shape():
    model = mc.Sequential(seed=1)
    model.add(layers.Dense(3, activation="relu", input_shape=(4,)))
    assert model.built  # summary and fit work from here on
    assert len(summary_lines(model)) > 0
    model.add(layers.Dense(2))
    model.add(layers.Dense(1, activation="sigmoid"))
    reference = mc.Sequential(
        [layers.Dense(3, activation="relu", input_shape=(4,)), layers.Dense(2), layers.Dense(1, activation="sigmoid")],
        seed=1,
    )
    assert_same_model(model, reference)
    assert [layer.name for layer in model.layers] == ["dense", "dense_1", "dense_2"]
    model.compile(optimizer="adam", loss="binary_crossentropy")
    history = model.fit(np.zeros((4, 4)), np.ones(4), epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_build_still_works_after_the_last_add():
    model = mc.Sequential(seed=3)
    for layer in image_layers():
        model.add(layer)
    assert not model.built
    with pytest.raises(RuntimeError, match=r"start it with Input\(\(H, W, C\)\)"):
        model.summary()
    model.build((8, 8, 1))
    assert_same_model(model, reference_model())


def test_a_layer_that_does_not_fit_is_refused_with_its_name_and_the_model_stays_usable():
    model = mc.Sequential([layers.Input(4), layers.Dense(3)])
    with pytest.raises(ValueError, match=r"Sequential.add: layer conv2d \(Conv2D\) does not fit the output \(3,\) of "):
        model.add(layers.Conv2D(2, 3))
    assert len(model.layers) == 1
    model.add(layers.Dense(1))
    assert model.output_shape == (1,)
    assert [layer.name for layer in model.layers] == ["dense", "dense_1"]
    images = mc.Sequential([layers.Input((4, 4, 1))])
    with pytest.raises(ValueError, match=r"layer dense \(Dense\) does not fit the input \(4, 4, 1\): it expects flat"):
        images.add(layers.Dense(1))
    assert images.layers == []


def test_a_repeated_name_is_refused_at_add():
    model = mc.Sequential([layers.Dense(3, name="hidden", input_shape=(4,))])
    with pytest.raises(ValueError, match="'hidden' is taken by an earlier layer"):
        model.add(layers.Dense(1, name="hidden"))
    assert len(model.layers) == 1
    with pytest.raises(ValueError, match="already in model"):
        model.add(model.layers[0])


def test_a_named_layer_does_not_steal_the_name_the_next_layer_would_get():
    one_list = mc.Sequential([layers.Dense(3, input_shape=(4,)), layers.Dense(2, name="dense_1"), layers.Dense(1)])
    one_by_one = mc.Sequential()
    for layer in [layers.Dense(3, input_shape=(4,)), layers.Dense(2, name="dense_1"), layers.Dense(1)]:
        one_by_one.add(layer)
    expected = ["dense", "dense_1", "dense_2"]
    assert [layer.name for layer in one_list.layers] == [layer.name for layer in one_by_one.layers] == expected


# ---- model(x) ---------------------------------------------------------------------------------
def test_calling_the_model_is_predict_in_one_pass_on_the_backend():
    model = reference_model()
    x = np.random.default_rng(0).uniform(size=(5, 8, 8, 1))  # float64: cast to the model's float32
    outputs = model(x)
    assert isinstance(outputs, backend.array_module().ndarray)
    assert outputs.shape == (5, 1) and str(outputs.dtype) == model.dtype
    np.testing.assert_allclose(backend.to_numpy(outputs), model.predict(x, batch_size=2), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(backend.to_numpy(model(x.tolist())), backend.to_numpy(outputs), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"model\(x\): x must have shape \(N, 8, 8, 1\)"):
        model(np.zeros((2, 8, 8)))
    with pytest.raises(TypeError, match="training must be True or False"):
        model(x, training=1)
    with pytest.raises(RuntimeError, match="not built"):
        mc.Sequential([layers.Dense(1)])(np.zeros((1, 3)))


def test_calling_the_model_with_training_true_drops_out():
    model = mc.Sequential([layers.Input(100), layers.Dropout(0.5)])
    x = np.ones((2, 100), np.float32)
    np.testing.assert_array_equal(backend.to_numpy(model(x)), x)
    dropped = backend.to_numpy(model(x, training=True))
    assert set(np.unique(dropped)) == {0.0, 2.0}


# ---- Keras file names --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["model.keras", "model.h5", "model.hdf5", "model.weights.h5", "MODEL.H5"])
def test_keras_file_names_are_refused_before_anything_is_written(tmp_path, name):
    model = reference_model()
    for write in (model.save, model.save_weights, lambda path: saving.save_model(model, path)):
        with pytest.raises(ValueError, match=r"a Keras format; minicnn writes its own \.npz format") as error:
            write(tmp_path / name)
        assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file


def test_a_path_that_is_not_a_path_is_refused_by_name():
    with pytest.raises(TypeError, match="save: path must be a str or os.PathLike, got int"):
        reference_model().save(3)


def test_npz_and_other_names_are_written_as_before(tmp_path):
    model = reference_model()
    for name in ["model.npz", "model", "model.ckpt"]:
        path = model.save(tmp_path / name)
        assert path == tmp_path / name and path.is_file()  # written as given, no suffix added
        assert_same_model(mc.load_model(path), model)
    assert model.save_weights(tmp_path / "weights.npz").is_file()


def test_loading_a_foreign_file_with_a_keras_name_says_so(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(files.ModelFileError, match="its name says Keras format, which minicnn does not read"):
        mc.load_model(path)


# ---- every activation is a layer class a file can name -----------------------------------------
def test_every_activation_class_is_registered_for_model_files():
    for cls in set(activations.ACTIVATIONS.values()):
        assert LAYER_CLASSES[cls.__name__] is cls


@pytest.mark.parametrize("cls", sorted(set(activations.ACTIVATIONS.values()), key=lambda cls: cls.__name__))
def test_a_model_with_each_activation_layer_saves_and_loads(tmp_path, cls):
    model = mc.Sequential([layers.Input(4), layers.Dense(3), cls()], seed=2)
    loaded = mc.load_model(model.save(tmp_path / "model.npz"))
    assert [type(layer) for layer in loaded.layers] == [layers.Dense, cls]
    x = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


# ---- a Keras-style model for three classes, end to end -------------------------------------------
def three_pattern_images(per_class: int = 30, size: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy stripes: vertical (class 0), horizontal (class 1) or a checkerboard (class 2), each at a random phase.

    Their mean brightness is the same, so only what the convolution sees locally tells them apart,
    and global average pooling keeps it.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(3), per_class))
    rows, cols = np.mgrid[:size, :size]
    phase = rng.integers(0, 2, size=len(labels))[:, None, None]
    patterns = np.stack([(cols + phase) % 2, (rows + phase) % 2, (rows + cols + phase) % 2])  # (3, N, H, W)
    images = patterns[labels, np.arange(len(labels))] + rng.normal(0, 0.3, size=(len(labels), size, size))
    return images[..., None].astype(np.float32), labels


def test_a_keras_style_softmax_model_learns_three_classes(tmp_path):
    x, y = three_pattern_images()
    model = mc.Sequential(seed=0)
    model.add(mc.Input((8, 8, 1)))
    model.add(layers.Conv2D(8, 3, activation="relu"))
    model.add(layers.BatchNormalization())
    model.add(layers.GlobalAveragePooling2D())
    model.add(layers.Dense(3, activation="softmax"))
    model.compile(optimizer=mc.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=15, verbose=0)
    assert history.history["accuracy"][-1] > 0.95
    assert history.history["loss"][-1] < history.history["loss"][0]
    probabilities = model.predict(x)
    assert probabilities.shape == (90, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    assert np.mean(probabilities.argmax(axis=1) == y) > 0.95  # inference: BatchNormalization's moving statistics
    loaded = mc.load_model(model.save(tmp_path / "three.npz"))
    np.testing.assert_array_equal(loaded.predict(x), probabilities)
