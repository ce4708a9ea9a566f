"""The layer contract: a layer called directly is a plain function; only a model's loop opts in to reuse memory.

* called directly, ``forward`` returns a fresh array, ``backward`` returns dL/dx, and neither
  writes into its arguments, so earlier results stay as they were;
* the same holds for ``model.layers[i]`` after ``fit``, whether it completed or was interrupted;
* the model's fast mode gives bit-identical gradients;
* files written by earlier versions (commit b854e8f) still load bit for bit, train on as they did on the
  machine that wrote them (within float32 rounding: other CPUs use other BLAS kernels), and resume on this
  machine bit for bit like a run that was never saved.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_model import small_model, toy_data

import minicnn as mc
from minicnn import backend, layers, losses, optimizers, parallel
from minicnn.callbacks import Callback
from minicnn.layers import conv
from minicnn.layers.base import model_owns_memory

FIXTURES = Path(__file__).parents[1] / "fixtures"


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
        ("identity", layers.Identity(), (4,)),
        ("batch-normalization-images", layers.BatchNormalization(), (3, 3, 2)),
        ("batch-normalization-vectors", layers.BatchNormalization(center=False), (5,)),
        ("average-pooling", layers.AveragePooling2D(2), (5, 5, 2)),
        ("average-pooling-overlapping", layers.AveragePooling2D(3, strides=1), (5, 4, 2)),
        ("global-average-pooling", layers.GlobalAveragePooling2D(), (3, 4, 2)),
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


class DivergeMidEpoch(Callback):
    def on_train_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        if batch == 1:
            self.model.loss.forward = lambda *args: np.float32(np.nan)


@pytest.mark.parametrize("how", ["completed", "interrupted", "diverged"])
def test_a_models_layers_are_plain_functions_again_after_fit(how):
    x, y = toy_data(48)
    model = small_model()
    if how == "completed":
        model.fit(x, y, batch_size=8, epochs=2, validation_split=0.25, verbose=0)
    elif how == "interrupted":
        with pytest.raises(KeyboardInterrupt):
            model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[StopMidEpoch()])
    else:  # the third step's loss becomes NaN (NaN inputs are refused before training starts)
        with pytest.raises(mc.TrainingDivergedError):
            model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[DivergeMidEpoch()])
    for layer in model.layers:
        assert not layer.reuse_memory and layer.compute_input_gradient, layer.describe()
        assert_plain_function(layer, layer.input_shape)


def module_state_fingerprint() -> dict[str, object]:
    """Every module-level container of every loaded minicnn module, with the contents of its arrays.

    A dict, list or set at module level is mutable state; an array in it is fingerprinted by its
    bytes, so that writing into a kept array is seen as well as replacing it. Other objects are
    recorded by identity.
    """

    def fingerprint(value: object) -> object:
        if isinstance(value, np.ndarray) or type(value).__module__.startswith("cupy"):
            array = backend.to_numpy(value)
            return ("array", id(value), array.shape, str(array.dtype), hash(array.tobytes()))
        if isinstance(value, dict):
            return ("dict", id(value), tuple((repr(key), fingerprint(item)) for key, item in value.items()))
        if isinstance(value, (list, tuple)):
            return (type(value).__name__, id(value), tuple(fingerprint(item) for item in value))
        if isinstance(value, (set, frozenset)):
            return ("set", id(value), tuple(sorted(map(repr, value))))
        return ("object", id(value))

    state = {}
    for module_name, module in sorted(sys.modules.items()):
        if not module_name.startswith("minicnn") or module is None:
            continue
        for name, value in vars(module).items():
            if isinstance(value, (dict, list, set, bytearray)) and not name.startswith("__"):
                state[f"{module_name}.{name}"] = fingerprint(value)
    return state


@pytest.mark.parametrize("layer_id", [case[0] for case in every_layer_kind()])
def test_a_direct_call_touches_no_module_level_state(layer_id, monkeypatch):
    """base.py's promise: a layer called directly is a plain function, so it reads and writes no global state.

    parallel.py's thread pool is made by the first over_batch of the process and only reused after
    it (a resource, like BLAS's threads, not data), so it is made before the snapshot. Conv2D runs
    one image per workspace chunk, on batches of two sizes, where a module-level im2col buffer
    would be written.
    """
    parallel.over_batch(lambda rows: None, 2)
    monkeypatch.setattr(conv, "WORKSPACE_BYTES", 1)  # at least one image per chunk: one image
    _, layer, input_shape = next(case for case in every_layer_kind() if case[0] == layer_id)
    layer.build(input_shape, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    before = module_state_fingerprint()
    for batch in (3, 7):
        x = backend.to_device(rng.normal(size=(batch, *input_shape)).astype(layer.dtype))
        y = layer.forward(x, training=True)
        layer.backward(backend.to_device(rng.normal(size=y.shape).astype(layer.dtype)))
    after = module_state_fingerprint()
    assert after == before, sorted(name for name in after if after.get(name) != before.get(name))


def test_a_direct_conv_call_uses_its_own_workspace_and_the_model_its_shared_one(monkeypatch):
    """Called directly, each call allocates its im2col buffer; in the fast mode the model's workspace holds it."""
    monkeypatch.setattr(conv, "WORKSPACE_BYTES", 1)  # one image per chunk: several chunks per batch
    layer = layers.Conv2D(2, 3)
    layer.build((6, 6, 2), np.random.default_rng(0))
    x = backend.to_device(np.random.default_rng(1).normal(size=(3, 6, 6, 2)).astype(layer.dtype))
    direct = host(layer.forward(x))
    assert layer.shared_workspace is None
    workspace: dict = {}
    with model_owns_memory([layer], workspace):
        owned = host(layer.forward(x))
        kept = workspace["cols"]
        layer.forward(x)
        assert workspace["cols"] is kept  # the same buffer, step after step
    np.testing.assert_array_equal(owned, direct)  # the same chunks in both modes: the same numbers
    assert layer.shared_workspace is None


def test_the_fast_mode_is_switched_on_inside_fit_and_back_off_afterwards():
    x, y = toy_data(16)
    model = small_model()
    seen = []

    class Spy(Callback):
        def on_train_batch_end(self, batch: int, logs: dict[str, float]) -> None:
            seen.append([(layer.reuse_memory, layer.compute_input_gradient) for layer in self.model.layers])

    class FoldSpy(Callback):
        def on_train_batch_end(self, batch: int, logs: dict[str, float]) -> None:
            conv, pool = self.model.layers[:2]
            seen_folds.append((type(conv.activation).__name__, conv.relu_applied_by, pool.applies_relu, repr(conv)))

    seen_folds = []
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[Spy(), FoldSpy()])
    assert seen and all(state == [(True, False)] + [(True, True)] * 5 for state in seen)
    assert all((layer.reuse_memory, layer.compute_input_gradient) == (False, True) for layer in model.layers)
    # Inside, the conv keeps its ReLU object, and two flags say that the max pool after it applies it.
    assert seen_folds == [("ReLU", "max_pool2d", True, "<conv2d (Conv2D), its ReLU applied by max_pool2d>")] * 2
    conv, pool = model.layers[:2]
    assert (type(conv.activation).__name__, conv.relu_applied_by, pool.applies_relu) == ("ReLU", None, False)
    assert (repr(conv), repr(pool)) == ("<conv2d (Conv2D)>", "<max_pool2d (MaxPool2D)>")
    assert all(layer.shared_workspace is None for layer in model.layers)
    assert "cols" in model.workspace  # the model keeps its im2col workspace for the next fit


