"""The study's published results agree with themselves, and the script that publishes them works.

docs/results/study/ is written by examples/study_results.py once the 60-epoch run is done;
until then the checks of the published files are skipped, and the script is tested on a
small run of the bundled sample.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import study_results
import train_xray

import minicnn as mc

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
FIGURES = ("curves.png", "confusion_matrix.png", "roc.png", "predictions.png")


def check_result_folder(folder: Path, epochs: int) -> dict:
    """The files of a published run agree: matrix sums to n_test, accuracy is its diagonal share, one row per epoch."""
    metrics = json.loads((folder / "metrics.json").read_text())
    run = json.loads((folder / "run.json").read_text())
    check_confusion_matrices(metrics, n_test=run["images"]["test"])
    with open(folder / "history.csv", newline="") as file:
        history = list(csv.DictReader(file))
    assert [int(row["epoch"]) for row in history] == list(range(1, epochs + 1))
    assert re.fullmatch(r"[0-9a-f]{40}", run["commit"])
    assert run["epochs_done"] == epochs and run["training_seconds_total"] > 0
    assert all(stretch["cpu"] and stretch["cores"] for stretch in run["stretches"])
    for name in FIGURES:
        assert (folder / name).stat().st_size > 0, name
    with open(folder / "test_predictions.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == metrics["n_test"]
    for report, column in ((metrics, "p_normal_final"), (metrics["best"], "p_normal_best")):
        assert confusion_matrix_of(rows, column, report["threshold"]) == report["confusion_matrix"]["matrix"]
    # The publisher's own evaluation of the held-out images repeats what training logged for them.
    validation = json.loads((folder / "validation_metrics.json").read_text())
    for section, epoch in ((validation["final"], epochs), (validation["best"], metrics["best"]["epoch"])):
        assert section["epoch"] == epoch and section["n_test"] == run["images"]["validation"]
        assert sum(map(sum, section["confusion_matrix"]["matrix"])) == section["n_test"]
        assert section["accuracy"] == pytest.approx(float(history[epoch - 1]["val_accuracy"]), abs=1e-9)
    return metrics


def check_confusion_matrices(metrics: dict, n_test: int) -> None:
    """Final and best: each matrix sums to n_test, and accuracy is its diagonal share."""
    for report in (metrics, metrics["best"]):
        matrix = report["confusion_matrix"]["matrix"]
        assert sum(map(sum, matrix)) == report["n_test"] == n_test
        assert report["accuracy"] == pytest.approx((matrix[0][0] + matrix[1][1]) / n_test, abs=1e-12)


def confusion_matrix_of(rows: list[dict[str, str]], column: str, threshold: float) -> list[list[int]]:
    """Rows actual, columns predicted, both in the order Pneumonia (0), Normal (1)."""
    matrix = [[0, 0], [0, 0]]
    for row in rows:
        predicted_normal = float(row[column]) > threshold
        matrix[int(row["label"])][int(predicted_normal)] += 1
    return matrix


@pytest.mark.skipif(not (RESULTS / "study" / "metrics.json").is_file(), reason="the study's run is not published yet")
def test_the_published_study_agrees_with_itself_and_with_its_page():
    metrics = check_result_folder(RESULTS / "study", epochs=60)
    assert metrics["n_test"] == 624
    page = " ".join((RESULTS / "study.md").read_text().split())  # a quoted phrase may wrap
    validation = json.loads((RESULTS / "study" / "validation_metrics.json").read_text())
    for report in (metrics, metrics["best"], validation["final"], validation["best"]):
        for key in ("accuracy", "sensitivity", "specificity", "precision", "f1", "roc_auc"):
            assert f"{100 * report[key]:.1f} %" in page, f"study.md does not quote {key} = {report[key]}"
    (found, missed), (called_pneumonia, recognised) = metrics["confusion_matrix"]["matrix"]
    assert f"{found} Pneumonia X-rays found, {missed} missed, {recognised} Normal" in page
    # The page's account of the mistakes, recounted from the per-image predictions.
    with open(RESULTS / "study" / "test_predictions.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    misread_normal = [float(row["p_normal_final"]) for row in rows if row["label"] == "1"]
    misread_normal = [p for p in misread_normal if p <= metrics["threshold"]]
    confident = sum(p <= 0.1 for p in misread_normal)
    assert len(misread_normal) == called_pneumonia
    assert f"{confident} of these {called_pneumonia} misread Normal X-rays" in page
    assert f"{sum(p < 0.01 for p in misread_normal)} of them get less than 0.01" in page
    assert f"explain the {called_pneumonia - confident} borderline errors, not the {confident} confident ones" in page
    changed = sum(
        (float(row["p_normal_final"]) > metrics["threshold"]) != (float(row["p_normal_best"]) > metrics["threshold"])
        for row in rows
    )
    assert f"{changed} of the {metrics['n_test']} test predictions change" in page


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_quick_look_over_four_seeds_agrees_with_itself_and_with_the_results_page(seed):
    folder = RESULTS / "quick-look" / f"seed{seed}"
    metrics = json.loads((folder / "metrics.json").read_text())
    check_confusion_matrices(metrics, n_test=624)
    with open(folder / "history.csv", newline="") as file:
        assert len(list(csv.DictReader(file))) == metrics["weights"]["epochs_done"] == 5
    # The results page has one column per seed: each row must hold this seed's figure.
    rows = {
        line.split("|")[1].strip(): line.split("|")[2:-1]
        for line in (RESULTS.parent / "results.md").read_text().splitlines()
        if line.startswith("| ")
    }
    quoted = {
        "accuracy, final weights": metrics["accuracy"],
        "sensitivity (Pneumonia X-rays found)": metrics["sensitivity"],
        "specificity (Normal X-rays recognised)": metrics["specificity"],
        "ROC AUC": metrics["roc_auc"],
        "accuracy, lowest-val_loss weights (`best.npz`)": metrics["best"]["accuracy"],
    }
    for row, value in quoted.items():
        assert rows[row][seed].strip() == f"{100 * value:.1f} %", row


def test_the_publishing_script_on_a_small_run(tmp_path, monkeypatch, xray_mini_dir, capsys):
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert (
        train_xray.main(["--data", str(xray_mini_dir), "--out", str(run), "--image-size", "64", "--epochs", "2"]) == 0
    )
    settings = {
        "image_size": 64,
        "epochs": 2,
        "batch_size": 32,
        "learning_rate": 1e-4,
        "val_split": 0.2,
        "augment": True,
        "seed": 0,
        "backend": "numpy",
        "class_weight": None,
        "threshold": 0.5,
    }
    (run / "run-settings.json").write_text(json.dumps(settings))
    start = {
        "event": "start",
        "time": "2026-11-25T20:00:00+0000",
        "commit": "b" * 40,
        "cpu": "a CPU",
        "cores": 2,
        "python": "3.11.7",
        "numpy": "2.4.6",
        "minicnn_file": "/frozen/minicnn/__init__.py",
    }
    stop = {"event": "stop", "time": "2026-11-25T20:01:40+0000", "completed_epochs": 2}
    (run / "stretches.jsonl").write_text("\n".join(json.dumps(event) for event in (start, stop)) + "\n")
    out = tmp_path / "published"
    assert study_results.main(["--run", str(run), "--data", str(xray_mini_dir), "--out", str(out)]) == 0
    metrics = check_result_folder(out, epochs=2)
    assert metrics["best"]["file"] == "best.npz" and not list(out.glob("*.npz"))
    record = json.loads((out / "run.json").read_text())
    assert record["stretches"][0]["seconds"] == 100 and record["training_seconds_total"] == 100
    assert record["images"] == {"train": 38, "validation": 10, "test": 24}


def test_an_unfinished_run_is_refused_unless_asked(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        study_results.main(["--run", str(run), "--data", str(tmp_path), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and "no checkpoint.npz there" in capsys.readouterr().err


def test_a_keras_run_is_published_from_its_own_files_without_tensorflow(tmp_path, monkeypatch, xray_mini_dir):
    """A stand-in for a keras_study.py folder (TensorFlow is no dependency): a minicnn run's files,
    plus what keras_study.py adds: keras_run.json and test_predictions.csv."""
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "keras-run"
    argv = ["--data", str(xray_mini_dir), "--out", str(run), "--image-size", "64", "--epochs", "2"]
    assert train_xray.main([*argv, "--record-test-each-epoch"]) == 0
    test = train_xray.load_data(xray_mini_dir, "test", argparse.Namespace(image_size=64, limit=None))
    p_normal = train_xray.predict_normal(mc.load_model(run / "checkpoint.npz"), test.images, 32)
    train_xray.write_test_predictions(run / "test_predictions.csv", test, p_normal, p_normal)
    versions = {"name": "keras", "keras": "3.x", "tensorflow": "2.x", "python": "3.11"}
    images = {"train": 38, "validation": 10, "test": 24}
    (run / "keras_run.json").write_text(json.dumps({"versions": versions, "images": images, "resumes": 1}))
    (run / "run-settings.json").write_text(json.dumps({"framework": "keras", "epochs": 2, "seed": 0}))
    events = [
        {"event": "start", "time": "2026-12-01T10:00:00+0000", "commit": "k" * 40},
        {"event": "stop", "time": "2026-12-01T10:01:00+0000", "status": 130},
        {"event": "start", "time": "2026-12-01T12:00:00+0000", "commit": "k" * 40},
        {"event": "stop", "time": "2026-12-01T12:00:30+0000", "status": 0},
    ]
    (run / "stretches.jsonl").write_text("".join(json.dumps(event) + "\n" for event in events))
    out = tmp_path / "published"
    assert study_results.main(["--run", str(run), "--data", str(xray_mini_dir), "--out", str(out)]) == 0
    for name in ("history.csv", "metrics.json", "test_predictions.csv", "test_history.csv"):
        assert (out / name).read_bytes() == (run / name).read_bytes(), name
    for figure in ("curves.png", "confusion_matrix.png", "roc.png"):
        assert (out / figure).stat().st_size > 0, figure
    record = json.loads((out / "run.json").read_text())
    assert record["training_seconds_total"] == 90 and record["resumes"] == 1 and record["resume_exact"] is False
    assert record["commit"] == "k" * 40 and record["versions"] == versions and record["images"] == images
    # The copied metrics agree with the copied per-image predictions: thresholding gives the matrix back.
    metrics = json.loads((out / "metrics.json").read_text())
    predicted = (p_normal > 0.5).astype(int)
    assert metrics["accuracy"] == pytest.approx(np.mean(predicted == test.labels))


def test_a_3_class_rmsprop_run_is_published_with_its_k_class_figures(tmp_path, monkeypatch, xray_mini_dir):
    """--classes 3 --optimizer rmsprop, trained on another run's split.csv (SPLIT_FROM): every file K-class."""
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "cache"))
    source, run = tmp_path / "source", tmp_path / "run"
    common = ["--data", str(xray_mini_dir), "--image-size", "46", "--batch-size", "16", "--classes", "3"]
    assert train_xray.main([*common, "--out", str(source), "--epochs", "1", "--seed", "5"]) == 0
    argv = [*common, "--out", str(run), "--epochs", "2", "--optimizer", "rmsprop"]
    assert train_xray.main([*argv, "--split-file", str(source / "split.csv")]) == 0
    settings = {"epochs": 2, "batch_size": 16, "val_split": 0.2, "seed": 0, "threshold": None, "classes": 3}
    settings |= {"optimizer": "rmsprop", "split_from": "source", "train_options": argv[-6:]}
    (run / "run-settings.json").write_text(json.dumps(settings))
    start = {"event": "start", "time": "2026-12-03T10:00:00+0000", "commit": "c" * 40, "cpu": "a CPU", "cores": 2}
    stop = {"event": "stop", "time": "2026-12-03T10:00:50+0000", "status": 0}
    (run / "stretches.jsonl").write_text("\n".join(json.dumps(event) for event in (start, stop)) + "\n")
    out = tmp_path / "published"
    assert study_results.main(["--run", str(run), "--data", str(xray_mini_dir), "--out", str(out)]) == 0

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["classes"] == 3 and set(metrics["per_class"]) == {"Normal", "bacterial", "viral"}
    assert "bacterial_vs_viral" in metrics and "bacterial_vs_viral" in metrics["best"]
    with open(out / "test_predictions.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    labels = np.array([int(row["label"]) for row in rows])
    for report, which in ((metrics, "final"), (metrics["best"], "best")):
        prob = np.array([[float(row[f"p_{k}_{which}"]) for k in ("normal", "bacterial", "viral")] for row in rows])
        matrix = mc.metrics.confusion_matrix(labels, prob.argmax(axis=1), labels=range(3)).tolist()
        assert matrix == report["confusion_matrix"]["matrix"] and np.sum(matrix) == report["n_test"] == 24
    record = json.loads((out / "run.json").read_text())
    assert record["recipe"]["classes"] == 3 and record["recipe"]["class_names"] == {
        "0": "Normal",
        "1": "bacterial",
        "2": "viral",
    }
    assert record["recipe"]["optimizer"]["class_name"] == "RMSprop"
    assert record["recipe"]["loss"]["class_name"] == "SparseCategoricalCrossentropy"
    # The split is the source run's (seed 5), not the one seed 0 would draw.
    with open(source / "split.csv", newline="") as file:
        source_validation = [i for i, row in enumerate(csv.DictReader(file)) if row["subset"] == "validation"]
    train = train_xray.load_data(xray_mini_dir, "train", argparse.Namespace(image_size=46, limit=None, classes=3))
    _, validation_index = study_results.read_split(argparse.Namespace(run=run), train, settings)
    assert validation_index.tolist() == source_validation
    seed_0 = mc.data.xray.stratified_split(train.labels, 0.2, seed=0)[1]
    assert sorted(seed_0.tolist()) != source_validation and record["images"]["validation"] == len(source_validation)
    with open(run / "history.csv", newline="") as file:
        history = list(csv.DictReader(file))
    validation = json.loads((out / "validation_metrics.json").read_text())
    assert validation["final"]["accuracy"] == pytest.approx(float(history[-1]["val_accuracy"]), abs=1e-9)
    assert len(validation["final"]["confusion_matrix"]["matrix"]) == 3
    for name in FIGURES:
        assert (out / name).stat().st_size > 0, name
