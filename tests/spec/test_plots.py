"""Tests for minicnn.plots: each function writes a PNG that Pillow can open."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from PIL import Image

from minicnn.plots import (
    plot_class_prediction_grid,
    plot_confusion_matrix,
    plot_history,
    plot_prediction_grid,
    plot_roc,
    plot_roc_one_vs_rest,
)


def open_png(path):
    """Decode the file fully and return (width, height)."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()  # a truncated file fails here, not just at the header
        return image.size


def assert_no_temporary_files(folder):
    leftovers = [p.name for p in folder.iterdir() if p.suffix == ".tmp"]
    assert leftovers == []


def make_images(count, dtype):
    rng = np.random.default_rng(0)
    images = rng.random((count, 32, 32))
    return (images * 255).astype(np.uint8) if dtype == "uint8" else images.astype(dtype)


def test_plot_history_writes_png_and_creates_folders(tmp_path):
    history = {
        "loss": [0.69, 0.52, 0.41, 0.35],
        "val_loss": [0.66, 0.55, 0.47, 0.45],
        "accuracy": [0.55, 0.74, 0.82, 0.86],
        "val_accuracy": [0.60, 0.71, 0.79, 0.80],
    }
    target = tmp_path / "new" / "folder" / "history.png"
    returned = plot_history(history, target)
    assert returned == target
    width, height = open_png(target)
    assert width > 2 * height > 400  # two panels side by side
    assert_no_temporary_files(target.parent)


def test_plot_history_without_validation_keys(tmp_path):
    path = plot_history({"loss": [0.7, 0.5], "accuracy": [0.5, 0.8]}, str(tmp_path / "h.png"))
    assert open_png(path)[0] > 400


def test_plot_history_needs_some_values(tmp_path):
    with pytest.raises(ValueError, match="none of the keys"):
        plot_history({"lr": [0.1]}, tmp_path / "h.png")


def test_plot_confusion_matrix(tmp_path):
    path = plot_confusion_matrix([[180, 54], [12, 378]], ["Pneumonia", "Normal"], tmp_path / "cm.png")
    width, height = open_png(path)
    assert width > 300 and height > 300
    with pytest.raises(ValueError, match="shape"):
        plot_confusion_matrix([[1, 2, 3]], ["a", "b"], tmp_path / "bad.png")


def test_plot_roc(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 200)
    scores = labels + rng.normal(0, 0.8, 200)  # informative but imperfect
    path = plot_roc(labels, scores, tmp_path / "roc.png", title="ROC (Normal positive)")
    width, height = open_png(path)
    assert width > 300 and height > 300


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_plot_prediction_grid_full(tmp_path, dtype):
    count = 20  # more than max_images: only the first 16 are drawn, on 4 rows
    images = make_images(count, dtype)[..., None]  # (N, H, W, 1)
    labels = np.arange(count) % 2
    prob = np.linspace(0.05, 0.95, count)
    path = plot_prediction_grid(images, labels, prob, tmp_path / f"grid_{dtype}.png")
    width, height = open_png(path)
    assert width > 600 and height > 600
    assert_no_temporary_files(tmp_path)


def test_plot_prediction_grid_with_few_images(tmp_path):
    images = make_images(3, "float64") * 4 - 2  # standardised-looking floats outside [0, 1]
    path = plot_prediction_grid(images, [1, 0, 1], [0.23, 0.4, 0.9], tmp_path / "few.png", columns=4)
    width, height = open_png(path)
    assert width > height > 150  # one row of three


def test_plot_prediction_grid_rejects_mismatched_lengths(tmp_path):
    with pytest.raises(ValueError, match="same length"):
        plot_prediction_grid(make_images(3, "uint8"), [0, 1], [0.1, 0.2], tmp_path / "g.png")


def test_plots_leave_the_pyplot_backend_alone(tmp_path):
    before = matplotlib.get_backend()
    plot_confusion_matrix([[1, 2], [3, 4]], ["a", "b"], tmp_path / "cm.png")
    assert matplotlib.get_backend() == before


# ---- K classes --------------------------------------------------------------------------------

THREE_CLASSES = ["Normal", "bacterial", "viral"]


def three_class_predictions(count, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 3
    logits = rng.normal(size=(count, 3)) + 2 * np.eye(3)[labels]  # informative but imperfect
    return labels, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_plot_confusion_matrix_draws_three_classes(tmp_path):
    path = plot_confusion_matrix([[50, 3, 1], [4, 40, 9], [2, 11, 30]], THREE_CLASSES, tmp_path / "cm3.png")
    width, height = open_png(path)
    assert width > 300 and height > 300


def test_plot_roc_one_vs_rest_draws_a_curve_per_class(tmp_path):
    labels, prob = three_class_predictions(60)
    path = plot_roc_one_vs_rest(labels, prob, tmp_path / "roc3.png", THREE_CLASSES)
    assert min(open_png(path)) > 300
    # one-hot labels, and a class absent from the labels (no curve, said in the legend) are fine too
    present = labels < 2
    path = plot_roc_one_vs_rest(np.eye(3)[labels[present]], prob[present], tmp_path / "roc2.png", THREE_CLASSES)
    assert min(open_png(path)) > 300
    with pytest.raises(ValueError, match="class_names must name the 3 classes"):
        plot_roc_one_vs_rest(labels, prob, tmp_path / "bad.png", ["a", "b"])


def test_plot_class_prediction_grid(tmp_path):
    labels, prob = three_class_predictions(7)
    path = plot_class_prediction_grid(make_images(7, "uint8"), labels, prob, tmp_path / "grid3.png", THREE_CLASSES)
    width, height = open_png(path)
    assert width > 600 and height > 300  # two rows of four
    assert_no_temporary_files(tmp_path)
    with pytest.raises(ValueError, match="same length"):
        plot_class_prediction_grid(make_images(3, "uint8"), labels, prob, tmp_path / "g.png", THREE_CLASSES)
