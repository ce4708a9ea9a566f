"""fit, evaluate, predict, train_on_batch and compile refuse what they cannot train on, in one line each.

Each row of a table is a call with one bad argument and the words its error must contain;
the other tests hold the edge cases that must work (one sample, a batch larger than N, lists)
and the rules for a step that diverges and for resuming an interrupted epoch.
"""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import layers, losses, optimizers
from minicnn.callbacks import Callback
from minicnn.data.batches import Batches
from minicnn.training import Trainer, TrainingDivergedError

N = 8


def small_model(metrics=("accuracy",)) -> mc.Sequential:
    model = mc.Sequential(
        [
            layers.Conv2D(2, 3, activation="relu", input_shape=(6, 6, 1)),
            layers.MaxPool2D(2),
            layers.Flatten(),
            layers.Dense(1, activation="sigmoid"),
        ],
        seed=0,
    )
    model.compile(optimizer=optimizers.Adam(0.01), loss=losses.BinaryCrossentropy(), metrics=list(metrics))
    return model


def data(n: int = N) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((n, 6, 6, 1), dtype=np.float32), (np.arange(n) % 2).astype(np.float32)


X, Y = data()


def with_value(index: tuple, value: float) -> np.ndarray:
    x = X.copy()
    x[index] = value
    return x


