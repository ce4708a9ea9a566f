"""Categorical and sparse categorical cross-entropy, mean squared error: gradients, the fused softmax start,
Keras's values, the plain twins, label checks, and a softmax model trained end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
from minicnn import backend, layers, losses, optimizers, plain
from minicnn.gradcheck import check_loss, numerical_gradient, relative_error
from minicnn.layers.activations import softmax

REFERENCE = Path(__file__).parents[1] / "fixtures" / "keras_reference.npz"


@pytest.fixture(scope="module")
def keras_reference():
    with np.load(REFERENCE, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


@st.composite
def class_batch(draw, low, high):
    """(y_pred (N, K) in [low, high], class indices (N,), one-hot rows (N, K), weights (N,)) from one seed."""
    n, k = draw(st.integers(1, 8)), draw(st.integers(2, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    labels = rng.integers(0, k, n)
    return rng.uniform(low, high, (n, k)), labels, np.eye(k)[labels], rng.uniform(0.1, 5.0, n)


def to_device(*arrays):
    return [backend.to_device(a) for a in arrays]


# ---- central-difference gradients (float64) ---------------------------------------------------
@settings(max_examples=40)
@given(batch=class_batch(0.05, 1.0))
def test_categorical_probability_gradient(batch, backend_name):
    """Rows not summing to 1 on purpose: the gradient must also go back through Keras's renormalisation."""
    p, labels, one_hot, weights = to_device(*batch)
    for loss, y_true in ((losses.CategoricalCrossentropy(), one_hot), (losses.SparseCategoricalCrossentropy(), labels)):
        report = check_loss(loss, p, y_true)
        assert report.passed(1e-6), f"{type(loss).__name__}: {report}"
        report = check_loss(loss, p, y_true, sample_weight=weights)
        assert report.passed(1e-6), f"{type(loss).__name__} weighted: {report}"


@settings(max_examples=40)
@given(batch=class_batch(-4.0, 4.0))
def test_categorical_logits_gradient(batch, backend_name):
    """Logits within 8 of each other: a wider gap makes the loss log(1 + tiny) and its gradient ~ tiny, which
    central differences (rounding / h ~ 1e-10) can no longer resolve (the loss is fine; the check is not)."""
    z, labels, one_hot, weights = to_device(*batch)
    for loss, y_true in (
        (losses.CategoricalCrossentropy(from_logits=True), one_hot),
        (losses.SparseCategoricalCrossentropy(from_logits=True), labels.reshape(-1, 1)),
    ):
        for sample_weight in (None, weights):
            report = check_loss(loss, z, y_true, sample_weight=sample_weight)
            assert report.passed(1e-6), f"{type(loss).__name__}: {report}"


@settings(max_examples=40)
@given(batch=class_batch(-3.0, 3.0), shift=st.floats(-2, 2))
def test_mean_squared_error_gradient(batch, shift, backend_name):
    y_pred, _, one_hot, weights = to_device(*batch)
    for sample_weight in (None, weights):
        report = check_loss(losses.MeanSquaredError(), y_pred, one_hot + shift, sample_weight=sample_weight)
        assert report.passed(1e-6), str(report)


@settings(max_examples=40)
@given(batch=class_batch(-4.0, 4.0))
def test_fused_softmax_start_is_the_gradient_with_respect_to_z(batch, backend_name):
    """start_backward past a softmax: (p - y) / N (times the weights) equals d loss(softmax(z)) / dz."""
    z, labels, one_hot, weights = to_device(*batch)
    last = layers.Dense(z.shape[1], activation="softmax")
    for loss, y_true in ((losses.CategoricalCrossentropy(), one_hot), (losses.SparseCategoricalCrossentropy(), labels)):
        for sample_weight in (None, weights):

            def value(loss=loss, y_true=y_true, sample_weight=sample_weight):
                return float(loss.forward(softmax(z), y_true, sample_weight))

            value()
            gradient, from_dz = losses.start_backward(loss, last)
            assert from_dz
            expected = (backend.to_numpy(softmax(z)) - batch[2]) / len(batch[2])
            if sample_weight is not None:
                expected = expected * batch[3][:, None]
            np.testing.assert_allclose(backend.to_numpy(gradient), expected, rtol=1e-12, atol=1e-15)
            error = relative_error(backend.to_numpy(gradient), numerical_gradient(value, z, 1e-6))
            assert error < 1e-6, error


