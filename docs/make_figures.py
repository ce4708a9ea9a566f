"""Make the figures of the documentation site from minicnn's real code.

    python docs/make_figures.py                 # writes docs/figures/*.png
    python docs/make_figures.py --out some/dir  # anywhere else (tests/published/test_docs_figures.py does this)

Every picture on the site that shows data is drawn here, from the output of minicnn itself, never
by hand; the PNGs are committed, so the site builds without data or network. The script needs only
the X-ray sample bundled with minicnn and takes a few seconds on a laptop:

* ``augmentation.png``: bundled X-rays, and what :class:`minicnn.data.ImageAugmenter` makes of them
  with a fixed seed (tutorial 13);
* ``im2col.png``: a labelled 4x4 image beside the real output of :func:`minicnn.im2col.im2col`
  (tutorial 6);
* ``curves.png``: the training curves of a short run on the sample, drawn by
  :func:`minicnn.plots.plot_history`, the same figure ``examples/train_xray.py`` writes (tutorial 13).

Figures are drawn on matplotlib's Agg canvas, without pyplot (as :mod:`minicnn.plots` does), and saved
without a timestamp or version in their metadata, so running the script again gives the same bytes
on the same machine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

FIGURES = Path(__file__).resolve().parent / "figures"
DPI = 80
# Width and height in inches; at DPI dots per inch they give the pixel sizes the test checks.
AUGMENTATION_SIZE = (7.0, 5.6)  # 560 x 448 pixels
IM2COL_SIZE = (8.0, 4.5)  # 640 x 360 pixels
SEED = 0


def new_figure(size: tuple[float, float]) -> Figure:
    """A figure on the Agg canvas, independent of pyplot's global state."""
    figure = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def save(figure: Figure, path: Path) -> Path:
    # No "Software" entry: the file does not change with matplotlib's version.
    figure.savefig(path, format="png", dpi=DPI, metadata={"Software": None}, pil_kwargs={"optimize": True})
    return path


def sample_training_images(image_size: int):
    """The 48 training X-rays bundled with minicnn, decoded without touching any cache."""
    from minicnn.data import load_split, sample_path

    return load_split(sample_path(), "train", image_size=image_size, cache_dir=False, progress=False, log=print_nothing)


def print_nothing(line: str) -> None:
    """load_split's log, silenced: the script prints only the files it wrote."""


