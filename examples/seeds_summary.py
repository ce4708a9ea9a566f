"""Publish the spread over seeds: the same reduced recipe, trained by minicnn and by Keras, several seeds each.

    python examples/seeds_summary.py --runs ~/minicnn-runs --out docs/results/seeds

The runs are those `examples/long_run.sh` queued as ``minicnn-s<seed>`` (examples/train_xray.py)
and ``keras-s<seed>`` (benchmarks/keras_study.py): the study's network and recipe at a smaller
image size and fewer epochs, each with ``--record-test-each-epoch``. This script only reads their
folders and writes small files:

* ``<run>/``: the run's ``history.csv``, ``metrics.json``, ``test_history.csv`` and ``run.json``
  (its settings, its stretches and its process time);
* ``summary.csv``: one row per run (:data:`SUMMARY_COLUMNS`);
* ``statistics.json``: per framework, the mean, standard deviation, minimum and maximum of every
  figure, and minicnn minus Keras as a difference of means with a Welch 95 % confidence interval;
* ``test_accuracy_per_epoch.png``: the test accuracy after every epoch, every run, both frameworks.

The per-epoch test figures are **for the record only**: no run chose anything with them. The
"best test epoch" columns say what picking the epoch on the test split would have reported,
which is how a figure above what the validation-chosen weights give can arise; they are
labelled so wherever they are quoted.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
from study_results import read_stretches

from minicnn.cli.command_line import OneLineErrorParser, fail
from minicnn.cli.train_xray import write_text

RUN_NAME = re.compile(r"^(minicnn|keras)-s(\d+)$")
FRAMEWORKS = ("minicnn", "keras")
STUDY_ACCURACY = 0.921  # the study's reported test accuracy, of its full recipe (300 px, 60 epochs)
COPIED_FILES = ("history.csv", "metrics.json", "test_history.csv")
SUMMARY_COLUMNS = [
    "framework",
    "seed",
    "image_size",
    "epochs",
    "commit",
    "test_accuracy",
    "test_specificity",
    "test_sensitivity",
    "test_roc_auc",
    "val_accuracy",
    "best_test_epoch",
    "best_test_epoch_accuracy",
    "last10_test_accuracy_min",
    "last10_test_accuracy_max",
    "process_seconds",
]
# The figures statistics.json describes per framework (the others are settings or labels).
FIGURES = SUMMARY_COLUMNS[5:]


# ----------------------------------------------------------------------------
# Student's t distribution, for the confidence interval of a difference of means
# ----------------------------------------------------------------------------


def regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b) = B(x; a, b) / B(a, b), by its continued fraction (modified Lentz's method).

    The fraction converges fast for x < (a + 1) / (a + b + 2); above that the symmetry
    I_x(a, b) = 1 - I_{1-x}(b, a) is used instead.
    """
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - regularized_incomplete_beta(1.0 - x, b, a)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),  # the even step d_{2m}
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),  # the odd step d_{2m+1}
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return math.exp(log_front) * fraction / a


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (any real df > 0)."""
    tail = 0.5 * regularized_incomplete_beta(df / (df + t * t), df / 2.0, 0.5)
    return 1.0 - tail if t >= 0 else tail


def student_t_quantile(probability: float, df: float) -> float:
    """The t with P(T <= t) = probability, for 0.5 <= probability < 1, by bisection."""
    low, high = 0.0, 1e6
    for _ in range(200):
        middle = (low + high) / 2.0
        low, high = (middle, high) if student_t_cdf(middle, df) < probability else (low, middle)
    return (low + high) / 2.0


def welch_interval(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> dict[str, float]:
    """mean(a) - mean(b) with Welch's confidence interval (the two samples may differ in spread).

    se = sqrt(s_a^2 / n_a + s_b^2 / n_b); the degrees of freedom are Welch-Satterthwaite's
    se^4 / ((s_a^2/n_a)^2 / (n_a - 1) + (s_b^2/n_b)^2 / (n_b - 1)).
    """
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    difference = float(np.mean(a) - np.mean(b))
    if va + vb == 0:  # both samples constant: no spread to measure
        return {"difference": difference, "low": difference, "high": difference, "df": math.inf, "se": 0.0}
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    se = math.sqrt(va + vb)
    half = student_t_quantile(0.5 + confidence / 2.0, df) * se
    return {"difference": difference, "low": difference - half, "high": difference + half, "df": float(df), "se": se}


# ----------------------------------------------------------------------------
# Reading the runs
# ----------------------------------------------------------------------------


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def summary_row(folder: Path, allow_unfinished: bool) -> dict[str, Any]:
    """One row of summary.csv from one run folder, refusing a run that is unfinished or incomplete."""
    framework, seed = RUN_NAME.match(folder.name).groups()
    for name in (*COPIED_FILES, "run-settings.json", "stretches.jsonl"):
        if not (folder / name).is_file():
            fail(f"--runs: {folder} has no {name}; has this run started, with --record-test-each-epoch?")
    settings = json.loads((folder / "run-settings.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    history, test_history = read_csv(folder / "history.csv"), read_csv(folder / "test_history.csv")
    if metrics["run"]["epochs_done"] < settings["epochs"] and not allow_unfinished:
        fail(f"--runs: {folder}: {metrics['run']['epochs_done']} of {settings['epochs']} epochs done; finish it first")
    if len(test_history) != len(history):
        fail(f"--runs: {folder}: test_history.csv has {len(test_history)} rows, history.csv {len(history)}")
    test_accuracy = np.array([float(row["accuracy"]) for row in test_history])
    best = int(np.argmax(test_accuracy))  # the first of equal maxima
    last10 = test_accuracy[-10:]
    stretches = read_stretches(folder / "stretches.jsonl")
    return {
        "framework": framework,
        "seed": int(seed),
        "image_size": settings["image_size"],
        "epochs": len(history),
        "commit": settings["commit"],
        "test_accuracy": metrics["accuracy"],
        "test_specificity": metrics["specificity"],
        "test_sensitivity": metrics["sensitivity"],
        "test_roc_auc": metrics["roc_auc"],
        "val_accuracy": float(history[-1]["val_accuracy"]),
        "best_test_epoch": int(test_history[best]["epoch"]),
        "best_test_epoch_accuracy": float(test_accuracy[best]),
        "last10_test_accuracy_min": float(last10.min()),
        "last10_test_accuracy_max": float(last10.max()),
        "process_seconds": round(sum(stretch["seconds"] for stretch in stretches)),
    }


def describe(values: np.ndarray) -> dict[str, float]:
    """n, mean, standard deviation (n - 1 in the denominator), minimum, maximum."""
    spread = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return {"n": len(values), "mean": float(np.mean(values)), "std": spread, "min": float(values.min()),
            "max": float(values.max())}  # fmt: skip


def statistics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """statistics.json: each figure described per framework, and minicnn - Keras with a 95 % interval."""
    result: dict[str, Any] = {"confidence": 0.95, "frameworks": {}, "minicnn_minus_keras": {}}
    for framework in FRAMEWORKS:
        chosen = [row for row in rows if row["framework"] == framework]
        result["frameworks"][framework] = {
            figure: describe(np.array([row[figure] for row in chosen], dtype=float)) for figure in FIGURES
        }
    minicnn = [row for row in rows if row["framework"] == "minicnn"]
    keras = [row for row in rows if row["framework"] == "keras"]
    if len(minicnn) >= 2 and len(keras) >= 2:
        for figure in FIGURES:
            a = np.array([row[figure] for row in minicnn], dtype=float)
            b = np.array([row[figure] for row in keras], dtype=float)
            result["minicnn_minus_keras"][figure] = welch_interval(a, b)
    return result


def plot_test_accuracy(runs: list[Path], path: Path) -> None:
    """Test accuracy after every epoch, one line per run, one colour per framework."""
    from matplotlib.ticker import MaxNLocator  # matplotlib only when a figure is drawn

    from minicnn.plots import _new_figure, _save_figure

    figure = _new_figure(7.0, 4.2)
    axes = figure.add_subplot(1, 1, 1)
    colours = {"minicnn": "tab:blue", "keras": "tab:orange"}
    for folder in runs:
        framework = RUN_NAME.match(folder.name).group(1)
        rows = read_csv(folder / "test_history.csv")
        label = framework if framework not in axes.get_legend_handles_labels()[1] else None
        axes.plot([int(r["epoch"]) for r in rows], [float(r["accuracy"]) for r in rows], color=colours[framework],
                  alpha=0.8, label=label)  # fmt: skip
    axes.axhline(STUDY_ACCURACY, color="grey", linestyle="--", label="the study's 92.1 % (full size, 60 epochs)")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.set_ylabel("test accuracy (recorded only, chooses nothing)")
    axes.set_title("Test accuracy after every epoch, every seed")
    axes.grid(alpha=0.3)
    axes.legend()
    _save_figure(figure, path)


def markdown_table(stats: dict[str, Any]) -> str:
    """The per-framework table of the page, in percent (seconds for the process time)."""
    lines = ["| figure | framework | mean | std | min | max |", "|---|---|---|---|---|---|"]
    for figure in FIGURES:
        if figure == "best_test_epoch":
            continue
        scale, unit = (1, " s") if figure == "process_seconds" else (100, " %")
        for framework in FRAMEWORKS:
            d = stats["frameworks"][framework][figure]
            if not d["n"]:
                continue
            cells = [
                f"{d[key] * scale:.1f}{unit}" if d[key] is not None else "n/a" for key in ("mean", "std", "min", "max")
            ]
            lines.append(f"| {figure} | {framework} (n = {d['n']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def runs_table(rows: list[dict[str, Any]]) -> str:
    """One line per run: the final weights' test figures, validation, and the epoch chosen on the test split."""
    lines = [
        "| run | test accuracy | specificity | sensitivity | ROC AUC | val. accuracy "
        "| best test epoch (chosen on test) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        figures = [row[key] for key in ("test_accuracy", "test_specificity", "test_sensitivity", "test_roc_auc")]
        cells = [f"{100 * value:.1f} %" for value in (*figures, row["val_accuracy"])]
        best = f"{100 * row['best_test_epoch_accuracy']:.1f} % (epoch {row['best_test_epoch']})"
        lines.append(f"| {row['framework']}-s{row['seed']} | " + " | ".join(cells) + f" | {best} |")
    return "\n".join(lines) + "\n"


def difference_table(stats: dict[str, Any]) -> str:
    """minicnn minus Keras, in points, with the Welch 95 % interval and its degrees of freedom."""
    lines = ["| figure | minicnn - Keras | 95 % interval | df |", "|---|---|---|---|"]
    for figure, d in stats["minicnn_minus_keras"].items():
        if figure in ("best_test_epoch", "process_seconds"):
            continue
        interval = f"{100 * d['low']:+.1f} to {100 * d['high']:+.1f}"
        lines.append(f"| {figure} | {100 * d['difference']:+.1f} points | {interval} points | {d['df']:.1f} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineErrorParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, required=True, help="the folder of the run folders (RUNS_DIR)")
    parser.add_argument("--out", type=Path, required=True, help="where to write, e.g. docs/results/seeds")
    parser.add_argument("--allow-unfinished", action="store_true", help="include runs that have not reached --epochs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.runs.is_dir():
        fail(f"--runs {args.runs}: no such folder")
    runs = sorted(
        (folder for folder in args.runs.iterdir() if folder.is_dir() and RUN_NAME.match(folder.name)),
        key=lambda folder: (FRAMEWORKS.index(RUN_NAME.match(folder.name).group(1)), int(folder.name.split("-s")[1])),
    )
    if not runs:
        fail(f"--runs {args.runs}: no run folder named minicnn-s<seed> or keras-s<seed> there")
    rows = [summary_row(folder, args.allow_unfinished) for folder in runs]
    recipes = {(row["image_size"], row["epochs"]) for row in rows}
    if len(recipes) > 1:
        fail(f"--runs {args.runs}: the runs differ in image size or epochs {sorted(recipes)}; one recipe per summary")

    args.out.mkdir(parents=True, exist_ok=True)
    for folder in runs:
        (args.out / folder.name).mkdir(exist_ok=True)
        for name in COPIED_FILES:
            shutil.copyfile(folder / name, args.out / folder.name / name)
        record = {
            "settings": json.loads((folder / "run-settings.json").read_text()),
            "stretches": read_stretches(folder / "stretches.jsonl"),
        }
        write_text(args.out / folder.name / "run.json", json.dumps(record, indent=2) + "\n")
    table = io.StringIO()
    writer = csv.DictWriter(table, SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(args.out / "summary.csv", table.getvalue())
    stats = statistics(rows)
    write_text(args.out / "statistics.json", json.dumps(stats, indent=2) + "\n")
    plot_test_accuracy(runs, args.out / "test_accuracy_per_epoch.png")
    print(runs_table(rows))
    print(markdown_table(stats))
    if stats["minicnn_minus_keras"]:
        print(difference_table(stats))
    print(f"{args.out}: {len(rows)} runs ({', '.join(row['framework'] + '-s' + str(row['seed']) for row in rows)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
