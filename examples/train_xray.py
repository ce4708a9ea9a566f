"""Reproduce "Image Classification of Lung X-Ray Scans" end to end with minicnn.

The study trains a VGG-style CNN (17,018,497 parameters) to tell Normal (label 1)
from Pneumonia (label 0) chest X-rays of the Kaggle "CoronaHack Chest X-Ray"
data: 300x300 grayscale inputs rescaled to [0, 1], 20 % of train held out for
validation, light augmentation, binary cross-entropy, Adam 1e-4, batch 32, 60
epochs. It reports 92.1 % test accuracy.

    python examples/train_xray.py --data path/to/coronahack --out runs/study
    python examples/train_xray.py --demo     # under a minute, on the 72-image sample shipped with minicnn

Everything lands in --out: history.csv, curves.png, checkpoint.npz (every epoch),
best.npz (lowest val_loss), and on the test split metrics.json,
confusion_matrix.png, roc.png and predictions.png. --resume continues an
interrupted run exactly; Ctrl-C saves a checkpoint first.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import minicnn as mc
from minicnn import backend, layers, losses, optimizers
from minicnn.callbacks import CSVLogger, InterruptAtBatchEnd, ModelCheckpoint
from minicnn.data import Batches, ImageAugmenter, load_split, rescale, sample_path, stratified_split
from minicnn.data.xray import CLASS_NAMES
from minicnn.metrics import classification_report
from minicnn.plots import plot_confusion_matrix, plot_history, plot_prediction_grid, plot_roc

# Four (3x3 valid conv, 2x2 pool) stages shrink s to floor((s - 2) / 2) each; 46 is the
# smallest size that still leaves one pixel after the fourth stage (46 -> 22 -> 10 -> 4 -> 1).
MIN_IMAGE_SIZE = 46
HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
KAGGLE_HELP = """\
No X-ray data found. Get the Kaggle "CoronaHack - Chest X-Ray-Dataset":
  1. download it from https://www.kaggle.com/datasets/praveengovi/coronahack-chest-xraydataset
     (or: kaggle datasets download -d praveengovi/coronahack-chest-xraydataset)
  2. unzip it so that one folder holds Chest_xray_Corona_Metadata.csv next to train/ and test/
     (Kaggle nests them as Coronahack-Chest-XRay-Dataset/Coronahack-Chest-XRay-Dataset/{train,test})
  3. pass that folder with --data DIR, set MINICNN_DATA=DIR, or put it at data/coronahack
