"""Pictures of a trained classifier: training curves, confusion matrix, ROC, predictions (2 or K classes).

Each function draws one PNG file from host NumPy arrays and returns its path.

Two habits keep these safe to call from anywhere:

* Figures are built as ``matplotlib.figure.Figure`` objects drawn by the Agg
  (PNG) canvas, never through ``pyplot``. So no window opens, nothing needs a
  display, pyplot's global list of figures is never touched (no memory leak
  over many calls), and a backend the user chose for their own plots stays
  as it is.
* Files are written atomically: the PNG goes to a temporary file in the same
  folder and is then renamed over the target, so a crash never leaves a
  half-written image behind.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from minicnn.files import write_atomic
from minicnn.metrics import (
    as_class_indices,
    as_class_probabilities,
    as_labels,
    as_probabilities,
    roc_auc,
    roc_curve,
)

__all__ = [
    "plot_history",
    "plot_confusion_matrix",
    "plot_roc",
    "plot_prediction_grid",
    # K classes (softmax outputs); plot_confusion_matrix draws K x K as it is
    "plot_roc_one_vs_rest",
    "plot_class_prediction_grid",
]

# The colours of a correct and a wrong prediction in the grid.
_CORRECT_COLOUR = "black"
_WRONG_COLOUR = "red"


def _new_figure(width: float, height: float) -> Figure:
    """A figure (size in inches) attached to the Agg canvas, independent of pyplot."""
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)  # attaches itself to the figure; savefig then renders with Agg
    return figure


def _save_figure(figure: Figure, path: str | os.PathLike) -> Path:
    """Write ``figure`` as a PNG at ``path`` atomically; create parent folders; return the path."""
    return write_atomic(path, lambda file: figure.savefig(file, format="png"))


# ---------------------------------------------------------------------------
# Training curves
# ---------------------------------------------------------------------------


def plot_history(history: dict[str, list[float]], path: str | os.PathLike) -> Path:
    """Loss and accuracy by epoch, training beside validation, in two panels.

    Parameters
    ----------
    history : dict of str -> list of float
        One value per epoch under the Keras names ``"loss"``, ``"val_loss"``,
        ``"accuracy"`` and ``"val_accuracy"``. Any of them may be missing
        (the validation ones usually are when no validation set was used),
        but at least one must be there.
    path : str or os.PathLike
        Where to write the PNG.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    known = ("loss", "val_loss", "accuracy", "val_accuracy")
    if not any(history.get(key) for key in known):
        raise ValueError(f"history has none of the keys {list(known)}; it has {sorted(history)}")

    figure = _new_figure(11, 4.2)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    _plot_metric(loss_axes, history, "loss", "Loss")
    _plot_metric(accuracy_axes, history, "accuracy", "Accuracy")
    figure.tight_layout()
    return _save_figure(figure, path)


def _plot_metric(axes: Any, history: dict[str, list[float]], key: str, label: str) -> None:
    """Draw ``history[key]`` and ``history["val_" + key]`` (when present) on one panel."""
    for name, legend in ((key, "Training"), (f"val_{key}", "Validation")):
        values = history.get(name)
        if values:
            epochs = np.arange(1, len(values) + 1)
            axes.plot(epochs, values, marker="o", markersize=3, label=legend)
    if axes.lines:
        axes.legend()
        # Epochs are whole numbers: do not let the axis show 2.5.
        axes.xaxis.get_major_locator().set_params(integer=True)
    else:
        axes.text(
            0.5, 0.5, f"no {label.lower()} recorded", ha="center", va="center", transform=axes.transAxes, color="grey"
        )
    axes.set_title(f"Model {label.lower()}")
    axes.set_xlabel("Epoch")
    axes.set_ylabel(label)
    axes.grid(alpha=0.3)


# ---------------------------------------------------------------------------
# Confusion matrix and ROC
# ---------------------------------------------------------------------------


