"""Classify chest X-rays with a model trained by train_xray.py.

    python examples/predict_xray.py scan1.jpeg scan2.png --weights runs/xray/best.npz
    python examples/predict_xray.py --sample --weights runs/demo/best.npz   # the 24 bundled test images

Prints, per image, the probability of Normal and the predicted label (and, for the
bundled sample's images, the true label). Images are
prepared exactly as in training: grayscale, resized to the model's input size,
rescaled to [0, 1]. An unreadable file is reported and skipped; the exit code is
then 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import minicnn as mc
from minicnn import backend
from minicnn.data import decode_image, read_metadata, rescale, sample_path
from minicnn.data.xray import CLASS_NAMES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print P(Normal) and the predicted label for chest X-rays.")
    parser.add_argument("images", nargs="*", type=Path, help="image files (JPEG, PNG, ...)")
    parser.add_argument("--sample", action="store_true",
                        help="also classify the 24 test images of the sample shipped with minicnn")
    parser.add_argument("--weights", type=Path, required=True, help="model file: best.npz or checkpoint.npz")
    parser.add_argument("--threshold", type=float, default=0.5, help="P(Normal) above which we say Normal")
    parser.add_argument("--backend", choices=backend.BACKENDS, default="numpy")
    args = parser.parse_args(argv)
    true_labels: dict[Path, str] = {}
    if args.sample:
        test_images = read_metadata(sample_path(), "test")
        true_labels = {Path(path): name for path, name in zip(test_images["path"], test_images["label_name"])}
        args.images += list(true_labels)
    if not args.images:
        parser.error("give image files, or --sample for the bundled test images")
    try:
        backend.set_backend(args.backend)
        model = mc.load_model(args.weights)
    except (backend.BackendError, mc.io.ModelFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    image_size = model.input_shape[0]
    readable, pixels, failed = [], [], 0
    for path in args.images:
        try:
            pixels.append(decode_image(path, image_size))
            readable.append(path)
        except Exception as error:  # Pillow raises OSError, ValueError, ... for bad files
            print(f"{path}: cannot read this image ({type(error).__name__}: {error})", file=sys.stderr)
            failed += 1
    if readable:
        prob_normal = model.predict(rescale(np.stack(pixels)[..., None])).reshape(-1)
        for path, probability in zip(readable, prob_normal):
            label = CLASS_NAMES[int(probability > args.threshold)]
            truth = f"\t(true: {true_labels[path]})" if path in true_labels else ""
            print(f"{path}\tP(Normal) = {probability:.4f}\t{label}{truth}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
