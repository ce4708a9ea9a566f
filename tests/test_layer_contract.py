"""The layer contract: a layer called directly is a plain function; only a model's loop opts in to reuse memory.

* called directly, ``forward`` returns a fresh array, ``backward`` returns dL/dx, and neither
  writes into its arguments, so earlier results stay as they were;
* the same holds for ``model.layers[i]`` after ``fit``, whether it completed or was interrupted;
* the model's fast mode gives bit-identical gradients;
* files written by earlier versions (commit b854e8f) still load and train on exactly.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_model import small_model, toy_data

import minicnn as mc
from minicnn import backend, layers, losses, optimizers
from minicnn.callbacks import Callback
from minicnn.layers.base import model_owns_memory

FIXTURES = Path(__file__).parent / "fixtures"


def every_layer_kind() -> list[tuple[str, layers.Layer, tuple[int, ...]]]:
    """(id, unbuilt layer, input shape) for every layer class and the fused activations."""
    return [
        ("conv-relu-valid", layers.Conv2D(3, 3, activation="relu"), (7, 7, 2)),
        ("conv-sigmoid-same-stride2", layers.Conv2D(2, 3, strides=2, padding="same", activation="sigmoid"), (7, 6, 2)),
        ("maxpool", layers.MaxPool2D(2), (6, 6, 3)),
        ("maxpool-overlapping", layers.MaxPool2D(3, strides=1), (5, 5, 2)),
        ("dense-relu", layers.Dense(4, activation="relu"), (6,)),
        ("dense-sigmoid", layers.Dense(1, activation="sigmoid"), (5,)),
        ("flatten", layers.Flatten(), (3, 2, 2)),
        ("dropout", layers.Dropout(0.5, seed=1), (10,)),
        ("relu", layers.ReLU(), (4, 3)),
        ("sigmoid", layers.Sigmoid(), (4, 3)),
        ("linear", layers.Linear(), (4,)),
    ]


def host(array):
    return backend.to_numpy(array).copy()


def assert_plain_function(layer: layers.Layer, input_shape: tuple[int, ...], seed: int = 0) -> None:
    """Two forward and two backward calls: results, inputs and upstream gradients all stay as they were."""
    rng = np.random.default_rng(seed)
    dtype = layer.dtype
    x1, x2 = (backend.to_device(rng.normal(size=(3, *input_shape)).astype(dtype)) for _ in range(2))
    x1_before, x2_before = host(x1), host(x2)
    y1 = layer.forward(x1, training=True)
    y1_before = host(y1)
    dy1 = backend.to_device(rng.normal(size=y1.shape).astype(dtype))
    dy1_before = host(dy1)
    dx1 = layer.backward(dy1)
    assert dx1 is not None, f"{layer.describe()}: backward must return dL/dx"
    dx1_before = host(dx1)

    y2 = layer.forward(x2, training=True)
    dy2 = backend.to_device(rng.normal(size=y2.shape).astype(dtype))
    dy2_before = host(dy2)
    dx2 = layer.backward(dy2)
    assert dx2 is not None and dx2.shape == x2.shape

    for array, before, what in [
        (x1, x1_before, "x1"),
        (x2, x2_before, "x2"),
        (y1, y1_before, "the first output"),
        (dy1, dy1_before, "dy1"),
        (dy2, dy2_before, "dy2"),
        (dx1, dx1_before, "the first dL/dx"),
    ]:
        np.testing.assert_array_equal(host(array), before, err_msg=f"{layer.describe()} changed {what}")


@pytest.mark.parametrize("case", every_layer_kind(), ids=lambda case: case[0])
def test_every_layer_called_directly_is_a_plain_function(case, backend_name):
    _, layer, input_shape = case
    layer.build(input_shape, np.random.default_rng(0))
    assert_plain_function(layer, input_shape)


class StopMidEpoch(Callback):
    """Raises KeyboardInterrupt after the second batch, as Ctrl-C would."""

    def on_train_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        if batch == 1:
            raise KeyboardInterrupt


@pytest.mark.parametrize("how", ["completed", "interrupted", "diverged"])
def test_a_models_layers_are_plain_functions_again_after_fit(how):
    x, y = toy_data(48)
    model = small_model()
    if how == "completed":
        model.fit(x, y, batch_size=8, epochs=2, validation_split=0.25, verbose=0)
    elif how == "interrupted":
        with pytest.raises(KeyboardInterrupt):
            model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[StopMidEpoch()])
    else:
        x[20] = np.nan
        with pytest.raises(mc.TrainingDivergedError):
            model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for layer in model.layers:
        assert not layer.reuse_memory and layer.compute_input_gradient, layer.describe()
        assert_plain_function(layer, layer.input_shape)


def test_the_fast_mode_is_switched_on_inside_fit_and_back_off_afterwards():
    x, y = toy_data(16)
    model = small_model()
    seen = []

    class Spy(Callback):
        def on_train_batch_end(self, batch: int, logs: dict[str, float]) -> None:
            seen.append([(layer.reuse_memory, layer.compute_input_gradient) for layer in self.model.layers])

    class ActivationSpy(Callback):
        def on_train_batch_end(self, batch: int, logs: dict[str, float]) -> None:
            conv, pool = self.model.layers[:2]
            seen_activations.append((type(conv.activation).__name__, type(pool.activation).__name__))

    seen_activations = []
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[Spy(), ActivationSpy()])
    assert seen and all(state == [(True, False)] + [(True, True)] * 5 for state in seen)
    assert all((layer.reuse_memory, layer.compute_input_gradient) == (False, True) for layer in model.layers)
    # Inside, the conv's ReLU was lent to the max pool after it; afterwards each has its own again.
    assert seen_activations == [("Linear", "ReLU")] * 2
    assert (type(model.layers[0].activation).__name__, type(model.layers[1].activation).__name__) == (
        "ReLU",
        "Linear",
    )


def pure_gradients(model: mc.Sequential, x, y) -> list[np.ndarray]:
    """One step by hand, each layer called directly (pure), from the fused sigmoid gradient."""
    x, y = model.prepare_batch(x, y)
    output = x
    for layer in model.layers:
        output = layer.forward(output, training=True)
    model.loss.forward(output, y)
    gradient = model.layers[-1].backward_from_dz(model.loss.gradient_before_sigmoid())
    for layer in reversed(model.layers[:-1]):
        gradient = layer.backward(gradient)
    return [host(grad) for _, _, grad in model.parameters()]


def fast_gradients(model: mc.Sequential, x, y) -> list[np.ndarray]:
    """The same step the way train_on_batch runs it: the model owns memory."""
    x, y = model.prepare_batch(x, y)
    with model_owns_memory(model.layers):
        output = model.forward(x, training=True)
        model.loss.forward(output, y)
        model.backward(model.loss.gradient_before_sigmoid(), from_dz=True)
    return [host(grad) for _, _, grad in model.parameters()]


def test_fast_and_pure_modes_give_bit_identical_gradients():
    x, y = toy_data(12)
    pure_model, fast_model = small_model(seed=5), small_model(seed=5)
    for step in range(3):  # later steps reuse the fast mode's kept buffers
        pure = pure_gradients(pure_model, x, y)
        fast = fast_gradients(fast_model, x, y)
        for a, b in zip(pure, fast, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"step {step}")


def test_moving_the_relu_after_the_pool_keeps_gradients_bit_identical_with_ties_and_zeros():
    """Small integers make exact ties and windows whose max is 0 or negative: the hard cases of the move."""
    rng = np.random.default_rng(0)
    x = rng.integers(-2, 3, size=(6, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 2, size=6).astype(np.float32)
    pure_model, fast_model = small_model(seed=2, dropout=0.0), small_model(seed=2, dropout=0.0)
    kernel = rng.integers(-1, 2, size=(3, 3, 1, 4)).astype(np.float32)  # z takes few, repeated values
    for model in (pure_model, fast_model):
        model.layers[0].params["kernel"][...] = backend.to_device(kernel)
    for step in range(2):
        for a, b in zip(pure_gradients(pure_model, x, y), fast_gradients(fast_model, x, y), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"step {step}")


def test_import_minicnn_stays_light():
    code = (
        "import sys\n"
        "import minicnn as mc\n"
        "from minicnn import layers, losses, optimizers\n"
        "heavy = [name for name in ('pandas', 'PIL', 'matplotlib', 'tqdm') if name in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert mc.data.load_split and mc.gradcheck.check_layer and mc.metrics.roc_auc and mc.plots.plot_roc\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_a_checkpoint_written_by_b854e8f_loads_and_trains_on_bit_exactly():
    """tests/fixtures/checkpoint-b854e8f.npz: 2 epochs of small_model's architecture, saved by commit b854e8f,
    and what that commit computed after one more epoch (weights and predictions)."""
    with np.load(FIXTURES / "checkpoint-b854e8f-expected.npz") as expected:
        x, y = expected["x"], expected["y"]
        weights_after_epoch_3, predictions = expected["weights_after_epoch_3"], expected["predictions"]
    model = mc.load_model(FIXTURES / "checkpoint-b854e8f.npz")
    assert model.completed_epochs == 2 and len(model.history.history["loss"]) == 2
    model.fit(x, y, batch_size=8, epochs=3, initial_epoch=model.completed_epochs, verbose=0)
    np.testing.assert_array_equal(np.concatenate([w.ravel() for w in model.get_weights()]), weights_after_epoch_3)
    np.testing.assert_array_equal(model.predict(x), predictions)


# ---- Keras-shaped calls ------------------------------------------------------------------------


def test_summary_prints_once_and_returns_none(capsys):
    model = small_model()
    assert model.summary() is None
    printed = capsys.readouterr().out
    assert printed.count("Total params: 345") == 1 and printed.count("Model: ") == 1


def test_get_weights_is_a_list_in_layer_order_and_set_weights_takes_it_back():
    model, other = small_model(seed=0), small_model(seed=1)
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(3, 3, 1, 4), (4,), (36, 8), (8,), (8, 1), (1,)]
    other.set_weights(weights)
    for a, b in zip(other.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="has 6 weight arrays, got 5"):
        other.set_weights(weights[:5])
    with pytest.raises(ValueError, match=r"weight 'dense/kernel' has shape \(36, 8\), got \(8, 36\)"):
        other.set_weights([*weights[:2], weights[2].T, *weights[3:]])


def test_evaluate_returns_what_keras_returns():
    x, y = toy_data(16)
    model = small_model()
    loss, accuracy = model.evaluate(x, y)
    assert model.evaluate(x, y, return_dict=True) == {"loss": loss, "accuracy": accuracy}
    model.compile(optimizer="adam", loss="binary_crossentropy")  # no metrics
    assert model.evaluate(x, y) == pytest.approx(loss)


@pytest.mark.parametrize("labels, shown", [([0, 1, 2, 1], "2"), ([0, -1, 1, 3], "-1, 3"), ([0, np.nan, 1, 1], "nan")])
def test_binary_cross_entropy_rejects_labels_outside_0_1_naming_them(labels, shown):
    x, _ = toy_data(4)
    y = np.array(labels, dtype=np.float64)
    model = small_model()
    with pytest.raises(ValueError, match=f"labels in \\[0, 1\\]; found {shown} in the training labels "):
        model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=f"labels in \\[0, 1\\]; found {shown} in y "):
        model.evaluate(x, y)


def test_input_shape_accepts_an_int_for_flat_inputs():
    model = mc.Sequential([layers.Dense(2, input_shape=3), layers.Dense(1, activation="sigmoid")])
    assert model.input_shape == (3,) and model.count_params() == 3 * 2 + 2 + 2 + 1
    with pytest.raises(ValueError, match="input_shape must be a positive int or a tuple of them, got -3"):
        layers.Dense(2, input_shape=-3)


def test_fit_verbose_auto_writes_one_line_per_epoch_when_stderr_is_not_a_terminal(capsys):
    x, y = toy_data(16)
    small_model().fit(x, y, batch_size=8, epochs=2)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("Epoch 1/2 - ") and "\r" not in "".join(lines)


def test_losses_and_optimizers_are_unchanged_by_the_contract():
    """A smoke check that the fast path trains as before: loss falls on an easy problem."""
    x, y = toy_data(64)
    model = mc.Sequential([layers.Flatten(input_shape=(8, 8, 1)), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizers.Adam(0.05), loss=losses.BinaryCrossentropy(), metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