def test_which_pairs_fuse():
    dense_softmax = layers.Dense(3, activation="softmax")
    assert losses.fuses_with_last_layer(losses.CategoricalCrossentropy(), dense_softmax)
    assert losses.fuses_with_last_layer(losses.SparseCategoricalCrossentropy(), layers.Softmax())
    assert not losses.fuses_with_last_layer(losses.CategoricalCrossentropy(from_logits=True), dense_softmax)
    assert not losses.fuses_with_last_layer(losses.CategoricalCrossentropy(), layers.Dense(3, activation="sigmoid"))
    assert not losses.fuses_with_last_layer(losses.BinaryCrossentropy(), dense_softmax)
    assert not losses.fuses_with_last_layer(losses.MeanSquaredError(), dense_softmax)


# ---- values -----------------------------------------------------------------------------------
def test_values_by_hand():
    p = backend.to_device(np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]))
    expected = -(np.log(0.7) + np.log(0.6)) / 2
    one_hot = backend.to_device(np.array([[1.0, 0, 0], [0, 0, 1.0]]))
    assert float(losses.CategoricalCrossentropy().forward(p, one_hot)) == pytest.approx(expected, rel=1e-12)
    labels = backend.to_device(np.array([0.0, 2.0]))
    assert float(losses.SparseCategoricalCrossentropy().forward(p, labels)) == pytest.approx(expected, rel=1e-12)
    mse = losses.MeanSquaredError().forward(p, one_hot)
    assert float(mse) == pytest.approx((0.09 + 0.04 + 0.01 + 0.01 + 0.09 + 0.16) / 6, rel=1e-12)


def test_probabilities_are_clipped_and_renormalised_like_keras():
    p = backend.to_device(np.array([[0.0, 2.0], [1.0, 3.0]]))  # rows sum to 2 and 4
    one_hot = backend.to_device(np.array([[1.0, 0.0], [1.0, 0.0]]))
    expected = -(np.log(1e-7) + np.log(0.25)) / 2
    assert float(losses.CategoricalCrossentropy().forward(p, one_hot)) == pytest.approx(expected, rel=1e-6)


def test_logits_are_stable_for_huge_values():
    z = backend.to_device(np.array([[1000.0, -1000.0, 0.0]], np.float32))
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    with np.errstate(over="raise", invalid="raise"):
        value = float(loss.forward(z, backend.to_device(np.array([1.0], np.float32))))
        gradient = backend.to_numpy(loss.backward())
    assert value == pytest.approx(2000.0, rel=1e-6)
    np.testing.assert_allclose(gradient, [[1.0, -1.0, 0.0]], atol=1e-6)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("source", ["probabilities", "logits"])
@pytest.mark.parametrize("name", ["categorical", "sparse_categorical"])
def test_losses_and_gradients_agree_with_keras(name, source, dtype, keras_reference, backend_name):
    """Keras computed in float64 (benchmarks/keras_reference.py): a few operations per value, so float64
    agrees to 1e-12 and float32 to its rounding, 1e-6."""
    tolerance = {"float64": 1e-12, "float32": 1e-6}[dtype]
    loss = {"categorical": losses.CategoricalCrossentropy, "sparse_categorical": losses.SparseCategoricalCrossentropy}
    loss = loss[name](from_logits=source == "logits")
    y_true = keras_reference["crossentropy/one_hot" if name == "categorical" else "crossentropy/labels"]
    y_pred = keras_reference[f"crossentropy/{source}"]
    value = float(loss.forward(*to_device(y_pred.astype(dtype), y_true.astype(dtype))))
    gradient = backend.to_numpy(loss.backward())
    expected = keras_reference[f"{name}_crossentropy/from_{source}/gradient"]
    assert value == pytest.approx(float(keras_reference[f"{name}_crossentropy/from_{source}/loss"]), rel=tolerance)
    np.testing.assert_allclose(gradient, expected, rtol=tolerance, atol=tolerance * np.abs(expected).max())


