"""Publish the study's long run: evaluate its saved weights and write the small result files.

    python examples/study_results.py --run ~/minicnn-runs/study-seed0 \
        --data ../shared/data/coronahack --out docs/results/study

The 60-epoch run is trained over several sessions by a frozen copy of one commit, in a
folder outside the checkout. This script, from the current checkout, only reads that
folder's files:

* ``checkpoint.npz``: the final weights (what the study reports) and the history;
* ``best.npz``: the weights of the lowest val_loss (the per-image predictions need it);
* ``run-settings.json``: the command and its settings, written when the run was started;
* ``stretches.jsonl``: one line per start and stop of the training process (time, frozen
  commit, ``minicnn.__file__``, CPU, versions), written by the launcher.

A run of ``benchmarks/keras_study.py`` (its folder holds ``keras_run.json``) has evaluated
itself: its files are copied and its figures drawn from them, without TensorFlow.

It writes small files only, never the ``.npz`` weights: ``history.csv``, ``metrics.json``
(the final weights on the test split, plus a ``best`` section), ``run.json``, the four
figures of a run (``curves.png``, ``confusion_matrix.png``, ``roc.png``, ``predictions.png``),
``test_predictions.csv``: P(Normal) of every test image under both sets of weights, so
that any further figure about the test split can be recomputed without the weights, and
``validation_metrics.json``: the same figures on the held-out training images.

A run of ``--classes 3`` (Normal 0, bacterial 1, viral 2) is published with its K-class
figures: metrics.json as train_xray.py writes it (3 x 3 confusion matrix, per-class and macro
figures, the bacterial-versus-viral block), the one-vs-rest ROC curves, and three probabilities a
row in test_predictions.csv. The number of classes and the optimiser (Adam, or RMSprop for a run
of ``--optimizer rmsprop``) are read from the checkpoint itself and recorded in run.json's
``recipe``.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

import minicnn as mc
from minicnn.cli.command_line import OneLineErrorParser, fail
from minicnn.cli.train_xray import (
    CLASS_SCHEMES,
    HistoryFile,
    classes_of,
    draw_curves,
    evaluate_on_test,
    load_data,
    predict_outputs,
    read_split_file,
    test_report,
    write_text,
)
from minicnn.data.xray import XrayDataset, stratified_split
from minicnn.files import ModelFileError
from minicnn.plots import plot_confusion_matrix, plot_roc


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineErrorParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="the run folder (checkpoint.npz, best.npz, ...)")
    parser.add_argument("--data", type=Path, required=True, help="the data the run was trained on")
    parser.add_argument("--out", type=Path, required=True, help="where to write, e.g. docs/results/study")
    parser.add_argument("--allow-unfinished", action="store_true", help="publish a run that has not reached --epochs")
    return parser.parse_args(argv)


def read_stretches(path: Path) -> list[dict[str, Any]]:
    """Pair each start with the stop after it: one stretch of training per process.

    A process ended without its stop line (killed with the session) gets an estimated stop,
    marked ``"stop_inferred": true``: the next start, or for the last stretch the last time
    anything in the run folder was written (the progress log is written every batch). A stop
    line written afterwards, from the process's last write (``"inferred": true``), is marked
    the same way.
    """
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    stretches: list[dict[str, Any]] = []
    for event in events:
        if event["event"] == "start":
            if stretches and stretches[-1]["stop"] is None:  # the previous process left no stop line
                stretches[-1].update(stop=event["time"], stop_inferred=True)
            details = {key: value for key, value in event.items() if key not in ("event", "time")}
            stretches.append({"start": event["time"], "stop": None, **details})
        elif stretches and stretches[-1]["stop"] is None:
            stretches[-1].update(stop=event["time"], completed_epochs_at_stop=event.get("completed_epochs"))
            if event.get("inferred"):  # written afterwards, from the process's last write
                stretches[-1].update(stop_inferred=True, stop_note=event.get("note", "the last write of the process"))
    last_write = max(file.stat().st_mtime for file in path.parent.iterdir() if file.is_file())
    for stretch in stretches:
        if stretch["stop"] is None:
            stopped = datetime.fromtimestamp(last_write).astimezone()
            stretch.update(stop=stopped.strftime("%Y-%m-%dT%H:%M:%S%z"), stop_inferred=True)
        started = datetime.strptime(stretch["start"], "%Y-%m-%dT%H:%M:%S%z")
        stopped = datetime.strptime(stretch["stop"], "%Y-%m-%dT%H:%M:%S%z")
        stretch["seconds"] = (stopped - started).total_seconds()
    return stretches


def recipe(model: mc.Sequential) -> dict[str, Any]:
    """run.json's "recipe", read from the checkpoint: the classes and their integers, the loss, the optimiser."""
    classes = classes_of(model)
    compiled = model.get_compile_config() or {}
    return {
        "classes": classes,
        "class_names": {str(label): name for label, name in CLASS_SCHEMES[classes].items()},
        "output": "sigmoid: P(Normal)" if classes == 2 else f"softmax: {classes} class probabilities",
        "loss": compiled.get("loss"),
        "optimizer": compiled.get("optimizer"),
    }


