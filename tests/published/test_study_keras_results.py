"""The study's recipe run in Keras at full size (docs/results/study-keras/) agrees with itself and with its pages."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
FOLDER = RESULTS / "study-keras"
KEYS = ("accuracy", "sensitivity", "specificity", "precision", "f1", "roc_auc")


def percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_the_keras_run_is_the_full_recipe_and_its_files_agree():
    run = json.loads((FOLDER / "run.json").read_text())
    metrics = json.loads((FOLDER / "metrics.json").read_text())
    assert run["epochs_done"] == 60 and metrics["framework"]["name"] == "keras"
    assert run["resume_exact"] is False  # Keras does not continue bit for bit; the record says so
    history = read_csv(FOLDER / "history.csv")
    assert [int(row["epoch"]) for row in history] == list(range(1, 61))
    predictions = read_csv(FOLDER / "test_predictions.csv")
    assert len(predictions) == metrics["n_test"] == 624
    for report, column in ((metrics, "p_normal_final"), (metrics["best"], "p_normal_best")):
        matrix = [[0, 0], [0, 0]]
        for row in predictions:
            matrix[int(row["label"])][int(float(row[column]) > report["threshold"])] += 1
        assert matrix == report["confusion_matrix"]["matrix"]
        assert report["accuracy"] == pytest.approx((matrix[0][0] + matrix[1][1]) / 624, abs=1e-12)
    # The best section is the epoch of the lowest val_loss, as for minicnn's runs.
    lowest = min(history, key=lambda row: float(row["val_loss"]))
    assert metrics["best"]["epoch"] == int(lowest["epoch"])


def test_the_pages_quote_the_keras_run_exactly():
    metrics = json.loads((FOLDER / "metrics.json").read_text())
    page = " ".join((RESULTS / "study.md").read_text().split())
    for report in (metrics, metrics["best"]):
        for key in KEYS:
            assert percent(report[key]) in page, f"study.md does not quote {key} = {report[key]}"
    tests = read_csv(FOLDER / "test_history.csv")
    accuracy = [float(row["accuracy"]) for row in tests]
    best = max(range(len(accuracy)), key=accuracy.__getitem__)
    assert f"peaks at {percent(accuracy[best])} at epoch {best + 1}" in page
    assert f"between {percent(min(accuracy[-10:]))} and {percent(max(accuracy[-10:]))}" in page
    assert f"{metrics['confusion_matrix']['matrix'][1][0]} of 234" in page
    readme = " ".join((RESULTS.parent.parent / "README.md").read_text().split())
    assert f"reaches **{percent(metrics['accuracy'])}**" in readme