def test_fused_gradient_agrees_with_keras_through_the_softmax(keras_reference):
    """Keras's gradient of CCE(softmax(z)) w.r.t. z is its from-logits gradient: the fused start must equal it."""
    z = keras_reference["crossentropy/logits"]
    loss = losses.CategoricalCrossentropy()
    loss.forward(softmax(z), keras_reference["crossentropy/one_hot"])
    gradient, from_dz = losses.start_backward(loss, layers.Softmax())
    assert from_dz
    expected = keras_reference["categorical_crossentropy/from_logits/gradient"]
    np.testing.assert_allclose(backend.to_numpy(gradient), expected, rtol=1e-12, atol=1e-15)


def test_mean_squared_error_agrees_with_keras(keras_reference, backend_name):
    loss = losses.get("mse")
    value = float(loss.forward(*to_device(keras_reference["mse/y_pred"], keras_reference["mse/y_true"])))
    assert value == pytest.approx(float(keras_reference["mse/loss"]), rel=1e-12)
    np.testing.assert_allclose(backend.to_numpy(loss.backward()), keras_reference["mse/gradient"], rtol=1e-12)


# ---- plain twins ------------------------------------------------------------------------------
def test_fast_equals_plain_twins_bit_for_bit():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 3, (6, 4))
    p = plain.softmax(z)
    labels = rng.integers(0, 4, 6)
    one_hot = plain.one_hot(labels, 4)
    cases = [
        (losses.CategoricalCrossentropy(), p, one_hot, plain.categorical_cross_entropy_forward,
         plain.categorical_cross_entropy_backward),
        (losses.SparseCategoricalCrossentropy(), p, labels.astype(float), plain.categorical_cross_entropy_forward,
         plain.categorical_cross_entropy_backward),
        (losses.CategoricalCrossentropy(from_logits=True), z, one_hot, plain.categorical_cross_entropy_logits_forward,
         plain.categorical_cross_entropy_logits_backward),
        (losses.MeanSquaredError(), z, one_hot, plain.mean_squared_error_forward, plain.mean_squared_error_backward),
    ]  # fmt: skip
    for loss, y_pred, y_true, plain_forward, plain_backward in cases:
        value = loss.forward(y_pred, y_true)
        plain_value, cache = plain_forward(y_pred, one_hot)
        assert float(value) == float(plain_value), type(loss).__name__
        np.testing.assert_array_equal(loss.backward(), plain_backward(1.0, cache), err_msg=type(loss).__name__)
    loss = losses.SparseCategoricalCrossentropy()
    loss.forward(p, labels.astype(float))
    _, cache = plain.categorical_cross_entropy_forward(p, one_hot)
    np.testing.assert_array_equal(
        loss.gradient_before_activation(), plain.softmax_categorical_cross_entropy_backward(1.0, cache)
    )


@pytest.mark.parametrize(
    "forward, backward, low",
    [
        (plain.categorical_cross_entropy_forward, plain.categorical_cross_entropy_backward, 0.05),
        (plain.categorical_cross_entropy_logits_forward, plain.categorical_cross_entropy_logits_backward, -5.0),
        (plain.mean_squared_error_forward, plain.mean_squared_error_backward, -5.0),
    ],
)
def test_plain_backwards_match_central_differences(forward, backward, low):
    rng = np.random.default_rng(4)
    y_pred = rng.uniform(low, 1.0 if low > 0 else 5.0, (5, 3))
    y_true = plain.one_hot(rng.integers(0, 3, 5), 3)
    _, cache = forward(y_pred, y_true)
    analytic = backward(1.0, cache)
    numeric = numerical_gradient(lambda: float(forward(y_pred, y_true)[0]), y_pred, 1e-6)
    assert relative_error(analytic, numeric) < 1e-6


def test_plain_fused_gradient_matches_central_differences_through_softmax():
    rng = np.random.default_rng(5)
    z = rng.normal(0, 2, (5, 3))
    y = plain.one_hot(rng.integers(0, 3, 5), 3)
    _, cache = plain.categorical_cross_entropy_forward(plain.softmax(z), y)
    analytic = plain.softmax_categorical_cross_entropy_backward(1.0, cache)
    numeric = numerical_gradient(
        lambda: float(plain.categorical_cross_entropy_forward(plain.softmax(z), y)[0]), z, 1e-6
    )
    assert relative_error(analytic, numeric) < 1e-6


