"""examples/long_run.sh, the launcher of the runs that outlive a session: its wrong inputs cost nothing.

Freezing a commit installs packages (a minute or more), so ``setup`` and a whole queue are not
run here; these tests give the launcher wrong inputs, and a run folder made by hand, and check
that it refuses them in one line, exit status 2, leaving the runs folder as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LAUNCHER = Path(__file__).resolve().parents[2] / "examples" / "long_run.sh"
COMMIT = "0" * 40


def launch(runs: Path, *argv: str, **variables: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "RUNS_DIR": str(runs), "DATA": str(runs / "data"), **variables}
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
    for command in (
        "setup COMMIT",
        "add NAME FRAMEWORK IMAGE_SIZE EPOCHS SEED [SPLIT_FROM] [-- TRAIN_OPTIONS...]",
        "start",
        "pause",
        "status",
        "command NAME",
    ):
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


# ---------------------------------------------------------------------------
# Train options after "--": recorded, checked, given on every start and resume
# ---------------------------------------------------------------------------


def command(runs: Path, name: str) -> list[str]:
    result = launch(runs, "command", name)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--classes=3"], "write --classes 3, not --classes=3"),
        (["--out", "elsewhere"], "train option --out: allowed: --classes --optimizer"),
        (["--epochs", "3"], "the launcher gives --data, --out, --image-size, --epochs"),
        (["--learning-rate"], "train option --learning-rate needs a value"),
        (["--learning-rate", "--no-augment"], "train option --learning-rate needs a value"),
        (["--optimizer", "rms prop"], "--optimizer rms prop: a value is letters, digits"),
        (["--learning-rate", "fast"], "--learning-rate fast: not a number"),
    ],
)
def test_a_wrong_train_option_gets_one_line_and_changes_nothing(runs, options, message):
    before = snapshot(runs)
    result = launch(runs, "add", "m0", "minicnn", "128", "15", "0", "--", *options)
    assert result.returncode == 2 and result.stderr.startswith("error: add m0: ") and message in result.stderr
    assert snapshot(runs) == before


def test_a_keras_run_takes_no_train_options(runs):
    before = snapshot(runs)
    result = launch(runs, "add", "k0", "keras", "128", "15", "0", "--", "--classes", "3")
    assert result.returncode == 2 and "train options (--classes 3) are for a minicnn run" in result.stderr
    assert snapshot(runs) == before


def test_train_options_are_recorded_with_the_settings_they_change_and_given_to_the_run(runs):
    assert launch(runs, "add", "minicnn-s0", "minicnn", "128", "15", "0").returncode == 0
    result = launch(runs, "add", "three-s0", "minicnn", "128", "15", "0", "--", "--classes", "3")
    assert result.returncode == 0, result.stderr
    result = launch(runs, "add", "rms-s0", "minicnn", "128", "15", "0", "minicnn-s0", "--", "--optimizer", "rmsprop")
    assert result.returncode == 0, result.stderr
    three = json.loads((runs / "three-s0" / "run-settings.json").read_text())
    assert three["train_options"] == ["--classes", "3"] and three["classes"] == 3 and three["threshold"] is None
    assert three["optimizer"] == "adam" and three["split_from"] is None
    rms = json.loads((runs / "rms-s0" / "run-settings.json").read_text())
    assert rms["train_options"] == ["--optimizer", "rmsprop"] and rms["optimizer"] == "rmsprop"
    assert rms["classes"] == 2 and rms["threshold"] == 0.5 and rms["split_from"] == "minicnn-s0"
    assert command(runs, "three-s0")[-2:] == ["--classes", "3"]
    assert command(runs, "rms-s0")[-4:] == [
        "--split-file",
        str(runs / "minicnn-s0" / "split.csv"),
        "--optimizer",
        "rmsprop",
    ]
    assert command(runs, "minicnn-s0")[-1] == "--record-test-each-epoch"
    # A 3-class run cannot train on a binary run's split.csv (other labels, two images fewer).
    result = launch(runs, "add", "three-s1", "minicnn", "128", "15", "0", "minicnn-s0", "--", "--classes", "3")
    assert result.returncode == 2 and "SPLIT_FROM minicnn-s0 has --classes 2, this run --classes 3" in result.stderr
    assert not (runs / "three-s1").exists()


def test_a_run_settings_json_from_before_train_options_gets_the_same_command(runs):
    """The runs queued before train options existed (one is training now, elsewhere) resume unchanged."""
    run = runs / "minicnn-s0"
    run.mkdir()
    (run / "run-settings.json").write_text(
        '{"name": "minicnn-s0", "framework": "minicnn", "commit": "' + COMMIT + '",\n'
        ' "image_size": 128, "epochs": 15, "seed": 0, "batch_size": 32, "learning_rate": 0.0001,\n'
        ' "val_split": 0.2, "augment": true, "backend": "numpy", "class_weight": null, "threshold": 0.5,\n'
        ' "record_test_each_epoch": true, "split_from": null,\n'
        ' "data": "/data", "environment": {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "-1"}}\n'
    )
    (runs / "queue").write_text("minicnn-s0\n")
    assert command(runs, "minicnn-s0") == [
        str(runs / f"venv-{COMMIT}" / "bin" / "python"),
        str(runs / f"code-{COMMIT}" / "examples" / "train_xray.py"),
        *("--data", "/data", "--out", str(run), "--image-size", "128", "--epochs", "15", "--seed", "0"),
        "--record-test-each-epoch",
    ]
    status = launch(runs, "status")
    assert status.returncode == 0 and "minicnn-s0" in status.stdout


def test_a_worker_running_an_older_copy_of_the_script_gets_no_run_with_train_options(runs):
    """It would run it without them: add says to pause and start it again (which copies this script)."""
    (runs / "worker.pid").write_text(f"{os.getpid()}\n")  # a process that is alive: this one
    (runs / "worker.sh").write_text("# a copy from before train options existed\n")
    before = snapshot(runs)
    result = launch(runs, "add", "three-s0", "minicnn", "128", "15", "0", "--", "--classes", "3")
    assert result.returncode == 2 and "is an older copy of this script" in result.stderr and "pause" in result.stderr
    assert snapshot(runs) == before
    assert launch(runs, "add", "minicnn-s0", "minicnn", "128", "15", "0").returncode == 0  # no options: it can


@pytest.fixture
def runs_with_this_checkout(runs, tmp_path):
    """The runs folder, its frozen code this checkout and its venv's python this interpreter (editable minicnn)."""
    (runs / f"code-{COMMIT}").rmdir()
    (runs / f"code-{COMMIT}").symlink_to(LAUNCHER.parents[1])
    python = runs / f"venv-{COMMIT}" / "bin" / "python"
    python.parent.mkdir()
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # a symlink would lose the venv
    python.chmod(0o755)
    return runs


