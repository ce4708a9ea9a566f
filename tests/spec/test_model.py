"""Sequential: the study's architecture, learning end to end, fit/evaluate/predict, Keras semantics."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, layers, losses, optimizers
from minicnn.callbacks import EarlyStopping
from minicnn.models import study_cnn as build_study_model
from minicnn.training import TrainingDivergedError, balanced_class_weight

STUDY_TABLE = [
    ("conv2d (Conv2D)", "(None, 298, 298, 32)", "320"),
    ("max_pool2d (MaxPool2D)", "(None, 149, 149, 32)", "0"),
    ("conv2d_1 (Conv2D)", "(None, 147, 147, 64)", "18,496"),
    ("max_pool2d_1 (MaxPool2D)", "(None, 73, 73, 64)", "0"),
    ("conv2d_2 (Conv2D)", "(None, 71, 71, 128)", "73,856"),
    ("max_pool2d_2 (MaxPool2D)", "(None, 35, 35, 128)", "0"),
    ("conv2d_3 (Conv2D)", "(None, 33, 33, 128)", "147,584"),
    ("max_pool2d_3 (MaxPool2D)", "(None, 16, 16, 128)", "0"),
    ("flatten (Flatten)", "(None, 32768)", "0"),
    ("dropout (Dropout)", "(None, 32768)", "0"),
    ("dense (Dense)", "(None, 512)", "16,777,728"),
    ("dense_1 (Dense)", "(None, 1)", "513"),
]


def small_model(seed=0, dropout=0.25):
    model = mc.Sequential(
        [
            layers.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)),
            layers.MaxPool2D(2),
            layers.Flatten(),
            layers.Dropout(dropout),
            layers.Dense(8, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ],
        seed=seed,
    )
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss=losses.BinaryCrossentropy(), metrics=["accuracy"])
    return model


def toy_data(n=64, seed=0):
    """Noise images; label 1 ones have a brighter left half (an easy, learnable rule)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(n, 8, 8, 1)).astype(np.float32)
    y = (rng.uniform(size=n) < 0.5).astype(np.float32)
    x[y == 1, :, :4] += 0.5
    return x, y


def test_study_model_has_the_papers_17018497_parameters_and_table():
    model = build_study_model(300)
    assert model.count_params() == 17_018_497
    printed = []
    assert model.summary(print_fn=printed.append) is None
    text = "\n".join(printed)
    rows = [line.split() for line in text.splitlines()]
    for name, shape, params in STUDY_TABLE:
        assert [*name.split(), *shape.split(), params] in rows, f"missing row {name} {shape} {params}"
    assert "Total params: 17,018,497" in text


def test_summary_with_batch_size_reports_memory():
    model = build_study_model(300)
    printed = []
    model.summary(batch_size=32, print_fn=printed.append)
    text = "\n".join(printed)
    estimate = model.memory_estimate(32)
    assert "Memory estimate for one training step at batch size 32" in text
    assert estimate["weights"] == 17_018_497 * 4
    assert estimate["optimizer state (Adam: 2 per weight)"] == 2 * 17_018_497 * 4
    # conv1's output alone: 32 x 298 x 298 x 32 float32 values
    assert estimate["layer outputs kept for backward"] > 32 * 298 * 298 * 32 * 4
    assert estimate["im2col workspace (shared by all Conv2D)"] <= 32 * 2**20
    assert 1.5 * 2**30 < estimate["total"] < 2.5 * 2**30


def test_small_cnn_overfits_a_tiny_batch(backend_name):
    """Learning works end to end: 16 fixed images, 200 steps, the loss goes from 0.7 to ~0."""
    x, y = toy_data(16)
    model = small_model(dropout=0.0)
    model.compile(optimizer=optimizers.Adam(learning_rate=0.03), loss="binary_crossentropy", metrics=["accuracy"])
    first = model.train_on_batch(x, y)["loss"]
    for _ in range(200):
        logs = model.train_on_batch(x, y)
    assert first > 0.5
    assert logs["loss"] < 0.02 and logs["accuracy"] == 1.0


def test_fit_returns_history_with_keras_keys_and_learns():
    x, y = toy_data(256)
    model = small_model()
    history = model.fit(x, y, batch_size=32, epochs=8, validation_split=0.25, verbose=0)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(history.history[key]) == 8
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["val_accuracy"][-1] > 0.8
    evaluated = model.evaluate(x[192:], y[192:], return_dict=True)
    assert evaluated["loss"] == pytest.approx(history.history["val_loss"][-1], rel=1e-5)


