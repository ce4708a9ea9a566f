"""Reproduce "Image Classification of Lung X-Ray Scans" end to end with minicnn.

The study trains a VGG-style CNN (17,018,497 parameters) to tell Normal (label 1)
from Pneumonia (label 0) chest X-rays of the Kaggle "CoronaHack Chest X-Ray"
data: 300x300 grayscale inputs rescaled to [0, 1], 20 % of train held out for
validation, light augmentation, binary cross-entropy, Adam 1e-4, batch 32, 60
epochs. It reports 92.1 % test accuracy.

    python examples/train_xray.py --data path/to/coronahack --out runs/study    # from a clone
    minicnn-xray train --data path/to/coronahack --out runs/study             # once minicnn is installed
    minicnn-xray train --demo     # the 72-image sample shipped with minicnn (11-14 s on a 2-core AMD EPYC)

Both commands run this module: examples/train_xray.py is a thin script over it, and
``minicnn-xray train`` (the console script of pyproject.toml, :mod:`minicnn.cli`) calls
:func:`main` too.

The network outputs P(Normal); an X-ray is called Normal when P(Normal) > --threshold
(0.5). The test metrics count Pneumonia, the disease, as the positive class.

Everything lands in --out: history.csv, curves.png, checkpoint.npz (every epoch),
best.npz (lowest val_loss), and on the test split metrics.json,
confusion_matrix.png, roc.png and predictions.png. metrics.json describes the
final weights (checkpoint.npz), as the study reports them, and best.npz in its
"best" section. split.csv names the images of each side of the validation split, so
that another run (benchmarks/keras_study.py) can train on exactly the same ones.
--record-test-each-epoch adds test_history.csv: the test split's figures after every
epoch, for the record only (nothing is ever chosen by them). --resume continues an
interrupted run exactly; Ctrl-C saves a checkpoint first, and so does a spent --time-budget.

Every option is checked before any image is decoded or any folder created: a
wrong one gets one line, "error: ...", and exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import minicnn as mc
from minicnn import backend, losses, optimizers
from minicnn.callbacks import Callback, InterruptAtBatchEnd, ModelCheckpoint
from minicnn.cli.command_line import OneLineErrorParser, add_threshold_option, fail, use_backend
from minicnn.data import Batches, ImageAugmenter, rescale, sample_path
from minicnn.data.xray import (
    CLASS_NAMES,
    XrayDataset,
    detect_layout,
    first_of_each_class,
    load_split,
    read_metadata,
    stratified_split,
)
from minicnn.files import ModelFileError, write_atomic
from minicnn.metrics import classification_report, format_metric
from minicnn.models import MIN_IMAGE_SIZE, study_cnn
from minicnn.plots import plot_confusion_matrix, plot_history, plot_prediction_grid, plot_roc

# Far above the study's 300; beyond it one batch of activations no longer fits a normal machine.
MAX_IMAGE_SIZE = 1024
HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
# test_history.csv (--record-test-each-epoch): classification_report's figures, one row per epoch.
TEST_HISTORY_COLUMNS = ["epoch", "accuracy", "sensitivity", "specificity", "precision", "f1", "roc_auc"]
SPLIT_COLUMNS = ["file", "label", "subset"]  # split.csv: subset is "train" or "validation"
# test_predictions.csv: P(Normal) of each test image under the final and the best weights.
TEST_PREDICTION_COLUMNS = ["file", "label", "p_normal_final", "p_normal_best"]
KAGGLE_HELP = """\
Get the Kaggle "CoronaHack - Chest X-Ray-Dataset":
  1. download it from https://www.kaggle.com/datasets/praveengovi/coronahack-chest-xraydataset
     (or: kaggle datasets download -d praveengovi/coronahack-chest-xraydataset)
  2. unzip it so that one folder holds Chest_xray_Corona_Metadata.csv next to train/ and test/
     (Kaggle nests them as Coronahack-Chest-XRay-Dataset/Coronahack-Chest-XRay-Dataset/{train,test})
  3. pass that folder with --data DIR, set MINICNN_DATA=DIR, or put it at data/coronahack
