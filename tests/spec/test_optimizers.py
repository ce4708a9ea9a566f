"""Adam and SGD: the first steps equal values worked out by hand; updates happen in place."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn import backend, optimizers


def run(optimizer, gradients, start=1.0):
    weight = backend.to_device(np.array([start]))
    for g in gradients:
        optimizer.step([("w", weight, backend.to_device(np.array([g])))])
    return float(weight[0])


def test_adam_constant_gradient_moves_exactly_learning_rate_per_step():
    """With bias correction, m_hat = g and v_hat = g^2, so each step is lr * g / |g| (epsilon 0)."""
    adam = optimizers.Adam(learning_rate=0.1, epsilon=0.0)
    assert run(adam, [0.5]) == pytest.approx(0.9, abs=1e-15)
    adam = optimizers.Adam(learning_rate=0.1, epsilon=0.0)
    assert run(adam, [0.5, 0.5]) == pytest.approx(0.8, abs=1e-15)


def test_adam_two_steps_worked_by_hand():
    """g = +1 then -1, lr 0.1, epsilon 0:
    step 1: m = 0.1, v = 0.001; m_hat = 1, v_hat = 1 -> w = 1 - 0.1 = 0.9
    step 2: m = 0.09 - 0.1 = -0.01, v = 0.000999 + 0.001 = 0.001999;
            m_hat = -0.01 / 0.19, v_hat = 0.001999 / 0.001999 = 1 -> w = 0.9 + 0.1 * 0.01 / 0.19
    """
    adam = optimizers.Adam(learning_rate=0.1, epsilon=0.0)
    assert run(adam, [1.0, -1.0]) == pytest.approx(0.9 + 0.1 * 0.01 / 0.19, abs=1e-14)
    assert adam.iterations == 2


def test_adam_epsilon_enters_like_keras():
    """Keras: w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps); one step with g = 1e-6."""
    adam = optimizers.Adam(learning_rate=1.0)
    g = 1e-6
    m, v = 0.1 * g, 0.001 * g * g
    expected = 1.0 - np.sqrt(0.001) / 0.1 * m / (np.sqrt(v) + 1e-7)
    assert run(adam, [g]) == pytest.approx(expected, rel=1e-12)


def test_sgd_momentum_by_hand():
    """velocity = 0.9 velocity - 0.1 g: after g = 1, 1 the weight moved -0.1 then -0.19."""
    assert run(optimizers.SGD(learning_rate=0.1, momentum=0.9), [1.0, 1.0]) == pytest.approx(1.0 - 0.1 - 0.19)
    assert run(optimizers.SGD(learning_rate=0.1), [1.0, 1.0]) == pytest.approx(0.8)


def test_updates_are_in_place_and_keep_float32():
    weight = backend.to_device(np.ones(3, np.float32))
    adam = optimizers.Adam(learning_rate=1e-4)
    adam.step([("w", weight, backend.to_device(np.full(3, 0.5, np.float32)))])
    assert weight.dtype == np.float32 and float(weight[0]) < 1.0
    assert all(slot.dtype == np.float32 for slot in adam.slots.values())


@pytest.mark.parametrize("size", [1, 6, 7, 50])
def test_adam_in_cache_sized_blocks_equals_one_pass_bit_for_bit(size, monkeypatch):
    """The blocks only decide which values are updated together; each value sees the same operations."""
    rng = np.random.default_rng(size)
    start = rng.normal(size=size).astype(np.float32)
    gradients = [rng.normal(size=size).astype(np.float32) for _ in range(3)]
    results = []
    for block in (7, 10**9):  # blocks of 7 values (a part of 50 ends in a short one), and one block
        monkeypatch.setattr(optimizers, "CACHE_BLOCK", block)
        adam, weight = optimizers.Adam(learning_rate=0.01), backend.to_device(start.copy())
        for g in gradients:
            adam.step([("w", weight, backend.to_device(g))])
        results.append(backend.to_numpy(weight))
    np.testing.assert_array_equal(results[0], results[1])
    assert not np.array_equal(results[0], start)


def test_state_round_trip_continues_identically():
    gradients = [0.3, -0.2, 0.7, 0.1]
    uninterrupted = run(optimizers.Adam(0.01), gradients)
    first = optimizers.Adam(0.01)
    weight = backend.to_device(np.array([1.0]))
    for g in gradients[:2]:
        first.step([("w", weight, backend.to_device(np.array([g])))])
    second = optimizers.Adam(0.01)
    second.set_state(first.get_state())
    for g in gradients[2:]:
        second.step([("w", weight, backend.to_device(np.array([g])))])
    assert float(weight[0]) == uninterrupted


@pytest.mark.parametrize(
    "make",
    [lambda: optimizers.Adam(learning_rate=0), lambda: optimizers.SGD(momentum=1.5), lambda: optimizers.get("adagrad")],
)
def test_bad_settings_are_rejected(make):
    with pytest.raises(ValueError):
        make()