def run_record(
    args: argparse.Namespace,
    model: mc.Sequential,
    stretches: list[dict[str, Any]],
    settings: dict[str, Any],
    split: tuple[np.ndarray, np.ndarray],
) -> dict[str, Any]:
    """run.json: settings, recipe, frozen commit, stretches, versions, image counts and training time."""
    commits = sorted({stretch["commit"] for stretch in stretches})
    train_index, val_index = split
    total = sum(stretch["seconds"] for stretch in stretches)
    return {
        "settings": settings,
        "recipe": recipe(model),
        "commit": commits[0] if len(commits) == 1 else commits,
        "evaluated_by": {"commit": checkout_commit(), "minicnn_file": mc.__file__},
        "stretches": stretches,
        "versions": {key: stretches[0].get(key) for key in ("python", "numpy")} | {"blas": blas_name()},
        "images": {"train": len(train_index), "validation": len(val_index), "test": None},
        "epochs_done": model.completed_epochs,
        # Process time: the time the training process ran, summed over its stretches (not the
        # calendar time from the first start to the last stop, which includes the pauses).
        "training_seconds_total": total,
        "training_seconds_per_epoch": total / model.completed_epochs if model.completed_epochs else None,
    }


def checkout_commit() -> str:
    """The 40-hex commit of the checkout this script runs from (+ a note when it has uncommitted changes)."""
    root = Path(__file__).resolve().parent.parent
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True)
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    return head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def blas_name() -> str:
    """The BLAS this NumPy was built with, e.g. 'scipy-openblas 0.3.31'."""
    config = np.show_config(mode="dicts")
    blas = config.get("Build Dependencies", {}).get("blas", {})
    return f"{blas.get('name', 'unknown')} {blas.get('version', '')}".strip()


def write_validation_metrics(
    path: Path,
    train: XrayDataset,
    val_index: np.ndarray,
    model: mc.Sequential,
    best: mc.Sequential,
    settings: dict[str, Any],
) -> None:
    """validation_metrics.json: the test figures, on the held-out training images instead.

    The run chose nothing on the test split, so the validation images are the only place to see
    how the same weights do on images drawn like their training images. The accuracy here must
    equal history.csv's val_accuracy of the weights' epoch: the same images, weights and threshold
    (or, with 3 classes, the argmax).
    """
    images, labels = train.images[val_index], train.labels[val_index]  # (V, S, S, 1) uint8, (V,)
    sections = {}
    for name, weights in (("final", model), ("best", best)):
        outputs = predict_outputs(weights, images, settings["batch_size"])  # (V,) P(Normal), or (V, 3)
        report = test_report(labels, outputs, threshold_of(settings, weights), train.class_names)
        sections[name] = {"epoch": weights.completed_epochs, **report}
    write_text(path, json.dumps({"images": "the validation split of run.json", **sections}, indent=2) + "\n")


KERAS_FILES = ("keras_run.json", "history.csv", "metrics.json", "test_predictions.csv", "split.csv")


