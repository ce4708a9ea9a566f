"""The 3-class run (docs/results/three-classes/) agrees with itself, and its page quotes it exactly."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
FOLDER = RESULTS / "three-classes"
CLASSES = ("normal", "bacterial", "viral")


def percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def page() -> str:
    return " ".join((RESULTS / "three-classes.md").read_text().split())


def predictions(rows: list[dict[str, str]], weights: str) -> np.ndarray:
    """(N, 3) probabilities of the final or the best weights, columns Normal, bacterial, viral."""
    return np.array([[float(row[f"p_{name}_{weights}"]) for name in CLASSES] for row in rows])


def confusion(labels: np.ndarray, predicted: np.ndarray, classes: int) -> list[list[int]]:
    matrix = np.zeros((classes, classes), dtype=int)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix.tolist()


def test_the_run_is_the_reduced_recipe_with_three_classes():
    run = json.loads((FOLDER / "run.json").read_text())
    settings = run["settings"]
    assert (settings["classes"], settings["image_size"], settings["epochs"], settings["seed"]) == (3, 128, 15, 0)
    assert run["recipe"]["class_names"] == {"0": "Normal", "1": "bacterial", "2": "viral"}
    assert run["recipe"]["loss"]["class_name"] == "SparseCategoricalCrossentropy"
    assert run["recipe"]["optimizer"]["class_name"] == "Adam" and run["epochs_done"] == 15
    assert run["images"] == {"train": 4225, "validation": 1056, "test": 624}  # 5,283 less the 2 Stress-Smoking
    assert re.fullmatch(r"[0-9a-f]{40}", run["commit"]) and f"commit `{run['commit']}`" in page()
    history = read_csv(FOLDER / "history.csv")
    assert [int(row["epoch"]) for row in history] == list(range(1, 16))


def test_the_matrices_are_those_of_the_saved_probabilities():
    metrics = json.loads((FOLDER / "metrics.json").read_text())
    rows = read_csv(FOLDER / "test_predictions.csv")
    labels = np.array([int(row["label"]) for row in rows])
    assert len(rows) == metrics["n_test"] == 624
    assert np.bincount(labels).tolist() == [234, 242, 148]
    for report, weights in ((metrics, "final"), (metrics["best"], "best")):
        probabilities = predictions(rows, weights)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        matrix = confusion(labels, probabilities.argmax(axis=1), 3)
        assert matrix == report["confusion_matrix"]["matrix"]
        assert report["accuracy"] == pytest.approx(np.trace(matrix) / 624, abs=1e-12)
        kinds = report["bacterial_vs_viral"]
        assert kinds["sub_matrix"]["matrix"] == [row[1:] for row in matrix[1:]]
        pneumonia = labels > 0
        called_viral = (probabilities[pneumonia, 2] > probabilities[pneumonia, 1]).astype(int)
        assert confusion(labels[pneumonia] - 1, called_viral, 2) == kinds["forced_choice"]["matrix"]
        (tn, fp), (fn, tp) = kinds["sub_matrix"]["matrix"]  # viral the positive class
        assert kinds["sub_matrix"]["sensitivity"] == pytest.approx(tp / (tp + fn), abs=1e-12)
        assert kinds["sub_matrix"]["specificity"] == pytest.approx(tn / (tn + fp), abs=1e-12)


def test_the_page_quotes_the_run_exactly():
    metrics = json.loads((FOLDER / "metrics.json").read_text())
    validation = json.loads((FOLDER / "validation_metrics.json").read_text())["final"]
    text = page()
    assert "Normal 0, bacterial 1, viral 2" in text and "Stress-Smoking" in text
    assert "128 × 128 images, 15 epochs, seed 0" in text
    assert f"accuracy {percent(metrics['accuracy'])}" in text
    assert f"macro recall {percent(metrics['macro_recall'])}" in text
    assert f"macro one-vs-rest ROC AUC {metrics['macro_roc_auc']:.3f}" in text
    for name, figures in metrics["per_class"].items():
        assert f"{name} {percent(figures['recall'])} ({percent(figures['precision'])})" in text, name
    for name, row in zip(("Normal", "bacterial", "viral"), metrics["confusion_matrix"]["matrix"], strict=True):
        assert f"**actual {name}** ({sum(row)}) | {' | '.join(map(str, row))} |" in text, name
    kinds, held_out = metrics["bacterial_vs_viral"], validation["bacterial_vs_viral"]["sub_matrix"]
    for block in (kinds["sub_matrix"], kinds["forced_choice"], held_out):
        figures = " | ".join(percent(block[key]) for key in ("accuracy", "sensitivity", "specificity"))
        assert f"| {block['n']} | {figures} |" in text, block
    assert f"leaves out the {kinds['pneumonias_called_normal']} test pneumonias" in text
    assert "**accuracy 90.7 %, sensitivity 88.6 %, specificity 90.9 %**" in text  # Kermany et al.'s
    normal = validation["per_class"]["Normal"]
    assert f"{percent(normal['recall'])} of the Normal ones ({round(normal['recall'] * normal['support'])} of" in text
    tests = [float(row["accuracy"]) for row in read_csv(FOLDER / "test_history.csv")]
    low, high = int(np.argmin(tests)), int(np.argmax(tests))
    assert f"between {percent(tests[low])} (epoch {low + 1}) and {percent(tests[high])} (epoch {high + 1})" in text
    assert f"between {percent(min(tests[-5:]))} and {percent(max(tests[-5:]))}" in text


def test_the_readme_and_results_page_quote_the_run():
    metrics = json.loads((FOLDER / "metrics.json").read_text())
    readme = " ".join((RESULTS.parent.parent / "README.md").read_text().split())
    results = " ".join((RESULTS.parent / "results.md").read_text().split())
    assert f"Normal, bacterial, viral: {percent(metrics['accuracy'])} on the test split" in readme
    validation = json.loads((FOLDER / "validation_metrics.json").read_text())["final"]
    block, held_out = metrics["bacterial_vs_viral"]["sub_matrix"], validation["bacterial_vs_viral"]["sub_matrix"]
    assert f"reaches {percent(metrics['accuracy'])} on the 624 test images" in results
    assert f"{percent(block['accuracy'])} of the time on the test split but {percent(held_out['accuracy'])}" in results
