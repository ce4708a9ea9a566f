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

--classes 3 tells the pneumonias apart, as the study's future work proposes: Normal (0),
bacterial (1), viral (2). The network then ends in Dense(3, softmax), the loss is the
categorical cross-entropy on integer labels, an X-ray gets its most probable class, and
every output is K-class: metrics.json (3 x 3 confusion matrix, per-class recall and precision,
macro averages, one-vs-rest ROC AUC, and the bacterial-versus-viral block), the figures and
test_predictions.csv (three probabilities a row). --optimizer rmsprop swaps Adam for RMSprop.

Everything lands in --out: history.csv, curves.png, checkpoint.npz (every epoch),
best.npz (lowest val_loss), and on the test split metrics.json,
confusion_matrix.png, roc.png, predictions.png and test_predictions.csv. metrics.json describes the
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
import pandas as pd

import minicnn as mc
from minicnn import backend, layers, losses, optimizers
from minicnn.callbacks import Callback, InterruptAtBatchEnd, ModelCheckpoint
from minicnn.cli.command_line import (
    OneLineErrorParser,
    add_threshold_option,
    check_writable_folder,
    fail,
    use_backend,
)
from minicnn.data import Batches, ImageAugmenter, rescale, sample_path
from minicnn.data.xray import (
    CLASS_NAMES,
    THREE_CLASS_NAMES,
    XrayDataset,
    detect_layout,
    first_of_each_class,
    load_split,
    read_metadata,
    stratified_split,
)
from minicnn.files import ModelFileError, write_atomic
from minicnn.metrics import classification_report, confusion_matrix, format_metric, multiclass_report
from minicnn.models import MIN_IMAGE_SIZE, study_cnn
from minicnn.plots import (
    plot_class_prediction_grid,
    plot_confusion_matrix,
    plot_history,
    plot_prediction_grid,
    plot_roc,
    plot_roc_one_vs_rest,
)

# Far above the study's 300; beyond it one batch of activations no longer fits a normal machine.
MAX_IMAGE_SIZE = 1024
HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
# test_history.csv (--record-test-each-epoch): classification_report's figures, one row per epoch.
TEST_HISTORY_COLUMNS = ["epoch", "accuracy", "sensitivity", "specificity", "precision", "f1", "roc_auc"]
# ... and with --classes 3, multiclass_report's: the macro averages, then each class's recall.
THREE_CLASS_TEST_HISTORY_COLUMNS = [
    "epoch",
    "accuracy",
    "macro_recall",
    "macro_precision",
    "macro_f1",
    "macro_roc_auc",
    *(f"recall_{name.lower()}" for name in THREE_CLASS_NAMES.values()),
]
# --classes: the name of each label. 2 is the study's (Pneumonia 0, Normal 1: the sigmoid's one
# output is P(Normal)); 3 numbers Normal 0, bacterial 1, viral 2 (minicnn.data.xray says why).
CLASS_SCHEMES = {2: CLASS_NAMES, 3: THREE_CLASS_NAMES}
# --optimizer: the name on the command line -> the class in minicnn.optimizers.
OPTIMIZER_CLASSES = {"adam": "Adam", "rmsprop": "RMSprop"}
SPLIT_COLUMNS = ["file", "label", "subset"]  # split.csv: subset is "train" or "validation"
# test_predictions.csv: P(Normal) of each test image under the final and the best weights; with
# --classes 3, three probabilities a set of weights (three_class_prediction_columns()).
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
    "classes",
    "optimizer",
    "split_file",
    "augment_on",
    "dropout_masks",
    "tf32",
)
# What a settings.json written before a setting existed means by leaving it out.
RESUME_DEFAULTS = {
    "record_test_each_epoch": False,
    "classes": 2,
    "optimizer": "adam",
    "split_file": None,
    "augment_on": "auto",
    "dropout_masks": "host",
    "tf32": False,
}
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