def publish_keras_run(args: argparse.Namespace) -> int:
    """A run of benchmarks/keras_study.py: its own evaluation, published without TensorFlow.

    keras_study.py evaluates its final and best weights itself with minicnn's
    ``classification_report`` and writes ``metrics.json`` and ``test_predictions.csv``; this
    copies them with ``history.csv`` and ``test_history.csv``, writes ``run.json`` and draws
    the figures from those files. ``validation_metrics.json`` would need the weights run
    again, so it is not written for a Keras run.
    """
    for name in (*KERAS_FILES, "run-settings.json", "stretches.jsonl"):
        if not (args.run / name).is_file():
            fail(f"--run {args.run}: no {name} there")
    settings = json.loads((args.run / "run-settings.json").read_text())
    metrics = json.loads((args.run / "metrics.json").read_text())
    keras_run = json.loads((args.run / "keras_run.json").read_text())
    if metrics["run"]["epochs_done"] < settings["epochs"] and not args.allow_unfinished:
        fail(f"--run {args.run}: {metrics['run']['epochs_done']} of {settings['epochs']} epochs done; resume it first")
    stretches = read_stretches(args.run / "stretches.jsonl")
    total = sum(stretch["seconds"] for stretch in stretches)
    commits = sorted({stretch["commit"] for stretch in stretches})
    record = {
        "settings": settings,
        "commit": commits[0] if len(commits) == 1 else commits,
        "evaluated_by": "benchmarks/keras_study.py itself, at the end of its run (minicnn's classification_report)",
        "published_by": {"commit": checkout_commit()},
        "stretches": stretches,
        "versions": keras_run["versions"],
        "images": keras_run["images"],
        "epochs_done": metrics["run"]["epochs_done"],
        "resumes": keras_run["resumes"],
        "resume_exact": False,
        "training_seconds_total": total,
        "training_seconds_per_epoch": total / metrics["run"]["epochs_done"] if metrics["run"]["epochs_done"] else None,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("history.csv", "metrics.json", "test_predictions.csv", "test_history.csv"):
        if (args.run / name).is_file():
            write_text(args.out / name, (args.run / name).read_text())
    write_text(args.out / "run.json", json.dumps(record, indent=2) + "\n")
    with open(args.run / "history.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    history = {key: [float(row[key]) for row in rows if row[key] != ""] for key in rows[0] if key != "epoch"}
    draw_curves(history, args.out)
    matrix = metrics["confusion_matrix"]
    plot_confusion_matrix(np.array(matrix["matrix"]), matrix["labels"], args.out / "confusion_matrix.png")
    with open(args.run / "test_predictions.csv", newline="") as file:
        predictions = list(csv.DictReader(file))
    labels = np.array([int(row["label"]) for row in predictions])
    p_normal = np.array([float(row["p_normal_final"]) for row in predictions])
    plot_roc(
        (labels == 0).astype(int), 1 - p_normal, args.out / "roc.png", title="ROC, Pneumonia as the positive class"
    )
    print(
        f"{args.out}: accuracy {metrics['accuracy']:.4f} on {metrics['n_test']} test images (Keras), "
        f"final weights after {metrics['run']['epochs_done']} epochs"
    )
    return 0


def threshold_of(settings: dict[str, Any], model: mc.Sequential) -> float | None:
    """The run's threshold on P(Normal); None for a K-class run, whose prediction is the argmax."""
    return settings.get("threshold", 0.5) if classes_of(model) == 2 else None


def read_split(args: argparse.Namespace, train: XrayDataset, settings: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The run's (train_index, val_index): its split.csv when it trained on another run's, else drawn from its seed."""
    if settings.get("split_from"):  # it trained on SPLIT_FROM's split.csv, and wrote it again as its own
        return read_split_file(args.run / "split.csv", train.frame["file"].tolist(), train.labels)
    return stratified_split(train.labels, settings["val_split"], seed=settings["seed"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if (args.run / "keras_run.json").is_file():
        return publish_keras_run(args)
    for name in ("checkpoint.npz", "best.npz", "run-settings.json", "stretches.jsonl"):
        if not (args.run / name).is_file():
            fail(f"--run {args.run}: no {name} there")
    try:
        model = mc.load_model(args.run / "checkpoint.npz")
    except ModelFileError as error:
        fail(f"--run: {error}")
    settings = json.loads((args.run / "run-settings.json").read_text())
    if model.completed_epochs < settings["epochs"] and not args.allow_unfinished:
        fail(f"--run {args.run}: {model.completed_epochs} of {settings['epochs']} epochs done; resume it first")
    stretches = read_stretches(args.run / "stretches.jsonl")
    classes = classes_of(model)
    if settings.get("classes", 2) != classes:
        fail(f"--run {args.run}: run-settings.json says --classes {settings['classes']}, the checkpoint has {classes}")
    images = argparse.Namespace(image_size=model.input_shape[0], limit=None, classes=classes)
    train = load_data(args.data, "train", images)
    split = read_split(args, train, settings)
    record = run_record(args, model, stretches, settings, split)

    args.out.mkdir(parents=True, exist_ok=True)
    history = model.history.history
    HistoryFile(args.out / "history.csv", history, model.completed_epochs)  # writes it
    draw_curves(history, args.out)
    test = load_data(args.data, "test", images)
    record["images"]["test"] = len(test.labels)
    evaluation = argparse.Namespace(
        out=args.out, batch_size=settings["batch_size"], threshold=threshold_of(settings, model), seed=settings["seed"]
    )
    run = {
        "partial": model.completed_epochs < settings["epochs"],
        "epochs_done": model.completed_epochs,
        "epochs_planned": settings["epochs"],
        "time_budget_s": None,
        "stopped_in_epoch": None,
    }
    # metrics.json, the figures and test_predictions.csv (both sets of weights: best.npz is there)
    metrics = evaluate_on_test(model, test, evaluation, run, history, best_path=args.run / "best.npz")
    write_text(args.out / "run.json", json.dumps(record, indent=2) + "\n")
    best = mc.load_model(args.run / "best.npz")
    write_validation_metrics(args.out / "validation_metrics.json", train, split[1], model, best, settings)
    if (args.run / "test_history.csv").is_file():  # --record-test-each-epoch: for the record only
        write_text(args.out / "test_history.csv", (args.run / "test_history.csv").read_text())
    print(
        f"{args.out}: accuracy {metrics['accuracy']:.4f} on {metrics['n_test']} test images "
        f"({' / '.join(test.class_names)}), final weights after {model.completed_epochs} epochs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
