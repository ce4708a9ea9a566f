"""Classify chest X-rays with a model trained by train_xray.py.

    python examples/predict_xray.py scan1.jpeg scan2.png --weights runs/xray/best.npz
    python examples/predict_xray.py --sample --weights runs/demo/best.npz   # the 24 bundled test images

Prints, per image, the probability of Normal and the predicted label (and, for the
bundled sample's images, the true label): Normal when P(Normal) > --threshold
(0.5), else Pneumonia. Images are prepared exactly as in training: grayscale,
resized to the model's input size, rescaled to [0, 1].

Every option and path is checked before the model is loaded or any image decoded:
a wrong one gets one line, "error: ...", and exit status 2. A file that exists but
cannot be decoded is reported and skipped; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from command_line import OneLineErrorParser, add_threshold_option, fail, use_backend

import minicnn as mc
from minicnn import backend
from minicnn.data import rescale, sample_path
from minicnn.data.xray import CLASS_NAMES, decode_image, read_metadata
from minicnn.io import ModelFileError


def probability(text: str) -> float:
    """--threshold: a probability strictly between 0 and 1 (at 0 or 1 every X-ray gets the same label)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < 1:  # NaN fails the comparison too
        fail(f"--threshold {text}: must be a probability strictly between 0 and 1")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse and check the options and paths; a wrong one exits with status 2."""
    parser = OneLineErrorParser(description="Print P(Normal) and the predicted label for chest X-rays.")
    parser.add_argument("images", nargs="*", type=Path, help="image files (JPEG, PNG, ...)")
    parser.add_argument(
        "--sample", action="store_true", help="also classify the 24 test images of the sample shipped with minicnn"
    )
    parser.add_argument(
        "--weights",
        type=Path,
        required=True,
        metavar="FILE",
        help="model file written by train_xray.py: best.npz or checkpoint.npz",
    )
    add_threshold_option(parser)
    parser.add_argument(
        "--backend", choices=backend.BACKENDS, default="numpy", help="numpy (CPU) or cupy (GPU) (default: %(default)s)"
    )
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


def main(argv: list[str] | None = None) -> int:
    """Classify the images; returns the exit status (0, or 1 when an image could not be read)."""
    args = parse_args(argv)
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

    readable, pixels, failed = [], [], 0
    for path in args.images:
        try:
            pixels.append(decode_image(path, image_size))
            readable.append(path)
        except Exception as error:  # Pillow raises OSError, ValueError, ... for bad files
            print(f"{path}: cannot read this image ({type(error).__name__}: {error})", file=sys.stderr)
            failed += 1
    if readable:
        prob_normal = np.asarray(model.predict(rescale(np.stack(pixels)[..., None]))).reshape(-1)
        for path, prob in zip(readable, prob_normal, strict=True):
            label = CLASS_NAMES[int(prob > args.threshold)]
            truth = f"\t(true: {true_labels[path]})" if path in true_labels else ""
            print(f"{path}\tP(Normal) = {prob:.4f}\t{label}{truth}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