The Kermany layout (train|test/NORMAL|PNEUMONIA/*.jpeg) works too.
To try the pipeline first, without a download: python examples/train_xray.py --demo
(a minute on the 72-image sample shipped with minicnn)."""
# --demo: the whole pipeline on the bundled 72-image sample, small enough for a minute on 2 cores.
# It is a demonstration of the outputs, not the study: 38 training images cannot teach this task.
DEMO_SETTINGS = {"image_size": 64, "epochs": 30, "batch_size": 8, "out": Path("runs/demo")}
STUDY_SETTINGS = {"image_size": 300, "epochs": 60, "batch_size": 32, "out": Path("runs/xray")}


def build_study_model(image_size: int = 300, seed: int = 0) -> mc.Sequential:
    """The study's network: four Conv2D/MaxPool2D stages, Dropout(0.5), Dense(512), Dense(1, sigmoid)."""
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(
            f"--image-size {image_size} is too small for the study's four conv/pool stages: "
            f"the smallest valid size is {MIN_IMAGE_SIZE}"
        )
    return mc.Sequential([
        layers.Conv2D(32, 3, activation="relu", input_shape=(image_size, image_size, 1)),
        layers.MaxPool2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPool2D(2),
        layers.Conv2D(128, 3, activation="relu"),
        layers.MaxPool2D(2),
        layers.Conv2D(128, 3, activation="relu"),
        layers.MaxPool2D(2),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(512, activation="relu"),
        layers.Dense(1, activation="sigmoid"),
    ], seed=seed)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=Path, help="CoronaHack or Kermany folder (default: $MINICNN_DATA, "
                        "then data/coronahack)")
    parser.add_argument("--backend", choices=backend.BACKENDS, default="numpy")
    parser.add_argument("--demo", action="store_true",
                        help="a one-minute demonstration on the 72-image sample shipped with minicnn "
                        "(--image-size 64, --epochs 30, --batch-size 8, --out runs/demo unless given)")
    parser.add_argument("--epochs", type=int, help="default: 60 (the study)")
    parser.add_argument("--batch-size", type=int, help="default: 32 (the study)")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--image-size", type=int, help="default: 300 (the study)")
    parser.add_argument("--val-split", type=float, default=0.2, help="fraction of train held out, stratified")
    parser.add_argument("--no-augment", action="store_true", help="train without random rotation/shift/zoom")
    parser.add_argument("--class-weight", choices=["balanced"], help="weigh classes by inverse frequency")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="output folder (default: runs/xray)")
    parser.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.npz")
    parser.add_argument("--limit", type=int, help="use only the first N images of each split (quick runs)")
    parser.add_argument("--threshold", type=float, default=0.5, help="P(Normal) above which we say Normal")
    args = parser.parse_args(argv)
    settings = DEMO_SETTINGS if args.demo else STUDY_SETTINGS
    for key, value in settings.items():  # options given on the command line win
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.demo:
        if args.data is not None:
            parser.error("--demo trains on the bundled sample; leave out --data")
        args.data = sample_path()
    return args


def find_data_dir(requested: Path | None) -> Path:
    """--data, else $MINICNN_DATA, else data/coronahack; exit with instructions when none exists."""
    candidates = [requested] if requested else [Path(p) for p in (os.environ.get("MINICNN_DATA"), "data/coronahack") if p]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    sys.exit(f"{KAGGLE_HELP}\n(looked in: {tried})")


def training_transform(augment: bool):
    """uint8 batch -> float32 in [0, 1], randomly augmented first when ``augment``."""
    augmenter = ImageAugmenter() if augment else None

    def transform(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rescale(augmenter(images, rng) if augmenter else images)

    return transform


def rescale_only(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rescale(images)


def write_history_csv(path: Path, history: dict[str, list[float]]) -> None:
    """Rewrite history.csv from the checkpoint's history (the source of truth when resuming)."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(HISTORY_COLUMNS)
        for epoch in range(len(history.get("loss", []))):
            writer.writerow([epoch + 1, *(history.get(key, [""] * (epoch + 1))[epoch] for key in HISTORY_COLUMNS[1:])])


def evaluate_on_test(model: mc.Sequential, test, args: argparse.Namespace) -> dict:
    """Predict the test split and write metrics.json and the three figures."""
    source = Batches(test.images, test.labels, batch_size=args.batch_size, shuffle=False,
                     transform=rescale_only, prefetch=True)
    prob_normal = model.predict(source).reshape(-1)
    report = classification_report(test.labels, prob_normal, threshold=args.threshold)
    report["class_names"] = {str(label): name for label, name in CLASS_NAMES.items()}
    (args.out / "metrics.json").write_text(json.dumps(report, indent=2))
    matrix = np.array(report["confusion_matrix"]["matrix"])
    plot_confusion_matrix(matrix, report["confusion_matrix"]["labels"], args.out / "confusion_matrix.png")
    if report["roc_auc"] is None:  # a ROC curve needs both classes among the test images
        print(f"note: the test split holds one class only; {args.out / 'roc.png'} not drawn", file=sys.stderr)
    else:
        plot_roc((test.labels == 0).astype(int), 1 - prob_normal, args.out / "roc.png",
                 title="ROC, Pneumonia as the positive class")
    shown = np.random.default_rng(args.seed).permutation(len(test.labels))[:16]
    plot_prediction_grid(test.images[shown], test.labels[shown], prob_normal[shown], args.out / "predictions.png",
                         threshold=args.threshold)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        backend.set_backend(args.backend)  # fail now, not after an hour of decoding
        model = build_study_model(args.image_size, args.seed)
    except (backend.BackendError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    data_dir = find_data_dir(args.data)
    if args.demo:
        print(f"DEMO: {args.epochs} epochs at {args.image_size}x{args.image_size} on the 72-image sample "
              f"shipped with minicnn ({data_dir}).\nThis shows every output of a real run; it is not the study, "
              "whose figures need the full data set (see README).")
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = args.out / "checkpoint.npz"

    started = time.perf_counter()
    try:
        train = load_split(data_dir, "train", image_size=args.image_size, limit=args.limit)
        test = load_split(data_dir, "test", image_size=args.image_size, limit=args.limit)
    except (FileNotFoundError, ValueError) as error:  # a wrong folder or an unusable CSV
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"data ready in {time.perf_counter() - started:.1f}s: {len(train.labels)} train, {len(test.labels)} test")
    train_index, val_index = stratified_split(train.labels, args.val_split, seed=args.seed)
    train_batches = Batches(train.images[train_index], train.labels[train_index], batch_size=args.batch_size,
                            seed=args.seed, transform=training_transform(not args.no_augment), prefetch=True)
    validation = None
    if len(val_index):
        validation = Batches(train.images[val_index], train.labels[val_index], batch_size=args.batch_size,
                             shuffle=False, transform=rescale_only, prefetch=True)

    initial_epoch = 0
    if args.resume and checkpoint_path.exists():
        model = mc.load_model(checkpoint_path)
        if model.input_shape != (args.image_size, args.image_size, 1):
            print(f"error: {checkpoint_path} was trained at {model.input_shape}, not --image-size {args.image_size}",
                  file=sys.stderr)
            return 2
        initial_epoch = model.completed_epochs
        print(f"resuming from {checkpoint_path}: {initial_epoch} epochs done")
    else:
        model.compile(optimizer=optimizers.Adam(learning_rate=args.learning_rate),
                      loss=losses.BinaryCrossentropy(), metrics=["accuracy"])
    model.summary()

    history = model.history.history if model.history is not None else {}
    write_history_csv(args.out / "history.csv", history)
    best_so_far = min(history.get("val_loss", []), default=None)
    monitor = "val_loss" if validation is not None else "loss"
    callbacks = [
        CSVLogger(args.out / "history.csv", append=True),
        ModelCheckpoint(args.out / "best.npz", monitor=monitor, save_best_only=True,
                        initial_value_threshold=best_so_far),
        ModelCheckpoint(checkpoint_path),  # after the CSV row: the checkpoint is what marks an epoch done
        InterruptAtBatchEnd(),  # Ctrl-C stops between two batches, where the state is consistent
    ]
    try:
        model.fit(train_batches, epochs=args.epochs, validation_data=validation, callbacks=callbacks,
                  class_weight=args.class_weight, initial_epoch=initial_epoch)
    except KeyboardInterrupt:
        model.save(checkpoint_path)
        print(f"\ninterrupted: saved {checkpoint_path}; continue with the same command plus --resume",
              file=sys.stderr)
        return 130
    except mc.model.TrainingDivergedError as error:
        print(f"error: {error} The last good checkpoint is {checkpoint_path}.", file=sys.stderr)
        return 1

    plot_history(model.history.history, args.out / "curves.png")
    report = evaluate_on_test(model, test, args)
    print(f"test: accuracy {report['accuracy']:.4f}, sensitivity {report['sensitivity']:.4f}, "
          f"specificity {report['specificity']:.4f}, ROC AUC "
          f"{'n/a' if report['roc_auc'] is None else format(report['roc_auc'], '.4f')} (n={report['n_test']}); "
          f"outputs in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
