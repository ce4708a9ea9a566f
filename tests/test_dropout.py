"""Dropout: inverted scaling, identity at inference, seeded masks, exact gradient for a fixed mask."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn import backend
from minicnn.gradcheck import check_layer
from minicnn.layers import Dropout


def built(rate, features=1000, seed=1):
    layer = Dropout(rate, seed=seed)
    layer.build((features,))
    return layer


def test_identity_at_inference():
    x = backend.to_device(np.random.default_rng(0).normal(size=(4, 1000)).astype(np.float32))
    assert built(0.5).forward(x, training=False) is x


def test_inverted_dropout_keeps_the_mean_and_scales_survivors():
    x = backend.to_device(np.ones((50, 1000), np.float32))
    y = backend.to_numpy(built(0.5).forward(x, training=True))
    assert set(np.unique(y)) == {0.0, 2.0}  # kept values are scaled by 1 / (1 - rate)
    assert abs(y.mean() - 1.0) < 0.02
    assert abs((y == 0).mean() - 0.5) < 0.01


def test_masks_are_seeded_and_change_between_calls():
    x = backend.to_device(np.ones((2, 100), np.float32))
    a, b = built(0.5, seed=7), built(0.5, seed=7)
    first, second = a.forward(x, training=True), a.forward(x, training=True)
    assert np.array_equal(backend.to_numpy(first), backend.to_numpy(b.forward(x, training=True)))
    assert not np.array_equal(backend.to_numpy(first), backend.to_numpy(second))
    assert a.get_state() == {"seed": 7, "calls": 2}


def test_restoring_state_replays_the_same_mask():
    x = backend.to_device(np.ones((2, 100), np.float32))
    layer = built(0.3)
    state = layer.get_state()
    first = backend.to_numpy(layer.forward(x, training=True))
    layer.set_state(state)
    np.testing.assert_array_equal(backend.to_numpy(layer.forward(x, training=True)), first)


@settings(max_examples=30)
@given(rate=st.floats(0.0, 0.9), batch=st.integers(1, 4), features=st.integers(1, 20), seed=st.integers(0, 99))
def test_gradient_matches_central_differences_for_a_fixed_mask(rate, batch, features, seed, float64, backend_name):
    layer = Dropout(rate, seed=seed)
    layer.build((features,))
    x = np.random.default_rng(seed).normal(size=(batch, features))
    report = check_layer(layer, backend.to_device(x), training=True)
    assert report.passed(1e-6), str(report)


def test_float32_stays_float32():
    y = built(0.5).forward(backend.to_device(np.ones((2, 1000), np.float32)), training=True)
    assert y.dtype == np.float32


@pytest.mark.parametrize("rate", [-0.1, 1.0, 2.0])
def test_rate_out_of_range(rate):
    with pytest.raises(ValueError, match="rate must be in"):
        Dropout(rate)