def test_predict_returns_host_probabilities():
    x, _ = toy_data(10)
    probabilities = small_model().predict(x, batch_size=4)
    assert isinstance(probabilities, np.ndarray) and probabilities.shape == (10, 1)
    assert probabilities.dtype == np.float32 and np.all((probabilities > 0) & (probabilities < 1))


def test_fit_is_reproducible_from_the_seed():
    x, y = toy_data(64)
    runs = [small_model(seed=3).fit(x, y, epochs=2, verbose=0).history["loss"] for _ in range(2)]
    assert runs[0] == runs[1]
    assert small_model(seed=4).fit(x, y, epochs=2, verbose=0).history["loss"] != runs[0]


def test_class_weight_balanced_and_dict():
    assert balanced_class_weight(np.array([0, 0, 0, 1])) == {0: 4 / 6, 1: 2.0}
    x, y = toy_data(32)
    a = small_model().train_on_batch(x, y, class_weight={0: 1.0, 1: 1.0})["loss"]
    b = small_model().train_on_batch(x, y)["loss"]
    c = small_model().train_on_batch(x, y, class_weight={0: 2.0, 1: 2.0})["loss"]
    assert a == pytest.approx(b) and c == pytest.approx(2 * b, rel=1e-6)


def test_early_stopping_restores_best_weights():
    x, y = toy_data(64)
    model = small_model()
    model.compile(optimizer=optimizers.SGD(learning_rate=5.0), loss="binary_crossentropy", metrics=["accuracy"])
    stopper = EarlyStopping(monitor="loss", patience=0, restore_best_weights=True)
    model.fit(x, y, epochs=20, verbose=0, callbacks=[stopper])
    assert stopper.stopped_epoch is not None
    best = model.get_weights()
    assert len(best) == len(stopper.best_weights) == 6
    for restored, kept in zip(best, stopper.best_weights, strict=True):
        np.testing.assert_array_equal(restored, kept)


def test_nan_input_is_refused_before_training_and_a_nan_loss_stops_before_the_bad_update(monkeypatch):
    x, y = toy_data(8)
    model = small_model()
    before = model.get_weights()
    x[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="fit: x holds 1 NaN or infinite values"):
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    x[0, 0, 0, 0] = 0.0
    monkeypatch.setattr(model.loss, "forward", lambda *args: np.float32(np.nan))  # a loss that diverged
    with pytest.raises(TrainingDivergedError, match="NaN or infinite"):
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    after = model.get_weights()
    assert all(np.array_equal(old, new) for old, new in zip(before, after, strict=True))


def test_wrong_input_shape_and_dtype_are_clear_errors():
    model = small_model()
    with pytest.raises(
        ValueError, match=r"predict: x must have shape \(N, 8, 8, 1\) for model 'sequential', got \(4, 8, 8, 3\)"
    ):
        model.predict(np.zeros((4, 8, 8, 3), np.float32))
    with pytest.raises(TypeError, match="predict: x must hold int or float numbers, got dtype complex128"):
        model.predict(np.zeros((4, 8, 8, 1), dtype=complex))
    with pytest.raises(ValueError, match="train_on_batch: x has 4 samples but y has 3"):
        model.train_on_batch(np.zeros((4, 8, 8, 1), np.float32), np.zeros(3))


def test_uint8_images_are_cast_to_the_model_dtype():
    model = small_model()
    out = model.predict(np.zeros((2, 8, 8, 1), np.uint8))
    assert out.dtype == np.float32


def test_unknown_names_are_rejected():
    model = small_model()
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        model.compile(metrics=["auc"])
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        model.compile(loss="hinge")  # a Keras loss minicnn does not have
    with pytest.raises(ValueError, match="unknown backend 'torch'"):
        mc.set_backend("torch")


def test_training_before_compile_and_empty_model():
    with pytest.raises(RuntimeError, match="not compiled"):
        mc.Sequential([layers.Dense(1, input_shape=(3,))]).train_on_batch(np.zeros((1, 3)), np.zeros(1))
    with pytest.raises(ValueError, match="empty Sequential"):
        mc.Sequential().build((3,))


def test_float64_model_trains_in_float64(float64):
    x, y = toy_data(16)
    model = small_model()
    model.train_on_batch(x, y)
    assert all(value.dtype == np.float64 for _, value, _ in model.parameters())
    assert all(grad.dtype == np.float64 for _, _, grad in model.parameters())