def pure_gradients(model: mc.Sequential, x, y) -> list[np.ndarray]:
    """One step by hand, each layer called directly (pure), from the fused sigmoid gradient."""
    x, y = model.prepare_batch(x, y)
    output = x
    for layer in model.layers:
        output = layer.forward(output, training=True)
    model.loss.forward(output, y)
    gradient, from_dz = losses.start_backward(model.loss, model.layers[-1])
    assert from_dz  # the fused sigmoid + BCE start: dL/dz = (p - y) / N
    gradient = model.layers[-1].backward_from_dz(gradient)
    for layer in reversed(model.layers[:-1]):
        gradient = layer.backward(gradient)
    return [host(grad) for _, _, grad in model.parameters()]


def fast_gradients(model: mc.Sequential, x, y) -> list[np.ndarray]:
    """The same step the way train_on_batch runs it: the model owns memory."""
    x, y = model.prepare_batch(x, y)
    with model.owns_memory():
        output = model.forward(x, training=True)
        model.loss.forward(output, y)
        gradient, from_dz = losses.start_backward(model.loss, model.layers[-1])
        model.backward(gradient, from_dz=from_dz)
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


# ---- Files written by an earlier commit ------------------------------------------------------
#
# tests/fixtures/checkpoint-b854e8f.npz holds small_model's architecture after 2 epochs, saved by
# commit b854e8f (before the layer contract and the speed work); checkpoint-b854e8f-expected.npz
# holds the data it trained on and what that commit computed after one more epoch. Both were
# written on the project's Intel Xeon (whose numbers OpenBLAS's SkylakeX kernel reproduces bit for
# bit; Haswell's, on AMD EPYC, differ in the last bits). Loading is copying, so the loaded state
# is compared bit for bit; what is computed from it depends on the CPU's matrix-product kernels,
# so it is compared to a tolerance, and the bit-exact promise of resuming is checked on the
# machine that runs the test, against a run on that machine that was never saved.

