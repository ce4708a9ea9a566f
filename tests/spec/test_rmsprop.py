"""RMSprop: Keras 3's numbers (epsilon inside the square root), its plain twin, momentum and centering by
hand, its settings, and an exact resume through save and load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, layers, optimizers, plain

REFERENCE = Path(__file__).parents[1] / "fixtures" / "keras_reference.npz"


@pytest.fixture(scope="module")
def keras_reference():
    with np.load(REFERENCE, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def steps(optimizer, w, gradients):
    weight = backend.to_device(np.array(w))
    for g in gradients:
        optimizer.step([("w", weight, backend.to_device(np.array(g, dtype=weight.dtype)))])
    return backend.to_numpy(weight)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_two_steps_agree_with_keras(dtype, keras_reference, backend_name):
    """Keras 3 took two steps in float64 (benchmarks/keras_reference.py, settings in meta/settings). One gradient
    entry is 1e-4, whose step would be ~10x smaller with epsilon outside the root. A few operations per value:
    float64 agrees to 1e-12, float32 to its rounding, 1e-6."""
    settings = json.loads(str(keras_reference["meta/settings"]))["rmsprop"]
    optimizer = optimizers.RMSprop(**settings)
    w = keras_reference["rmsprop/w"].astype(dtype)
    tolerance = {"float64": 1e-12, "float32": 1e-6}[dtype]
    after_one = steps(optimizer, w, [keras_reference["rmsprop/g1"]])
    np.testing.assert_allclose(after_one, keras_reference["rmsprop/w_after_step1"], rtol=tolerance, atol=tolerance)
    weight = backend.to_device(after_one)
    optimizer.step([("w", weight, backend.to_device(keras_reference["rmsprop/g2"].astype(dtype)))])
    np.testing.assert_allclose(
        backend.to_numpy(weight), keras_reference["rmsprop/w_after_step2"], rtol=tolerance, atol=tolerance
    )


def test_the_first_step_worked_by_hand():
    """v = 0.1 g**2 after one step, so the step is lr * g / sqrt(0.1 g**2 + eps) = lr * sqrt(10) for g >> sqrt(eps)."""
    after = steps(optimizers.RMSprop(learning_rate=0.01, epsilon=0.0), [1.0, 1.0], [[2.0, -3.0]])
    np.testing.assert_allclose(after, [1 - 0.01 * np.sqrt(10), 1 + 0.01 * np.sqrt(10)], rtol=1e-12)


def test_fast_equals_plain_twin_bit_for_bit():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3))
    gradients = rng.normal(size=(5, 4, 3))
    fast = steps(optimizers.RMSprop(0.01, rho=0.8, epsilon=1e-6), w, gradients)
    v = np.zeros_like(w)
    for g in gradients:
        w, v = plain.rmsprop(w, g, v, learning_rate=0.01, rho=0.8, epsilon=1e-6)
    np.testing.assert_array_equal(fast, w)


def test_momentum_and_centered_follow_keras_formulas():
    """Keras 3: a = rho a + (1 - rho) g;  step = lr g / sqrt(v - a**2 + eps);  s = momentum s + step;  w -= s."""
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=6)
    gradients = rng.normal(size=(4, 6))
    lr, rho, momentum, eps = 0.05, 0.9, 0.5, 1e-7
    for centered in (False, True):
        w, v, a, s = w0.copy(), np.zeros(6), np.zeros(6), np.zeros(6)
        for g in gradients:
            v = rho * v + (1 - rho) * g**2
            a = rho * a + (1 - rho) * g
            s = momentum * s + lr * g / np.sqrt((v - a**2 if centered else v) + eps)
            w = w - s
        fast = steps(optimizers.RMSprop(lr, rho, momentum, eps, centered), w0, gradients)
        np.testing.assert_allclose(fast, w, rtol=1e-12, atol=1e-15, err_msg=f"centered={centered}")


def test_updates_in_place_and_keeps_float32():
    weight = backend.to_device(np.ones(3, np.float32))
    before = weight
    optimizers.RMSprop(momentum=0.9, centered=True).step([("w", weight, backend.to_device(np.ones(3, np.float32)))])
    assert weight is before and weight.dtype == np.float32 and float(weight[0]) < 1.0


def test_names_config_and_state_round_trip():
    assert (
        type(optimizers.get("rmsprop")) is optimizers.RMSprop and type(optimizers.get("RMSprop")) is optimizers.RMSprop
    )
    optimizer = optimizers.RMSprop(1e-4, rho=0.8, momentum=0.5, epsilon=1e-6, centered=True)
    config = optimizer.get_config()
    assert config == {
        "class_name": "RMSprop", "learning_rate": 1e-4, "rho": 0.8, "momentum": 0.5, "epsilon": 1e-6, "centered": True
    }  # fmt: skip
    assert optimizers.from_config(config).get_config() == config
    gradients = [[0.3, -0.2], [0.7, 0.1], [-0.4, 0.9], [0.2, 0.2]]
    uninterrupted = steps(optimizers.RMSprop(0.01, momentum=0.5, centered=True), [1.0, 2.0], gradients)
    first = optimizers.RMSprop(0.01, momentum=0.5, centered=True)
    halfway = steps(first, [1.0, 2.0], gradients[:2])
    second = optimizers.RMSprop(0.01, momentum=0.5, centered=True)
    second.set_state(first.get_state())
    assert sorted(second.slots) == ["average_gradient/w", "momentum/w", "velocity/w"]
    np.testing.assert_array_equal(steps(second, halfway, gradients[2:]), uninterrupted)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: optimizers.RMSprop(learning_rate=0), ValueError, "RMSprop: learning_rate"),
        (lambda: optimizers.RMSprop(rho=1.0), ValueError, "RMSprop: rho"),
        (lambda: optimizers.RMSprop(momentum=-0.1), ValueError, "RMSprop: momentum"),
        (lambda: optimizers.RMSprop(epsilon=-1e-7), ValueError, "RMSprop: epsilon"),
        (lambda: optimizers.RMSprop(centered="no"), TypeError, "RMSprop: centered must be True or False"),
        (lambda: optimizers.RMSprop(rho="0.9"), TypeError, "RMSprop: rho"),
    ],
)
def test_bad_settings_are_clear_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_resume_through_save_and_load_equals_an_uninterrupted_run(tmp_path):
    """3 epochs, or 1 epoch + save + load + 2 more, with RMSprop (momentum, centered): the same weights, bit for bit."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(48, 4)).astype(np.float32)
    y = rng.integers(0, 3, 48)

    def model():
        network = mc.Sequential(
            [layers.Dense(8, activation="tanh", input_shape=(4,)), layers.Dense(3, activation="softmax")], seed=3
        )
        network.compile(
            optimizer=optimizers.RMSprop(1e-3, momentum=0.5, centered=True),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return network

    uninterrupted = model()
    uninterrupted.fit(x, y, batch_size=16, epochs=3, verbose=0)
    first = model()
    first.fit(x, y, batch_size=16, epochs=1, verbose=0)
    resumed = mc.load_model(first.save(tmp_path / "checkpoint.npz"))
    assert type(resumed.optimizer) is optimizers.RMSprop and resumed.optimizer.centered
    history = resumed.fit(x, y, batch_size=16, epochs=3, initial_epoch=resumed.completed_epochs, verbose=0)
    for expected, actual in zip(uninterrupted.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_array_equal(actual, expected)
    assert history.history["loss"] == uninterrupted.history.history["loss"]