def build_study_model(image_size: int = 300, seed: int = 0, classes: int = 2) -> mc.Sequential:
    """The study's network: :func:`minicnn.models.study_cnn` (kept under this name for older callers).

    Returns
    -------
    mc.Sequential
        Built, not compiled. Its output is P(Normal), the probability of label 1, (N, 1); with
        ``classes=3`` the probabilities of Normal, bacterial and viral, (N, 3).
    """
    if image_size < MIN_IMAGE_SIZE:  # said in the option's words; study_cnn says it in the library's
        raise ValueError(
            f"--image-size {image_size} is too small for the study's four conv/pool stages: "
            f"the smallest valid size is {MIN_IMAGE_SIZE}"
        )
    return study_cnn(image_size, seed, classes)


def compile_study_model(model: mc.Sequential, args: argparse.Namespace) -> None:
    """The study's recipe: Adam (or --optimizer rmsprop) at --learning-rate, and the loss of --classes.

    2 classes: binary cross-entropy on the sigmoid's P(Normal), -[y log p + (1 - y) log(1 - p)].
    3 classes: categorical cross-entropy on the softmax, -log p_y, with the labels as integers
    (the "sparse" form: no one-hot rows needed).
    """
    optimizer_class = getattr(optimizers, OPTIMIZER_CLASSES[args.optimizer])
    loss = losses.BinaryCrossentropy() if args.classes == 2 else "sparse_categorical_crossentropy"
    model.compile(optimizer=optimizer_class(learning_rate=args.learning_rate), loss=loss, metrics=["accuracy"])


def optimizer_name(args: argparse.Namespace) -> str:
    """'Adam' or 'RMSprop', as the study's text and minicnn.optimizers spell it."""
    return OPTIMIZER_CLASSES[args.optimizer]


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
    parser.add_argument(
        "--learning-rate",
        default=1e-4,
        metavar="X",
        help="the optimiser's step size (Adam's, or RMSprop's with --optimizer rmsprop) (default: %(default)s)",
    )
    parser.add_argument(
        "--optimizer",
        choices=list(OPTIMIZER_CLASSES),
        default="adam",
        help="adam, the study's, or rmsprop, which the study also tried (Keras's form: rho 0.9) (default: %(default)s)",
    )
    parser.add_argument(
        "--classes",
        type=int,
        choices=list(CLASS_SCHEMES),
        default=2,
        help="2: the study's labels, Pneumonia 0 and Normal 1, a sigmoid output P(Normal); 3: Normal 0, "
        "bacterial pneumonia 1, viral pneumonia 2, a softmax output and the categorical cross-entropy, "
        "each X-ray called its most probable class (so no --threshold); with 3, a pneumonia of neither "
        "kind (CoronaHack's 2 Stress-Smoking ARDS X-rays, both in train) is skipped and listed with the "
        "data's problems (default: %(default)s)",
    )
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
    parser.add_argument(
        "--augment-on",
        choices=["auto", "host", "device"],
        default="auto",
        help="where the augmentation warps the batch: auto = on the GPU with --backend cupy, else on the CPU; "
        "the GPU's images equal the CPU's to 0.01 of a grey level (default: %(default)s)",
    )
    parser.add_argument(
        "--dropout-masks",
        choices=["host", "device"],
        default="host",
        help="where dropout draws its masks: host = the same masks on CPU and GPU; device = drawn by the "
        "backend's own generator, faster on a GPU, other masks (default: %(default)s)",
    )
    parser.add_argument(
        "--tf32",
        action="store_true",
        help="let CuPy's float32 products round their factors to TF32 (GPU only; off: full float32)",
    )
    parser.add_argument(
        "--class-weight",
        choices=["balanced"],
        help="weigh classes by inverse frequency (each of the 2 or 3 classes: n / (K n_k))",
    )
    parser.add_argument(
        "--seed",
        default=0,
        metavar="N",
        help="fixes the weights, the validation split, shuffling and augmentation (default: %(default)s)",
    )
    parser.add_argument("--limit", metavar="N", help="use only the first N images of each split (quick runs)")
    parser.add_argument(
        "--split-file",
        metavar="FILE",
        help="train and validate on the sides of split.csv of another run (its images must be this run's "
        "training images, with the same labels) instead of drawing the split from --seed",
    )
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
    check_classes_options(args, argv, prog)
    return args


