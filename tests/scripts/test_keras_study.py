"""benchmarks/keras_study.py, the study's recipe in Keras: what it checks and writes needs no TensorFlow.

Its options, the data folder and the split file are checked before TensorFlow is imported, so
those checks run in every CI run. Training itself runs only where Keras is installed (never a
dependency of minicnn: benchmarks/README.md says how to make its environment), and is skipped
cleanly elsewhere.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import train_xray

import minicnn as mc
from minicnn.data.xray import stratified_split

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "keras_study.py"


@pytest.fixture(scope="module")
def keras_study():
    spec = importlib.util.spec_from_file_location("keras_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "0"], "--epochs 0: must be a whole number of at least 1"),
        (["--image-size", "30"], "--image-size 30: must be a whole number from 46"),
        (["--learning-rate", "nan"], "--learning-rate nan: must be a number greater than 0"),
        (["--split-file", "no-such.csv"], "--split-file no-such.csv: no such file"),
        (["--resume"], "--resume: no checkpoint.keras and keras_run.json in"),
    ],
)
def test_a_wrong_option_gets_one_line_and_exit_2_before_tensorflow_is_imported(
    argv, message, xray_mini_dir, tmp_path, monkeypatch, keras_study
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "cache"))
    modules_before = set(sys.modules)
    with pytest.raises(SystemExit) as exit_info:
        keras_study.main(["--data", str(xray_mini_dir), "--out", str(tmp_path / "out"), *argv])
    assert exit_info.value.code == 2
    assert not {"tensorflow", "keras"} & (set(sys.modules) - modules_before)
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_the_command_line_error_is_one_line(tmp_path):
    result = run_script("--out", str(tmp_path / "out"), "--epochs", "ten", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr == "error: --epochs ten: must be a whole number of at least 1\n"


@pytest.fixture(scope="module")
def training_images(xray_mini_dir):
    return mc.data.load_split(xray_mini_dir, "train", image_size=64, cache_dir=False, progress=False)


def test_a_split_file_gives_back_the_split_it_was_written_from(keras_study, training_images, tmp_path):
    train_index, val_index = stratified_split(training_images.labels, 0.2, seed=3)
    train_xray.write_split(tmp_path / "split.csv", training_images, train_index, val_index)
    read_train, read_validation = keras_study.read_split_file(tmp_path / "split.csv", training_images)
    assert read_train.tolist() == train_index.tolist() and read_validation.tolist() == val_index.tolist()


def edited_split(path: Path, training_images, edit) -> Path:
    train_index, val_index = stratified_split(training_images.labels, 0.2, seed=0)
    train_xray.write_split(path, training_images, train_index, val_index)
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    edit(rows)
    with open(path, "w", newline="") as file:
        csv.writer(file).writerows(rows)
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda rows: rows.pop(), "names 47 images, the training split has 48"),
        (lambda rows: rows[1].__setitem__(0, "other.jpeg"), "not in the data: ['other.jpeg']"),
        (lambda rows: rows[1].__setitem__(1, str(1 - int(rows[1][1]))), "has label"),
        (lambda rows: rows[1].__setitem__(2, "test"), "has subset 'test'; allowed: train, validation"),
        (lambda rows: rows[0].__setitem__(2, "side"), "has the columns ['file', 'label', 'side']"),
    ],
)
def test_a_split_file_for_other_data_is_refused_naming_what_differs(
    edit, message, keras_study, training_images, tmp_path, capsys
):
    path = edited_split(tmp_path / "split.csv", training_images, edit)
    with pytest.raises(SystemExit) as exit_info:
        keras_study.read_split_file(path, training_images)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: --split-file {path}: ") and message in error


def test_keras_builds_the_studys_network_with_its_parameter_count(keras_study):
    keras = pytest.importorskip("keras", reason="Keras is not installed (it is never a minicnn dependency)")
    assert keras_study.build_keras_model(keras, 300).count_params() == 17_018_497


@pytest.mark.slow
def test_a_keras_run_writes_what_a_minicnn_run_writes_and_resumes(xray_mini_dir, tmp_path, monkeypatch):
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed (it is never a minicnn dependency)")
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "cache"))
    common = ["--data", str(xray_mini_dir), "--image-size", "64", "--seed", "1", "--record-test-each-epoch"]
    minicnn_out, keras_out = tmp_path / "minicnn", tmp_path / "keras"
    assert train_xray.main([*common, "--out", str(minicnn_out), "--epochs", "1", "--batch-size", "32"]) == 0
    split = ["--split-file", str(minicnn_out / "split.csv")]
    first = run_script(*common, *split, "--out", str(keras_out), "--epochs", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    resumed = run_script(*common, *split, "--out", str(keras_out), "--epochs", "2", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "1 epochs done (not bit-exact)" in resumed.stdout
    assert (keras_out / "split.csv").read_text() == (minicnn_out / "split.csv").read_text()
    for name in ("history.csv", "test_history.csv"):
        with open(minicnn_out / name) as ours, open(keras_out / name) as theirs:
            assert next(csv.reader(theirs)) == next(csv.reader(ours)), name  # the same columns
        with open(keras_out / name) as theirs:
            assert [row["epoch"] for row in csv.DictReader(theirs)] == ["1", "2"]
    ours, theirs = (json.loads((out / "metrics.json").read_text()) for out in (minicnn_out, keras_out))
    assert set(ours) <= set(theirs) and set(ours["best"]) == set(theirs["best"])
    assert json.loads((keras_out / "keras_run.json").read_text())["resumes"] == 1
