"""The study's recipe in Keras, on minicnn's data: the twin that tells minicnn's result from the recipe's.

    python benchmarks/keras_study.py --data ../shared/data/coronahack --out runs/keras-s0 \
        --image-size 128 --epochs 15 --seed 0 --split-file runs/minicnn-s0/split.csv --record-test-each-epoch

The study wrote its code in Keras; this script is that code as the report describes it: the
network of 17,018,497 parameters (at 300 x 300 x 1), binary cross-entropy, Adam 1e-4, batch 32,
pixels rescaled to [0, 1], Normal = 1. Where the report is silent it makes minicnn's choices, so
that the framework is the only difference:

* the same images: decoded and resized by minicnn's own loader (``minicnn.data.load_split``);
* the same split: ``--split-file`` (the ``split.csv`` of minicnn's run with this seed) or, without
  it, minicnn's ``stratified_split`` with this seed, which gives the same file;
* the same augmentation ranges as ``minicnn.data.ImageAugmenter``: rotation +-10 degrees, shifts
  +-10 %, zoom +-10 % (one factor for both axes), no flip, edge pixels repeated outside the image;
* the same evaluation: minicnn's ``classification_report`` on the test split, threshold 0.5.

What Keras does differently (its preprocessing layers, Keras 3 having no ImageDataGenerator):
it resamples three times (rotate, then shift, then zoom, each with bilinear interpolation)
where minicnn composes one affine map and interpolates once; its initial weights, dropout
masks, augmentation draws and batch order come from its own random generators. Runs of the two
frameworks with one seed are therefore two samples of the same recipe, not paired runs.

It writes what ``examples/train_xray.py`` writes, with the same columns and keys, so that one
results tool reads both: ``history.csv``, ``metrics.json`` (the final weights; a ``best``
section for the lowest val_loss), ``test_predictions.csv``, ``split.csv``, ``test_history.csv``
(with ``--record-test-each-epoch``: for the record only, it chooses nothing), and
``keras_run.json`` (settings, versions, resumes). ``--resume`` continues from the last finished
epoch (``checkpoint.keras``); unlike minicnn's it is **not bit-exact** (the random generators'
state is not saved, and a stopped epoch is trained again from its start), and keras_run.json
counts the resumes.

TensorFlow is needed only to train: every option, the data folder and the split file are
checked first, and a wrong one costs nothing (``error: ...``, exit status 2). Keras is never a
dependency of minicnn: install it in its own environment (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))  # command_line.py, train_xray.py

from command_line import OneLineErrorParser, add_threshold_option, fail  # noqa: E402
from train_xray import (  # noqa: E402
    HISTORY_COLUMNS,
    MAX_IMAGE_SIZE,
    MIN_IMAGE_SIZE,
    SPLIT_COLUMNS,
    TEST_HISTORY_COLUMNS,
    check_data,
    check_numbers,
    check_out_folder,
    describe_data,
    find_data_dir,
    load_data,
    read_rows,
    report_row,
    write_csv,
    write_split,
    write_test_predictions,
    write_text,
)

from minicnn.data.xray import CLASS_NAMES, XrayDataset, stratified_split  # noqa: E402
from minicnn.metrics import classification_report  # noqa: E402

RECORD_FILE = "keras_run.json"
CHECKPOINT_FILE, BEST_FILE = "checkpoint.keras", "best.keras"
# keras_run.json's settings: a resumed run must repeat them, or it is another run.
RUN_SETTINGS = ("image_size", "epochs", "batch_size", "learning_rate", "val_split", "seed", "limit", "split_file")
RESUME_SETTINGS = tuple(name for name in RUN_SETTINGS if name != "epochs")  # --epochs may grow


# ----------------------------------------------------------------------------
# Options and the split: no TensorFlow needed
# ----------------------------------------------------------------------------


def build_parser() -> OneLineErrorParser:
    parser = OneLineErrorParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, metavar="DIR", help="CoronaHack or Kermany folder (as train_xray.py)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--epochs", default=60, metavar="N", help="(default: %(default)s, the study's)")
    parser.add_argument("--batch-size", default=32, metavar="N", help="(default: %(default)s)")
    parser.add_argument("--learning-rate", default=1e-4, metavar="X", help="Adam's step size (default: %(default)s)")
    parser.add_argument(
        "--image-size", default=300, metavar="N", help=f"{MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} (default: %(default)s)"
    )
    parser.add_argument("--val-split", default=0.2, metavar="X", help="held out of train/, stratified (default: 0.2)")
    parser.add_argument("--seed", default=0, metavar="N", help="the split (without --split-file) and Keras's seeds")
    parser.add_argument(
        "--split-file",
        type=Path,
        metavar="CSV",
        help="train and validate on the images named by this split.csv (minicnn's run with the same seed)",
    )
    parser.add_argument("--limit", metavar="N", help="only the first N images of each split (quick runs)")
    parser.add_argument(
        "--record-test-each-epoch",
        action="store_true",
        help="measure the test split after every epoch into test_history.csv (for the record only)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from checkpoint.keras in --out")
    add_threshold_option(parser)
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse and check every option with train_xray.py's rules; a wrong one exits with status 2."""
    args = build_parser().parse_args(argv)
    args.time_budget = None  # check_numbers checks train_xray.py's options, and this one is not offered here
    check_numbers(args)
    return args