def check_classes_options(args: argparse.Namespace, argv: list[str] | None, prog: str | None) -> None:
    """With --classes 3 the prediction is the argmax: a --threshold given is refused, and none is kept.

    Whether --threshold was given is seen by parsing once more with no default for it (argparse
    also accepts abbreviations such as --thr, which a look for the word would miss).
    """
    if args.classes == 2:
        return
    probe = build_parser(prog)
    probe.set_defaults(threshold=None)
    if probe.parse_args(argv).threshold is not None:
        fail(
            f"--threshold {args.threshold}: with --classes {args.classes} each X-ray is called its most probable "
            "class, so there is no threshold; leave out --threshold (it applies to --classes 2 only)"
        )
    args.threshold = None


def check_numbers(args: argparse.Namespace) -> None:
    """Convert every numeric option to its type and check it against :data:`NUMBER_OPTIONS`."""
    for name, (kind, allowed, what_is_allowed) in NUMBER_OPTIONS.items():
        value = getattr(args, name)
        if value is None:  # an optional number that was not given (--limit, --time-budget, --threshold of 3 classes)
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


def usable_labels(data_dir: Path, split: str, limit: int | None, classes: int = 2) -> np.ndarray:
    """The labels of the images ``load_split`` will try to decode, read from the listing alone.

    The same rows load_split keeps: a known label (with 3 classes, a known kind of pneumonia), a
    file listed once, a file that exists; then --limit. No image is opened, so this is quick even
    for the full data set.
    """
    return usable_rows(data_dir, split, limit, classes)["label"].to_numpy()


def usable_rows(data_dir: Path, split: str, limit: int | None, classes: int = 2) -> pd.DataFrame:
    """The rows of the listing behind :func:`usable_labels` (columns as :func:`minicnn.data.xray.read_metadata`)."""
    frame = read_metadata(data_dir, split, classes)
    frame = frame[frame["label"] >= 0].drop_duplicates("file")
    frame = frame[[os.path.isfile(path) for path in frame["path"]]]
    if limit is not None and len(frame):
        frame = frame.iloc[first_of_each_class(frame["label"].to_numpy(), limit)]
    return frame


def check_data(data_dir: Path, args: argparse.Namespace) -> None:
    """Refuse a folder that is not X-ray data, or options that leave no image to train or test on."""
    classes = getattr(args, "classes", 2)  # benchmarks/keras_study.py's options have no --classes
    try:
        detect_layout(data_dir)
        train_labels = usable_labels(data_dir, "train", args.limit, classes)
        test_labels = usable_labels(data_dir, "test", args.limit, classes)
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


def check_split_file(data_dir: Path, args: argparse.Namespace) -> None:
    """--split-file must exist and fit the training images as listed (checked again once they are decoded)."""
    if args.split_file is None:
        return
    if not Path(args.split_file).is_file():
        fail(f"--split-file {args.split_file}: no such file")
    rows = usable_rows(data_dir, "train", args.limit, args.classes)
    read_split_file(Path(args.split_file), rows["file"].tolist(), rows["label"].to_numpy())


def check_out_folder(out: Path) -> None:
    """--out must be a folder we can create or write into."""
    check_writable_folder("--out", out)


def architecture(model: mc.Sequential) -> dict[str, Any]:
    """The model's config without its compile settings: what a checkpoint must share to be resumed."""
    config = {key: value for key, value in model.get_config().items() if key != "compile"}
    return json.loads(json.dumps(config))  # tuples and lists compare alike once both are JSON


def classes_of(model: mc.Sequential) -> int:
    """How many classes the study's network tells apart: 2 for one sigmoid output, else its outputs."""
    outputs = int(np.prod(model.output_shape))
    return 2 if outputs == 1 else outputs


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
    expected = build_study_model(args.image_size, args.seed, args.classes)
    saved, wanted = architecture(model), architecture(expected)
    if saved.get("input_shape") != wanted["input_shape"]:
        height, width = saved.get("input_shape", ["?", "?"])[:2]
        fail(
            f"--resume: {path} was trained on {height}x{width} images, not --image-size {args.image_size}; "
            "resume with its image size, or give another --out to start afresh"
        )
    if saved.get("seed") != wanted["seed"]:
        fail(f"--resume: {path} was trained with --seed {saved.get('seed')}, not --seed {args.seed}")
    saved_classes = classes_of(model)
    if saved_classes != args.classes:
        fail(
            f"--resume: {path} was trained with --classes {saved_classes}, not --classes {args.classes}; "
            "resume with its --classes, or give another --out to start afresh"
        )
    saved_optimizer = type(model.optimizer).__name__ if model.optimizer is not None else None
    if saved_optimizer != optimizer_name(args):
        shown = {name: option for option, name in OPTIMIZER_CLASSES.items()}.get(saved_optimizer, saved_optimizer)
        fail(
            f"--resume: {path} was trained with --optimizer {shown}, not --optimizer {args.optimizer}; "
            "resume with its --optimizer, or give another --out to start afresh"
        )
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


