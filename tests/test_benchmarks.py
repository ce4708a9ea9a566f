"""The benchmarks: how bench_study_model.py --compare judges two commits, and conv_parts.py on a tiny model.

The benchmarks themselves need minutes and a quiet machine, so they are not timed here; the
judgement of the two sides' final weights is a plain function, tested on small files, and
conv_parts.py runs once at a tiny size to show that every part it times still exists.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
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


def test_conv_parts_times_every_part_of_the_four_convolutions(tmp_path):
    """A tiny run on NumPy: four conv rows, each part timed, and the four training-step variants."""
    report = tmp_path / "parts.json"
    script = SCRIPT.parent / "conv_parts.py"
    command = [sys.executable, str(script), "--image-size", "48", "--batch-size", "2", "--repeats", "1"]
    subprocess.run([*command, "--json", str(report)], check=True, capture_output=True, timeout=120)
    parts = json.loads(report.read_text())
    assert [row["layer"] for row in parts["conv_layers"]] == [
        "conv2d (Conv2D)",
        "conv2d_1 (Conv2D)",
        "conv2d_2 (Conv2D)",
        "conv2d_3 (Conv2D)",
    ]
    first, *others = parts["conv_layers"]
    assert first["input_gradient_s"] is None  # a model's first layer computes no dL/dx
    assert all(row["input_gradient_s"] > 0 for row in others)
    for row in parts["conv_layers"]:
        assert row["chunks"] == 1 and row["forward_s"] > 0 and row["bias_ones_matmul_s"] > 0
    assert len(parts["training_step"]) == 4 and all(row["train_step_s"] > 0 for row in parts["training_step"])
