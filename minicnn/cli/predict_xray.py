"""Classify chest X-rays with a model trained by train_xray.py, and show where it looks (Grad-CAM).

    python examples/predict_xray.py scan1.jpeg scan2.png --weights runs/xray/best.npz    # from a clone
    minicnn-xray predict scan1.jpeg scan2.png --weights runs/xray/best.npz             # once installed
    minicnn-xray predict --sample --weights runs/demo/best.npz   # the 24 bundled test images
    minicnn-xray predict scan1.jpeg --weights runs/xray/best.npz --explain heatmaps    # + Grad-CAM PNGs

Prints one line per image (and, for the bundled sample's images, the true label):

* a binary model (train_xray.py's default, one sigmoid output): the probability of Normal and
  the predicted label, Normal when P(Normal) > --threshold (0.5), else Pneumonia;
* a 3-class model (``--classes 3``, a softmax over Normal 0, bacterial 1, viral 2): the three
  probabilities, each with its class name, and the most probable class. There is no
  threshold then, and a --threshold given is refused.

Images are prepared exactly as in training: grayscale, resized to the model's input size,
rescaled to [0, 1]. Those lines go to stdout, one per image, for a script to read; a header
before them and a summary line after them (how many of each class, and how many right where
the true label is known) go to stderr.

``--explain FOLDER`` also writes, per image, FOLDER/<file name without its extension>_gradcam.png:
the X-ray as the network saw it (at its input size), and beside it the same X-ray with its
Grad-CAM heatmap overlaid (:func:`minicnn.explain.grad_cam`, from the last convolution), for
each image's predicted class, or for the class named by ``--explain-target``. Like every
output of train_xray.py, each file is written atomically and replaces a file of that name.

Every option and path is checked before any image is decoded (those that depend on the model,
such as --threshold for a 3-class one, right after it is loaded): a wrong one gets one line,
"error: ...", and exit status 2. A file that exists but cannot be decoded is reported and
skipped; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import minicnn as mc
from minicnn import backend
from minicnn.cli.command_line import (
    OneLineErrorParser,
    add_threshold_option,
    check_writable_folder,
    fail,
    use_backend,
)
from minicnn.data import rescale, sample_path
from minicnn.data.xray import CLASS_NAMES, THREE_CLASS_NAMES, decode_image, read_metadata
from minicnn.explain import grad_cam
from minicnn.files import ModelFileError, write_atomic
from minicnn.layers import Conv2D

DEFAULT_THRESHOLD = 0.5
"""P(Normal) above which a binary model calls an X-ray Normal, when --threshold is not given."""
EXPLAIN_SUFFIX = "_gradcam.png"
"""What --explain appends to an input's file name without its extension: scan1.jpeg -> scan1_gradcam.png."""
PREDICTED = "predicted"
"""--explain-target's value for "each image's own predicted class"."""
HEATMAP_OPACITY = 0.5
"""How much of the colour a pixel of heat 1 takes in the overlay (heat 0 leaves the X-ray as it is)."""


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
    parser = OneLineErrorParser(
        prog=prog,
        description="Print P(Normal) and the predicted label for chest X-rays (a 3-class model: the probability "
        "of each class and the most probable one); optionally write Grad-CAM heatmaps.",
    )
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
        "--explain",
        type=Path,
        metavar="FOLDER",
        help=f"write each X-ray beside its Grad-CAM heatmap overlay to FOLDER/NAME{EXPLAIN_SUFFIX} (NAME: the image's "
        "file name without its extension; a file of that name is replaced), created if needed",
    )
    parser.add_argument(
        "--explain-target",
        metavar="CLASS",
        help=f"the class whose evidence the heatmaps show: {PREDICTED} (each image's predicted class, used when "
        "this option is left out), Normal or Pneumonia for a binary model, Normal, bacterial or viral for a "
        "3-class one",
    )
    parser.add_argument(
        "--backend", choices=backend.BACKENDS, default="numpy", help="numpy (CPU) or cupy (GPU) (default: %(default)s)"
    )
    return parser