The Kermany layout (train|test/NORMAL|PNEUMONIA/*.jpeg) works too.
To try the pipeline first, without a download, run this command with --demo instead of --data
(the 72-image sample shipped with minicnn: 11-14 s on a 2-core AMD EPYC, Zen 4)."""
# --demo: the whole pipeline on the bundled 72-image sample, small enough for seconds on 2 cores
# (11-14 s on a 2-core AMD EPYC, Zen 4, when issue 24 measured it).
# It is a demonstration of the outputs, not the study: 38 training images cannot teach this task.
DEMO_SETTINGS = {"image_size": 64, "epochs": 30, "batch_size": 8, "out": Path("runs/demo")}
STUDY_SETTINGS = {"image_size": 300, "epochs": 60, "batch_size": 32, "out": Path("runs/xray")}

# What each numeric option accepts: (int or float, the test, what is allowed, in words).
# parse_args checks them all right after parsing, so a typo costs nothing and leaves nothing behind.
NUMBER_OPTIONS: dict[str, tuple[type, Callable[[Any], bool], str]] = {
    "epochs": (int, lambda n: n >= 1, "must be a whole number of at least 1"),
    "batch_size": (int, lambda n: n >= 1, "must be a whole number of at least 1"),
    "learning_rate": (float, lambda x: 0 < x < math.inf, "must be a number greater than 0"),
    "val_split": (float, lambda x: 0 <= x < 1, "must be a fraction from 0 (no validation) up to, not including, 1"),
    "limit": (int, lambda n: n >= 1, "must be a whole number of at least 1"),
    "image_size": (
        int,
        lambda n: MIN_IMAGE_SIZE <= n <= MAX_IMAGE_SIZE,
        f"must be a whole number from {MIN_IMAGE_SIZE} (the smallest the study's four conv/pool "
        f"stages allow) to {MAX_IMAGE_SIZE}",
    ),
    "threshold": (float, lambda x: 0 < x < 1, "must be a probability strictly between 0 and 1"),
    "seed": (int, lambda n: n >= 0, "must be a whole number of at least 0"),
    "time_budget": (float, lambda x: 0 < x < math.inf, "must be a number of seconds greater than 0"),
}
# The options that shape the training arithmetic besides the image size and the seed (which the
# checkpoint itself records): a resumed run must use the same ones, or it is not the same run.
RESUME_SETTINGS = (
    "batch_size",
    "learning_rate",
    "val_split",
    "limit",
    "no_augment",
    "class_weight",
    "record_test_each_epoch",  # changes no arithmetic, but a resume without it would leave a gap in the record
)
# What a settings.json written before a setting existed means by leaving it out.
RESUME_DEFAULTS = {"record_test_each_epoch": False}
SETTINGS_FILE = "settings.json"


# ----------------------------------------------------------------------------
# Wrong input: one line, exit status 2
# ----------------------------------------------------------------------------


def flag(name: str) -> str:
    """The command-line spelling of an option: "batch_size" -> "--batch-size"."""
    return "--" + name.replace("_", "-")


# ----------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------


def build_study_model(image_size: int = 300, seed: int = 0) -> mc.Sequential:
    """The study's network: :func:`minicnn.models.study_cnn` (kept under this name for older callers).

    Returns
    -------
    mc.Sequential
        Built, not compiled. Its output is P(Normal), the probability of label 1.
    """
    if image_size < MIN_IMAGE_SIZE:  # said in the option's words; study_cnn says it in the library's
        raise ValueError(
            f"--image-size {image_size} is too small for the study's four conv/pool stages: "
            f"the smallest valid size is {MIN_IMAGE_SIZE}"
        )
    return study_cnn(image_size, seed)


# ----------------------------------------------------------------------------
# Options
# ----------------------------------------------------------------------------


def build_parser(prog: str | None = None) -> OneLineErrorParser:
    """The options, with the study's defaults; ``(default: ...)`` is written once, in each help text.

    ``prog`` is the command's name in the usage line ("minicnn-xray train"); by default the script's file name.
    """
    study = STUDY_SETTINGS
    parser = OneLineErrorParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="CoronaHack or Kermany folder (default: $MINICNN_DATA, then data/coronahack)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="a demonstration on the 72-image sample shipped with minicnn (11-14 s on a 2-core AMD EPYC, "
        "Zen 4); it changes the defaults to --image-size 64, --epochs 30, --batch-size 8, --out runs/demo",
    )
    parser.add_argument(
        "--out", type=Path, default=study["out"], metavar="DIR", help="output folder (default: %(default)s)"
    )
    parser.add_argument(
        "--backend", choices=backend.BACKENDS, default="numpy", help="numpy (CPU) or cupy (GPU) (default: %(default)s)"
    )
    # The numbers are read as text here and converted and checked by check_numbers(), so that
    # every wrong value gets the same kind of message: "--epochs 0: must be ...".
    parser.add_argument(
        "--epochs",
        default=study["epochs"],
        metavar="N",
        help="train until N epochs are done (default: %(default)s, the study's)",
    )
    parser.add_argument(
        "--batch-size", default=study["batch_size"], metavar="N", help="images per training step (default: %(default)s)"
    )
    parser.add_argument("--learning-rate", default=1e-4, metavar="X", help="Adam's step size (default: %(default)s)")
    parser.add_argument(
        "--image-size",
        default=study["image_size"],
        metavar="N",
        help=f"side of the square grayscale images, {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} (default: %(default)s)",
    )
    parser.add_argument(
        "--val-split",
        default=0.2,
        metavar="X",
        help="fraction of the training images held out for validation, stratified, in [0, 1) (default: %(default)s)",
    )
    parser.add_argument("--no-augment", action="store_true", help="train without random rotation/shift/zoom")
    parser.add_argument("--class-weight", choices=["balanced"], help="weigh classes by inverse frequency")
    parser.add_argument(
        "--seed",
        default=0,
        metavar="N",
        help="fixes the weights, the validation split, shuffling and augmentation (default: %(default)s)",
    )
    parser.add_argument("--limit", metavar="N", help="use only the first N images of each split (quick runs)")
    add_threshold_option(parser)
    parser.add_argument(
        "--record-test-each-epoch",
        action="store_true",
        help="after every epoch, also measure the test split and add a row to test_history.csv; for the "
        "record only: it chooses nothing (not the weights, not when to stop, not the threshold)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run whose checkpoint.npz is in --out (an error if there is none)",
    )
    parser.add_argument(
        "--time-budget",
        metavar="SECONDS",
        help="stop training after this much wall-clock time (counted once the data is loaded), "
        "save a checkpoint and still evaluate; the result is marked partial",
    )
    return parser


def parse_args(argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    """Parse and check the options; a wrong one exits with status 2 before anything else happens.

    Only the options themselves are checked here; :func:`main` then checks what they point to
    (the data folder, --out, the checkpoint), still before decoding or writing anything.
    """
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.demo:
        if args.data is not None:
            parser.error("--demo trains on the bundled sample; leave out --data")
        # Parse again with the demo's defaults: options given on the command line still win.
        parser.set_defaults(**DEMO_SETTINGS)
        args = parser.parse_args(argv)
        args.data = sample_path()
    check_numbers(args)
    return args


def check_numbers(args: argparse.Namespace) -> None:
    """Convert every numeric option to its type and check it against :data:`NUMBER_OPTIONS`."""
    for name, (kind, allowed, what_is_allowed) in NUMBER_OPTIONS.items():
        value = getattr(args, name)
        if value is None:  # an optional number that was not given (--limit, --time-budget)
            continue
        try:
            number = kind(value)
        except ValueError:
            number = None
        if number is None or not allowed(number):  # NaN fails every comparison, so it lands here too
            fail(f"{flag(name)} {value}: {what_is_allowed}")
        setattr(args, name, number)


# ----------------------------------------------------------------------------
# What the options point to: checked before any image is decoded or any file written
# ----------------------------------------------------------------------------


def find_data_dir(requested: Path | None) -> Path:
    """--data, else $MINICNN_DATA, else data/coronahack.

    A --data that does not exist is a wrong input (exit 2); finding no data at all when none
    was named exits with the instructions for downloading it.
    """
    if requested is not None:
        if not requested.exists():
            fail(f"--data {requested}: no such folder")
        if not requested.is_dir():
            fail(f"--data {requested}: is a file; give the folder that holds train/ and test/")
        return requested
    candidates = [Path(p) for p in (os.environ.get("MINICNN_DATA"), "data/coronahack") if p]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    fail(f"no --data given, and no X-ray data found in the default places (looked in: {tried}).\n{KAGGLE_HELP}")


def usable_labels(data_dir: Path, split: str, limit: int | None) -> np.ndarray:
    """The labels of the images ``load_split`` will try to decode, read from the listing alone.

    The same rows load_split keeps: a known label, a file listed once, a file that exists;
    then --limit. No image is opened, so this is quick even for the full data set.
    """
    frame = read_metadata(data_dir, split)
    frame = frame[frame["label"] >= 0].drop_duplicates("file")
    labels = frame["label"].to_numpy()[[os.path.isfile(path) for path in frame["path"]]]
    if limit is not None and len(labels):
        labels = labels[first_of_each_class(labels, limit)]
    return labels


def check_data(data_dir: Path, args: argparse.Namespace) -> None:
    """Refuse a folder that is not X-ray data, or options that leave no image to train or test on."""
    try:
        detect_layout(data_dir)
        train_labels = usable_labels(data_dir, "train", args.limit)
        test_labels = usable_labels(data_dir, "test", args.limit)
    except (FileNotFoundError, ValueError) as error:  # a wrong layout or an unusable CSV
        fail(f"--data {data_dir}: {error}")
    for split, labels in (("train", train_labels), ("test", test_labels)):
        if len(labels) == 0:
            fail(f"--data {data_dir}: the {split} split lists no image file that exists")
    train_index, _ = stratified_split(train_labels, args.val_split, seed=args.seed)
    if len(train_index) == 0:
        limited = f" (of --limit {args.limit})" if args.limit is not None else ""
        fail(
            f"--val-split {args.val_split}: holds out all {len(train_labels)} training images{limited}, "
            "leaving none to train on; lower --val-split or raise --limit"
        )


def check_out_folder(out: Path) -> None:
    """--out must be a folder we can create or write into."""
    if out.exists() and not out.is_dir():
        fail(f"--out {out}: is a file, not a folder")
    existing = out
    while not existing.exists():  # the nearest folder that exists, where ours would be created
        existing = existing.parent
    if not os.access(existing, os.W_OK):
        fail(f"--out {out}: cannot write in {existing} (no permission)")


def architecture(model: mc.Sequential) -> dict[str, Any]:
    """The model's config without its compile settings: what a checkpoint must share to be resumed."""
    config = {key: value for key, value in model.get_config().items() if key != "compile"}
    return json.loads(json.dumps(config))  # tuples and lists compare alike once both are JSON


def as_option(name: str, value: Any) -> str:
    """A setting as it is spelled on the command line: "--batch-size 32", "--no-augment", "no --limit"."""
    if value is None or value is False:
        return f"no {flag(name)}"
    return flag(name) if value is True else f"{flag(name)} {value}"


def load_checkpoint(args: argparse.Namespace) -> mc.Sequential:
    """The checkpoint in --out, refused (exit 2) unless it is the run these options describe.

    Only the model file and settings.json are read, so a mismatch costs no decoding.
    """
    path = args.out / "checkpoint.npz"
    if not path.is_file():
        fail(
            f"--resume: no checkpoint in {args.out} (looked for {path}); check --out, "
            "or leave out --resume to start a fresh run"
        )
    try:
        model = mc.load_model(path)
    except ModelFileError as error:
        fail(f"--resume: {error}")
    expected = build_study_model(args.image_size, args.seed)
    saved, wanted = architecture(model), architecture(expected)
    if saved.get("input_shape") != wanted["input_shape"]:
        height, width = saved.get("input_shape", ["?", "?"])[:2]
        fail(
            f"--resume: {path} was trained on {height}x{width} images, not --image-size {args.image_size}; "
            "resume with its image size, or give another --out to start afresh"
        )
    if saved.get("seed") != wanted["seed"]:
        fail(f"--resume: {path} was trained with --seed {saved.get('seed')}, not --seed {args.seed}")
    if saved != wanted:
        fail(f"--resume: {path} holds a different network from the study's, which this script trains")
    settings_path = args.out / SETTINGS_FILE
    if not settings_path.is_file():  # a checkpoint written before settings.json existed
        print(
            f"note: {args.out} has no {SETTINGS_FILE}, so the options "
            f"{', '.join(flag(name) for name in RESUME_SETTINGS)} cannot be checked against the first run's"
        )
        return model
    try:
        saved_settings = json.loads(settings_path.read_text())
    except (OSError, ValueError) as error:
        fail(f"--resume: {settings_path} is not readable ({error}); it records the first run's options")
    saved_settings = {**RESUME_DEFAULTS, **saved_settings}
    changed = [name for name in RESUME_SETTINGS if saved_settings.get(name) != getattr(args, name)]
    if changed:
        first_run = ", ".join(as_option(name, saved_settings.get(name)) for name in changed)
        this_run = ", ".join(as_option(name, getattr(args, name)) for name in changed)
        fail(
            f"--resume: the run in {args.out} was started with {first_run}, but this command has {this_run}; "
            "repeat the first run's options, or give another --out to start afresh"
        )
    return model


# ----------------------------------------------------------------------------
# Training pieces
# ----------------------------------------------------------------------------


def training_transform(augment: bool) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """uint8 batch -> float32 in [0, 1], randomly augmented first when ``augment``."""
    augmenter = ImageAugmenter() if augment else None

    def transform(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rescale(augmenter(images, rng) if augmenter else images)

    return transform


def rescale_only(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rescale(images)


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically, like every other output (so it also follows the umask)."""
    write_atomic(path, lambda file: file.write(text.encode()))


def write_csv(path: Path, columns: list[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV file (a header, then ``rows``) atomically: a crash never leaves half a row."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    write_text(path, text.getvalue())


def read_rows(path: Path, columns: list[str], epochs_done: int) -> list[list[str]]:
    """The rows of a history file (history.csv, test_history.csv) for the epochs already done.

    A resumed run keeps these and drops any later row (an epoch that was not finished).
    """
    if not path.is_file():
        return []
    with open(path, newline="") as file:
        return [[row[c] for c in columns] for row in csv.DictReader(file) if int(row["epoch"]) <= epochs_done]


def report_row(epoch: int, report: dict[str, Any]) -> list[Any]:
    """One row of test_history.csv: the epoch (1-based), then classification_report's figures ("" for n/a)."""
    return [epoch, *("" if report[key] is None else report[key] for key in TEST_HISTORY_COLUMNS[1:])]


def write_test_predictions(path: Path, test: XrayDataset, p_final: np.ndarray, p_best: np.ndarray) -> None:
    """test_predictions.csv: file, label (1 = Normal), P(Normal) of the final and of the best weights, (N,) each.

    Nine significant digits write a float32 exactly, so thresholding these columns gives back
    metrics.json's confusion matrices.
    """
    rows = zip(test.frame["file"], (int(label) for label in test.labels), p_final, p_best, strict=True)
    write_csv(path, TEST_PREDICTION_COLUMNS, ([name, label, f"{a:.9g}", f"{b:.9g}"] for name, label, a, b in rows))


class HistoryFile(Callback):
    """Rewrite history.csv after every epoch: one row per epoch done, resumed epochs included.

    Rewriting the whole (small) file atomically, rather than appending a row, means that a
    crash never leaves half a row, and the file always agrees with the checkpoint saved next.
    """

    def __init__(self, path: Path, history: dict[str, list[float]], epochs_done: int) -> None:
        self.path = path
        self.rows = [
            [epoch + 1, *(history.get(key, [""] * epochs_done)[epoch] for key in HISTORY_COLUMNS[1:])]
            for epoch in range(epochs_done)
        ]
        self.write()

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.rows.append([epoch + 1, *(logs.get(key, "") for key in HISTORY_COLUMNS[1:])])
        self.write()

    def write(self) -> None:
        write_csv(self.path, HISTORY_COLUMNS, self.rows)


class TestHistoryFile(Callback):
    """For the record only: the test split's figures after every epoch, in test_history.csv.

    Nothing reads these rows back during training: they choose no weights, no epoch to stop
    at and no threshold. They only show how much the test figure moves from epoch to epoch,
    and what picking the epoch on the test split would have reported (a figure that must
    always be labelled as chosen on the test split). Measuring costs one forward pass over the
    test images per epoch; it draws no random numbers, so the training is the same with it
    or without it. On a resume the rows of the epochs already done are kept.

    Parameters
    ----------
    path : Path
        test_history.csv; columns :data:`TEST_HISTORY_COLUMNS`.
    test : XrayDataset
        The test split (images (N, S, S, 1) uint8, labels (N,)).
    batch_size, threshold
        As for the final evaluation.
    epochs_done : int
        Epochs already trained (a resumed run): their rows are kept, later ones dropped.
    """

    def __init__(self, path: Path, test: XrayDataset, batch_size: int, threshold: float, epochs_done: int) -> None:
        self.path, self.test, self.batch_size, self.threshold = path, test, batch_size, threshold
        self.rows: list[list[Any]] = read_rows(path, TEST_HISTORY_COLUMNS, epochs_done)
        self.write()

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        report = classification_report(
            self.test.labels, predict_normal(self.model, self.test.images, self.batch_size), threshold=self.threshold
        )
        self.rows.append(report_row(epoch + 1, report))
        self.write()

    def write(self) -> None:
        write_csv(self.path, TEST_HISTORY_COLUMNS, self.rows)


def write_split(path: Path, train: XrayDataset, train_index: np.ndarray, val_index: np.ndarray) -> None:
    """split.csv: every training image with its label and its side of the split ("train" or "validation").

    Rows follow the order of ``train.frame``. benchmarks/keras_study.py reads this file, so that
    its run with the same seed trains and validates on exactly the same images.
    """
    subset = np.full(len(train.labels), "train", dtype=object)
    subset[val_index] = "validation"
    assert len(train_index) + len(val_index) == len(subset)
    write_csv(
        path, SPLIT_COLUMNS, zip(train.frame["file"], (int(label) for label in train.labels), subset, strict=True)
    )


class TimeBudgetSpent(Exception):
    """Raised by :class:`TimeBudget` between two batches, to end ``fit`` early."""


class TimeBudget(Callback):
    """Stop training at the end of the first batch that finds ``seconds`` of wall-clock time spent.

    It stops by raising :class:`TimeBudgetSpent` from ``on_train_batch_end``, as
    InterruptAtBatchEnd does for Ctrl-C: ``model.stop_training`` is only looked at between
    epochs, and one epoch of the study takes minutes. At a batch end the weights, the optimiser
    and ``model.partial_epoch`` agree, so a checkpoint saved then resumes exactly.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.stopped_in_epoch: int | None = None  # 1-based, as printed
        self.stopped_after_batch: int | None = None

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self.started = time.monotonic()  # the data is loaded by now: only training counts

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        if time.monotonic() - self.started >= self.seconds:
            self.stopped_in_epoch, self.stopped_after_batch = self.epoch + 1, batch + 1
            raise TimeBudgetSpent


def class_counts(labels: np.ndarray) -> str:
    """'19 Pneumonia, 19 Normal' for an array of 0/1 labels."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(CLASS_NAMES))
    return ", ".join(f"{counts[label]} {name}" for label, name in CLASS_NAMES.items())


def plural(count: int, word: str, words: str | None = None) -> str:
    """'1 epoch', '2 epochs'; ``words`` for an irregular plural ('batches')."""
    return f"{count} {word if count == 1 else words or word + 's'}"


def epochs_done(done: int, planned: int) -> str:
    """'2 of 5 epochs done', '0 of 1 epoch done': the plural follows the planned count."""
    return f"{done} of {plural(planned, 'epoch')} done"


def weights_age(model: mc.Sequential) -> str:
    """How far training got: 'after 2 epochs', or 'after 2 epochs and 3 batches of epoch 3'."""
    text = f"after {plural(model.completed_epochs, 'epoch')}"
    if model.partial_epoch:
        batches, epoch = model.partial_epoch["batches"], model.partial_epoch["epoch"] + 1
        text += f" and {plural(batches, 'batch', 'batches')} of epoch {epoch}"
    return text


# ----------------------------------------------------------------------------
# Test-set evaluation and the report
# ----------------------------------------------------------------------------


def predict_normal(model: mc.Sequential, images: np.ndarray, batch_size: int) -> np.ndarray:
    """P(Normal) for each image, (N,)."""
    source = Batches(
        images,
        np.zeros(len(images), dtype=np.uint8),
        batch_size=batch_size,
        shuffle=False,
        transform=rescale_only,
        prefetch=True,
    )
    return np.asarray(model.predict(source)).reshape(-1)


def evaluate_on_test(
    model: mc.Sequential,
    test: XrayDataset,
    args: argparse.Namespace,
    run: dict[str, Any],
    history: dict[str, list[float]],
    best_path: Path | None = None,
) -> dict[str, Any]:
    """Evaluate the final weights (and best.npz) on the test split; write metrics.json and the figures.

    Everything is written into ``args.out``; best.npz is read from ``best_path`` (default: ``args.out``).

    The final weights are the study's figures: metrics.json's top level, the confusion matrix,
    the ROC curve and the prediction grid. best.npz, when there is one, gets the "best" section.
    """
    prob_normal = predict_normal(model, test.images, args.batch_size)
    report = classification_report(test.labels, prob_normal, threshold=args.threshold)
    metrics = {
        "weights": {
            "file": "checkpoint.npz",
            "which": "final",
            "epochs_done": model.completed_epochs,
            "trained": weights_age(model),
        },
        **report,
        "class_names": {str(label): name for label, name in CLASS_NAMES.items()},
        "model_output": "P(Normal): an X-ray is predicted Normal when it is above the threshold",
        "best": evaluate_best(test, args, history, best_path or args.out / "best.npz"),
        "run": run,
    }
    write_text(args.out / "metrics.json", json.dumps(metrics, indent=2) + "\n")

    matrix = np.array(report["confusion_matrix"]["matrix"])
    plot_confusion_matrix(matrix, report["confusion_matrix"]["labels"], args.out / "confusion_matrix.png")
    if report["roc_auc"] is None:  # a ROC curve needs both classes among the test images
        print(f"note: the test split holds one class only; {args.out / 'roc.png'} not drawn", file=sys.stderr)
    else:
        plot_roc(
            (test.labels == 0).astype(int),
            1 - prob_normal,
            args.out / "roc.png",
            title="ROC, Pneumonia as the positive class",
        )
    shown = np.random.default_rng(args.seed).permutation(len(test.labels))[:16]
    plot_prediction_grid(
        test.images[shown],
        test.labels[shown],
        prob_normal[shown],
        args.out / "predictions.png",
        threshold=args.threshold,
    )
    return metrics


def evaluate_best(
    test: XrayDataset, args: argparse.Namespace, history: dict[str, list[float]], path: Path
) -> dict[str, Any] | None:
    """The "best" section of metrics.json: best.npz (``path``) on the test split, or None when there is none."""
    if not path.is_file():
        return None
    best = mc.load_model(path)
    monitor = "val_loss" if history.get("val_loss") else "loss"
    epoch = best.completed_epochs
    values = history.get(monitor, [])
    report = classification_report(
        test.labels, predict_normal(best, test.images, args.batch_size), threshold=args.threshold
    )
    return {
        "file": "best.npz",
        "epoch": epoch,
        "monitor": monitor,
        "value": values[epoch - 1] if 0 < epoch <= len(values) else None,
        **report,
    }


def figures_line(report: dict[str, Any]) -> str:
    names = {
        "accuracy": "accuracy",
        "sensitivity": "sensitivity",
        "specificity": "specificity",
        "precision": "precision",
        "f1": "F1",
        "roc_auc": "ROC AUC",
    }
    return ", ".join(f"{label} {format_metric(report[key])}" for key, label in names.items())


def print_report(metrics: dict[str, Any], args: argparse.Namespace) -> None:
    """Say which weights the numbers describe, what they mean, and where the files are."""
    print(
        f"\ntest split, {metrics['n_test']} images; Pneumonia is the positive class; an X-ray is called "
        f"Normal when P(Normal) > {args.threshold} (n/a: undefined, e.g. no image of a class)"
    )
    print(
        f"  final weights (checkpoint.npz, {metrics['weights']['trained']}): "
        f"metrics.json, confusion_matrix.png, roc.png, predictions.png"
    )
    print(f"    {figures_line(metrics)}")
    best = metrics["best"]
    if best is None:
        print("  no best.npz: no epoch finished in this run")
    else:
        value = "" if best["value"] is None else f" {best['value']:.4f}"
        print(
            f"  best weights (best.npz, epoch {best['epoch']}, lowest {best['monitor']}{value}): "
            'metrics.json\'s "best" section'
        )
        print(f"    {figures_line(best)}")
    print(f"outputs in {args.out}")


def draw_curves(history: dict[str, list[float]], out: Path) -> None:
    if history.get("loss"):
        plot_history(history, out / "curves.png")
    else:
        print(f"note: no epoch finished, so {out / 'curves.png'} is not drawn", file=sys.stderr)


def run_section(model: mc.Sequential, args: argparse.Namespace, budget: TimeBudget | None) -> dict[str, Any]:
    """metrics.json's "run": whether training ended early, and how far it got."""
    stopped = budget.stopped_in_epoch if budget is not None else None
    return {
        "partial": model.completed_epochs < args.epochs,
        "epochs_done": model.completed_epochs,
        "epochs_planned": args.epochs,
        "time_budget_s": args.time_budget,
        "stopped_in_epoch": stopped,
    }


# ----------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------


def load_data(data_dir: Path, split: str, args: argparse.Namespace) -> XrayDataset:
    """Decode one split (or read it from the cache), with progress bars only on a terminal."""
    return load_split(data_dir, split, image_size=args.image_size, limit=args.limit, progress=sys.stderr.isatty())


def describe_data(
    train: XrayDataset, train_index: np.ndarray, val_index: np.ndarray, test: XrayDataset, args: argparse.Namespace
) -> None:
    """Print what the run trains, validates and tests on, per class (validation is held out of train/)."""
    print(f"  train       {len(train_index):5d} images: {class_counts(train.labels[train_index])}")
    print(
        f"  validation  {len(val_index):5d} images: {class_counts(train.labels[val_index])}"
        f"  (--val-split {args.val_split} of the {len(train.labels)} training images, stratified)"
    )
    print(f"  test        {len(test.labels):5d} images: {class_counts(test.labels)}")


def prepare_out_folder(model: mc.Sequential, args: argparse.Namespace, steps_per_epoch: int) -> None:
    """Create --out and say how this run relates to what is in it: a resume, or a fresh start."""
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = args.out / "checkpoint.npz"
    if args.resume:
        partial = model.partial_epoch
        if partial:
            print(
                f"resuming from {checkpoint_path}: {plural(model.completed_epochs, 'epoch')} done; picking up "
                f"epoch {partial['epoch'] + 1} at batch {partial['batches'] + 1} of {steps_per_epoch}"
            )
        else:
            print(
                f"resuming from {checkpoint_path}: {epochs_done(model.completed_epochs, args.epochs)}; "
                f"picking up at epoch {model.completed_epochs + 1}"
            )
        return
    if checkpoint_path.exists():
        print(
            f"note: {args.out} holds an earlier run; this fresh run replaces it "
            "(add --resume to continue that run instead)"
        )
    # A best.npz from that earlier run would pass for this run's best until this one writes its own.
    (args.out / "best.npz").unlink(missing_ok=True)
    (args.out / "test_history.csv").unlink(missing_ok=True)  # so is an earlier run's per-epoch test record
    settings = {name: getattr(args, name) for name in RESUME_SETTINGS}
    write_text(args.out / SETTINGS_FILE, json.dumps(settings, indent=2) + "\n")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Train and evaluate; returns the exit status (0, or 1 diverged, 130 Ctrl-C; 2 exits earlier).

    ``argv``: the options (default: the command line's); ``prog``: the command's name for --help.
    """
    args = parse_args(argv, prog)
    # Everything the options point to is checked first: no decoding, no folder until all is well.
    use_backend(args.backend)
    data_dir = find_data_dir(args.data)
    check_data(data_dir, args)
    check_out_folder(args.out)
    checkpoint_path = args.out / "checkpoint.npz"
    if args.resume:
        model = load_checkpoint(args)
    else:
        model = build_study_model(args.image_size, args.seed)
        model.compile(
            optimizer=optimizers.Adam(learning_rate=args.learning_rate),
            loss=losses.BinaryCrossentropy(),
            metrics=["accuracy"],
        )

    if args.demo:
        print(
            f"DEMO: {plural(args.epochs, 'epoch')} at {args.image_size}x{args.image_size} on the 72-image sample "
            f"shipped with minicnn ({data_dir}).\nThis shows every output of a real run; it is not the study, "
            "whose figures need the full data set (see README)."
        )
    history = model.history.history if model.history is not None else {}
    if args.resume and model.completed_epochs >= args.epochs:
        print(
            f"nothing left to train: {epochs_done(model.completed_epochs, args.epochs)} in {checkpoint_path}; "
            "reporting its metrics (raise --epochs to train on)"
        )
        test = load_data(data_dir, "test", args)
        draw_curves(history, args.out)
        print_report(evaluate_on_test(model, test, args, run_section(model, args, None), history), args)
        return 0

    started = time.perf_counter()
    train = load_data(data_dir, "train", args)
    test = load_data(data_dir, "test", args)
    train_index, val_index = stratified_split(train.labels, args.val_split, seed=args.seed)
    if len(train_index) == 0 or len(test.labels) == 0:  # every image of a split unreadable
        fail(
            f"--data {data_dir}: no readable image left to {'train' if len(train_index) == 0 else 'test'} on "
            "(see the lines above)"
        )
    print(f"data ready in {time.perf_counter() - started:.1f}s from {data_dir}:")
    describe_data(train, train_index, val_index, test, args)
    train_batches = Batches(
        train.images[train_index],
        train.labels[train_index],
        batch_size=args.batch_size,
        seed=args.seed,
        transform=training_transform(not args.no_augment),
        prefetch=True,
    )
    validation = None
    if len(val_index):
        validation = Batches(
            train.images[val_index],
            train.labels[val_index],
            batch_size=args.batch_size,
            shuffle=False,
            transform=rescale_only,
            prefetch=True,
        )
    print(
        f"backend {backend.backend_name()}, dtype {backend.default_dtype()}, images "
        f"{args.image_size}x{args.image_size} grayscale, batch {args.batch_size} "
        f"({len(train_batches)} steps per epoch), Adam learning rate {args.learning_rate}, "
        f"augmentation {'off' if args.no_augment else 'on'}, class weights {args.class_weight or 'none'}, "
        f"{plural(args.epochs, 'epoch')}"
        + (f", time budget {args.time_budget:g} s" if args.time_budget else "")
        + (", the test split measured after every epoch (for the record only)" if args.record_test_each_epoch else "")
    )
    prepare_out_folder(model, args, len(train_batches))
    if not args.resume:
        write_split(args.out / "split.csv", train, train_index, val_index)
    model.summary()

    best_so_far = min(history.get("val_loss" if validation is not None else "loss", []), default=None)
    budget = TimeBudget(args.time_budget) if args.time_budget else None
    callbacks = [
        HistoryFile(args.out / "history.csv", history, model.completed_epochs),
        ModelCheckpoint(
            args.out / "best.npz",
            monitor="val_loss" if validation is not None else "loss",
            save_best_only=True,
            initial_value_threshold=best_so_far,
        ),
        ModelCheckpoint(checkpoint_path),  # after the CSV row: the checkpoint is what marks an epoch done
        InterruptAtBatchEnd(),  # Ctrl-C stops between two batches, where the state is consistent
        *([budget] if budget else []),
    ]
    if args.record_test_each_epoch:  # before the checkpoint, like history.csv: a saved epoch has its row
        callbacks.insert(
            1,
            TestHistoryFile(
                args.out / "test_history.csv", test, args.batch_size, args.threshold, model.completed_epochs
            ),
        )
    sigint_handler = signal.getsignal(signal.SIGINT)
    try:
        # A progress bar redraws itself with "\r", which floods a log file: one line per epoch there.
        model.fit(
            train_batches,
            epochs=args.epochs,
            validation_data=validation,
            callbacks=callbacks,
            class_weight=args.class_weight,
            initial_epoch=model.completed_epochs,
            verbose=1 if sys.stderr.isatty() else 2,
        )
    except TimeBudgetSpent:
        model.save(checkpoint_path)
    except KeyboardInterrupt:
        model.save(checkpoint_path)
        print(f"\ninterrupted: saved {checkpoint_path}; continue with the same command plus --resume", file=sys.stderr)
        return 130
    except mc.TrainingDivergedError as error:
        print(f"error: {error} The last good checkpoint is {checkpoint_path}.", file=sys.stderr)
        return 1
    finally:
        # When fit ends by an exception, InterruptAtBatchEnd may not get to put back the Ctrl-C handler.
        signal.signal(signal.SIGINT, sigint_handler)

    history = model.history.history
    run = run_section(model, args, budget)
    if budget is not None and budget.stopped_in_epoch is not None:
        print(
            f"\nPARTIAL RESULT: the --time-budget of {args.time_budget:g} s ran out in epoch "
            f"{budget.stopped_in_epoch}, after batch {budget.stopped_after_batch} of {len(train_batches)}; "
            f"{epochs_done(model.completed_epochs, args.epochs)}. Saved {checkpoint_path}; the figures below "
            "describe these unfinished weights. Continue with the same command plus --resume."
        )
    draw_curves(history, args.out)
    print_report(evaluate_on_test(model, test, args, run, history), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
