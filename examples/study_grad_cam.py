"""The study page's Grad-CAM figure: where a trained run's network looks, on a dozen test X-rays.

    python examples/study_grad_cam.py --run ~/minicnn-runs/minicnn-s0 \
        --data ../shared/data/coronahack --out docs/results/study-grad-cam

It reads the run folder (its weights, ``checkpoint.npz`` by default: the final weights, whose test
figures the study page reports; and its settings) and never writes there. It classifies the 624
test X-rays once (the cheap part: one forward pass each), then picks three rows of panels:

1. **correct Normal**: ``--per-row`` (4) Normal X-rays called Normal, drawn at random (``--seed``);
2. **correct Pneumonia**: as many Pneumonia X-rays called Pneumonia, drawn the same way;
3. **confident mistakes**: the Normal X-rays called Pneumonia with the lowest P(Normal), among
   those with P(Normal) <= 0.1 (the study page's "confident mistakes"); fewer if there are fewer.

Each panel is the X-ray as the network saw it (resized to its input size) with the Grad-CAM
heatmap of the *predicted* class overlaid (:func:`minicnn.explain.grad_cam`, from the last
convolution; the overlay of :func:`minicnn.cli.predict_xray.overlay_heatmap`, the same as
``predict_xray.py --explain``), titled with its file, true label and P(Normal). Grad-CAM runs on
those 12 images only.

The choice is a rule fixed in advance (random draws, the lowest probabilities): nothing is tuned
on the test images, which only say which X-rays fall in which row. Written to ``--out``:

* ``grad_cam.png``: the figure;
* ``panels.csv``: one row per panel (row, file, label, P(Normal), predicted class, and the share
  of the heatmap's mass in the middle third of the image's width, a crude number for "on the
  midline rather than the lung fields": a uniform map puts a third there);
* ``grad_cam.json``: which run and weights, their epochs and input size, the counts behind the
  rows, and the test accuracy these weights reach here (compare with the run's metrics.json).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

import minicnn as mc
from minicnn import backend
from minicnn.cli.command_line import OneLineErrorParser, fail
from minicnn.cli.predict_xray import overlay_heatmap
from minicnn.data import rescale
from minicnn.data.xray import CLASS_NAMES, load_split
from minicnn.explain import grad_cam
from minicnn.files import ModelFileError, write_atomic

THRESHOLD = 0.5
"""P(Normal) above which an X-ray is called Normal: the study's, and every published run's."""
CONFIDENT = 0.1
"""A Normal X-ray called Pneumonia with P(Normal) at most this is a confident mistake (as on the study page)."""
CENTRE = (1 / 3, 2 / 3)
"""The middle third of an image's width (spine, mediastinum, heart and the lungs' inner edges), as fractions."""
ROWS = ("correct Normal", "correct Pneumonia", "Normal called Pneumonia, confident")


def build_parser() -> OneLineErrorParser:
    """The options."""
    parser = OneLineErrorParser(description="Draw Grad-CAM on a dozen test X-rays of a trained run.")
    parser.add_argument("--run", type=Path, required=True, help="the run folder (train_xray.py's --out)")
    parser.add_argument(
        "--weights",
        default="checkpoint.npz",
        help="the model file in the run folder: checkpoint.npz (final weights) or best.npz (default: %(default)s)",
    )
    parser.add_argument("--data", type=Path, required=True, help="the data folder (CoronaHack or Kermany layout)")
    parser.add_argument("--out", type=Path, required=True, help="where the figure and its two small files go")
    parser.add_argument("--per-row", type=int, default=4, help="panels per row (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="draws the correct X-rays shown (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default: %(default)s)")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse and check the options; a wrong one exits with status 2 before any work."""
    args = build_parser().parse_args(argv)
    if not args.run.is_dir():
        fail(f"--run {args.run}: no such folder")
    args.weights_path = args.run / args.weights
    if not args.weights_path.is_file():
        fail(f"--weights {args.weights}: no such file in {args.run}")
    if not args.data.is_dir():
        fail(f"--data {args.data}: no such folder")
    if args.out.exists() and not args.out.is_dir():
        fail(f"--out {args.out}: is a file, not a folder")
    if args.out.resolve() == args.run.resolve():
        fail(f"--out {args.out}: is the run folder, which this script only reads")
    for name in ("per_row", "batch_size"):
        if getattr(args, name) < 1:
            fail(f"--{name.replace('_', '-')} {getattr(args, name)}: must be a whole number of at least 1")
    if args.seed < 0:
        fail(f"--seed {args.seed}: must be a whole number of at least 0")
    return args


