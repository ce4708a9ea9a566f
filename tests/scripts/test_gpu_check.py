"""benchmarks/gpu_check.sh: its dry run, so the script is known to work before a GPU ever sees it.

The two calls prepared for a lent machine are ``--stage breakdown`` and ``--stage study``; the
dry run without ``--stage`` runs both, the breakdown first, whose defaults.env the study then reads.
The dry run runs each stage's commands as the GPU machine would, with NumPy instead of CuPy and
tiny sizes, and must leave in $OUT what a lent GPU machine can bring back: at most 8 files, no
folders. (tests/spec/test_im2col.py and tests/spec/test_backend.py are the checks dry run's own test selection;
this file is never part of it.)
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from minicnn.data import sample_path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "gpu_check.sh"
MAX_FILES = 8  # what a lent GPU machine brings back from $OUT

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the script needs bash")


def run_script(*arguments: str, tmp_path: Path, out: Path | None = None) -> subprocess.CompletedProcess:
    """Run gpu_check.sh from the repository root with this Python, caches and temporary files in tmp_path,
    and $OUT set to ``out`` (unset when None)."""
    env = {key: value for key, value in os.environ.items() if key != "OUT"}
    env.update(PYTHON=sys.executable, MINICNN_CACHE=str(tmp_path / "cache"), TMPDIR=str(tmp_path))
    if out is not None:
        env["OUT"] = str(out)
    return subprocess.run(
        ["bash", str(SCRIPT), *arguments], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def files_in(folder: Path) -> set[str]:
    entries = list(folder.iterdir())
    assert all(entry.is_file() for entry in entries), f"folders in $OUT do not come back: {entries}"
    assert len(entries) <= MAX_FILES
    return {entry.name for entry in entries}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> Path:
    """The dry run of both stages (no --stage), as the issue's acceptance command runs it, with $OUT
    set; each stage writes into its own folder below it. Returns $OUT."""
    tmp_path = tmp_path_factory.mktemp("gpu_check")
    out = tmp_path / "out"
    result = run_script("--dry-run", "--data", str(sample_path()), tmp_path=tmp_path, out=out)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "dry run of both stages: OK" in result.stdout
    assert sorted(path.name for path in out.iterdir()) == ["breakdown", "study"]
    # The study's training folder (checkpoints) stayed outside $OUT and is gone, and so are the
    # breakdown's separate epoch figures; its defaults are left beside $OUT for the study stage.
    assert not list(tmp_path.glob("minicnn-gpu-study.*")) and not list(tmp_path.glob("minicnn-gpu-epochs.*"))
    assert (tmp_path / "minicnn-gpu-defaults.env").read_text() == (out / "breakdown" / "defaults.env").read_text()
    return out


@pytest.mark.slow
def test_breakdown_stage_dry_run(dry_run):
    """Call 1: GPU cases, the benchmark, the epoch taken apart and every option side by side, and the
    rule's choice in defaults.env."""
    out = dry_run / "breakdown"
    assert files_in(out) == {
        "breakdown.log",
        "environment.txt",
        "tests-gpu.xml",
        "bench.json",
        "epoch_time.json",
        "defaults.env",
    }
    log = (out / "breakdown.log").read_text()
    assert "dry run: the install step is not run" in log and "pip install --no-index --no-deps" in log
    assert "GPU test cases: 0 passed, 0 failed, 0 errors, 6 skipped" in log  # augmentation, dropout: CuPy cases
    assert "FAILED" not in log and log.rstrip().endswith("OK")
    epochs = json.loads((out / "epoch_time.json").read_text())
    assert [row["variant"] for row in epochs["profile"]["results"]] == ["host-augment", "baseline"]
    assert all("profile_s" in row for row in epochs["profile"]["results"])
    assert [row["variant"] for row in epochs["plain"]["results"]] == ["baseline", "host-augment", "device-dropout"]
    assert all(row["ratio"] > 0 for row in epochs["plain"]["results"])
    assert epochs["tf32"]["results"][0]["variant"] == "baseline"
    assert epochs["plain"]["settings"]["tf32"] is False and epochs["plain"]["settings"]["image_size"] == 64
    settings = dict(line.split("  #")[0].split("=") for line in (out / "defaults.env").read_text().splitlines())
    assert set(settings) == {"AUGMENT", "DROPOUT_MASKS", "TF32"}
    # Which values the rule picks depends on timings (on NumPy, on noise), which no test asserts.
    assert settings["AUGMENT"] in ("default", "host")
    assert settings["DROPOUT_MASKS"] in ("host", "device") and settings["TF32"] in ("0", "1")
    bench = json.loads((out / "bench.json").read_text())
    assert bench["settings"]["image_size"] == 64 and bench["settings"]["steps"] == 1