def parse_args(argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    """Parse and check the options and paths; a wrong one exits with status 2.

    ``args.threshold`` is None when --threshold was not given (a binary model then uses
    :data:`DEFAULT_THRESHOLD`; a 3-class model has none). Whether it was given is seen by
    parsing once more with no default for it (argparse also accepts abbreviations such as
    --thr, which a look for the word would miss), as train_xray.py does.
    """
    args = build_parser(prog).parse_args(argv)
    probe = build_parser(prog)
    probe.set_defaults(threshold=None)
    args.threshold = probe.parse_args(argv).threshold
    if args.threshold is not None:
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
    if args.explain_target is not None and args.explain is None:
        fail(f"--explain-target {args.explain_target}: give --explain FOLDER too (where the heatmaps go)")
    if args.explain is not None:
        check_writable_folder("--explain", args.explain)
    return args


def heatmap_paths(folder: Path, images: list[Path]) -> dict[Path, Path]:
    """Each input image -> FOLDER/<its name without extension>_gradcam.png; two inputs sharing one is refused.

    Refused too: a heatmap that would replace one of the input images themselves.
    """
    paths: dict[Path, Path] = {}
    owner: dict[Path, Path] = {}  # heatmap file -> the first image that would write it
    inputs = {image.resolve() for image in images}
    for image in dict.fromkeys(images):  # an image given twice is written once
        target = folder / f"{image.stem}{EXPLAIN_SUFFIX}"
        if target in owner and owner[target].resolve() != image.resolve():
            fail(
                f"--explain {folder}: {owner[target]} and {image} would both be written to {target}; "
                "rename one of them or explain them in two runs"
            )
        if target.resolve() in inputs:
            fail(f"--explain {folder}: {target} would replace the input image {target}; choose another folder")
        owner[target] = image
        paths[image] = target
    return paths


def class_names_of(model: mc.Sequential, weights: Path) -> dict[int, str]:
    """The class names of the model's outputs: CLASS_NAMES for one sigmoid unit, THREE_CLASS_NAMES for three."""
    units = int(np.prod(model.output_shape))
    if units == 1:
        return CLASS_NAMES
    if units == len(THREE_CLASS_NAMES):
        return THREE_CLASS_NAMES
    fail(
        f"--weights {weights}: the model has {units} outputs; train_xray.py's models have 1 (P(Normal)) "
        f"or 3 (Normal, bacterial, viral)"
    )


def check_model_options(args: argparse.Namespace, model: mc.Sequential, class_names: dict[int, str]) -> None:
    """The options that depend on the model: --threshold (binary only), --explain-target, --explain's Conv2D.

    Sets ``args.threshold`` (None for 3 classes) and ``args.explain_class`` (a class index, or None
    for each image's predicted class).
    """
    if len(class_names) == 2:
        args.threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    elif args.threshold is not None:
        fail(
            f"--threshold {args.threshold}: {args.weights} is a 3-class model (Normal, bacterial, viral); each "
            "X-ray is called its most probable class, so there is no threshold; leave out --threshold"
        )
    args.explain_class = None
    if args.explain_target is not None and args.explain_target.lower() != PREDICTED:
        by_name = {name.lower(): label for label, name in class_names.items()}
        if args.explain_target.lower() not in by_name:
            allowed = ", ".join([PREDICTED, *class_names.values()])
            fail(f"--explain-target {args.explain_target}: must be one of {allowed} for this model ({args.weights})")
        args.explain_class = by_name[args.explain_target.lower()]
    if args.explain is not None and not any(isinstance(layer, Conv2D) for layer in model.layers):
        fail(f"--explain: {args.weights} has no Conv2D layer, so Grad-CAM has no feature maps to weigh")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Classify the images (and write their heatmaps); returns the exit status (0, or 1: an image was not readable).

    ``argv``: the options (default: the command line's); ``prog``: the command's name for --help.
    """
    args = parse_args(argv, prog)
    use_backend(args.backend)
    try:
        model = mc.load_model(args.weights)
    except ModelFileError as error:  # a text file, an image, a truncated download ...
        fail(f"--weights: {error}")
    class_names = class_names_of(model, args.weights)
    check_model_options(args, model, class_names)
    true_labels: dict[Path, str] = {}
    if args.sample:
        # The true label in this model's classes: Normal / Pneumonia, or Normal / bacterial / viral.
        test_images = read_metadata(sample_path(), "test", classes=len(class_names))
        names = zip(test_images["path"], test_images["label_name"], strict=True)
        true_labels = {Path(path): name for path, name in names}
        args.images += list(true_labels)
    explain_paths = heatmap_paths(args.explain, args.images) if args.explain is not None else {}
    image_size = model.input_shape[0]
    # On stderr, so that stdout holds only the one line per image a script would read.
    if len(class_names) == 2:
        rule = f"an X-ray is called Normal when P(Normal) > {args.threshold}, else Pneumonia"
    else:
        rule = f"each X-ray is called its most probable class ({', '.join(class_names.values())})"
    print(
        f"{args.weights}: the model after {model.completed_epochs} epochs, {image_size}x{image_size} grayscale "
        f"input; {rule}",
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
        inputs = rescale(np.stack(pixels)[..., None])  # (N, S, S, 1) in [0, 1]
        outputs = np.asarray(backend.to_numpy(model.predict(inputs))).reshape(len(readable), -1)  # (N, 1) or (N, 3)
        labels = predicted_labels(outputs, args.threshold)
        for path, output, label in zip(readable, outputs, labels, strict=True):
            predicted[path] = class_names[int(label)]
            truth = f"\t(true: {true_labels[path]})" if path in true_labels else ""
            print(f"{path}\t{probability_columns(output, class_names)}\t{predicted[path]}{truth}")
        if args.explain is not None:
            written = write_heatmaps(
                model, inputs, np.stack(pixels), labels, [explain_paths[p] for p in readable], args
            )
            print(f"Grad-CAM heatmaps of {len(written)} images written to {args.explain}", file=sys.stderr)
    print(summary_line(predicted, true_labels, failed, class_names), file=sys.stderr)
    return 1 if failed else 0


def predicted_labels(outputs: np.ndarray, threshold: float | None) -> np.ndarray:
    """Each image's predicted label, (N,) int: P(Normal) > threshold for a sigmoid output (N, 1), else argmax (N, K)."""
    if outputs.shape[1] == 1:
        return (outputs[:, 0] > threshold).astype(int)  # 1 = Normal, 0 = Pneumonia
    return outputs.argmax(axis=1)


def probability_columns(output: np.ndarray, class_names: dict[int, str]) -> str:
    """'P(Normal) = 0.8123' for a sigmoid output (1,); 'P(Normal) = 0.1\tP(bacterial) = 0.7\t...' for (3,)."""
    if len(output) == 1:
        return f"P(Normal) = {output[0]:.4f}"
    return "\t".join(f"P({class_names[label]}) = {prob:.4f}" for label, prob in enumerate(output))


def write_heatmaps(
    model: mc.Sequential,
    inputs: np.ndarray,
    pixels: np.ndarray,
    labels: np.ndarray,
    paths: list[Path],
    args: argparse.Namespace,
) -> list[Path]:
    """Grad-CAM of each image for its class, written as [X-ray | overlay] PNGs; returns the paths written.

    ``inputs`` (N, S, S, 1): the images as the model takes them; ``pixels`` (N, S, S) uint8: the
    same, as decoded; ``labels`` (N,): each image's predicted label, the class explained unless
    ``args.explain_class`` names one. grad_cam takes one target per call, so the images are
    grouped by the class to explain.
    """
    targets = labels if args.explain_class is None else np.full(len(labels), args.explain_class)
    heatmaps = np.zeros(pixels.shape)  # (N, S, S)
    for target in np.unique(targets):
        chosen = np.flatnonzero(targets == target)
        heatmaps[chosen] = grad_cam(model, inputs[chosen], target=int(target))
    for picture, heatmap, path in zip(pixels, heatmaps, paths, strict=True):
        side_by_side = np.concatenate([np.repeat(picture[..., None], 3, axis=2), overlay_heatmap(picture, heatmap)], 1)
        write_atomic(path, lambda file, rgb=side_by_side: Image.fromarray(rgb).save(file, format="PNG"))
    return paths


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, opacity: float = HEATMAP_OPACITY) -> np.ndarray:
    """The X-ray tinted by the heatmap's colour where the heat is: (H, W) uint8 and (H, W) in [0, 1] -> (H, W, 3) uint8.

    Per pixel, with g the gray level in [0, 1], h the heat and c = jet(h) its colour (blue, cyan,
    yellow, red as h rises): out = (1 - opacity h) g + opacity h c. Where h = 0 the X-ray shows
    unchanged, so a map that lights up little hides little.
    """
    from matplotlib import colormaps  # here, not at the top: only --explain and the figure scripts draw

    heat = np.clip(np.asarray(heatmap, dtype=np.float64), 0, 1)[..., None]  # (H, W, 1)
    colour = colormaps["jet"](heat[..., 0])[..., :3]  # (H, W, 3) in [0, 1], the alpha dropped
    gray = (np.asarray(image, dtype=np.float64) / 255)[..., None]  # (H, W, 1)
    weight = opacity * heat
    return np.round(255 * ((1 - weight) * gray + weight * colour)).astype(np.uint8)


def summary_line(
    predicted: dict[Path, str], true_labels: dict[Path, str], failed: int, class_names: dict[int, str] = CLASS_NAMES
) -> str:
    """'24 images classified: 11 Pneumonia, 13 Normal; 20 of the 24 with a known label right (83.3 %)'.

    ``predicted`` maps each classified image to its predicted class name, ``true_labels`` the
    bundled sample's images to their true one; ``failed`` counts the images that could not be
    read; ``class_names`` are the model's classes, counted in their label order.
    """
    counts = ", ".join(f"{sum(label == name for label in predicted.values())} {name}" for name in class_names.values())
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