def choose_panels(labels: np.ndarray, p_normal: np.ndarray, per_row: int, seed: int) -> list[np.ndarray]:
    """The test indices of each row of :data:`ROWS`, by the rule of the module docstring.

    ``labels`` (N,): 1 Normal, 0 Pneumonia; ``p_normal`` (N,): the network's P(Normal).
    Correct rows: ``per_row`` drawn at random without replacement (in test order); mistakes:
    the lowest P(Normal) first, only those at most :data:`CONFIDENT`.
    """
    rng = np.random.default_rng(seed)
    called_normal = p_normal > THRESHOLD
    rows = []
    for wanted_label, wanted_call in ((1, True), (0, False)):
        candidates = np.flatnonzero((labels == wanted_label) & (called_normal == wanted_call))
        drawn = rng.choice(candidates, size=min(per_row, len(candidates)), replace=False)
        rows.append(np.sort(drawn))
    confident = np.flatnonzero((labels == 1) & (p_normal <= CONFIDENT))
    rows.append(confident[np.argsort(p_normal[confident], kind="stable")][:per_row])
    return rows


def centre_share(heatmap: np.ndarray, centre: tuple[float, float] = CENTRE) -> float:
    """The share of the heatmap's mass in the columns centre[0] to centre[1] of the width: (H, W) -> [0, 1].

    NaN for a map that is 0 everywhere (no evidence to place). A uniform map puts
    centre[1] - centre[0] (a third, by default) of its mass there.
    """
    width = heatmap.shape[1]
    left, right = round(centre[0] * width), round(centre[1] * width)
    total = heatmap.sum()
    if total == 0:
        return float("nan")
    return float(heatmap[:, left:right].sum() / total)


def draw_figure(
    pictures: list[np.ndarray], heatmaps: list[np.ndarray], titles: list[str], row_of: list[int], per_row: int
) -> Figure:
    """Three rows of panels (one per :data:`ROWS`), each an X-ray (S, S) uint8 with its heatmap (S, S) overlaid."""
    figure = Figure(figsize=(1.65 * per_row + 0.4, 2.3 * len(ROWS) + 0.3), dpi=100)
    FigureCanvasAgg(figure)  # attaches itself; savefig then renders with Agg, no pyplot
    grid = figure.add_gridspec(
        len(ROWS) + 1,
        per_row,
        height_ratios=[1] * len(ROWS) + [0.05],
        hspace=0.62,
        wspace=0.06,
        left=0.07,
        right=0.98,
        top=0.93,
        bottom=0.05,
    )
    column_in_row = [0] * len(ROWS)
    for picture, heatmap, title, row in zip(pictures, heatmaps, titles, row_of, strict=True):
        axes = figure.add_subplot(grid[row, column_in_row[row]])
        axes.imshow(overlay_heatmap(picture, heatmap), interpolation="nearest")
        axes.set_title(title, fontsize=6.5)
        axes.set_xticks([])
        axes.set_yticks([])
        if column_in_row[row] == 0:
            axes.set_ylabel(ROWS[row].replace(", ", ",\n"), fontsize=7)
        column_in_row[row] += 1
    for row, used in enumerate(column_in_row):  # a row with fewer panels (few confident mistakes) says so
        if used == 0:
            axes = figure.add_subplot(grid[row, 0])
            axes.axis("off")
            axes.text(0, 0.5, f"{ROWS[row]}: none", fontsize=8)
    scale = figure.add_subplot(grid[len(ROWS), 1:-1] if per_row > 2 else grid[len(ROWS), :])
    scale.imshow(np.linspace(0, 1, 256)[None, :], cmap="jet", aspect="auto", extent=(0, 1, 0, 1))
    scale.set_yticks([])
    scale.set_xticks([0, 0.5, 1])
    scale.tick_params(labelsize=6)
    scale.set_xlabel("Grad-CAM heat (1 = the image's maximum), for the predicted class", fontsize=6.5)
    return figure


def read_settings(run: Path) -> dict[str, Any]:
    """The run's settings as recorded: long_run.sh's run-settings.json, else train_xray.py's settings.json."""
    for name in ("run-settings.json", "settings.json"):
        if (run / name).is_file():
            return {"file": name, **json.loads((run / name).read_text())}
    return {}