FIT_ROWS = [
    # missing or wrong data
    (lambda m: m.fit(X, epochs=3, verbose=0), ValueError, "fit: y is missing; pass the labels"),
    (lambda m: m.fit(None, Y, verbose=0), TypeError, "fit: x must be an array of numbers, got None"),
    (lambda m: m.fit("images", Y, verbose=0), TypeError, "fit: x must be an array of numbers"),
    (lambda m: m.fit(X[:, :4], Y, verbose=0), ValueError, "fit: x must have shape (N, 6, 6, 1) for model"),
    (lambda m: m.fit(X, Y[:5], verbose=0), ValueError, "fit: x has 8 samples but y has 5"),
    (lambda m: m.fit(X, np.eye(2)[Y.astype(int)], verbose=0), ValueError, "pass y.argmax(axis=1)"),
    (lambda m: m.fit(X, Y.reshape(2, 2, 2), verbose=0), ValueError, "fit: y must hold one label per sample"),
    (lambda m: m.fit(X, np.array(["0", "1"] * 4), verbose=0), TypeError, "fit: y must hold numbers, got strings"),
    (
        lambda m: m.fit(X, Y + 1, verbose=0),
        ValueError,
        "fit: y must hold labels in [0, 1] for binary cross-entropy; found 2",
    ),
    (lambda m: m.fit(X, Y * 0.5 + 0.25, verbose=0), ValueError, "needs labels 0 and 1"),
    (lambda m: m.fit(X, [0, 1, None, 1, 0, 1, 0, 1], verbose=0), TypeError, "fit: y must hold int or float numbers"),
    (lambda m: m.fit([[1, 2], [3]], Y, verbose=0), ValueError, "fit: x cannot be read as an array"),
    (lambda m: m.fit(X.astype(complex), Y, verbose=0), TypeError, "fit: x must hold int or float numbers"),
    (lambda m: m.fit(X[:0], Y[:0], verbose=0), ValueError, "fit: x holds no samples"),
    (lambda m: m.fit(3.0, Y, verbose=0), TypeError, "fit: x must be an array with one row per sample"),
    # values that cannot be trained on
    (lambda m: m.fit(with_value((0, 0, 0, 0), np.nan), Y, verbose=0), ValueError, "fit: x holds 1 NaN or infinite"),
    (lambda m: m.fit(with_value((-1, 0, 0, 0), np.inf), Y, verbose=0), ValueError, "fit: x holds 1 NaN or infinite"),
    (lambda m: m.fit(X.astype(np.float64) * 1e300, Y, verbose=0), ValueError, "NaN or infinite values (of 288"),
    # settings
    (
        lambda m: m.fit(X, Y, epochs=-3, verbose=0),
        ValueError,
        "fit: epochs must be a whole number of at least 1, got -3",
    ),
    (lambda m: m.fit(X, Y, epochs=0, verbose=0), ValueError, "fit: epochs must be a whole number of at least 1"),
    (
        lambda m: m.fit(X, Y, epochs=2.5, verbose=0),
        TypeError,
        "fit: epochs must be a whole number of at least 1, got 2.5",
    ),
    (lambda m: m.fit(X, Y, epochs="3", verbose=0), TypeError, "fit: epochs must be a whole number"),
    (lambda m: m.fit(X, Y, epochs=True, verbose=0), TypeError, "fit: epochs must be a whole number"),
    (
        lambda m: m.fit(X, Y, batch_size=0, verbose=0),
        ValueError,
        "fit: batch_size must be a whole number of at least 1",
    ),
    (lambda m: m.fit(X, Y, batch_size="32", verbose=0), TypeError, "fit: batch_size must be a whole number"),
    (lambda m: m.fit(X, Y, verbose=5), ValueError, "fit: verbose must be one of 'auto', 0, 1, 2, got 5"),
    (lambda m: m.fit(X, Y, verbose="loud"), ValueError, "fit: verbose must be one of"),
    (lambda m: m.fit(X, Y, shuffle="yes", verbose=0), TypeError, "fit: shuffle must be True or False"),
    (lambda m: m.fit(X, Y, epochs=2, initial_epoch=2, verbose=0), ValueError, "epochs must be more than initial_epoch"),
    (lambda m: m.fit(X, Y, initial_epoch=-1, verbose=0), ValueError, "fit: initial_epoch must be a whole number of at"),
    (lambda m: m.fit(X, Y, validation_split=0.01, verbose=0), ValueError, "leaves no validation sample"),
    (lambda m: m.fit(X, Y, validation_split=0.99, verbose=0), ValueError, "leaves no training sample"),
    (lambda m: m.fit(X, Y, validation_split=1.5, verbose=0), ValueError, "fit: validation_split must be in [0, 1)"),
    (lambda m: m.fit(X, Y, validation_split="0.2", verbose=0), TypeError, "fit: validation_split must be a number"),
    (lambda m: m.fit(X, Y, validation_split=float("nan"), verbose=0), ValueError, "validation_split must be in"),
    (lambda m: m.fit(X, Y, validation_split=0.25, validation_data=(X, Y), verbose=0), ValueError, "pass one of them"),
    (lambda m: m.fit(X, Y, validation_data=X, verbose=0), TypeError, "validation_data must be a pair (x_val, y_val)"),
    (lambda m: m.fit(X, Y, validation_data=(X, Y, Y), verbose=0), TypeError, "validation_data must be a pair"),
    (lambda m: m.fit(X, Y, validation_data=(X, Y[:3]), verbose=0), ValueError, "x has 8 samples but validation_data y"),
    (lambda m: m.fit(X, Y, validation_data=(X[:0], Y[:0]), verbose=0), ValueError, "validation_data holds no samples"),
    (
        lambda m: m.fit(X, Y, validation_data=(with_value(0, np.nan), Y), verbose=0),
        ValueError,
        "validation_data x holds",
    ),
    (lambda m: m.fit(X, Y, class_weight={0: 1, 7: 5}, verbose=0), ValueError, "class_weight has the label 7"),
    (lambda m: m.fit(X, Y, class_weight={0: -1, 1: 1}, verbose=0), ValueError, "class_weight[0] must be in [0, inf)"),
    (lambda m: m.fit(X, Y, class_weight={0: 0, 1: 0}, verbose=0), ValueError, "every class the weight 0"),
    (lambda m: m.fit(X, Y, class_weight={0: "2", 1: 1}, verbose=0), TypeError, "class_weight[0] must be a number"),
    (lambda m: m.fit(X, Y, class_weight={0: np.inf}, verbose=0), ValueError, "class_weight[0] must be in"),
    (lambda m: m.fit(X, Y, class_weight="balance", verbose=0), ValueError, "or 'balanced', got 'balance'"),
    (lambda m: m.fit(X, Y, class_weight=[1, 2], verbose=0), TypeError, "class_weight must be a dict"),
    (lambda m: m.fit(X, Y, callbacks=Callback(), verbose=0), TypeError, "fit: callbacks must be a list of Callback"),
    (lambda m: m.fit(X, Y, callbacks=[print], verbose=0), TypeError, "fit: callbacks[0] must be a Callback"),
    # a Batches source yields (x, y) pairs
    (lambda m: m.fit(Batches(X, Y), Y, verbose=0), ValueError, "fit: y must be left out when x is a Batches source"),
    (lambda m: m.fit(Batches(X, Y), validation_split=0.5, verbose=0), ValueError, "validation_split needs arrays"),
    (lambda m: m.fit(Batches(X, Y + 3), verbose=0), ValueError, "fit: x (its labels) must hold labels in [0, 1]"),
    (lambda m: m.fit(Batches(with_value(0, np.nan), Y), verbose=0), ValueError, "fit: x (its images) holds"),
]