def augmentation_figure(path: Path, image_size: int = 96, count: int = 4, versions: int = 3) -> Path:
    """Row 0: ``count`` bundled training X-rays (two of each class); rows 1..versions: augmented copies."""
    from minicnn.data import CLASS_NAMES, ImageAugmenter

    train = sample_training_images(image_size)
    # The sample lists the Normal X-rays first: take the first two of each class.
    chosen = np.concatenate([np.flatnonzero(train.labels == label)[: count // 2] for label in (1, 0)])
    images = train.images[chosen]
    augment = ImageAugmenter()  # the study's settings: rotation 10 degrees, shifts and zoom 10 %
    rng = np.random.default_rng(SEED)
    rows = [images.astype(np.float32)] + [augment(images, rng) for _ in range(versions)]

    figure = new_figure(AUGMENTATION_SIZE)
    grid = figure.subplots(len(rows), count)
    for row, batch in enumerate(rows):
        for column in range(count):
            axes = grid[row, column]
            axes.imshow(batch[column, :, :, 0], cmap="gray", vmin=0, vmax=255)
            axes.set_xticks([])
            axes.set_yticks([])
            if row == 0:
                axes.set_title(f"{CLASS_NAMES[int(train.labels[chosen[column]])]} (original)", fontsize=9)
        grid[row, 0].set_ylabel("original" if row == 0 else f"augmented {row}", fontsize=9)
    figure.suptitle(f"ImageAugmenter(), seed {SEED}: rotation, shift and zoom; each image its own", fontsize=10)
    figure.tight_layout()
    return save(figure, path)


def im2col_figure(path: Path) -> Path:
    """A 4x4 image numbered 1..16 and its im2col matrix for a 2x2 window, stride 1; one window highlighted."""
    from minicnn.im2col import im2col

    image = np.arange(1, 17, dtype=np.int64).reshape(1, 4, 4, 1)
    cols = im2col(image, kernel_size=(2, 2), stride=(1, 1)).reshape(9, 4)  # one row per window
    colours = {0: "tab:red", 4: "tab:blue", 8: "tab:green"}  # windows (0, 0), (1, 1), (2, 2)

    figure = new_figure(IM2COL_SIZE)
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.1]})
    left.imshow(np.zeros((4, 4)), cmap="Greys", vmin=0, vmax=1)
    for (row, column), value in np.ndenumerate(image[0, :, :, 0]):
        left.text(column, row, str(value), ha="center", va="center", fontsize=12)
    for window, colour in colours.items():
        oh, ow = divmod(window, 3)
        left.add_patch(Rectangle((ow - 0.45, oh - 0.45), 1.9, 1.9, fill=False, edgecolor=colour, linewidth=2.5))
    left.set_title("image (4 x 4); 3 of its 9 windows (2 x 2)", fontsize=10)

    right.imshow(np.zeros(cols.shape), cmap="Greys", vmin=0, vmax=1, aspect="auto")
    for (row, column), value in np.ndenumerate(cols):
        colour = colours.get(row, "black")
        right.text(column, row, str(value), ha="center", va="center", fontsize=11, color=colour)
    right.set_yticks(range(9), [f"window ({oh}, {ow})" for oh, ow in np.ndindex(3, 3)], fontsize=8)
    right.set_xticks(range(4), ["(0, 0)", "(0, 1)", "(1, 0)", "(1, 1)"], fontsize=8)
    right.set_xlabel("offset (i, j) in the window", fontsize=9)
    right.set_title("im2col(image, (2, 2), (1, 1)).reshape(9, 4)", fontsize=10)
    for axes in (left, right):
        axes.set_xticks(np.arange(-0.5, axes.get_xlim()[1], 1), minor=True)
        axes.set_yticks(np.arange(-0.5, axes.get_ylim()[0], 1), minor=True)
        axes.grid(which="minor", color="lightgrey", linewidth=0.8)
        axes.tick_params(which="minor", length=0)
    left.set_xticks([])
    left.set_yticks([])
    figure.tight_layout()
    return save(figure, path)


def curves_figure(path: Path, image_size: int = 32, epochs: int = 12) -> Path:
    """A short run of a small CNN on the bundled sample, and its curves from minicnn.plots.plot_history."""
    import minicnn as mc
    from minicnn import layers, optimizers
    from minicnn.data import rescale, stratified_split
    from minicnn.plots import plot_history

    train = sample_training_images(image_size)
    train_index, val_index = stratified_split(train.labels, 0.25, seed=SEED)
    x = rescale(train.images)
    model = mc.Sequential(
        [
            layers.Conv2D(8, 3, activation="relu", input_shape=(image_size, image_size, 1)),
            layers.MaxPool2D(2),
            layers.Conv2D(16, 3, activation="relu"),
            layers.MaxPool2D(2),
            layers.Flatten(),
            layers.Dense(16, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ],
        seed=SEED,
    )
    model.compile(optimizer=optimizers.Adam(learning_rate=3e-3), loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(
        x[train_index],
        train.labels[train_index],
        batch_size=8,
        epochs=epochs,
        validation_data=(x[val_index], train.labels[val_index]),
        verbose=0,
    )
    return plot_history(history.history, path)


def make_figures(out: Path = FIGURES) -> list[Path]:
    """Write every figure into ``out`` (created if needed); return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return [
        augmentation_figure(out / "augmentation.png"),
        im2col_figure(out / "im2col.png"),
        curves_figure(out / "curves.png"),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIGURES, help=f"folder for the PNGs (default {FIGURES})")
    args = parser.parse_args(argv)
    for path in make_figures(args.out):
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