@pytest.mark.slow
def test_study_stage_dry_run(dry_run):
    out = dry_run / "study"
    assert files_in(out) == {
        "study.log",
        "environment.txt",
        "history.csv",
        "metrics.json",
        "curves.png",
        "extras.tar.gz",
    }
    with open(out / "history.csv", newline="") as file:
        assert len(list(csv.DictReader(file))) == 1  # one epoch
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run"]["epochs_done"] == 1 and metrics["run"]["partial"] is False
    with tarfile.open(out / "extras.tar.gz") as archive:
        names = archive.getnames()
    assert "confusion_matrix.png" in names and not any(name.endswith(".npz") for name in names)
    log = (out / "study.log").read_text()
    assert "--backend numpy" in log and "--image-size 64" in log and "--time-budget 120" in log
    assert "epochs done 1 of 1, partial: False" in log
    assert "settings from " in log and "minicnn-gpu-defaults.env: AUGMENT=" in log  # the breakdown's


def test_a_failed_stage_still_leaves_its_log_in_a_temporary_folder_it_names(tmp_path):
    """Without $OUT or --out the results go to a new temporary folder, and the script says which. A
    failing step does not stop the stage: the log and the environment report are there to read."""
    data = tmp_path / "empty"
    (data / "train").mkdir(parents=True)
    (data / "test").mkdir()
    result = run_script("--data", str(data), "--stage", "study", "--dry-run", tmp_path=tmp_path)
    assert result.returncode == 1
    (out,) = tmp_path.glob("minicnn-gpu-check.*")
    assert f"$OUT is not set; writing the results into {out}" in result.stderr
    assert files_in(out) == {"study.log", "environment.txt"}
    assert re.search(r"FAILED: training \(exit [1-9]\d*\) history.csv missing", (out / "study.log").read_text())
    assert not list(tmp_path.glob("minicnn-gpu-study.*"))


def test_help_and_a_data_folder_of_the_wrong_layout(tmp_path):
    result = run_script("--help", tmp_path=tmp_path)
    assert result.returncode == 0 and "usage:" in result.stdout
    result = run_script("--data", str(tmp_path), "--stage", "study", tmp_path=tmp_path)
    assert result.returncode == 2 and "expected train/ and test/" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--data", "."], "--stage breakdown|study|checks is required"),
        (["--stage", "checks"], "--data DIR is required"),
        (["--stage", "train", "--data", "."], "--stage must be breakdown, study or checks"),
        (["--stage", "breakdown", "--data", str(sample_path()), "--time-budget", "60"], "is for --stage study"),
        (["--stage", "breakdown", "--data", str(sample_path()), "--defaults", "x.env"], "is for --stage study"),
        (["--stage", "study", "--data", str(sample_path()), "--defaults", "no/such.env"], "no such file"),
        (["--stage", "checks", "--data", "no/such/folder"], "no such folder"),
        (["--stage", "checks", "--data", ".", "--frobnicate"], "unknown argument '--frobnicate'"),
        (["--stage", "study", "--data", str(sample_path()), "--time-budget", "0"], "at least 1, not '0'"),
        (["--stage", "checks", "--data", str(sample_path()), "--time-budget", "60"], "is for --stage study"),
    ],
)
def test_usage_errors_say_what_is_wrong(arguments, message, tmp_path):
    result = run_script(*arguments, tmp_path=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