def test_float32_model_never_upcasts():
    x, y = toy_data(16)
    model = small_model()
    model.train_on_batch(x.astype(np.float64), y.astype(np.float64))
    assert all(value.dtype == np.float32 and grad.dtype == np.float32 for _, value, grad in model.parameters())
    assert all(slot.dtype == np.float32 for slot in model.optimizer.slots.values())


def test_backend_to_numpy_returns_host_arrays():
    array = backend.to_device(np.arange(3))
    assert isinstance(backend.to_numpy(array), np.ndarray)


def test_early_stopping_counts_patience_like_keras():
    """val_loss 1.0, 0.9, 0.95, 0.97 with patience 2: epochs 3 and 4 do not improve -> stop after epoch 4."""
    model = small_model()
    stopper = EarlyStopping(monitor="val_loss", patience=2)
    stopper.set_model(model)
    stopper.on_train_begin()
    for epoch, value in enumerate([1.0, 0.9, 0.95, 0.97, 0.5]):
        stopper.on_epoch_end(epoch, {"val_loss": value})
        if model.stop_training:
            break
    assert stopper.stopped_epoch == 3 and stopper.best_epoch == 1


def test_the_trainer_uses_of_the_model_only_what_trainable_model_declares():
    """training.Trainer is a mixin: every attribute of ``self`` it reads that it does not define itself
    must be declared in the TrainableModel protocol, and Sequential must have all of them."""
    import ast
    import inspect

    from minicnn import training

    trainer = next(
        node
        for node in ast.parse(inspect.getsource(training)).body
        if isinstance(node, ast.ClassDef) and node.name == "Trainer"
    )
    own = {node.name for node in trainer.body if isinstance(node, ast.FunctionDef)}
    own |= {
        target.attr
        for node in ast.walk(trainer)
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"
    }
    used = {
        node.attr
        for node in ast.walk(trainer)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"
    }
    declared = set(training.TrainableModel.__annotations__) | {
        name for name in vars(training.TrainableModel) if not name.startswith("_")
    }
    assert used - own <= declared, f"Trainer uses undeclared model attributes: {sorted(used - own - declared)}"
    assert {"layers", "forward", "backward", "parameters", "workspace"} <= declared
    assert isinstance(build_study_model(64), training.TrainableModel)
    assert not isinstance(training.Trainer(), training.TrainableModel)  # the mixin alone is no model


def test_summary_and_repr_show_the_relu_folded_into_the_pool():
    model = build_study_model(64)
    printed = []
    model.summary(print_fn=printed.append)
    text = printed[0]
    assert "ReLU folded into the next max pool in fit, evaluate and predict" in text
    for index in ("", "_1", "_2", "_3"):
        assert f"the ReLU of conv2d{index} is applied by max_pool2d{index}" in text
    assert "dense" not in text.split("ReLU folded")[1]  # Dense(512, relu) feeds Dense, not a pool
    conv, pool = model.layers[:2]
    assert [(layer, other) for layer, other in model.relu_folds()][0] == (conv, pool)
    with model.owns_memory():
        assert repr(conv) == "<conv2d (Conv2D), its ReLU applied by max_pool2d>"
        assert repr(pool) == "<max_pool2d (MaxPool2D), applies the ReLU of the layer before>"
        assert type(conv.activation).__name__ == "ReLU"
    assert (repr(conv), repr(pool)) == ("<conv2d (Conv2D)>", "<max_pool2d (MaxPool2D)>")
    unfolded = mc.Sequential([layers.Dense(2, activation="relu", input_shape=(3,))])
    lines = []
    unfolded.summary(print_fn=lines.append)
    assert "folded" not in lines[0]


def test_identity_is_the_identity_layer_and_linear_its_deprecated_name():
    assert layers.activations.get(None).__class__ is layers.Identity
    assert layers.activations.get("linear").__class__ is layers.Identity  # Keras's activation name stays
    with pytest.warns(DeprecationWarning, match="layers.Linear is deprecated; use minicnn.layers.Identity"):
        old = layers.Linear
    assert old is layers.Identity
    with pytest.warns(DeprecationWarning):
        from minicnn.layers import Linear  # noqa: F401
    assert "Linear" not in layers.__all__ and "Identity" in layers.__all__
    with pytest.raises(AttributeError, match="has no attribute 'Linearr'"):
        layers.Linearr  # noqa: B018