# ---- names, configs, shapes ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, cls",
    [
        ("categorical_crossentropy", losses.CategoricalCrossentropy),
        ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
        ("mse", losses.MeanSquaredError),
        ("mean_squared_error", losses.MeanSquaredError),
    ],
)
def test_keras_names_and_config_round_trip(name, cls):
    loss = losses.get(name)
    assert type(loss) is cls
    rebuilt = losses.from_config(loss.get_config())
    assert type(rebuilt) is cls and rebuilt.get_config() == loss.get_config()
    if cls is not losses.MeanSquaredError:
        assert losses.from_config(cls(from_logits=True).get_config()).from_logits is True


def test_mismatched_shapes_are_clear_errors():
    p = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match="for integer labels use SparseCategoricalCrossentropy"):
        losses.CategoricalCrossentropy().forward(p, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="for one-hot labels use CategoricalCrossentropy"):
        losses.SparseCategoricalCrossentropy().forward(p, np.eye(3)[:2])
    with pytest.raises(ValueError, match="MeanSquaredError: y_pred has shape"):
        losses.MeanSquaredError().forward(p, p[:, :2])
    with pytest.raises(TypeError, match="CategoricalCrossentropy: from_logits must be True or False"):
        losses.CategoricalCrossentropy(from_logits="yes")


# ---- a softmax model, end to end --------------------------------------------------------------------
def blobs(samples=240, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 4.0], [4.0, -2.0], [-4.0, -2.0]])
    labels = rng.integers(0, 3, samples)
    return (centers[labels] + rng.normal(size=(samples, 2))).astype(np.float32), labels


def softmax_model(activation="softmax"):
    return mc.Sequential([layers.Dense(3, activation=activation, input_shape=(2,))], seed=1)


@pytest.mark.parametrize(
    "loss, one_hot, optimizer",
    [
        ("sparse_categorical_crossentropy", False, "adam"),
        ("categorical_crossentropy", True, "adam"),
        ("sparse_categorical_crossentropy", False, "rmsprop"),
        (losses.SparseCategoricalCrossentropy(from_logits=True), False, optimizers.RMSprop(1e-2)),
    ],
)
def test_softmax_model_learns_three_blobs(loss, one_hot, optimizer):
    x, labels = blobs()
    y = np.eye(3)[labels] if one_hot else labels
    from_logits = getattr(loss, "from_logits", False)
    model = softmax_model(None if from_logits else "softmax")
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    assert model.fused_sigmoid is not from_logits  # the softmax start is fused unless the model ends in logits
    history = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss_value, accuracy = model.evaluate(x, y)
    assert accuracy > 0.95 and loss_value < 0.3
    probabilities = model.predict(x[:5])
    assert probabilities.shape == (5, 3)
    if not from_logits:
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_accuracy_is_argmax_against_integer_and_one_hot_labels():
    x, labels = blobs(samples=40)
    model = softmax_model()
    predicted = model.predict(x).argmax(axis=1)
    expected = float(np.mean(predicted == labels))
    for loss, y, metric in (
        ("sparse_categorical_crossentropy", labels, "sparse_categorical_accuracy"),
        ("sparse_categorical_crossentropy", labels.reshape(-1, 1).astype(np.float32), "accuracy"),
        ("categorical_crossentropy", np.eye(3)[labels], "categorical_accuracy"),
    ):
        model.compile(optimizer="adam", loss=loss, metrics=[metric])
        results = model.evaluate(x, y, batch_size=40, return_dict=True)
        assert results["accuracy"] == pytest.approx(expected)


def test_class_weight_with_three_classes_scales_each_sample():
    x, labels = blobs(samples=30)
    model = softmax_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    p = model.predict(x)
    weights = {0: 1.0, 1: 2.0, 2: 0.5}
    per_sample = -np.log(p[np.arange(len(x)), labels]) * np.array([weights[c] for c in labels])
    loss = losses.SparseCategoricalCrossentropy()
    model_y = backend.to_device(labels.astype(np.float32))
    assert float(loss.forward(backend.to_device(p), model_y, model.sample_weight(model_y, weights))) == pytest.approx(
        per_sample.mean(), rel=1e-5
    )
    model.fit(x, labels, class_weight=weights, epochs=1, verbose=0)
    model.fit(x, labels, class_weight="balanced", epochs=1, verbose=0)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.fit(x, np.eye(3)[labels], class_weight="balanced", epochs=1, verbose=0)
    with pytest.raises(ValueError, match="the model's 3 classes are 0 .. 2"):
        model.fit(x, np.eye(3)[labels], class_weight={3: 1.0}, verbose=0)


