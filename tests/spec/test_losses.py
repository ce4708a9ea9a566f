"""BinaryCrossentropy: Keras's values, exact gradients, the fused sigmoid gradient, from_logits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minicnn import backend, layers, losses
from minicnn.gradcheck import check_loss
from minicnn.layers.activations import sigmoid

batch_sizes = st.integers(1, 16)


@st.composite
def labelled_batch(draw, low, high):
    n = draw(batch_sizes)
    y_pred = draw(arrays(np.float64, (n, 1), elements=st.floats(low, high)))
    y_true = draw(arrays(np.float64, (n, 1), elements=st.sampled_from([0.0, 1.0])))
    return y_pred, y_true


def test_value_matches_the_formula_by_hand():
    p = backend.to_device(np.array([[0.9], [0.2]]))
    y = backend.to_device(np.array([[1.0], [0.0]]))
    expected = -(np.log(0.9) + np.log(0.8)) / 2
    assert float(losses.BinaryCrossentropy().forward(p, y)) == pytest.approx(expected, rel=1e-12)


def test_probabilities_are_clipped_like_keras():
    p = backend.to_device(np.array([[0.0], [1.0]]))
    y = backend.to_device(np.array([[1.0], [0.0]]))
    assert float(losses.BinaryCrossentropy().forward(p, y)) == pytest.approx(-np.log(1e-7), rel=1e-6)


@settings(max_examples=50)
@given(batch=labelled_batch(0.01, 0.99))
def test_probability_gradient_matches_central_differences(batch, backend_name):
    y_pred, y_true = (backend.to_device(a) for a in batch)
    report = check_loss(losses.BinaryCrossentropy(), y_pred, y_true)
    assert report.passed(1e-6), str(report)


@settings(max_examples=50)
@given(batch=labelled_batch(-20, 20))
def test_logits_gradient_matches_central_differences(batch, backend_name):
    y_pred, y_true = (backend.to_device(a) for a in batch)
    report = check_loss(losses.BinaryCrossentropy(from_logits=True), y_pred, y_true)
    assert report.passed(1e-6), str(report)


@settings(max_examples=50)
@given(batch=labelled_batch(-20, 20), weights=st.lists(st.floats(0.1, 5), min_size=16, max_size=16))
def test_weighted_gradient_matches_central_differences(batch, weights, backend_name):
    logits, y_true = batch
    sample_weight = backend.to_device(np.array(weights[: len(logits)]))
    report = check_loss(
        losses.BinaryCrossentropy(from_logits=True), backend.to_device(logits), backend.to_device(y_true), sample_weight
    )
    assert report.passed(1e-6), str(report)


@settings(max_examples=50)
@given(batch=labelled_batch(-15, 15))
def test_logits_loss_equals_probability_loss(batch):
    """From logits or from sigmoid probabilities: the same number (away from the 1e-7 clip)."""
    logits, y_true = (backend.to_device(a) for a in batch)
    from_logits = float(losses.BinaryCrossentropy(from_logits=True).forward(logits, y_true))
    from_probabilities = float(losses.BinaryCrossentropy().forward(sigmoid(logits), y_true))
    assert from_logits == pytest.approx(from_probabilities, rel=1e-6, abs=1e-9)


@settings(max_examples=50)
@given(batch=labelled_batch(-20, 20))
def test_fused_sigmoid_gradient_is_the_logit_gradient(batch):
    """(p - y) / N, computed from probabilities, equals d/dz of the from_logits loss."""
    logits, y_true = (backend.to_device(a) for a in batch)
    logit_loss = losses.BinaryCrossentropy(from_logits=True)
    logit_loss.forward(logits, y_true)
    probability_loss = losses.BinaryCrossentropy()
    probability_loss.forward(sigmoid(logits), y_true)
    np.testing.assert_allclose(
        backend.to_numpy(probability_loss.gradient_before_sigmoid()),
        backend.to_numpy(logit_loss.backward()),
        rtol=1e-12,
        atol=1e-15,
    )


def test_fused_gradient_survives_saturation_in_float32():
    """A confident mistake (p rounds to 1.0, y = 0) still gets the full gradient (p - y) / N = 1."""
    p = backend.to_device(np.array([[1.0]], np.float32))
    y = backend.to_device(np.array([[0.0]], np.float32))
    loss = losses.BinaryCrossentropy()
    loss.forward(p, y)
    assert float(loss.gradient_before_sigmoid()[0, 0]) == 1.0
    assert float(loss.backward()[0, 0]) == 0.0  # the unfused chain rule would have lost it


def test_shapes_must_agree():
    with pytest.raises(ValueError, match=r"y_pred has shape \(4, 1\) but y_true has \(4,\)"):
        losses.BinaryCrossentropy().forward(backend.to_device(np.zeros((4, 1))), backend.to_device(np.zeros(4)))


def test_float32_stays_float32():
    p = backend.to_device(np.full((3, 1), 0.3, np.float32))
    y = backend.to_device(np.ones((3, 1), np.float32))
    loss = losses.BinaryCrossentropy()
    assert loss.forward(p, y).dtype == np.float32
    assert loss.backward().dtype == np.float32 and loss.gradient_before_sigmoid().dtype == np.float32


def test_start_backward_is_the_one_place_that_fuses_sigmoid_and_bce():
    """Sigmoid into BCE on probabilities: dL/dz = (p - y) / N, past the last activation; otherwise dL/dy."""
    rng = np.random.default_rng(0)
    p = backend.to_device(rng.uniform(0.05, 0.95, size=(5, 1)).astype(np.float32))
    y = backend.to_device((rng.uniform(size=(5, 1)) < 0.5).astype(np.float32))
    weight = backend.to_device(rng.uniform(0.5, 2, size=5).astype(np.float32))
    dense_sigmoid, dense_relu = layers.Dense(1, activation="sigmoid"), layers.Dense(1, activation="relu")
    cases = [
        (losses.BinaryCrossentropy(), dense_sigmoid, True),  # a fused sigmoid
        (losses.BinaryCrossentropy(), layers.Sigmoid(), True),  # a standalone Sigmoid layer
        (losses.BinaryCrossentropy(), dense_relu, False),
        (losses.BinaryCrossentropy(from_logits=True), dense_sigmoid, False),  # logits: backward is dL/dz already
    ]
    for loss, last_layer, fused in cases:
        loss.forward(p, y, weight)
        gradient, from_dz = losses.start_backward(loss, last_layer)
        assert from_dz is fused and losses.fuses_with_last_layer(loss, last_layer) is fused
        expected = (p - y) / 5 * weight.reshape(5, 1) if fused else loss.backward()
        np.testing.assert_array_equal(backend.to_numpy(gradient), backend.to_numpy(expected))
        if fused:
            np.testing.assert_array_equal(backend.to_numpy(gradient), backend.to_numpy(loss.gradient_before_sigmoid()))