AUGMENT_ON_DEVICE = {"auto": None, "host": False, "device": True}
"""--augment-on as ImageAugmenter's ``device`` argument (None: on the GPU when the backend is CuPy)."""


def training_transform(
    augment: bool, augment_on: str = "auto"
) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """uint8 batch -> float32 in [0, 1], randomly augmented first when ``augment`` (where: --augment-on)."""
    augmenter = ImageAugmenter(device=AUGMENT_ON_DEVICE[augment_on]) if augment else None

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


def test_history_columns(classes: int) -> list[str]:
    """The columns of test_history.csv for --classes 2 or 3."""
    return TEST_HISTORY_COLUMNS if classes == 2 else THREE_CLASS_TEST_HISTORY_COLUMNS


def flat_figures(report: dict[str, Any]) -> dict[str, Any]:
    """A report's figures under the names of test_history.csv: multiclass_report's per-class recalls flattened."""
    figures = dict(report)
    for name, values in report.get("per_class", {}).items():
        figures[f"recall_{name.lower()}"] = values["recall"]
    return figures


def report_row(epoch: int, report: dict[str, Any], columns: list[str] = TEST_HISTORY_COLUMNS) -> list[Any]:
    """One row of test_history.csv: the epoch (1-based), then the report's figures ("" for n/a)."""
    figures = flat_figures(report)
    return [epoch, *("" if figures[key] is None else figures[key] for key in columns[1:])]


def three_class_prediction_columns(class_names: Sequence[str]) -> list[str]:
    """test_predictions.csv's columns with K classes: file, label, p_<class>_final each, p_<class>_best each."""
    return [
        "file",
        "label",
        *(f"p_{name.lower()}_final" for name in class_names),
        *(f"p_{name.lower()}_best" for name in class_names),
    ]