def read_split_file(path: Path, train: XrayDataset) -> tuple[np.ndarray, np.ndarray]:
    """The (train, validation) indices into ``train`` that ``path`` (a split.csv) names.

    The file must name exactly the images of ``train``, each with the same label, so that a
    split written for other data, another --limit or another layout is refused, not half used.
    """
    try:
        with open(path, newline="") as file:
            reader = csv.DictReader(file)
            rows = list(reader)
            columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        fail(f"--split-file {path}: cannot be read ({error})")
    if columns != SPLIT_COLUMNS:
        fail(f"--split-file {path}: has the columns {columns}, expected {SPLIT_COLUMNS}")
    position = {name: i for i, name in enumerate(train.frame["file"])}
    listed = [row["file"] for row in rows]
    missing = sorted(set(position) - set(listed))
    unknown = sorted(set(listed) - set(position))
    if missing or unknown or len(listed) != len(position):
        fail(
            f"--split-file {path}: names {len(listed)} images, the training split has {len(position)} "
            f"(not in the file: {missing[:3]}{'...' if len(missing) > 3 else ''}; "
            f"not in the data: {unknown[:3]}{'...' if len(unknown) > 3 else ''}); it was written for other data"
        )
    for row in rows:
        if row["subset"] not in ("train", "validation"):
            fail(f"--split-file {path}: {row['file']} has subset {row['subset']!r}; allowed: train, validation")
        data_label = int(train.labels[position[row["file"]]])
        if str(data_label) != row["label"]:
            fail(f"--split-file {path}: {row['file']} has label {row['label']}, the data says {data_label}")
    is_validation = np.zeros(len(position), dtype=bool)
    is_validation[[position[row["file"]] for row in rows if row["subset"] == "validation"]] = True
    return np.flatnonzero(~is_validation), np.flatnonzero(is_validation)


def check_resume(args: argparse.Namespace) -> dict[str, Any] | None:
    """The record of the run to continue (``--resume``), refused unless these options describe it."""
    record_path = args.out / RECORD_FILE
    if not args.resume:
        return None
    if not (args.out / CHECKPOINT_FILE).is_file() or not record_path.is_file():
        fail(f"--resume: no {CHECKPOINT_FILE} and {RECORD_FILE} in {args.out}; leave out --resume to start afresh")
    record = json.loads(record_path.read_text())
    changed = [name for name in RESUME_SETTINGS if record["settings"].get(name) != settings_of(args).get(name)]
    if changed:
        fail(
            f"--resume: the run in {args.out} was started with "
            + ", ".join(f"{name}={record['settings'].get(name)!r}" for name in changed)
            + "; repeat its options, or give another --out"
        )
    return record


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    settings = {name: getattr(args, name) for name in RUN_SETTINGS}
    settings["split_file"] = None if args.split_file is None else str(args.split_file)
    return settings | {"threshold": args.threshold, "record_test_each_epoch": args.record_test_each_epoch}


# ----------------------------------------------------------------------------
# Keras: the network, the input pipeline, training
# ----------------------------------------------------------------------------


def build_keras_model(keras: Any, image_size: int) -> Any:
    """The study's network in Keras: the same layers, in the same order, as minicnn.models.study_cnn."""
    layer = keras.layers
    return keras.Sequential(
        [
            keras.Input((image_size, image_size, 1)),
            layer.Conv2D(32, 3, activation="relu"),
            layer.MaxPooling2D(2),
            layer.Conv2D(64, 3, activation="relu"),
            layer.MaxPooling2D(2),
            layer.Conv2D(128, 3, activation="relu"),
            layer.MaxPooling2D(2),
            layer.Conv2D(128, 3, activation="relu"),
            layer.MaxPooling2D(2),
            layer.Flatten(),
            layer.Dropout(0.5),
            layer.Dense(512, activation="relu"),
            layer.Dense(1, activation="sigmoid"),
        ]
    )