def test_the_frozen_train_xray_checks_the_options_before_the_run_is_queued(runs_with_this_checkout):
    runs = runs_with_this_checkout
    before = snapshot(runs)
    result = launch(runs, "add", "three-s0", "minicnn", "128", "15", "0", "--", "--classes", "3", "--threshold", "0.3")
    assert result.returncode == 2 and "--threshold 0.3: with --classes 3" in result.stderr
    assert "refused by the frozen train_xray.py" in result.stderr
    assert snapshot(runs) == before
    result = launch(runs, "add", "three-s0", "minicnn", "128", "15", "0", "--", "--classes", "3")
    assert result.returncode == 0, result.stderr


def test_the_worker_trains_and_resumes_a_run_with_train_options(runs_with_this_checkout, xray_mini_dir, tmp_path):
    """End to end at 46 x 46 on the sample: a 3-class RMSprop run, one epoch, then resumed for a second."""
    runs = runs_with_this_checkout
    environment = {"MINICNN_CACHE": str(tmp_path / "cache"), "DATA": str(xray_mini_dir)}
    options = ["--", "--classes", "3", "--optimizer", "rmsprop", "--batch-size", "16"]
    assert launch(runs, "add", "three", "minicnn", "46", "1", "0", *options, **environment).returncode == 0
    run = runs / "three"
    worker = launch(runs, "worker", **environment)
    assert worker.returncode == 0 and (run / "finished").is_file(), (run / "train.err").read_text()
    settings = json.loads((run / "settings.json").read_text())
    assert settings["classes"] == 3 and settings["optimizer"] == "rmsprop" and settings["batch_size"] == 16
    # One epoch more: the worker resumes the run, with its options (a resume without them is refused).
    (run / "finished").unlink()
    run_settings = json.loads((run / "run-settings.json").read_text())
    (run / "run-settings.json").write_text(json.dumps({**run_settings, "epochs": 2}))
    worker = launch(runs, "worker", **environment)
    assert worker.returncode == 0 and (run / "finished").is_file(), (run / "train.err").read_text()
    assert "resuming from" in (run / "train.log").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["weights"]["epochs_done"] == 2 and len(metrics["confusion_matrix"]["matrix"]) == 3
    starts = [json.loads(line) for line in (run / "stretches.jsonl").read_text().splitlines()]
    assert [line["resume"] for line in starts if line["event"] == "start"] == [False, True]