CHECKPOINT_B854E8F = FIXTURES / "checkpoint-b854e8f.npz"


def b854e8f_expected() -> dict[str, np.ndarray]:
    """x, y, and b854e8f's weights_after_epoch_3 (all 345 parameters, flat) and predictions."""
    with np.load(FIXTURES / "checkpoint-b854e8f-expected.npz") as expected:
        return {key: expected[key] for key in expected.files}


def flat_weights(model: mc.Sequential) -> np.ndarray:
    return np.concatenate([weight.ravel() for weight in model.get_weights()])


def test_a_checkpoint_written_by_b854e8f_loads_bit_for_bit():
    """Every array and number of the file comes back unchanged: no arithmetic, so on any machine."""
    with np.load(CHECKPOINT_B854E8F) as archive:
        stored = {key: archive[key] for key in archive.files}
    model = mc.load_model(CHECKPOINT_B854E8F)
    for name, weight in model.get_named_weights().items():
        np.testing.assert_array_equal(weight, stored[f"weights/{name}"], err_msg=name)
    optimizer_state = model.optimizer.get_state()
    assert sorted(f"optimizer/{key}" for key in optimizer_state) == sorted(k for k in stored if "optimizer/" in k)
    for key, value in optimizer_state.items():  # Adam's moments m and v, and its step count
        np.testing.assert_array_equal(value, stored[f"optimizer/{key}"], err_msg=key)
    states = json.loads(str(stored["state"]))
    assert [layer.get_state() for layer in model.layers] == [states[layer.name] for layer in model.layers]
    training = json.loads(str(stored["training"]))
    assert model.completed_epochs == training["completed_epochs"] == 2
    assert model.history.history == training["history"] and len(model.history.history["loss"]) == 2


def test_a_checkpoint_written_by_b854e8f_trains_on_to_that_commits_weights_within_float32_rounding():
    """Epoch 3 from the file ends within 1e-6 of the weights b854e8f computed on its Intel machine.

    Why 1e-6 (absolute; the weights are at most 0.67 in size): the two machines start from the
    same bits, but their BLAS kernels add the terms of each matrix product in another order. Each
    sum has at most 288 float32 terms (the kernel gradient of the first convolution: 8 images x 6 x 6
    positions), so another order changes it by at most about 288 u of the size of its terms, with
    u = 2**-24 = 6e-8: 1.7e-5. Adam divides each gradient by its own running size, so a relative
    change d of the gradients changes a step of at most about lr = 0.01 by about lr * d. The epoch
    is 3 steps (24 images, batches of 8): 3 x 0.01 x 1.7e-5 = 5e-7 at worst, below 1e-6.
    Measured under the kernels SkylakeX, Haswell, Sandybridge and Katmai: at most 3e-8.

    It stays far too tight to hide a resume gone wrong (measured by breaking one on purpose): with
    Adam's step count one off the weights move by 4e-4, with Adam's moments lost by 0.04, with
    Dropout's masks started over by 0.02.
    """
    expected = b854e8f_expected()
    model = mc.load_model(CHECKPOINT_B854E8F)
    model.fit(expected["x"], expected["y"], batch_size=8, epochs=3, initial_epoch=model.completed_epochs, verbose=0)
    assert model.completed_epochs == 3 and model.optimizer.iterations == 9
    np.testing.assert_allclose(flat_weights(model), expected["weights_after_epoch_3"], rtol=0, atol=1e-6)


