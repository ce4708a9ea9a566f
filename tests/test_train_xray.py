"""examples/train_xray.py and predict_xray.py, end to end on the real xray-mini images (64x64, 2 epochs)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

import minicnn as mc
import predict_xray
import train_xray

QUICK = ["--image-size", "64", "--batch-size", "16", "--seed", "1"]


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def finished_run(xray_mini_dir, tmp_path_factory):
    """One complete 2-epoch run, shared by the output checks below."""
    out = tmp_path_factory.mktemp("run")
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINICNN_CACHE", str(cache))
        assert train_xray.main(["--data", str(xray_mini_dir), "--epochs", "2", "--out", str(out), *QUICK]) == 0
    return out


def test_the_example_builds_the_studys_model():
    model = train_xray.build_study_model(300)
    assert model.count_params() == 17_018_497


def test_history_csv_has_one_row_per_epoch(finished_run):
    with open(finished_run / "history.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
    assert [row["epoch"] for row in rows] == ["1", "2"]
    for row in rows:
        assert float(row["loss"]) > 0 and 0 <= float(row["accuracy"]) <= 1 and 0 <= float(row["val_accuracy"]) <= 1
        assert float(row["seconds"]) > 0


def test_metrics_json_has_the_clinical_figures(finished_run):
    report = json.loads((finished_run / "metrics.json").read_text())
    for key in ("accuracy", "sensitivity", "specificity", "precision", "f1", "roc_auc"):
        assert 0.0 <= report[key] <= 1.0, key
    assert report["n_test"] == 24 and report["threshold"] == 0.5 and report["positive_class"] == "Pneumonia"
    matrix = report["confusion_matrix"]
    assert matrix["labels"] == ["Pneumonia", "Normal"] and matrix["rows"] == "actual"
    assert np.sum(matrix["matrix"]) == 24 and np.sum(matrix["matrix"], axis=1).tolist() == [12, 12]


def test_figures_and_checkpoints_are_written(finished_run):
    for name in ("curves.png", "confusion_matrix.png", "roc.png", "predictions.png"):
        with Image.open(finished_run / name) as image:
            image.verify()
    checkpoint = mc.load_model(finished_run / "checkpoint.npz")
    assert checkpoint.completed_epochs == 2 and checkpoint.input_shape == (64, 64, 1)
    mc.load_model(finished_run / "best.npz")


def test_resume_ends_with_the_same_weights(finished_run, xray_mini_dir, tmp_path, isolated_cache):
    out = tmp_path / "resumed"
    common = ["--data", str(xray_mini_dir), "--out", str(out), *QUICK]
    assert train_xray.main([*common, "--epochs", "1"]) == 0
    assert train_xray.main([*common, "--epochs", "2", "--resume"]) == 0
    resumed = mc.load_model(out / "checkpoint.npz").get_weights()
    uninterrupted = mc.load_model(finished_run / "checkpoint.npz").get_weights()
    for name, value in uninterrupted.items():
        np.testing.assert_array_equal(resumed[name], value)
    with open(out / "history.csv", newline="") as file:
        assert [row["epoch"] for row in csv.DictReader(file)] == ["1", "2"]


def test_predict_prints_probability_and_label(finished_run, xray_mini_dir, tmp_path, capsys):
    images = sorted((xray_mini_dir / "test").iterdir())[:2]
    broken = tmp_path / "broken.jpeg"
    broken.write_bytes(b"not an image")
    code = predict_xray.main([*map(str, images), str(broken), "--weights", str(finished_run / "best.npz")])
    out, err = capsys.readouterr()
    assert code == 1  # one unreadable file
    lines = out.strip().splitlines()
    assert len(lines) == 2 and all("P(Normal) = " in line for line in lines)
    assert all(line.split("\t")[-1] in ("Normal", "Pneumonia") for line in lines)
    assert "broken.jpeg: cannot read this image" in err


def test_too_small_image_size_names_the_minimum(capsys, xray_mini_dir):
    assert train_xray.main(["--data", str(xray_mini_dir), "--image-size", "45"]) == 2
    assert "the smallest valid size is 46" in capsys.readouterr().err
    train_xray.build_study_model(46)  # and 46 itself works


def test_missing_data_explains_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        train_xray.main(["--epochs", "1"])
    message = str(exit_info.value.code)
    assert "CoronaHack" in message and "kaggle" in message.lower() and "data/coronahack" in message


def test_cupy_without_a_gpu_fails_at_once(monkeypatch, capsys, xray_mini_dir):
    import sys

    monkeypatch.setitem(sys.modules, "cupy", None)
    assert train_xray.main(["--data", str(xray_mini_dir), "--backend", "cupy"]) == 2
    assert "pip install 'minicnn[gpu]'" in capsys.readouterr().err


def test_a_wrong_folder_names_the_accepted_layouts(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    assert train_xray.main(["--data", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "CoronaHack" in error and "Kermany" in error