def write_test_predictions(path: Path, test: XrayDataset, p_final: np.ndarray, p_best: np.ndarray) -> None:
    """test_predictions.csv: file, label, then the model's outputs under the final and the best weights.

    2 classes: P(Normal) (label 1 = Normal) of each set of weights, ``p_final`` and ``p_best``
    (N,) each. K classes: ``p_final`` and ``p_best`` (N, K), one column per class and set of
    weights (:func:`three_class_prediction_columns`; labels 0 Normal, 1 bacterial, 2 viral).
    Nine significant digits write a float32 exactly, so thresholding (or taking the argmax of)
    these columns gives back metrics.json's confusion matrices.
    """
    p_final, p_best = np.asarray(p_final), np.asarray(p_best)
    labels = [int(label) for label in test.labels]
    if p_final.ndim == 1:
        columns = TEST_PREDICTION_COLUMNS
        values = np.stack([p_final, p_best], axis=1)  # (N, 2)
    else:
        columns = three_class_prediction_columns(test.class_names)
        values = np.concatenate([p_final, p_best], axis=1)  # (N, 2K)
    rows = zip(test.frame["file"], labels, values, strict=True)
    write_csv(path, columns, ([name, label, *(f"{p:.9g}" for p in row)] for name, label, row in rows))


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
        As for the final evaluation (threshold None with 3 classes: the argmax).
    epochs_done : int
        Epochs already trained (a resumed run): their rows are kept, later ones dropped.
    """

    def __init__(
        self, path: Path, test: XrayDataset, batch_size: int, threshold: float | None, epochs_done: int
    ) -> None:
        self.path, self.test, self.batch_size, self.threshold = path, test, batch_size, threshold
        self.columns = test_history_columns(len(test.class_names))
        self.rows: list[list[Any]] = read_rows(path, self.columns, epochs_done)
        self.write()

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        outputs = predict_outputs(self.model, self.test.images, self.batch_size)
        report = test_report(self.test.labels, outputs, self.threshold, self.test.class_names)
        self.rows.append(report_row(epoch + 1, report, self.columns))
        self.write()

    def write(self) -> None:
        write_csv(self.path, self.columns, self.rows)


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


def read_split_file(path: Path, files: Sequence[str], labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train_index, val_index) of the training images as another run's split.csv (--split-file) assigns them.

    The file must name exactly this run's training images, each with the label this run gives it
    (so a 2-class run's split.csv does not fit a 3-class run, which skips two images and numbers
    the classes otherwise); anything else is refused (exit 2), naming what differs.

    Parameters
    ----------
    path : Path
        The split.csv, columns :data:`SPLIT_COLUMNS`.
    files : sequence of str, (N,)
        The training images' file names (``XrayDataset.frame["file"]``).
    labels : numpy.ndarray of shape (N,)
        Their labels.

    Returns
    -------
    tuple of numpy.ndarray of int, (T,) and (V,)
        Indices into ``files``, increasing.
    """
    try:
        with open(path, newline="") as file:
            reader = csv.DictReader(file)
            rows = list(reader)
            columns = reader.fieldnames
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        fail(f"--split-file {path}: cannot be read ({error})")
    if columns != SPLIT_COLUMNS:
        fail(f"--split-file {path}: has the columns {columns}, expected {SPLIT_COLUMNS}")
    position = {name: index for index, name in enumerate(files)}
    listed = {row["file"] for row in rows}
    if len(listed) != len(rows) or listed != set(position):
        missing, extra = len(set(position) - listed), len(listed - set(position))
        fail(
            f"--split-file {path}: names {len(rows)} images, the training split has {len(position)} "
            f"({missing} of them not in the file, {extra} in the file not among them, "
            f"{len(rows) - len(listed)} listed twice); it was written for other data or other --classes"
        )
    in_validation = np.zeros(len(position), dtype=bool)
    for row in rows:
        index = position[row["file"]]
        if row["label"] != str(int(labels[index])):
            fail(
                f"--split-file {path}: {row['file']} has label {row['label']}, here {int(labels[index])}; "
                "it was written for other --classes"
            )
        if row["subset"] not in ("train", "validation"):
            fail(f"--split-file {path}: {row['file']} has subset {row['subset']!r}; allowed: train, validation")
        in_validation[index] = row["subset"] == "validation"
    return np.flatnonzero(~in_validation), np.flatnonzero(in_validation)


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


def class_counts(labels: np.ndarray, class_names: dict[int, str] = CLASS_NAMES) -> str:
    """'19 Pneumonia, 19 Normal' for an array of 0/1 labels; '24 Normal, 12 bacterial, 12 viral' for 3 classes."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    return ", ".join(f"{counts[label]} {name}" for label, name in class_names.items())


def class_counts_legend(class_names: Sequence[str]) -> str:
    """'Normal 0, bacterial 1, viral 2': each class's integer label."""
    return ", ".join(f"{name} {label}" for label, name in enumerate(class_names))


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


