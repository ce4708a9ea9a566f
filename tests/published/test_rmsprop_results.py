"""The RMSprop run (docs/results/rmsprop-s0/) is the twin of Adam's minicnn-s0; its page quotes both exactly."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
RMSPROP, ADAM = RESULTS / "rmsprop-s0", RESULTS / "seeds" / "minicnn-s0"


def percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_the_run_is_adams_recipe_with_rmsprop_on_the_same_split():
    run = json.loads((RMSPROP / "run.json").read_text())
    settings = run["settings"]
    assert (settings["image_size"], settings["epochs"], settings["seed"], settings["classes"]) == (128, 15, 0, 2)
    assert settings["split_from"] == "minicnn-s0" and settings["learning_rate"] == 1e-4
    assert run["recipe"]["optimizer"] == {
        "class_name": "RMSprop",
        "learning_rate": 1e-4,
        "rho": 0.9,
        "momentum": 0.0,
        "epsilon": 1e-7,
        "centered": False,
    }
    adam = json.loads((ADAM / "run.json").read_text())
    same = ("seed", "image_size", "epochs", "batch_size", "learning_rate", "val_split", "augment", "data")
    assert {key: adam["settings"][key] for key in same} == {key: settings[key] for key in same}
    assert run["images"] == {"train": 4227, "validation": 1056, "test": 624}
    metrics = json.loads((RMSPROP / "metrics.json").read_text())
    rows = read_csv(RMSPROP / "test_predictions.csv")
    matrix = [[0, 0], [0, 0]]
    for row in rows:
        matrix[int(row["label"])][int(float(row["p_normal_final"]) > metrics["threshold"])] += 1
    assert matrix == metrics["confusion_matrix"]["matrix"]
    assert metrics["accuracy"] == pytest.approx((matrix[0][0] + matrix[1][1]) / 624, abs=1e-12)


def test_the_page_quotes_both_runs_exactly():
    page = " ".join((RESULTS / "rmsprop.md").read_text().split())
    for folder, name in ((ADAM, "Adam 1e-4 (`minicnn-s0`)"), (RMSPROP, "RMSprop 1e-4 (`rmsprop-s0`)")):
        metrics = json.loads((folder / "metrics.json").read_text())
        history = read_csv(folder / "history.csv")
        called_pneumonia = metrics["confusion_matrix"]["matrix"][1][0]
        figures = [percent(metrics[key]) for key in ("accuracy", "sensitivity", "specificity")]
        figures += [
            f"{metrics['roc_auc']:.3f}",
            f"{called_pneumonia} of 234",
            percent(float(history[-1]["val_accuracy"])),
        ]
        assert f"| {name} | {' | '.join(figures)} |" in page, name
    rmsprop = read_csv(RMSPROP / "history.csv")
    jumps = ", ".join(percent(float(rmsprop[epoch - 1]["val_accuracy"])) for epoch in (4, 7))
    assert f"{jumps} and {percent(float(rmsprop[8]['val_accuracy']))} at epochs 4, 7 and 9" in page
    adam = [float(row["val_accuracy"]) for row in read_csv(ADAM / "history.csv")[:10]]
    assert f"between {round(100 * min(adam))} % and {round(100 * max(adam))} %" in page
    assert f"training accuracy {percent(float(rmsprop[-1]['accuracy']))} at epoch 15" in page


def test_the_readme_and_results_page_quote_both_runs():
    rmsprop, adam = (json.loads((folder / "metrics.json").read_text())["accuracy"] for folder in (RMSPROP, ADAM))
    quoted = f"{percent(rmsprop)} against {percent(adam)}"
    for path in (RESULTS.parent.parent / "README.md", RESULTS.parent / "results.md"):
        text = " ".join(path.read_text().split())
        assert quoted in text or f"{percent(rmsprop)} against Adam's {percent(adam)}" in text, path.name
