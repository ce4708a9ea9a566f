"""benchmarks/bench_study_model.py --compare: how it judges whether two commits compute the same numbers.

The benchmark itself needs minutes and a quiet machine, so it is not run here; its judgement of
the two sides' final weights is a plain function, tested on small files.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_study_model.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_study_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def save(path: Path, *arrays: np.ndarray) -> Path:
    np.savez(path, *arrays)
    return path


def test_equal_weights_are_reported_bit_for_bit(bench, tmp_path):
    kernel, bias = np.arange(6, dtype=np.float32).reshape(2, 3), np.array([0.5, -0.0], np.float32)
    result = bench.weight_difference(save(tmp_path / "a.npz", kernel, bias), save(tmp_path / "b.npz", kernel, bias))
    assert result == {"bit_for_bit": True, "max_abs": 0.0, "max_relative": 0.0, "array": None}


def test_the_worst_array_is_judged_on_its_own_scale(bench, tmp_path):
    """A 1e-3 change of a bias whose largest value is 0.01 (10 %) outweighs a 1e-2 change of a kernel up to 100."""
    kernel, bias = np.full((2, 3), 100.0, np.float32), np.array([0.01, 0.002], np.float32)
    moved_kernel, moved_bias = kernel.copy(), bias.copy()
    moved_kernel[1, 2] += 0.01
    moved_bias[0] += 0.001
    result = bench.weight_difference(
        save(tmp_path / "a.npz", kernel, bias), save(tmp_path / "b.npz", moved_kernel, moved_bias)
    )
    assert not result["bit_for_bit"]
    assert result["array"] == "weight array 1 ((2,))"
    assert result["max_abs"] == pytest.approx(0.001, rel=1e-4)
    assert result["max_relative"] == pytest.approx(0.1, rel=1e-4)


def test_models_of_different_shapes_are_an_error(bench, tmp_path):
    first = save(tmp_path / "a.npz", np.zeros((2, 3), np.float32))
    with pytest.raises(SystemExit, match="different weights"):
        bench.weight_difference(first, save(tmp_path / "b.npz", np.zeros((3, 2), np.float32)))
    with pytest.raises(SystemExit, match="different weights"):
        bench.weight_difference(first, save(tmp_path / "c.npz", np.zeros((2, 3)), np.zeros(1)))