def predict_outputs(model: mc.Sequential, images: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's output for each image: P(Normal), (N,), for 2 classes; the K probabilities, (N, K), for K."""
    source = Batches(
        images,
        np.zeros(len(images), dtype=np.uint8),
        batch_size=batch_size,
        shuffle=False,
        transform=rescale_only,
        prefetch=True,
    )
    outputs = np.asarray(model.predict(source))
    return outputs.reshape(-1) if classes_of(model) == 2 else outputs.reshape(len(images), -1)


def predict_normal(model: mc.Sequential, images: np.ndarray, batch_size: int) -> np.ndarray:
    """P(Normal) for each image, (N,): the study's one sigmoid output."""
    return predict_outputs(model, images, batch_size).reshape(-1)


def test_report(
    labels: np.ndarray, outputs: np.ndarray, threshold: float | None, class_names: Sequence[str]
) -> dict[str, Any]:
    """The figures of one set of weights on some images (the test split, or the validation split).

    2 classes, ``labels`` (N,) 0/1 and ``outputs`` P(Normal) (N,): :func:`minicnn.metrics.classification_report`
    at ``threshold``, Pneumonia the positive class. 3 classes, ``labels`` (N,) 0/1/2 and ``outputs``
    (N, 3): :func:`minicnn.metrics.multiclass_report` (the argmax), plus :func:`bacterial_versus_viral`.
    ``class_names``: the name of label 0, 1, ... (used with 3 classes).
    """
    if outputs.ndim == 1:
        return classification_report(labels, outputs, threshold=threshold)
    report = multiclass_report(labels, outputs, class_names)
    return {**report, "bacterial_vs_viral": bacterial_versus_viral(labels, outputs)}


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None (undefined, "n/a") when the denominator is 0."""
    return float(numerator / denominator) if denominator else None


def kind_block(matrix: np.ndarray) -> dict[str, Any]:
    """The figures of a 2 x 2 bacterial (row/column 0) versus viral (1) matrix, viral the positive class.

    accuracy = (TN + TP) / n; sensitivity = TP / (TP + FN), the viral X-rays called viral;
    specificity = TN / (TN + FP), the bacterial X-rays called bacterial.
    """
    (bacterial_bacterial, bacterial_viral), (viral_bacterial, viral_viral) = matrix.tolist()
    total = int(matrix.sum())
    return {
        "labels": ["bacterial", "viral"],
        "rows": "actual",
        "columns": "predicted",
        "matrix": matrix.tolist(),
        "n": total,
        "accuracy": ratio(bacterial_bacterial + viral_viral, total),
        "sensitivity": ratio(viral_viral, viral_bacterial + viral_viral),
        "specificity": ratio(bacterial_bacterial, bacterial_bacterial + bacterial_viral),
    }


def bacterial_versus_viral(labels: np.ndarray, prob: np.ndarray) -> dict[str, Any]:
    """metrics.json's "bacterial_vs_viral": how well the 3-class network tells the two pneumonias apart.

    Two 2 x 2 matrices, viral the positive class (so sensitivity is the viral X-rays called viral,
    specificity the bacterial ones called bacterial):

    * ``sub_matrix``: rows and columns 1-2 (bacterial, viral) of the 3 x 3 confusion matrix: the
      pneumonias the network also called a pneumonia (those it called Normal are left out, and
      counted in ``pneumonias_called_normal``);
    * ``forced_choice``: every pneumonia of the test split, called bacterial or viral by the larger
      of P(bacterial) and P(viral) (a tie is bacterial, as the argmax takes the first): the figure of
      a network that is only asked "which kind", as in Kermany et al. (2018), whose bacterial-versus-
      viral model saw pneumonias only.

    Parameters
    ----------
    labels : numpy.ndarray of shape (N,)
        0 Normal, 1 bacterial, 2 viral.
    prob : numpy.ndarray of shape (N, 3)
        The softmax output, columns in the same order.
    """
    matrix = confusion_matrix(labels, prob.argmax(axis=1), labels=range(3))
    pneumonia = labels > 0
    called_viral = (prob[pneumonia, 2] > prob[pneumonia, 1]).astype(np.int64)
    forced = confusion_matrix(labels[pneumonia] - 1, called_viral, labels=(0, 1))
    return {
        "positive_class": "viral",
        "sensitivity_means": "viral X-rays called viral: TP / (TP + FN)",
        "specificity_means": "bacterial X-rays called bacterial: TN / (TN + FP)",
        "sub_matrix": kind_block(matrix[1:, 1:]),
        "pneumonias_called_normal": int(matrix[1:, 0].sum()),
        "forced_choice": kind_block(forced),
    }


def evaluate_on_test(
    model: mc.Sequential,
    test: XrayDataset,
    args: argparse.Namespace,
    run: dict[str, Any],
    history: dict[str, list[float]],
    best_path: Path | None = None,
) -> dict[str, Any]:
    """Evaluate the final weights (and best.npz) on the test split; write metrics.json, the figures, the predictions.

    Everything is written into ``args.out``; best.npz is read from ``best_path`` (default: ``args.out``).
    The number of classes is the test split's (``test.class_names``); ``args.threshold`` is None for 3.

    The final weights are the study's figures: metrics.json's top level, the confusion matrix,
    the ROC curve(s) and the prediction grid. best.npz, when there is one, gets the "best" section.
    test_predictions.csv holds both sets of outputs (not written without best.npz).
    """
    outputs = predict_outputs(model, test.images, args.batch_size)
    report = test_report(test.labels, outputs, args.threshold, test.class_names)
    best, best_outputs = evaluate_best(test, args, history, best_path or args.out / "best.npz")
    three_classes = outputs.ndim == 2
    metrics = {
        "weights": {
            "file": "checkpoint.npz",
            "which": "final",
            "epochs_done": model.completed_epochs,
            "trained": weights_age(model),
        },
        **report,
        "classes": len(test.class_names),
        "class_names": {str(label): name for label, name in enumerate(test.class_names)},
        "model_output": (
            "softmax: P(Normal), P(bacterial), P(viral); an X-ray is predicted its most probable class"
            if three_classes
            else "P(Normal): an X-ray is predicted Normal when it is above the threshold"
        ),
        "best": best,
        "run": run,
    }
    if not three_classes:  # the binary metrics.json as it always was: no new key among the study's
        del metrics["classes"]
    write_text(args.out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    if best_outputs is not None:  # its columns are of both sets of weights
        write_test_predictions(args.out / "test_predictions.csv", test, outputs, best_outputs)

    matrix = np.array(report["confusion_matrix"]["matrix"])
    plot_confusion_matrix(matrix, report["confusion_matrix"]["labels"], args.out / "confusion_matrix.png")
    shown = np.random.default_rng(args.seed).permutation(len(test.labels))[:16]
    if three_classes:
        plot_roc_one_vs_rest(test.labels, outputs, args.out / "roc.png", test.class_names)
        plot_class_prediction_grid(
            test.images[shown], test.labels[shown], outputs[shown], args.out / "predictions.png", test.class_names
        )
        return metrics
    if report["roc_auc"] is None:  # a ROC curve needs both classes among the test images
        print(f"note: the test split holds one class only; {args.out / 'roc.png'} not drawn", file=sys.stderr)
    else:
        plot_roc(
            (test.labels == 0).astype(int),
            1 - outputs,
            args.out / "roc.png",
            title="ROC, Pneumonia as the positive class",
        )
    plot_prediction_grid(
        test.images[shown],
        test.labels[shown],
        outputs[shown],
        args.out / "predictions.png",
        threshold=args.threshold,
    )
    return metrics


def evaluate_best(
    test: XrayDataset, args: argparse.Namespace, history: dict[str, list[float]], path: Path
) -> tuple[dict[str, Any] | None, np.ndarray | None]:
    """The "best" section of metrics.json and best.npz's outputs on the test split; (None, None) without best.npz."""
    if not path.is_file():
        return None, None
    best = mc.load_model(path)
    monitor = "val_loss" if history.get("val_loss") else "loss"
    epoch = best.completed_epochs
    values = history.get(monitor, [])
    outputs = predict_outputs(best, test.images, args.batch_size)
    section = {
        "file": "best.npz",
        "epoch": epoch,
        "monitor": monitor,
        "value": values[epoch - 1] if 0 < epoch <= len(values) else None,
        **test_report(test.labels, outputs, args.threshold, test.class_names),
    }
    return section, outputs


def figures_line(report: dict[str, Any]) -> str:
    """The report's headline figures in one line ("n/a" for an undefined one)."""
    if "per_class" in report:
        names = {
            "accuracy": "accuracy",
            "macro_recall": "macro recall",
            "macro_precision": "macro precision",
            "macro_f1": "macro F1",
            "macro_roc_auc": "macro ROC AUC",
        }
        line = ", ".join(f"{label} {format_metric(report[key])}" for key, label in names.items())
        recalls = ", ".join(f"{name} {format_metric(values['recall'])}" for name, values in report["per_class"].items())
        kinds = report["bacterial_vs_viral"]
        blocks = [
            f"\n    bacterial vs viral, viral positive, {label}: accuracy {format_metric(kinds[key]['accuracy'])}, "
            f"sensitivity {format_metric(kinds[key]['sensitivity'])}, "
            f"specificity {format_metric(kinds[key]['specificity'])}"
            for key, label in (("sub_matrix", "the 2x2 block"), ("forced_choice", "every pneumonia"))
        ]
        return f"{line}\n    recall: {recalls}{''.join(blocks)}"
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
    if "per_class" in metrics:
        classes = ", ".join(f"{name} ({label})" for label, name in metrics["class_names"].items())
        print(
            f"\ntest split, {metrics['n_test']} images; each X-ray is called its most probable class of "
            f"{classes} (n/a: undefined, e.g. no image of a class)"
        )
    else:
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
    """Decode one split (or read it from the cache), with progress bars only on a terminal.

    ``args.classes`` (2 when absent) chooses the labels: see :func:`minicnn.data.xray.load_split`.
    """
    return load_split(
        data_dir,
        split,
        image_size=args.image_size,
        limit=args.limit,
        progress=sys.stderr.isatty(),
        classes=getattr(args, "classes", 2),
    )


def describe_data(
    train: XrayDataset, train_index: np.ndarray, val_index: np.ndarray, test: XrayDataset, args: argparse.Namespace
) -> None:
    """Print what the run trains, validates and tests on, per class (validation is held out of train/)."""
    names = dict(enumerate(train.class_names))
    split_file = getattr(args, "split_file", None)
    how = f"--split-file {split_file}, of the" if split_file else f"--val-split {args.val_split} of the"
    print(f"  train       {len(train_index):5d} images: {class_counts(train.labels[train_index], names)}")
    print(
        f"  validation  {len(val_index):5d} images: {class_counts(train.labels[val_index], names)}"
        f"  ({how} {len(train.labels)} training images{'' if split_file else ', stratified'})"
    )
    print(f"  test        {len(test.labels):5d} images: {class_counts(test.labels, names)}")


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
    # For the reader only (resume compares RESUME_SETTINGS): what each label of --classes means.
    settings["class_names"] = {str(label): name for label, name in CLASS_SCHEMES[args.classes].items()}
    settings["computation"] = backend.run_settings()  # for the reader too: backend, dtype, TF32
    write_text(args.out / SETTINGS_FILE, json.dumps(settings, indent=2) + "\n")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Train and evaluate; returns the exit status (0, or 1 diverged, 130 Ctrl-C; 2 exits earlier).

    ``argv``: the options (default: the command line's); ``prog``: the command's name for --help.
    """
    args = parse_args(argv, prog)
    # Everything the options point to is checked first: no decoding, no folder until all is well.
    args.tf32 = args.tf32 or backend.tf32_enabled()  # MINICNN_TF32=1 in the environment asks for it too
    if args.tf32:
        if args.backend != "cupy":
            fail(
                f"--tf32 (or MINICNN_TF32=1) changes CuPy's products only; it needs --backend cupy, "
                f"got --backend {args.backend}"
            )
        backend.set_tf32(True)  # before the backend's first product, which fixes CuPy's choice
    use_backend(args.backend)
    data_dir = find_data_dir(args.data)
    check_data(data_dir, args)
    check_split_file(data_dir, args)
    check_out_folder(args.out)
    checkpoint_path = args.out / "checkpoint.npz"
    if args.resume:
        model = load_checkpoint(args)
    else:
        model = build_study_model(args.image_size, args.seed, args.classes)
        for layer in model.layers:
            if isinstance(layer, layers.Dropout):
                layer.masks_on_device = args.dropout_masks == "device"
        compile_study_model(model, args)

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
    if args.split_file is not None:
        train_index, val_index = read_split_file(Path(args.split_file), train.frame["file"].tolist(), train.labels)
    else:
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
        transform=training_transform(not args.no_augment, args.augment_on),
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
        f"({len(train_batches)} steps per epoch), {optimizer_name(args)} learning rate {args.learning_rate}, "
        f"augmentation {'off' if args.no_augment else 'on'}, class weights {args.class_weight or 'none'}, "
        f"{plural(args.epochs, 'epoch')}"
        + (f", {args.classes} classes ({class_counts_legend(train.class_names)})" if args.classes != 2 else "")
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