OTHER_ROWS = [
    (lambda m: m.evaluate(X), ValueError, "evaluate: y is missing"),
    (lambda m: m.evaluate(X[:0], Y[:0]), ValueError, "evaluate: x holds no samples"),
    (lambda m: m.evaluate(with_value((0, 1, 1, 0), np.nan), Y), ValueError, "evaluate: x holds 1 NaN or infinite"),
    (lambda m: m.evaluate(X, Y * 0.5), ValueError, "evaluate: y holds 4 labels between 0 and 1"),
    (lambda m: m.evaluate(X, Y, batch_size=-1), ValueError, "evaluate: batch_size must be a whole number"),
    (lambda m: m.evaluate(X, Y, return_dict="yes"), TypeError, "evaluate: return_dict must be True or False"),
    (lambda m: m.predict(with_value((2, 0, 0, 0), -np.inf)), ValueError, "predict: x holds 1 NaN or infinite"),
    (lambda m: m.predict(X[:, :, :, 0]), ValueError, "predict: x must have shape (N, 6, 6, 1)"),
    (lambda m: m.predict(np.array([["a"]])), TypeError, "predict: x must hold numbers, got strings"),
    (lambda m: m.predict(X, batch_size=2.0), TypeError, "predict: batch_size must be a whole number"),
    (lambda m: m.predict(X, verbose=3), ValueError, "predict: verbose must be one of"),
    (lambda m: m.train_on_batch(X, None), TypeError, "train_on_batch: y must be an array of numbers, got None"),
    (lambda m: m.train_on_batch(X, Y[:2]), ValueError, "train_on_batch: x has 8 samples but y has 2"),
    (lambda m: m.train_on_batch(X[:0], Y[:0]), ValueError, "train_on_batch: x holds no samples"),
    (lambda m: m.train_on_batch(with_value(0, np.nan), Y), ValueError, "train_on_batch: x holds 36 NaN or infinite"),
    (lambda m: m.train_on_batch(X, Y, class_weight="balanced"), ValueError, "class_weight must be a dict such as"),
    (lambda m: m.test_on_batch(with_value(0, np.nan), Y), ValueError, "test_on_batch: x holds 36 NaN or infinite"),
    (lambda m: m.test_on_batch(X, Y + 2), ValueError, "test_on_batch: y must hold labels in [0, 1]"),
    (lambda m: m.compile(metrics="accuracy"), TypeError, "compile: metrics must be a list of names such as"),
    (lambda m: m.compile(metrics=["auc"]), ValueError, "compile: unknown metric 'auc' in metrics"),
    (lambda m: m.compile(optimizer=0.01), TypeError, "compile: optimizer must be 'adam', 'sgd' or an Optimizer"),
    (lambda m: m.compile(loss=None), TypeError, "compile: loss must be 'binary_crossentropy'"),
    (lambda m: m.set_weights(np.zeros(3)), TypeError, "set_weights: weights must be a list of arrays"),
    (lambda m: m.set_weights([np.zeros(1)]), ValueError, "set_weights: model 'sequential' has 4 weight arrays, got 1"),
    (
        lambda m: m.set_weights([np.full(w.shape, np.nan) for w in m.get_weights()]),
        ValueError,
        "set_weights: weights[0]",
    ),
    (
        lambda m: m.set_weights([w.T for w in m.get_weights()]),
        ValueError,
        "set_weights: weight 'conv2d/kernel' has shape",
    ),
]


@pytest.mark.parametrize("call, error, words", FIT_ROWS + OTHER_ROWS)
def test_a_bad_argument_is_one_clear_error(call, error, words):
    model = small_model()
    before = model.get_weights()
    with pytest.raises(error) as raised:
        call(model)
    message = str(raised.value)
    assert words in message, message
    assert "\n" not in message  # one line
    # Refused before any work: no weight changed, no epoch counted.
    assert all(np.array_equal(old, new) for old, new in zip(before, model.get_weights(), strict=True))
    assert model.completed_epochs == 0


def test_edge_cases_that_must_work():
    model = small_model()
    history = model.fit(X[:1], Y[:1], batch_size=32, epochs=2, verbose=0)  # one sample, a batch larger than N
    assert len(history.history["loss"]) == 2
    assert model.predict(X[:0]).shape == (0, 1)
    assert model.predict(X, batch_size=None).shape == (N, 1)  # None means 32, as in Keras
    assert model.predict(X[:1]).shape == (1, 1)
    assert model.predict(Batches(X, np.full(N, -1.0))).shape == (N, 1)  # predict ignores a source's labels
    assert model.evaluate(X[:1], Y[:1].reshape(1, 1), batch_size=100) is not None
    assert model.fit(X, Y, class_weight={}, verbose=0).history["loss"]  # an empty dict: every weight 1
    assert model.fit(X, Y.astype(bool), verbose=0).history["loss"]  # bool labels are 0 and 1
    model.compile(optimizer="sgd", loss="binary_crossentropy")  # no metrics: soft labels are allowed
    assert model.fit(X, Y * 0.8 + 0.1, verbose=0).history["loss"]