def test_b854e8fs_predictions_from_its_weights_agree_within_float32_rounding():
    """Its weights after epoch 3, set into today's model, predict what b854e8f predicted, within 1e-6.

    Why 1e-6 (absolute, on probabilities): only the forward pass differs between the machines, and
    its longest sum has 36 float32 terms (the first Dense layer), so another order of additions
    changes a value by at most about 36 u = 2e-6 of the size of its terms; the sigmoid then scales
    a change of its input by at most 1/4. Measured under the four kernels above: at most 6e-8, one
    float32 step at these probabilities (0.46 to 0.67).
    """
    expected = b854e8f_expected()
    model = mc.load_model(CHECKPOINT_B854E8F)
    flat = expected["weights_after_epoch_3"]
    bounds = np.cumsum([0] + [weight.size for weight in model.get_weights()])
    model.set_weights(
        [
            flat[start:stop].reshape(weight.shape)
            for weight, start, stop in zip(model.get_weights(), bounds[:-1], bounds[1:], strict=True)
        ]
    )
    np.testing.assert_allclose(model.predict(expected["x"]), expected["predictions"], rtol=0, atol=1e-6)


def test_a_checkpoint_written_by_b854e8f_resumes_on_this_machine_bit_for_bit_like_an_uninterrupted_run(tmp_path):
    """From the b854e8f file: epochs 3 and 4 in one go, or epoch 3, save, load, epoch 4: the same bits.

    Both runs compute on this machine, with the same kernels, so nothing may differ: not a weight,
    not Adam's moments or step count, not a loss in the history, not a prediction. The state read
    from the old format (Adam's, Dropout's mask counter, the history) must survive a save in
    today's format exactly.
    """
    expected = b854e8f_expected()
    x, y = expected["x"], expected["y"]
    uninterrupted = mc.load_model(CHECKPOINT_B854E8F)
    uninterrupted.fit(x, y, batch_size=8, epochs=4, initial_epoch=uninterrupted.completed_epochs, verbose=0)

    first = mc.load_model(CHECKPOINT_B854E8F)
    first.fit(x, y, batch_size=8, epochs=3, initial_epoch=first.completed_epochs, verbose=0)
    resumed = mc.load_model(first.save(tmp_path / "epoch-3.npz"))
    assert resumed.completed_epochs == 3
    resumed.fit(x, y, batch_size=8, epochs=4, initial_epoch=resumed.completed_epochs, verbose=0)

    np.testing.assert_array_equal(flat_weights(resumed), flat_weights(uninterrupted))
    resumed_state, uninterrupted_state = resumed.optimizer.get_state(), uninterrupted.optimizer.get_state()
    assert sorted(resumed_state) == sorted(uninterrupted_state)
    for key, value in uninterrupted_state.items():
        np.testing.assert_array_equal(resumed_state[key], value, err_msg=key)
    for key in ("loss", "accuracy"):
        assert resumed.history.history[key] == uninterrupted.history.history[key], key
    np.testing.assert_array_equal(resumed.predict(x), uninterrupted.predict(x))


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
    with pytest.raises(
        ValueError, match=f"fit: y must hold labels in \\[0, 1\\] for binary cross-entropy; found {shown} "
    ):
        model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(
        ValueError, match=f"evaluate: y must hold labels in \\[0, 1\\] for binary cross-entropy; found {shown} "
    ):
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