def plot_confusion_matrix(
    matrix: Any,
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str = "Confusion matrix",
) -> Path:
    """A heat map of the confusion matrix with the count written in each cell.

    Parameters
    ----------
    matrix : array_like of shape (L, L)
        Counts, rows = actual class, columns = predicted class (the layout of
        :func:`minicnn.metrics.confusion_matrix`).
    class_names : sequence of L str
        Names of the classes in the order of the rows.
    path : str or os.PathLike
        Where to write the PNG.
    title : str
        Shown above the matrix.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    counts = np.asarray(matrix)
    n_classes = len(class_names)
    if counts.shape != (n_classes, n_classes):
        raise ValueError(
            f"matrix must have shape ({n_classes}, {n_classes}) for {n_classes} class names, got {counts.shape}"
        )

    figure = _new_figure(5.2, 4.6)
    axes = figure.subplots()
    image = axes.imshow(counts, cmap="Blues", vmin=0)
    figure.colorbar(image, ax=axes)
    # White text on dark cells, black on light ones, so every count stays readable.
    dark = counts > counts.max() / 2 if counts.max() > 0 else np.zeros_like(counts, dtype=bool)
    for row in range(n_classes):
        for column in range(n_classes):
            axes.text(
                column,
                row,
                f"{counts[row, column]:g}",
                ha="center",
                va="center",
                fontsize=14,
                color="white" if dark[row, column] else "black",
            )
    ticks = np.arange(n_classes)
    axes.set_xticks(ticks, labels=list(class_names))
    axes.set_yticks(ticks, labels=list(class_names))
    axes.set_xlabel("Predicted")
    axes.set_ylabel("Actual")
    axes.set_title(title)
    figure.tight_layout()
    return _save_figure(figure, path)


def plot_roc(
    y_true: Any,
    scores: Any,
    path: str | os.PathLike,
    positive_label: int = 1,
    title: str = "ROC",
) -> Path:
    """The ROC curve with the chance diagonal, and the AUC in the legend.

    Parameters
    ----------
    y_true : array_like of shape (N,) or (N, 1)
        0/1 labels; both classes must be present.
    scores : array_like of shape (N,) or (N, 1)
        Larger means more likely ``positive_label``. For Pneumonia (label 0)
        as positive, pass ``1 - prob_normal``.
    path : str or os.PathLike
        Where to write the PNG.
    positive_label : int, one of {0, 1}
        The label that counts as positive.
    title : str
        Shown above the curve.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    fpr, tpr, _ = roc_curve(y_true, scores, positive_label)
    auc = roc_auc(y_true, scores, positive_label)

    figure = _new_figure(5, 5)
    axes = figure.subplots()
    axes.plot(fpr, tpr, linewidth=2, label=f"Model (AUC = {auc:.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="Chance (AUC = 0.5)")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)  # a hair above 1 so a perfect curve is not hidden by the frame
    axes.set_aspect("equal")
    axes.set_xlabel("False positive rate (1 - specificity)")
    axes.set_ylabel("True positive rate (sensitivity)")
    axes.set_title(title)
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return _save_figure(figure, path)


def plot_roc_one_vs_rest(
    y_true: Any,
    y_prob: Any,
    path: str | os.PathLike,
    class_names: Sequence[str],
    title: str = "ROC, each class against the rest",
) -> Path:
    """One ROC curve per class (that class positive, all others negative), with each AUC in the legend.

    Parameters
    ----------
    y_true : array_like of shape (N,) or (N, K)
        Class indices or one-hot rows.
    y_prob : array_like of shape (N, K)
        Class probabilities; class k's curve is scored by column k.
    path : str or os.PathLike
        Where to write the PNG.
    class_names : sequence of K str
        The name of class 0, 1, ..., K-1.
    title : str
        Shown above the curves.

    Returns
    -------
    pathlib.Path
        ``path``. A class absent from ``y_true`` (or that is every sample) has no curve; the
        legend says so.
    """
    prob = as_class_probabilities(y_prob)
    labels = as_class_indices(y_true, prob.shape[1])
    if len(class_names) != prob.shape[1]:
        raise ValueError(f"class_names must name the {prob.shape[1]} classes of y_prob, got {list(class_names)}")
    if len(labels) != len(prob):
        raise ValueError(f"y_true has {len(labels)} values but y_prob has {len(prob)} rows")

    figure = _new_figure(5.5, 5.5)
    axes = figure.subplots()
    for k, name in enumerate(class_names):
        is_k = (labels == k).astype(np.int64)
        if not 0 < is_k.sum() < len(is_k):
            axes.plot([], [], linestyle="none", label=f"{name}: no curve (one class only)")
            continue
        fpr, tpr, _ = roc_curve(is_k, prob[:, k])
        axes.plot(fpr, tpr, linewidth=2, label=f"{name} (AUC = {roc_auc(is_k, prob[:, k]):.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="Chance (AUC = 0.5)")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.set_aspect("equal")
    axes.set_xlabel("False positive rate (1 - specificity)")
    axes.set_ylabel("True positive rate (sensitivity)")
    axes.set_title(title)
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return _save_figure(figure, path)


# ---------------------------------------------------------------------------
# Prediction grid
# ---------------------------------------------------------------------------


def plot_prediction_grid(
    images: Any,
    y_true: Any,
    prob_normal: Any,
    path: str | os.PathLike,
    class_names: Sequence[str] = ("Pneumonia", "Normal"),
    columns: int = 4,
    max_images: int = 16,
    threshold: float = 0.5,
) -> Path:
    """The first images with their actual and predicted class; mistakes titled in red.

    Each title reads ``"actual / predicted (p)"``, for example
    ``"Normal / Pneumonia (0.23)"``, where ``p`` is the model's probability
    of Normal and the prediction is Normal when ``p > threshold`` (the rule
    of :mod:`minicnn.metrics`).

    Parameters
    ----------
    images : array_like of shape (N, H, W) or (N, H, W, 1)
        Grayscale images. uint8 is shown on 0..255; floats in [0, 1] on 0..1;
        other floats (say, standardised ones) are stretched per image.
    y_true : array_like of shape (N,) or (N, 1)
        0/1 labels.
    prob_normal : array_like of shape (N,) or (N, 1)
        Probability of label 1 (Normal).
    path : str or os.PathLike
        Where to write the PNG.
    class_names : pair of str
        Names of label 0 and label 1.
    columns : int
        Images per row (fewer if there are fewer images).
    max_images : int
        Show at most this many, taken from the start.
    threshold : float
        Decision threshold on ``prob_normal``.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    pictures = _as_grayscale_batch(images)
    labels = as_labels(y_true)
    prob = as_probabilities(prob_normal, "prob_normal")
    if not len(pictures) == len(labels) == len(prob):
        raise ValueError(
            f"images, y_true and prob_normal must have the same length, got "
            f"{len(pictures)}, {len(labels)} and {len(prob)}"
        )
    if columns < 1 or max_images < 1:
        raise ValueError(f"columns and max_images must be at least 1, got {columns} and {max_images}")

    count = min(len(pictures), max_images)
    predicted = (prob > threshold).astype(np.int64)
    titles = [f"{class_names[labels[i]]} / {class_names[predicted[i]]} ({prob[i]:.2f})" for i in range(count)]
    wrong = [bool(labels[i] != predicted[i]) for i in range(count)]
    suptitle = "actual / predicted (probability of Normal); red = wrong"
    return _draw_grid(pictures[:count], titles, wrong, suptitle, path, columns)


def plot_class_prediction_grid(
    images: Any,
    y_true: Any,
    y_prob: Any,
    path: str | os.PathLike,
    class_names: Sequence[str],
    columns: int = 4,
    max_images: int = 16,
) -> Path:
    """The first images with their actual and predicted class out of K; mistakes titled in red.

    Each title reads ``"actual / predicted (p)"``, for example ``"viral / bacterial (0.61)"``,
    where the prediction is the most probable class (argmax) and ``p`` its probability.

    Parameters
    ----------
    images : array_like of shape (N, H, W) or (N, H, W, 1)
        Grayscale images, shown as in :func:`plot_prediction_grid`.
    y_true : array_like of shape (N,) or (N, K)
        Class indices or one-hot rows.
    y_prob : array_like of shape (N, K)
        Class probabilities (a softmax output).
    path : str or os.PathLike
        Where to write the PNG.
    class_names : sequence of K str
        The name of class 0, 1, ..., K-1.
    columns : int
        Images per row (fewer if there are fewer images).
    max_images : int
        Show at most this many, taken from the start.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    pictures = _as_grayscale_batch(images)
    prob = as_class_probabilities(y_prob)
    labels = as_class_indices(y_true, prob.shape[1])
    if len(class_names) != prob.shape[1]:
        raise ValueError(f"class_names must name the {prob.shape[1]} classes of y_prob, got {list(class_names)}")
    if not len(pictures) == len(labels) == len(prob):
        raise ValueError(
            f"images, y_true and y_prob must have the same length, got {len(pictures)}, {len(labels)} and {len(prob)}"
        )
    if columns < 1 or max_images < 1:
        raise ValueError(f"columns and max_images must be at least 1, got {columns} and {max_images}")
    count = min(len(pictures), max_images)
    predicted = prob.argmax(axis=1)
    titles = [
        f"{class_names[labels[i]]} / {class_names[predicted[i]]} ({prob[i, predicted[i]]:.2f})" for i in range(count)
    ]
    wrong = [bool(labels[i] != predicted[i]) for i in range(count)]
    suptitle = "actual / predicted (its probability); red = wrong"
    return _draw_grid(pictures[:count], titles, wrong, suptitle, path, columns)


def _draw_grid(
    pictures: np.ndarray, titles: list[str], wrong: list[bool], suptitle: str, path: str | os.PathLike, columns: int
) -> Path:
    """Images (n, H, W) in a grid of ``columns``, each under its title (red when ``wrong``)."""
    count = len(pictures)
    n_columns = min(columns, count)
    n_rows = math.ceil(count / n_columns)
    value_range = _display_range(pictures)
    figure = _new_figure(2.6 * n_columns, 2.9 * n_rows)
    grid = figure.subplots(n_rows, n_columns, squeeze=False)
    for index, axes in enumerate(grid.flat):
        axes.axis("off")  # also hides the empty cells after the last image
        if index >= count:
            continue
        axes.imshow(pictures[index], cmap="gray", vmin=value_range[0], vmax=value_range[1])
        axes.set_title(titles[index], fontsize=10, color=_WRONG_COLOUR if wrong[index] else _CORRECT_COLOUR)
    figure.suptitle(suptitle, fontsize=11)
    figure.tight_layout()
    return _save_figure(figure, path)


def _as_grayscale_batch(images: Any) -> np.ndarray:
    """(N, H, W) or (N, H, W, 1) -> (N, H, W)."""
    pictures = np.asarray(images)
    if pictures.ndim == 4 and pictures.shape[-1] == 1:
        pictures = pictures[..., 0]
    if pictures.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, 1), got {pictures.shape}")
    return pictures


def _display_range(pictures: np.ndarray) -> tuple[float | None, float | None]:
    """The (vmin, vmax) for imshow; (None, None) lets matplotlib stretch each image."""
    if pictures.dtype == np.uint8:
        return 0.0, 255.0
    if pictures.size and pictures.min() >= 0.0 and pictures.max() <= 1.0:
        return 0.0, 1.0
    return None, None
