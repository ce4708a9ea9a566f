"""docs/results/gpu.md quotes exactly what came back from the GPU machine (docs/results/gpu/).

The files were brought back from a lent NVIDIA H200; nothing here needs a GPU. Each figure on
the page is recomputed from those files and looked up in the table row where the page quotes it.
"""

from __future__ import annotations

import csv
import json
import re
import statistics
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
FOLDER = RESULTS / "gpu"
RUNS = {"h200-b0e0302": 15, "h200-c8d1b4a": 37}  # run folder -> epochs its time budget allowed
METRICS = ("accuracy", "sensitivity", "specificity", "precision", "f1", "roc_auc")


@pytest.fixture(scope="module")
def page() -> str:
    return (RESULTS / "gpu.md").read_text()


def row_of(page: str, *starts: str) -> str:
    """The one table row of the page that begins with these cells."""
    prefix = "| " + " | ".join(starts) + " |"
    rows = [line for line in page.splitlines() if line.startswith(prefix)]
    assert len(rows) == 1, f"expected one row starting {prefix!r}, found {len(rows)}"
    return rows[0]


def history(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as file:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(file)]


@pytest.mark.parametrize("run", RUNS)
def test_each_run_agrees_with_itself(run):
    metrics = json.loads((FOLDER / run / "metrics.json").read_text())
    for report in (metrics, metrics["best"]):
        matrix = report["confusion_matrix"]["matrix"]
        assert sum(map(sum, matrix)) == report["n_test"] == 624
        assert report["accuracy"] == pytest.approx((matrix[0][0] + matrix[1][1]) / 624, abs=1e-12)
    epochs = history(FOLDER / run / "history.csv")
    assert [row["epoch"] for row in epochs] == list(range(1, RUNS[run] + 1))
    assert metrics["run"] == {
        "partial": True,
        "epochs_done": RUNS[run],
        "epochs_planned": 60,
        "time_budget_s": metrics["run"]["time_budget_s"],
        "stopped_in_epoch": RUNS[run] + 1,
    }
    lowest = min(epochs, key=lambda row: row["val_loss"])
    assert metrics["best"]["epoch"] == lowest["epoch"] and metrics["best"]["value"] == lowest["val_loss"]
    for figure in ("curves.png", "confusion_matrix.png", "roc.png"):
        assert (FOLDER / run / figure).stat().st_size > 0


@pytest.mark.parametrize("run", RUNS)
def test_the_page_quotes_each_runs_test_figures_and_epochs(page, run):
    metrics = json.loads((FOLDER / run / "metrics.json").read_text())
    best = metrics["best"]
    for weights, report in (
        (f"final (after {RUNS[run]} epochs)", metrics),
        (f"best val_loss (epoch {best['epoch']})", best),
    ):
        row = row_of(page, f"`{run}`", weights)
        cells = [cell.strip() for cell in row.strip("|").split("|")][2:]
        assert cells == [f"{100 * report[key]:.1f} %" for key in METRICS], row
    epochs = history(FOLDER / run / "history.csv")
    row = row_of(page, f"`{run}`", f"{RUNS[run]} (budget ran out in epoch {RUNS[run] + 1})")
    assert f"| {statistics.median(row['seconds'] for row in epochs):.1f} s |" in row
    assert f"| {best['value']:.4f} (epoch {best['epoch']}) |" in row


def test_the_page_quotes_the_training_step_timings(page):
    for commit in ("b0e0302", "c8d1b4a"):
        results = {
            row["framework"]: row for row in json.loads((FOLDER / f"bench-{commit}.json").read_text())["results"]
        }
        minicnn, torch = results["minicnn-cupy"], results["torch-cuda"]
        expected = [
            f"{minicnn['train_s']:.3f} s",
            f"{minicnn['forward_s']:.3f} s",
            f"{torch['train_s']:.3f} s",
            f"{torch['forward_s']:.3f} s",
            f"{minicnn['gpu_pool_bytes'] / 1e9:.2f} GB",
        ]
        assert row_of(page, commit) == "| " + " | ".join([commit, *expected]) + " |"


def test_the_page_quotes_conv_parts(page):
    parts = json.loads((FOLDER / "conv_parts-c8d1b4a.json").read_text())
    for layer in parts["conv_layers"][:2]:
        name = layer["layer"].split()[0]
        row = row_of(page, name)
        for key in ("bias_einsum_s", "bias_sum_s", "bias_ones_matmul_s"):
            assert f"| {layer[key]:.4f} s " in row + " ", (name, key)
    quoted = re.findall(r"^\| (?:workspace|both).* \| (\d\.\d{4}) \|$", page, flags=re.MULTILINE)
    assert quoted == [f"{variant['train_step_s']:.4f}" for variant in parts["training_step"]]


def test_the_gpu_test_cases_all_passed_as_the_page_says(page):
    assert "27 passed" in (FOLDER / "gpu-tests-c8d1b4a.txt").read_text()
    assert "GPU test cases: 27 passed, 0 failed, 0 errors, 0 skipped" in (FOLDER / "checks-b0e0302.log").read_text()
    assert "**27 passed, 0 failed, 0 skipped**" in page


def test_the_cpu_and_gpu_losses_quoted_are_those_of_the_histories(page):
    runs = {run: history(FOLDER / run / "history.csv") for run in RUNS}
    cpu_file = RESULTS / "study" / "history.csv"  # the CPU run's, once it is published
    cpu = history(cpu_file) if cpu_file.is_file() else None
    for epoch in (1, 5, 10, 15):
        cells = [cell.strip() for cell in row_of(page, str(epoch)).strip("|").split("|")]
        assert cells[2:4] == [f"{runs[run][epoch - 1]['loss']:.4f}" for run in RUNS]
        assert cells[5:7] == [f"{runs[run][epoch - 1]['val_loss']:.4f}" for run in RUNS]
        if cpu is not None:
            assert [cells[1], cells[4]] == [f"{cpu[epoch - 1][key]:.4f}" for key in ("loss", "val_loss")]