def build_augmenter(keras: Any, seed: int) -> Any:
    """minicnn's ImageAugmenter ranges as Keras preprocessing layers (active only with training=True)."""
    layer = keras.layers
    return keras.Sequential(
        [
            layer.RandomRotation(10 / 360, fill_mode="nearest", seed=seed),  # a fraction of a full turn
            layer.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed + 1),
            layer.RandomZoom(0.1, fill_mode="nearest", seed=seed + 2),  # width_factor None: one factor, both axes
        ]
    )


def datasets(tf: Any, keras: Any, train: XrayDataset, split: tuple[np.ndarray, np.ndarray], args, shuffle_seed: int):
    """tf.data pipelines: shuffled and augmented training batches; validation batches rescaled only."""
    train_index, val_index = split
    augment = build_augmenter(keras, shuffle_seed)

    def rescale(images, labels):
        return tf.cast(images, tf.float32) / 255.0, tf.cast(labels, tf.float32)

    training = (
        tf.data.Dataset.from_tensor_slices((train.images[train_index], train.labels[train_index]))
        .shuffle(len(train_index), seed=shuffle_seed, reshuffle_each_iteration=True)
        .batch(args.batch_size)
        .map(rescale)
        .map(lambda images, labels: (augment(images, training=True), labels))
        .prefetch(2)
    )
    validation = None
    if len(val_index):
        validation = (
            tf.data.Dataset.from_tensor_slices((train.images[val_index], train.labels[val_index]))
            .batch(args.batch_size)
            .map(rescale)
        )
    return training, validation


def predict_normal(model: Any, images: np.ndarray, batch_size: int) -> np.ndarray:
    """P(Normal) of each image, (N,), from uint8 images (N, S, S, 1)."""
    return model.predict(images.astype(np.float32) / 255.0, batch_size=batch_size, verbose=0).reshape(-1)


