"""examples/long_run.sh, the launcher of the runs that outlive a session: its wrong inputs cost nothing.

Freezing a commit installs packages (a minute or more), so ``setup`` and a whole queue are not
run here; these tests give the launcher wrong inputs, and a run folder made by hand, and check
that it refuses them in one line, exit status 2, leaving the runs folder as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

LAUNCHER = Path(__file__).resolve().parents[1] / "examples" / "long_run.sh"
COMMIT = "0" * 40


def launch(runs: Path, *argv: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "RUNS_DIR": str(runs), "DATA": str(runs / "data")}
    return subprocess.run(["bash", str(LAUNCHER), *argv], capture_output=True, text=True, env=environment)


@pytest.fixture
def runs(tmp_path) -> Path:
    """A runs folder with one frozen commit (a stand-in: its venv folders exist, empty)."""
    folder = tmp_path / "runs"
    for name in (f"code-{COMMIT}", f"venv-{COMMIT}", f"venv-keras-{COMMIT}"):
        (folder / name).mkdir(parents=True)
    (folder / "frozen-last").write_text(COMMIT + "\n")
    return folder


def snapshot(folder: Path) -> dict[str, int]:
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*")}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["add", "s0", "torch", "128", "15", "0"], "FRAMEWORK torch: allowed: minicnn, keras"),
        (["add", "s0", "minicnn", "128", "fifteen", "0"], "whole numbers, got fifteen"),
        (["add", "../s0", "minicnn", "128", "15", "0"], "a run name is letters, digits"),
        (["add", "k0", "keras", "128", "15", "0", "m0"], "SPLIT_FROM m0 is not a queued run"),
        (["setup", "no-such-commit"], "setup no-such-commit: not a commit here"),
        (["start"], "nothing queued in"),
    ],
)
def test_a_wrong_input_gets_one_line_and_changes_nothing(runs, argv, message):
    before = snapshot(runs)
    result = launch(runs, *argv)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and message in result.stderr
    assert snapshot(runs) == before


def test_usage_lists_the_commands(runs):
    result = launch(runs, "frobnicate")
    assert result.returncode == 2
    for command in ("setup COMMIT", "add NAME FRAMEWORK IMAGE_SIZE EPOCHS SEED", "start", "pause", "status"):
        assert command in result.stderr


def test_add_records_the_settings_and_the_frozen_commit_and_queues_the_run(runs):
    assert launch(runs, "add", "minicnn-s0", "minicnn", "128", "15", "0").returncode == 0
    result = launch(runs, "add", "keras-s0", "keras", "128", "15", "0", "minicnn-s0")
    assert result.returncode == 0, result.stderr
    settings = json.loads((runs / "keras-s0" / "run-settings.json").read_text())
    assert settings | {"data": None} == settings | {
        "framework": "keras",
        "commit": COMMIT,
        "image_size": 128,
        "epochs": 15,
        "seed": 0,
        "batch_size": 32,
        "learning_rate": 0.0001,
        "val_split": 0.2,
        "threshold": 0.5,
        "record_test_each_epoch": True,
        "split_from": "minicnn-s0",
        "data": None,
    }
    assert (runs / "queue").read_text() == "minicnn-s0\nkeras-s0\n"
    # A run keeps its folder: the same name again is refused.
    again = launch(runs, "add", "minicnn-s0", "minicnn", "128", "15", "0")
    assert again.returncode == 2 and "exists already" in again.stderr
    status = launch(runs, "status")
    assert status.returncode == 0 and "minicnn-s0" in status.stdout and "queued" in status.stdout


def test_a_keras_run_needs_the_frozen_commits_keras_venv(runs):
    (runs / f"venv-keras-{COMMIT}").rmdir()
    result = launch(runs, "add", "keras-s0", "keras", "128", "15", "0")
    assert result.returncode == 2 and f"setup {COMMIT} --keras" in result.stderr
