"""The published spread over seeds (docs/results/seeds/): every figure comes from the runs' own files.

Each row of summary.csv is recomputed from its run's folder, statistics.json from summary.csv,
and docs/results/seeds.md must quote the three tables examples/seeds_summary.py prints for them,
exactly. The pages that cite the spread (study.md, the README) must quote its figures.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import seeds_summary

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
FOLDER = RESULTS / "seeds"


def summary_rows() -> list[dict[str, object]]:
    """summary.csv with its numbers as numbers (ints stay ints), as seeds_summary builds its rows."""
    with open(FOLDER / "summary.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    whole = {"seed", "image_size", "epochs", "best_test_epoch", "process_seconds"}
    text = {"framework", "commit"}
    return [
        {key: value if key in text else int(value) if key in whole else float(value) for key, value in row.items()}
        for row in rows
    ]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_five_runs_of_each_framework_of_one_reduced_recipe():
    rows = summary_rows()
    assert [(row["framework"], row["seed"]) for row in rows] == [
        *(("minicnn", seed) for seed in range(5)),
        *(("keras", seed) for seed in range(5)),
    ]
    assert {(row["image_size"], row["epochs"], row["commit"]) for row in rows} == {
        (128, 15, "36e9b2803955f00532f4fac47ee4ed27fdefff35")
    }


@pytest.mark.parametrize("row", summary_rows(), ids=lambda row: f"{row['framework']}-s{row['seed']}")
def test_every_summary_row_equals_its_runs_files(row):
    folder = FOLDER / f"{row['framework']}-s{row['seed']}"
    metrics = json.loads((folder / "metrics.json").read_text())
    history, test_history = read_csv(folder / "history.csv"), read_csv(folder / "test_history.csv")
    record = json.loads((folder / "run.json").read_text())
    assert len(history) == len(test_history) == metrics["run"]["epochs_done"] == record["settings"]["epochs"] == 15
    assert record["settings"]["framework"] == row["framework"] and record["settings"]["seed"] == row["seed"]
    assert record["settings"]["commit"] == row["commit"]
    for column, key in [
        ("test_accuracy", "accuracy"),
        ("test_specificity", "specificity"),
        ("test_sensitivity", "sensitivity"),
        ("test_roc_auc", "roc_auc"),
    ]:
        assert row[column] == metrics[key], column
    # The final weights' test figures are the last per-epoch record: the same weights, the same images.
    assert float(test_history[-1]["accuracy"]) == metrics["accuracy"]
    assert row["val_accuracy"] == float(history[-1]["val_accuracy"])
    accuracies = [float(epoch["accuracy"]) for epoch in test_history]
    assert row["best_test_epoch_accuracy"] == max(accuracies) == accuracies[row["best_test_epoch"] - 1]
    assert (row["last10_test_accuracy_min"], row["last10_test_accuracy_max"]) == (
        min(accuracies[-10:]),
        max(accuracies[-10:]),
    )
    assert row["process_seconds"] == round(sum(stretch["seconds"] for stretch in record["stretches"]))


def test_statistics_json_describes_summary_csv():
    rows, stats = summary_rows(), json.loads((FOLDER / "statistics.json").read_text())
    assert stats == json.loads(json.dumps(seeds_summary.statistics(rows)))
    minicnn = np.array([row["test_accuracy"] for row in rows if row["framework"] == "minicnn"])
    assert stats["frameworks"]["minicnn"]["test_accuracy"]["mean"] == pytest.approx(minicnn.mean())


def test_the_page_quotes_the_tables_of_the_summary_exactly():
    rows, stats = summary_rows(), json.loads((FOLDER / "statistics.json").read_text())
    page = (RESULTS / "seeds.md").read_text()
    for table in (
        seeds_summary.runs_table(rows),
        seeds_summary.markdown_table(stats),
        seeds_summary.difference_table(stats),
    ):
        assert table in page
    assert (FOLDER / "test_accuracy_per_epoch.png").stat().st_size > 0


def test_the_study_page_and_the_readme_quote_the_spread():
    stats = json.loads((FOLDER / "statistics.json").read_text())["frameworks"]
    study = (RESULTS / "study.md").read_text()
    readme = (RESULTS.parents[1] / "README.md").read_text()
    for framework in ("minicnn", "keras"):
        accuracy = stats[framework]["test_accuracy"]
        low, high = f"{100 * accuracy['min']:.1f}", f"{100 * accuracy['max']:.1f}"
        assert f"from {low} to {high} %" in study and f"{low}–{high} %" in readme, framework
        auc = f"{100 * stats[framework]['test_roc_auc']['mean']:.1f} %"
        assert auc in study and auc in readme, framework
        mean = f"mean {100 * accuracy['mean']:.1f} %"
        name = {"minicnn": "minicnn", "keras": "Keras"}[framework]
        best = f"{100 * stats[framework]['best_test_epoch_accuracy']['mean']:.1f} % ({name})"
        assert mean in study and best in study, framework