def main(argv: list[str] | None = None) -> int:
    """Classify the test split, choose the panels, draw Grad-CAM on them; returns 0."""
    args = parse_args(argv)
    try:
        model = mc.load_model(args.weights_path)
    except ModelFileError as error:
        fail(f"--weights: {error}")
    if int(np.prod(model.output_shape)) != 1:
        fail(f"--weights {args.weights_path}: a {int(np.prod(model.output_shape))}-class model; this figure is binary")
    image_size = model.input_shape[0]
    test = load_split(args.data, "test", image_size, progress=False, log=lambda line: print(line, file=sys.stderr))
    labels = test.labels.astype(int)
    p_normal = np.asarray(backend.to_numpy(model.predict(rescale(test.images), batch_size=args.batch_size)))
    p_normal = p_normal.reshape(-1).astype(np.float64)
    rows = choose_panels(labels, p_normal, args.per_row, args.seed)
    misread_normal = (labels == 1) & (p_normal <= THRESHOLD)

    chosen = np.concatenate(rows)
    row_of = [row for row, indices in enumerate(rows) for _ in indices]
    called_normal = p_normal[chosen] > THRESHOLD
    # Grad-CAM of each panel's predicted class: Normal (1) or Pneumonia (0), one call per class.
    heatmaps = np.zeros((len(chosen), image_size, image_size))
    inputs = rescale(test.images[chosen])
    for target in (0, 1):
        these = np.flatnonzero(called_normal == bool(target))
        if len(these):
            heatmaps[these] = grad_cam(model, inputs[these], target=target, batch_size=args.batch_size)

    files = [Path(test.frame["path"].iloc[index]).name for index in chosen]
    titles = [
        f"{Path(file).stem}\ntrue {CLASS_NAMES[labels[index]]}\nP(Normal) = {p_normal[index]:.2g}"
        for file, index in zip(files, chosen, strict=True)
    ]
    pictures = [test.images[index, ..., 0] for index in chosen]
    figure = draw_figure(pictures, list(heatmaps), titles, row_of, args.per_row)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    # Re-encoded without matplotlib's alpha channel (the figure is opaque) and with zlib's best effort: smaller.
    rgb = Image.open(buffer).convert("RGB")
    write_atomic(args.out / "grad_cam.png", lambda file: rgb.save(file, format="PNG", optimize=True))

    panel_rows = [
        {
            "row": ROWS[row],
            "file": file,
            "label": CLASS_NAMES[labels[index]],
            "p_normal": f"{p_normal[index]:.6f}",
            "predicted": CLASS_NAMES[int(p_normal[index] > THRESHOLD)],
            "heatmap_of": CLASS_NAMES[int(p_normal[index] > THRESHOLD)],
            "centre_share": f"{centre_share(heatmap):.3f}",
        }
        for row, file, index, heatmap in zip(row_of, files, chosen, heatmaps, strict=True)
    ]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(panel_rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(panel_rows)
    write_atomic(args.out / "panels.csv", lambda file: file.write(text.getvalue().encode()))

    record = {
        "run": args.run.name,
        "weights": args.weights,
        "epochs": model.completed_epochs,
        "image_size": image_size,
        "settings": read_settings(args.run),
        "seed": args.seed,
        "threshold": THRESHOLD,
        "confident": CONFIDENT,
        "centre_columns": CENTRE,
        "layer": "the last Conv2D",
        "n_test": len(labels),
        "test_accuracy": float(np.mean((p_normal > THRESHOLD) == (labels == 1))),
        "normal_test_xrays": int(np.sum(labels == 1)),
        "normal_called_pneumonia": int(misread_normal.sum()),
        "normal_called_pneumonia_confident": int(np.sum((labels == 1) & (p_normal <= CONFIDENT))),
        "panels": {ROWS[row]: len(indices) for row, indices in enumerate(rows)},
        "mean_centre_share": {
            ROWS[row]: float(np.nanmean([centre_share(heatmaps[i]) for i in np.flatnonzero(np.array(row_of) == row)]))
            if len(indices)
            else None
            for row, indices in enumerate(rows)
        },
    }
    write_atomic(args.out / "grad_cam.json", lambda file: file.write((json.dumps(record, indent=2) + "\n").encode()))
    print(
        f"{args.out / 'grad_cam.png'}: {len(chosen)} panels from {args.run.name}/{args.weights} "
        f"(after {model.completed_epochs} epochs, {image_size}x{image_size}); test accuracy here "
        f"{100 * record['test_accuracy']:.1f} %, {record['normal_called_pneumonia']} Normal X-rays called Pneumonia "
        f"({record['normal_called_pneumonia_confident']} with P(Normal) <= {CONFIDENT})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