# ---- labels that do not fit the loss -----------------------------------------------------------------
@pytest.mark.parametrize(
    "loss, y, message",
    [
        ("sparse_categorical_crossentropy", [0, 1, 3, 2], r"integer class indices in \[0, 3\).*found 3"),
        ("sparse_categorical_crossentropy", [0, 1, 1.5, 2], "found 1.5"),
        (
            "sparse_categorical_crossentropy",
            np.eye(3)[[0, 1, 2, 0]],
            "one-hot rows need loss='categorical_crossentropy'",
        ),
        ("categorical_crossentropy", [0, 1, 2, 0], "integer labels need loss='sparse_categorical_crossentropy'"),
        ("categorical_crossentropy", np.eye(4)[[0, 1, 2, 0]], r"one-hot rows of shape \(N, 3\)"),
        ("categorical_crossentropy", np.eye(3)[[0, 1, 2, 0]] * 2, r"values in \[0, 1\]"),
        ("categorical_crossentropy", np.full((4, 3), 0.5), "must sum to 1"),
    ],
)
def test_labels_that_do_not_fit_the_loss_are_clear_errors(loss, y, message):
    x, _ = blobs(samples=4)
    model = softmax_model()
    model.compile(optimizer="adam", loss=loss)
    with pytest.raises(ValueError, match=message):
        model.fit(x, np.asarray(y), verbose=0)
    with pytest.raises(ValueError, match=message):
        model.evaluate(x, np.asarray(y))


def test_soft_labels_train_but_not_with_accuracy():
    x, labels = blobs(samples=4)
    soft = np.eye(3)[labels] * 0.9 + 0.1 / 3
    model = softmax_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(x, soft, verbose=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    with pytest.raises(ValueError, match="needs one-hot rows"):
        model.fit(x, soft, verbose=0)


def test_mean_squared_error_trains_and_refuses_accuracy_and_class_weight():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(64, 2)).astype(np.float32)
    y = x @ np.array([[1.0, -2.0], [0.5, 3.0]], np.float32) + 0.25
    model = mc.Sequential([layers.Dense(2, input_shape=(2,))], seed=0)
    model.compile(optimizer=optimizers.Adam(0.05), loss="mse")
    history = model.fit(x, y, epochs=40, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.01 * history.history["loss"][0]
    with pytest.raises(ValueError, match="class_weight needs class labels"):
        model.fit(x, y, class_weight={0: 1.0}, verbose=0)
    with pytest.raises(ValueError, match="needs a classification loss"):
        model.compile(loss="mse", metrics=["accuracy"])


def test_a_compiled_softmax_model_saves_and_loads(tmp_path):
    x, labels = blobs(samples=32)
    model = softmax_model()
    model.compile(optimizer="rmsprop", loss=losses.CategoricalCrossentropy(), metrics=["accuracy"])
    model.fit(x, np.eye(3)[labels], epochs=1, verbose=0)
    loaded = mc.load_model(model.save(tmp_path / "softmax.npz"))
    assert type(loaded.loss) is losses.CategoricalCrossentropy and type(loaded.optimizer) is optimizers.RMSprop
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_a_standalone_softmax_layer_fuses_too():
    """Dense(3) then Softmax(): the fused start skips the Softmax layer (its backward_from_dz passes dL/dz on)."""
    x, labels = blobs(samples=120)
    model = mc.Sequential([layers.Dense(3, input_shape=(2,)), layers.Softmax()], seed=1)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert model.fused_sigmoid
    model.fit(x, labels, epochs=10, verbose=0)
    assert model.evaluate(x, labels)[1] > 0.95


def test_labels_beyond_one_with_binary_cross_entropy_point_to_the_categorical_losses():
    x, labels = blobs(samples=6)
    model = mc.Sequential([layers.Dense(1, activation="sigmoid", input_shape=(2,))], seed=0)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    with pytest.raises(ValueError, match="binary cross-entropy; found 2.*loss='sparse_categorical_crossentropy'"):
        model.fit(x, np.array([0, 1, 2, 0, 1, 2]), verbose=0)