def make_epoch_files(keras: Any, args: argparse.Namespace, test: XrayDataset, state: dict[str, Any]) -> Any:
    """A Keras callback that ends every epoch as train_xray.py does: rows, best weights, then the checkpoint."""

    class EpochFiles(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            seconds = time.perf_counter() - self.started
            state["history"].append([epoch + 1, *(logs.get(key, "") for key in HISTORY_COLUMNS[1:-1]), seconds])
            write_csv(args.out / "history.csv", HISTORY_COLUMNS, state["history"])
            if args.record_test_each_epoch:  # for the record only: nothing below reads it
                report = classification_report(
                    test.labels, predict_normal(self.model, test.images, args.batch_size), args.threshold
                )
                state["test_history"].append(report_row(epoch + 1, report))
                write_csv(args.out / "test_history.csv", TEST_HISTORY_COLUMNS, state["test_history"])
            monitor = "val_loss" if "val_loss" in logs else "loss"
            if state["best"] is None or logs[monitor] < state["best"]["value"]:
                save_atomically(self.model, args.out / BEST_FILE)
                state["best"] = {"epoch": epoch + 1, "monitor": monitor, "value": float(logs[monitor])}
            save_atomically(self.model, args.out / CHECKPOINT_FILE)
            state["epochs_done"] = epoch + 1
            state["training_seconds"] += seconds
            write_text(args.out / RECORD_FILE, json.dumps(state["record"] | public(state), indent=2) + "\n")

    return EpochFiles()


def public(state: dict[str, Any]) -> dict[str, Any]:
    return {key: state[key] for key in ("epochs_done", "best", "training_seconds", "resumes")}


def save_atomically(model: Any, path: Path) -> None:
    """Save to a temporary name, then rename: a stop while saving never leaves half a checkpoint."""
    temporary = path.with_name(path.stem + ".partial" + path.suffix)
    model.save(temporary)
    os.replace(temporary, path)


def evaluate(keras: Any, model: Any, test: XrayDataset, args: argparse.Namespace, state: dict[str, Any]) -> dict:
    """metrics.json and test_predictions.csv, with train_xray.py's keys and columns."""
    final = predict_normal(model, test.images, args.batch_size)
    report = classification_report(test.labels, final, threshold=args.threshold)
    best_section, from_best = None, np.full(len(final), np.nan)
    if state["best"] is not None:
        best_model = keras.models.load_model(args.out / BEST_FILE)
        from_best = predict_normal(best_model, test.images, args.batch_size)
        best_section = {
            "file": BEST_FILE,
            **state["best"],
            **classification_report(test.labels, from_best, threshold=args.threshold),
        }
    metrics = {
        "weights": {
            "file": CHECKPOINT_FILE,
            "which": "final",
            "epochs_done": state["epochs_done"],
            "trained": f"after {state['epochs_done']} epochs",
        },
        **report,
        "class_names": {str(label): name for label, name in CLASS_NAMES.items()},
        "model_output": "P(Normal): an X-ray is predicted Normal when it is above the threshold",
        "best": best_section,
        "run": {
            "partial": state["epochs_done"] < args.epochs,
            "epochs_done": state["epochs_done"],
            "epochs_planned": args.epochs,
            "time_budget_s": None,
            "stopped_in_epoch": None,
        },
        "framework": state["record"]["versions"],
    }
    write_text(args.out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_test_predictions(args.out / "test_predictions.csv", test, final, from_best)
    return metrics


def main(argv: list[str] | None = None) -> int:
    """Train and evaluate; 0 when done, 130 when stopped by Ctrl-C (resume with --resume), 2 for a wrong input."""
    args = parse_args(argv)
    data_dir = find_data_dir(args.data)
    check_data(data_dir, args)
    check_out_folder(args.out)
    if args.split_file is not None and not args.split_file.is_file():
        fail(f"--split-file {args.split_file}: no such file")
    previous = check_resume(args)

    started = time.perf_counter()
    train = load_data(data_dir, "train", args)
    test = load_data(data_dir, "test", args)
    split = (
        read_split_file(args.split_file, train)
        if args.split_file
        else stratified_split(train.labels, args.val_split, seed=args.seed)
    )
    print(f"data ready in {time.perf_counter() - started:.1f}s from {data_dir}:")
    describe_data(train, *split, test, args)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up notices, not its errors
    import keras  # noqa: PLC0415 (only now: every check above runs without TensorFlow)
    import tensorflow as tf  # noqa: PLC0415

    args.out.mkdir(parents=True, exist_ok=True)
    versions = {
        "name": "keras",
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "python": sys.version.split()[0],
    }
    if previous is None:
        write_split(args.out / "split.csv", train, *split)
        for name in ("test_history.csv", BEST_FILE, "metrics.json"):
            (args.out / name).unlink(missing_ok=True)
        state = {"epochs_done": 0, "best": None, "training_seconds": 0.0, "resumes": 0}
        keras.utils.set_random_seed(args.seed)
        model = build_keras_model(keras, args.image_size)
        model.compile(
            optimizer=keras.optimizers.Adam(args.learning_rate), loss="binary_crossentropy", metrics=["accuracy"]
        )
    else:
        state = public(previous) | {"resumes": previous["resumes"] + 1}
        # Not bit-exact: fresh generator states, seeded apart from the first stretch's so no draw repeats.
        keras.utils.set_random_seed(args.seed + 1000 * (state["resumes"]))
        model = keras.models.load_model(args.out / CHECKPOINT_FILE)
        print(f"resuming from {args.out / CHECKPOINT_FILE}: {state['epochs_done']} epochs done (not bit-exact)")
    state["record"] = {
        "settings": settings_of(args),
        "versions": versions,
        "images": {"train": len(split[0]), "validation": len(split[1]), "test": len(test.labels)},
        "resume_exact": False,
        "params": int(model.count_params()),
    }
    state["history"] = read_rows(args.out / "history.csv", HISTORY_COLUMNS, state["epochs_done"])
    state["test_history"] = read_rows(args.out / "test_history.csv", TEST_HISTORY_COLUMNS, state["epochs_done"])
    model.summary()

    # A process started in the background inherits an ignored Ctrl-C; the launcher's pause sends one.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    shuffle_seed = args.seed + 1000 * state["resumes"]
    training, validation = datasets(tf, keras, train, split, args, shuffle_seed)
    try:
        model.fit(
            training,
            validation_data=validation,
            epochs=args.epochs,
            initial_epoch=state["epochs_done"],
            callbacks=[make_epoch_files(keras, args, test, state)],
            shuffle=False,  # the training dataset shuffles itself, seeded
            verbose=2,
        )
    except KeyboardInterrupt:
        print(f"\ninterrupted after {state['epochs_done']} epochs; continue with --resume", file=sys.stderr)
        return 130
    metrics = evaluate(keras, model, test, args, state)
    done = state["epochs_done"]
    print(f"test accuracy {metrics['accuracy']:.4f} on {metrics['n_test']} images, final weights after {done} epochs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