def test_a_model_with_two_outputs_takes_labels_of_two_columns():
    model = mc.Sequential([layers.Dense(2, activation="sigmoid", input_shape=(3,))], seed=0)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    assert model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0).history["loss"]
    with pytest.raises(ValueError, match=r"fit: y must have shape \(N, 2\), one row per output of the model"):
        model.fit(np.ones((4, 3)), np.ones(4), verbose=0)


def test_lists_train_exactly_as_the_arrays_they_become():
    from_arrays, from_lists = small_model(), small_model()
    from_arrays.fit(X, Y, batch_size=4, epochs=2, verbose=0)
    from_lists.fit(X.tolist(), Y.tolist(), batch_size=4, epochs=2, verbose=0, validation_data=(X.tolist(), Y.tolist()))
    for mine, theirs in zip(from_lists.get_weights(), from_arrays.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    np.testing.assert_array_equal(from_lists.predict(X.tolist()), from_arrays.predict(X))
    assert from_lists.evaluate(X.tolist(), Y.tolist()) == from_arrays.evaluate(X, Y)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_a_step_with_a_non_finite_gradient_changes_no_weight_and_raises():
    # Finite inputs so large that the first layer's output overflows to inf: the sigmoid gives
    # p = 1, the loss stays finite (clipped), but dL/dkernel of the second layer = inf * dz.
    # The step must stop before the optimiser.
    model = mc.Sequential([layers.Dense(1, input_shape=(2,)), layers.Dense(1, activation="sigmoid")], seed=0)
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    model.set_weights([np.ones((2, 1), np.float32), np.zeros(1, np.float32), np.ones((1, 1), np.float32), np.zeros(1)])
    x = np.full((2, 2), 3e38, np.float32)
    y = np.zeros(2, np.float32)
    before = model.get_weights()
    with pytest.raises(TrainingDivergedError, match="the gradient of dense_1/kernel became.*no weight changed"):
        model.fit(x, y, verbose=0)
    with pytest.raises(TrainingDivergedError, match="gradient"):
        model.train_on_batch(x, y)
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    assert model.optimizer.iterations == 0


class StopAfterTwoBatches(Callback):
    def on_train_batch_end(self, batch, logs):
        if batch == 1:
            raise KeyboardInterrupt


def test_a_new_fit_or_compile_starts_a_fresh_epoch_but_an_explicit_resume_continues():
    model = small_model()
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, Y, batch_size=2, verbose=0, callbacks=[StopAfterTwoBatches()])
    assert model.partial_epoch["batches"] == 2
    seen = []

    class CountBatches(Callback):
        def on_train_batch_end(self, batch, logs):
            seen.append(batch)

    model.fit(X, Y, batch_size=2, epochs=1, verbose=0, callbacks=[CountBatches()])  # not a resume
    assert seen == [0, 1, 2, 3] and model.partial_epoch is None

    with pytest.raises(KeyboardInterrupt):
        model.fit(X, Y, batch_size=2, verbose=0, callbacks=[StopAfterTwoBatches()])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    assert model.partial_epoch is None and model.completed_epochs == 0

    with pytest.raises(KeyboardInterrupt):
        model.fit(X, Y, batch_size=2, verbose=0, callbacks=[StopAfterTwoBatches()])
    seen.clear()
    model.fit(X, Y, batch_size=2, epochs=1, initial_epoch=0, verbose=0, callbacks=[CountBatches()])  # on purpose
    assert seen == [2, 3]


def test_a_resume_mid_epoch_from_a_file_ends_as_an_uninterrupted_run(tmp_path):
    uninterrupted = small_model()
    uninterrupted.fit(X, Y, batch_size=2, epochs=2, verbose=0)
    first = small_model()
    with pytest.raises(KeyboardInterrupt):
        first.fit(X, Y, batch_size=2, epochs=2, verbose=0, callbacks=[StopAfterTwoBatches()])
    first.save(tmp_path / "checkpoint.npz")
    resumed = mc.load_model(tmp_path / "checkpoint.npz")
    resumed.fit(X, Y, batch_size=2, epochs=2, initial_epoch=resumed.completed_epochs, verbose=0)
    for mine, theirs in zip(resumed.get_weights(), uninterrupted.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_the_gradient_check_names_the_non_finite_gradient_and_lets_a_merely_overflowing_sum_pass():
    """One float32 sum per gradient finds a NaN or inf; a sum that overflows from finite values is not one."""
    huge = np.full(4, 3e38, dtype=np.float32)  # finite, but its float32 sum is inf
    Trainer.check_gradients([("dense/kernel", None, huge), ("dense/bias", None, np.ones(2, np.float32))])
    broken = np.array([1.0, np.nan], dtype=np.float32)
    with pytest.raises(TrainingDivergedError, match=r"the gradient of dense/bias became NaN or infinite"):
        Trainer.check_gradients([("dense/kernel", None, huge), ("dense/bias", None, broken)])
