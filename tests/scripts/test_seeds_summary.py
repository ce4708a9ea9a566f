"""examples/seeds_summary.py: the spread over seeds is computed from the run folders, and only from them.

The statistics are checked against published tables; the files against the run folders they
were made from. The run folders here are real minicnn runs on the bundled sample (2 epochs at
64 x 64); the "keras" folders are copies of them with another seed in their settings, since
TensorFlow is not a dependency: they stand in for keras_study.py's files, which have the same
names, columns and keys (tests/scripts/test_keras_study.py checks that where Keras is installed).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import seeds_summary
import train_xray

# Student's t quantiles as printed in every statistics table (three decimals).
T_TABLE = [(0.975, 1, 12.706), (0.975, 4, 2.776), (0.975, 8, 2.306), (0.975, 30, 2.042), (0.95, 10, 1.812)]


@pytest.mark.parametrize("probability, df, printed", T_TABLE)
def test_student_t_quantiles_agree_with_the_printed_tables(probability, df, printed):
    quantile = seeds_summary.student_t_quantile(probability, df)
    assert quantile == pytest.approx(printed, abs=5e-4)
    assert seeds_summary.student_t_cdf(quantile, df) == pytest.approx(probability, abs=1e-12)
    assert seeds_summary.student_t_cdf(-quantile, df) == pytest.approx(1 - probability, abs=1e-12)


def test_the_t_quantile_tends_to_the_normal_one_for_many_degrees_of_freedom():
    assert seeds_summary.student_t_quantile(0.975, 1e7) == pytest.approx(1.959964, abs=1e-5)


def test_welchs_interval_is_the_difference_plus_or_minus_t_times_its_standard_error():
    a, b = np.array([0.85, 0.87, 0.86, 0.88, 0.84]), np.array([0.83, 0.86, 0.82, 0.85, 0.87])
    interval = seeds_summary.welch_interval(a, b)
    se = np.sqrt(a.var(ddof=1) / 5 + b.var(ddof=1) / 5)
    assert interval["difference"] == pytest.approx(a.mean() - b.mean()) and interval["se"] == pytest.approx(se)
    # Equal sizes: Welch-Satterthwaite's df lies between n - 1 and 2n - 2.
    assert 4 <= interval["df"] <= 8
    half = seeds_summary.student_t_quantile(0.975, interval["df"]) * se
    assert (interval["low"], interval["high"]) == pytest.approx(
        (a.mean() - b.mean() - half, a.mean() - b.mean() + half)
    )


def write_stretches(folder: Path) -> None:
    lines = [
        {"event": "start", "time": "2026-12-01T10:00:00+0000", "commit": "c" * 40},
        {"event": "stop", "time": "2026-12-01T10:00:30+0000", "status": 130},
        {"event": "start", "time": "2026-12-01T11:00:00+0000", "commit": "c" * 40},
        {"event": "stop", "time": "2026-12-01T11:00:12+0000", "status": 0},
    ]
    (folder / "stretches.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


@pytest.fixture(scope="module")
def runs(xray_mini_dir, tmp_path_factory):
    """Two minicnn runs (seeds 0 and 1) and two stand-in Keras folders, as long_run.sh lays them out."""
    folder = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINICNN_CACHE", str(tmp_path_factory.mktemp("cache")))
        for seed in (0, 1):
            out = folder / f"minicnn-s{seed}"
            argv = ["--data", str(xray_mini_dir), "--out", str(out), "--image-size", "64", "--epochs", "2"]
            assert train_xray.main([*argv, "--batch-size", "16", "--seed", str(seed), "--record-test-each-epoch"]) == 0
    for seed in (0, 1):
        settings = {"framework": "minicnn", "commit": "c" * 40, "image_size": 64, "epochs": 2, "seed": seed}
        (folder / f"minicnn-s{seed}" / "run-settings.json").write_text(json.dumps(settings))
        write_stretches(folder / f"minicnn-s{seed}")
    for seed in (0, 1):
        settings = {"framework": "keras", "commit": "c" * 40, "image_size": 64, "epochs": 2, "seed": seed}
        shutil.copytree(folder / f"minicnn-s{1 - seed}", folder / f"keras-s{seed}")
        (folder / f"keras-s{seed}" / "run-settings.json").write_text(json.dumps(settings))
    return folder


@pytest.fixture(scope="module")
def published(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("published")
    assert seeds_summary.main(["--runs", str(runs), "--out", str(out)]) == 0
    return out


def test_every_summary_row_equals_its_run_folders_files(runs, published):
    with open(published / "summary.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(row["framework"], row["seed"]) for row in rows] == [
        ("minicnn", "0"), ("minicnn", "1"), ("keras", "0"), ("keras", "1")
    ]  # fmt: skip
    for row in rows:
        name = f"{row['framework']}-s{row['seed']}"
        for copied in seeds_summary.COPIED_FILES:
            assert (published / name / copied).read_bytes() == (runs / name / copied).read_bytes()
        metrics = json.loads((runs / name / "metrics.json").read_text())
        with open(runs / name / "test_history.csv", newline="") as file:
            test_history = list(csv.DictReader(file))
        with open(runs / name / "history.csv", newline="") as file:
            history = list(csv.DictReader(file))
        accuracies = [float(r["accuracy"]) for r in test_history]
        assert float(row["test_accuracy"]) == metrics["accuracy"]
        assert float(row["test_specificity"]) == metrics["specificity"]
        assert float(row["val_accuracy"]) == float(history[-1]["val_accuracy"])
        assert float(row["best_test_epoch_accuracy"]) == max(accuracies)
        assert accuracies[int(row["best_test_epoch"]) - 1] == max(accuracies)
        assert float(row["last10_test_accuracy_min"]) == min(accuracies[-10:])
        assert int(row["process_seconds"]) == 30 + 12  # the two stretches, not the pause between them
        assert row["image_size"] == "64" and row["epochs"] == "2" and row["commit"] == "c" * 40


def test_statistics_describe_the_summary_rows(published):
    with open(published / "summary.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    stats = json.loads((published / "statistics.json").read_text())
    for framework in seeds_summary.FRAMEWORKS:
        values = np.array([float(row["test_accuracy"]) for row in rows if row["framework"] == framework])
        described = stats["frameworks"][framework]["test_accuracy"]
        assert described["n"] == 2 and described["mean"] == pytest.approx(values.mean())
        assert described["std"] == pytest.approx(values.std(ddof=1))
        assert (described["min"], described["max"]) == (values.min(), values.max())
    difference = stats["minicnn_minus_keras"]["test_accuracy"]
    assert difference["low"] <= difference["difference"] <= difference["high"]
    assert (published / "test_accuracy_per_epoch.png").stat().st_size > 0


def test_an_unfinished_run_is_refused_unless_allowed(runs, tmp_path, capsys):
    unfinished = tmp_path / "runs"
    shutil.copytree(runs, unfinished)
    settings_path = unfinished / "keras-s1" / "run-settings.json"
    settings_path.write_text(json.dumps(json.loads(settings_path.read_text()) | {"epochs": 5}))
    with pytest.raises(SystemExit) as exit_info:
        seeds_summary.main(["--runs", str(unfinished), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and "2 of 5 epochs done; finish it first" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
