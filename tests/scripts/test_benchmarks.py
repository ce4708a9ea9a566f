"""The benchmarks: bench_study_model.py's parts (the breakdown, --compare and its judgement) and conv_parts.py.

The benchmarks themselves need minutes and a quiet machine, so no timing is judged here. What
is tested: the per-layer breakdown runs the library's own ``train_on_batch`` (the same weights
as without the stopwatches, and the objects as they were afterwards); nothing in the package
imports minicnn before ``--compare`` has chosen whose minicnn to import; ``--compare`` against
a commit from before the package (the one-file benchmark) still runs and finds the same weights;
the judgement of two sides' final weights on small files; and conv_parts.py once at a tiny size.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
from minicnn import losses, optimizers
from minicnn.models import study_cnn

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "bench_study_model.py"

# The last commit whose benchmark was one file (992 lines), before benchmarks/study_bench/.
ONE_FILE_COMMIT = "e3f1834"


@pytest.fixture(scope="module")
def bench():
    """The command module; loading it puts benchmarks/ on sys.path, so study_bench imports too."""
    spec = importlib.util.spec_from_file_location("bench_study_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def compare_revision(bench):
    from study_bench import compare_revision

    return compare_revision


@pytest.fixture(scope="module")
def layer_breakdown(bench):
    from study_bench import layer_breakdown

    return layer_breakdown


def save(path: Path, *arrays: np.ndarray) -> Path:
    np.savez(path, *arrays)
    return path


def test_equal_weights_are_reported_bit_for_bit(compare_revision, tmp_path):
    kernel, bias = np.arange(6, dtype=np.float32).reshape(2, 3), np.array([0.5, -0.0], np.float32)
    first, second = save(tmp_path / "a.npz", kernel, bias), save(tmp_path / "b.npz", kernel, bias)
    result = compare_revision.weight_difference(first, second)
    assert result == {"bit_for_bit": True, "max_abs": 0.0, "max_relative": 0.0, "array": None}


def test_the_worst_array_is_judged_on_its_own_scale(compare_revision, tmp_path):
    """A 1e-3 change of a bias whose largest value is 0.01 (10 %) outweighs a 1e-2 change of a kernel up to 100."""
    kernel, bias = np.full((2, 3), 100.0, np.float32), np.array([0.01, 0.002], np.float32)
    moved_kernel, moved_bias = kernel.copy(), bias.copy()
    moved_kernel[1, 2] += 0.01
    moved_bias[0] += 0.001
    result = compare_revision.weight_difference(
        save(tmp_path / "a.npz", kernel, bias), save(tmp_path / "b.npz", moved_kernel, moved_bias)
    )
    assert not result["bit_for_bit"]
    assert result["array"] == "weight array 1 ((2,))"
    assert result["max_abs"] == pytest.approx(0.001, rel=1e-4)
    assert result["max_relative"] == pytest.approx(0.1, rel=1e-4)


def test_models_of_different_shapes_are_an_error(compare_revision, tmp_path):
    first = save(tmp_path / "a.npz", np.zeros((2, 3), np.float32))
    with pytest.raises(SystemExit, match="different weights"):
        compare_revision.weight_difference(first, save(tmp_path / "b.npz", np.zeros((3, 2), np.float32)))
    with pytest.raises(SystemExit, match="different weights"):
        compare_revision.weight_difference(first, save(tmp_path / "c.npz", np.zeros((2, 3)), np.zeros(1)))


def test_no_part_of_the_benchmark_imports_minicnn_before_compare_chooses_which():
    """A child of --compare puts the exported commit first on sys.path and then imports minicnn:
    a minicnn imported earlier, by the script or its package, would make both sides this tree's."""
    modules = [path.stem for path in (SCRIPT.parent / "study_bench").glob("*.py") if path.stem != "__init__"]
    code = (
        f"import importlib, runpy, sys; sys.argv = [{str(SCRIPT)!r}, '--help']\n"
        f"sys.path.insert(0, {str(SCRIPT.parent)!r})\n"
        f"for name in {modules!r}: importlib.import_module('study_bench.' + name)\n"
        f"spec = importlib.util.spec_from_file_location('bench', {str(SCRIPT)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'minicnn'))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert len(modules) >= 8
    assert completed.stdout.strip() == "[]"


def compiled_study_model(image_size: int = 46) -> mc.Sequential:
    model = study_cnn(image_size, seed=0)
    model.compile(optimizer=optimizers.Adam(learning_rate=1e-4), loss=losses.BinaryCrossentropy())
    return model


def test_the_breakdown_times_the_librarys_own_training_step(layer_breakdown, monkeypatch):
    """Every layer gets a forward and a backward time from inside train_on_batch, which runs as without
    the stopwatches: the same weights as a twin trained by plain train_on_batch calls, the same calls."""
    rng = np.random.default_rng(0)
    x = rng.random((2, 46, 46, 1), dtype=np.float32)
    y = np.array([0.0, 1.0], np.float32)
    timed, plain = compiled_study_model(), compiled_study_model()
    calls = []
    real_train_on_batch = mc.Sequential.train_on_batch

    def counted(self, *args, **kwargs):
        calls.append(self)
        return real_train_on_batch(self, *args, **kwargs)

    monkeypatch.setattr(mc.Sequential, "train_on_batch", counted)
    breakdown = layer_breakdown.minicnn_layer_breakdown(timed, x, y, warmup=1, steps=2, sync=lambda: None)
    assert calls == [timed] * 3  # warm-up and timed repetitions, each one whole library step
    for _ in range(3):
        plain.train_on_batch(x, y)
    for a, b in zip(timed.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the same process and machine: bit for bit

    rows = breakdown["rows"]
    assert [row["layer"] for row in rows[: len(timed.layers)]] == [layer.describe() for layer in timed.layers]
    for row in rows[: len(timed.layers)]:
        assert row["forward_s"] > 0 and row["backward_s"] > 0  # the last layer's is backward_from_dz
    assert [row["layer"] for row in rows[len(timed.layers) :]] == [
        "loss (BCE + its gradient)",
        "optimizer update (Adam)",
        "rest of train_on_batch (checks, copy, metrics)",
    ]
    assert rows[-3]["forward_s"] > 0 and rows[-2]["other_s"] > 0
    assert breakdown["train_on_batch_s"] > 0 and "fused sigmoid + BCE" in breakdown["upstream_gradient"]
    # Afterwards every object is as it was: the class's methods show through again.
    for owner in [*timed.layers, timed.loss, timed.optimizer]:
        assert not {"forward", "backward", "backward_from_dz", "step", "gradient_before_activation"} & set(vars(owner))


def test_a_timed_call_inside_another_counts_once(layer_breakdown):
    class Layerish:
        def backward(self, gradient):
            return gradient * 2

        def backward_from_dz(self, gradient):
            return self.backward(gradient) + 1  # calls the (timed) backward: its time is already counted

    owner, watches = Layerish(), layer_breakdown.Stopwatches(sync=lambda: None)
    targets = [(owner, "backward", "b"), (owner, "backward_from_dz", "b"), (owner, "missing", "m")]
    with layer_breakdown.stopwatches_on(targets, watches):
        assert owner.backward_from_dz(3) == 7
        assert set(vars(owner)) == {"backward", "backward_from_dz"}
    seconds = watches.take_repetition()
    assert list(seconds) == ["b"] and seconds["b"] > 0
    assert vars(owner) == {} and owner.backward(1) == 2


def test_the_command_runs_minicnn_with_its_breakdown_at_a_tiny_size(tmp_path):
    """The whole command, parent and child: one minicnn row and its breakdown, saved as JSON."""
    report = tmp_path / "bench.json"
    command = [sys.executable, str(SCRIPT), "--frameworks", "minicnn", "--image-size", "46", "--batch-size", "2"]
    command += ["--steps", "1", "--warmup", "0", "--threads", "1", "--json", str(report)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    assert "Per-layer breakdown of minicnn: model.train_on_batch" in completed.stdout
    payload = json.loads(report.read_text())
    (result,) = payload["results"]
    assert result["framework"] == "minicnn" and result["status"] == "ok" and result["params"] == 306_817
    assert {row["layer"] for row in result["breakdown"]["rows"]} >= {"conv2d (Conv2D)", "dense_1 (Dense)"}
    assert payload["settings"]["image_size"] == 46 and payload["settings"]["no_breakdown"] is False


def commit_is_here(commit: str) -> bool:
    found = subprocess.run(["git", "-C", str(REPO_ROOT), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True)
    return found.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not commit_is_here(ONE_FILE_COMMIT), reason=f"commit {ONE_FILE_COMMIT} is not in this clone")
def test_compare_against_a_commit_from_before_the_package(tmp_path):
    """--compare exports the one-file commit and times its minicnn with this tree's benchmark: both sides
    run (each from its own minicnn) and, on this one machine, train to the same weights bit for bit."""
    report = tmp_path / "compare.json"
    command = [sys.executable, str(SCRIPT), "--compare", ONE_FILE_COMMIT, "--image-size", "46", "--batch-size", "2"]
    command += ["--steps", "1", "--warmup", "0", "--rounds", "5", "--threads", "1", "--json", str(report)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    assert "equal bit for bit" in completed.stdout
    payload = json.loads(report.read_text())
    this_tree, other = payload["compare"]
    assert Path(this_tree["minicnn_file"]).resolve() == (REPO_ROOT / "minicnn" / "__init__.py").resolve()
    assert other["commit"].startswith(ONE_FILE_COMMIT) and "minicnn-compare-" in other["minicnn_file"]
    assert len(other["rounds"]) == 5 and payload["weight_difference"]["bit_for_bit"]


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
