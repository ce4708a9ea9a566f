"""benchmarks/epoch_time.py: the plain epoch beside its median step, and the profiled epoch's parts.

Tiny settings on NumPy (a few 64 x 64 images of the bundled sample): this checks what is measured
and written, never how long anything took.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from minicnn import backend
from minicnn.data import sample_path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import epoch_time  # noqa: E402

TINY = ["--image-size", "64", "--batch-size", "4", "--steps", "1", "--median-steps", "1"]
PARTS = ["batch_assembly", "augmentation", "host_to_device", "steps", "validation", "python_overhead", "epoch"]


@pytest.fixture(autouse=True)
def _cache_and_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "cache"))
    previous = backend.backend_name(), backend.tf32_enabled()
    yield
    backend.set_backend(previous[0])
    backend.set_tf32(previous[1])


def run(tmp_path: Path, *options: str) -> dict:
    out = tmp_path / "epoch.json"
    assert epoch_time.main(["--data", str(sample_path()), *TINY, "--json", str(out), *options]) == 0
    return json.loads(out.read_text())


def test_the_plain_epoch_and_the_median_step_come_from_one_call(tmp_path, capsys):
    report = run(tmp_path, "--variants", "baseline,device-both")
    assert report["settings"] | {"image_size": 64, "steps": 1} == report["settings"]
    assert report["settings"]["backend"] == "numpy" and report["settings"]["tf32"] is False
    baseline, both = report["results"]
    assert (baseline["augmentation"], baseline["dropout_masks"]) == ("host", "host")  # NumPy's default: the host
    assert (both["augmentation"], both["dropout_masks"]) == ("device", "device")
    for result in (baseline, both):
        assert result["steps_per_epoch"] == 1 and result["validation_images"] == 1
        assert result["epoch_s"] > 0 and result["median_step_s"] > 0
        assert result["ratio"] == pytest.approx(result["epoch_s"] / result["median_step_s"])
        assert "profile_s" not in result
    printed = capsys.readouterr().out
    assert "epoch / (1 steps x median step) = " in printed and "the target 1.2" in printed


def test_the_profile_splits_the_epoch_into_parts_that_add_up(tmp_path, capsys):
    report = run(tmp_path, "--profile", "--variants", "baseline,device-augment")
    assert report["settings"]["profile"] is True
    for result in report["results"]:
        parts = result["profile_s"]
        assert list(parts) == PARTS and "epoch_s" not in result
        assert all(parts[name] >= 0 for name in PARTS if name != "python_overhead")
        assert sum(parts[name] for name in PARTS[:-1]) == pytest.approx(parts["epoch"])
        assert parts["steps"] > 0 and parts["validation"] > 0
    assert [result["augmentation"] for result in report["results"]] == ["host", "device"]
    printed = capsys.readouterr().out
    for line in ("batch assembly", "augmentation", "host to device", "python overhead"):
        assert line in printed


def test_tf32_is_recorded_where_it_acts_only(tmp_path):
    """--tf32 is chosen before the backend; on NumPy it changes nothing and the settings say so."""
    report = run(tmp_path, "--tf32")
    assert backend.tf32_enabled() and report["settings"]["tf32"] is False


@pytest.mark.parametrize(
    ("options", "message"),
    [(["--variants", "fastest"], "unknown ['fastest']"), (["--steps", "-1"], "--steps must be at least 0")],
)
def test_bad_options_are_refused(options, message, capsys):
    with pytest.raises(SystemExit):
        epoch_time.parse_arguments(options)
    assert message in capsys.readouterr().err
