"""Classify chest X-rays with a model trained by train_xray.py.

    python examples/predict_xray.py scan1.jpeg scan2.png --weights runs/xray/best.npz    # from a clone
    minicnn-xray predict scan1.jpeg scan2.png --weights runs/xray/best.npz             # once installed
    minicnn-xray predict --sample --weights runs/demo/best.npz   # the 24 bundled test images

Prints, per image, the probability of Normal and the predicted label (and, for the
bundled sample's images, the true label): Normal when P(Normal) > --threshold
(0.5), else Pneumonia. Images are prepared exactly as in training: grayscale,
resized to the model's input size, rescaled to [0, 1]. Those lines go to stdout, one per
image, for a script to read; a header before them and a summary line after them (how many
of each label, and how many right where the true label is known) go to stderr.

Every option and path is checked before the model is loaded or any image decoded:
a wrong one gets one line, "error: ...", and exit status 2. A file that exists but
cannot be decoded is reported and skipped; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import minicnn as mc
from minicnn import backend
from minicnn.cli.command_line import OneLineErrorParser, add_threshold_option, fail, use_backend
from minicnn.data import rescale, sample_path
from minicnn.data.xray import CLASS_NAMES, decode_image, read_metadata
from minicnn.files import ModelFileError


def probability(text: str) -> float:
    """--threshold: a probability strictly between 0 and 1 (at 0 or 1 every X-ray gets the same label)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < 1:  # NaN fails the comparison too
        fail(f"--threshold {text}: must be a probability strictly between 0 and 1")
    return value


def build_parser(prog: str | None = None) -> OneLineErrorParser:
    """The options; ``prog`` is the command's name in the usage line ("minicnn-xray predict"), by default the file's."""
    parser = OneLineErrorParser(prog=prog, description="Print P(Normal) and the predicted label for chest X-rays.")
    parser.add_argument("images", nargs="*", type=Path, help="image files (JPEG, PNG, ...)")
    parser.add_argument(
        "--sample", action="store_true", help="also classify the 24 test images of the sample shipped with minicnn"
    )
    parser.add_argument(
        "--weights",
        type=Path,
        required=True,
        metavar="FILE",
        help="model file written by train_xray.py (minicnn-xray train): best.npz or checkpoint.npz",
    )
    add_threshold_option(parser)
    parser.add_argument(
        "--backend", choices=backend.BACKENDS, default="numpy", help="numpy (CPU) or cupy (GPU) (default: %(default)s)"
    )
    return parser


def parse_args(argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    """Parse and check the options and paths; a wrong one exits with status 2."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    args.threshold = probability(args.threshold)
    if not args.images and not args.sample:
        fail("give image files, or --sample for the bundled test images")
    if not args.weights.exists():
        fail(f"--weights {args.weights}: no such file")
    if args.weights.is_dir():
        fail(f"--weights {args.weights}: is a folder; give the model file in it (best.npz or checkpoint.npz)")
    for path in args.images:
        if not path.exists():
            fail(f"{path}: no such file")
        if path.is_dir():
            fail(f"{path}: is a folder; give the image files in it")
    return args


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Classify the images; returns the exit status (0, or 1 when an image could not be read).

    ``argv``: the options (default: the command line's); ``prog``: the command's name for --help.
    """
    args = parse_args(argv, prog)
    use_backend(args.backend)
    try:
        model = mc.load_model(args.weights)
    except ModelFileError as error:  # a text file, an image, a truncated download ...
        fail(f"--weights: {error}")
    true_labels: dict[Path, str] = {}
    if args.sample:
        test_images = read_metadata(sample_path(), "test")
        names = zip(test_images["path"], test_images["label_name"], strict=True)
        true_labels = {Path(path): name for path, name in names}
        args.images += list(true_labels)
    image_size = model.input_shape[0]
    # On stderr, so that stdout holds only the one line per image a script would read.
    print(
        f"{args.weights}: the model after {model.completed_epochs} epochs, {image_size}x{image_size} grayscale "
        f"input; an X-ray is called Normal when P(Normal) > {args.threshold}, else Pneumonia",
        file=sys.stderr,
    )

    readable: list[Path] = []
    pixels: list[np.ndarray] = []
    failed = 0
    for path in args.images:
        try:
            pixels.append(decode_image(path, image_size))
            readable.append(path)
        except Exception as error:  # Pillow raises OSError, ValueError, ... for bad files
            print(f"{path}: cannot read this image ({type(error).__name__}: {error})", file=sys.stderr)
            failed += 1
    predicted: dict[Path, str] = {}
    if readable:
        prob_normal = np.asarray(model.predict(rescale(np.stack(pixels)[..., None]))).reshape(-1)
        for path, prob in zip(readable, prob_normal, strict=True):
            predicted[path] = CLASS_NAMES[int(prob > args.threshold)]
            truth = f"\t(true: {true_labels[path]})" if path in true_labels else ""
            print(f"{path}\tP(Normal) = {prob:.4f}\t{predicted[path]}{truth}")
    print(summary_line(predicted, true_labels, failed), file=sys.stderr)
    return 1 if failed else 0


def summary_line(predicted: dict[Path, str], true_labels: dict[Path, str], failed: int) -> str:
    """'24 images: 13 Normal, 11 Pneumonia; 20 of the 24 with a known label right (83.3 %)'.

    ``predicted`` maps each classified image to its predicted class name, ``true_labels`` the
    bundled sample's images to their true one; ``failed`` counts the images that could not be read.
    """
    counts = ", ".join(f"{sum(label == name for label in predicted.values())} {name}" for name in CLASS_NAMES.values())
    line = f"{len(predicted)} image{'' if len(predicted) == 1 else 's'} classified: {counts}"
    known = [path for path in predicted if path in true_labels]
    if known:
        right = sum(predicted[path] == true_labels[path] for path in known)
        line += f"; {right} of the {len(known)} with a known label right ({100 * right / len(known):.1f} %)"
    if failed:
        line += f"; {failed} not readable"
    return line


if __name__ == "__main__":
    sys.exit(main())
