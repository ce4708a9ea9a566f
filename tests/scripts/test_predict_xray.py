"""predict_xray.py for 3-class models and --explain (Grad-CAM PNGs), and the study page's Grad-CAM figure.

The models are tiny (one 4-filter convolution on 32 x 32 images), untrained: what is checked is
what the command prints and writes, not how well it classifies.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import study_grad_cam
from matplotlib import colormaps
from PIL import Image

import minicnn as mc
from minicnn import layers
from minicnn.cli import predict_xray
from minicnn.data import rescale
from minicnn.data.xray import decode_image
from minicnn.explain import grad_cam

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS = REPO_ROOT / "docs" / "results"
SIZE = 32


def tiny_model(units: int, seed: int = 0) -> mc.Sequential:
    """Conv2D(4) -> MaxPool -> Flatten -> Dense(units): sigmoid for 1 unit, softmax for 3."""
    model = mc.Sequential(
        [
            layers.Conv2D(4, 3, activation="relu", input_shape=(SIZE, SIZE, 1)),
            layers.MaxPool2D(2),
            layers.Flatten(),
            layers.Dense(units, activation="sigmoid" if units == 1 else "softmax"),
        ],
        seed=seed,
    )
    loss = "binary_crossentropy" if units == 1 else "sparse_categorical_crossentropy"
    model.compile(optimizer="adam", loss=loss)
    return model


@pytest.fixture
def weights(tmp_path):
    """Saved tiny models: {"binary": path, "three": path}."""
    paths = {"binary": tmp_path / "binary.npz", "three": tmp_path / "three.npz"}
    tiny_model(1).save(paths["binary"])
    tiny_model(3).save(paths["three"])
    return paths


def run(argv, capsys) -> tuple[int, list[str], list[str]]:
    """(exit status, stdout lines, stderr lines) of predict_xray.main(argv); a SystemExit gives its code."""
    try:
        code = predict_xray.main([str(item) for item in argv])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


# ---------------------------------------------------------------------------
# 3 classes
# ---------------------------------------------------------------------------


def test_a_3_class_model_prints_each_probability_with_its_class_and_the_most_probable(weights, capsys):
    code, lines, err = run(["--sample", "--weights", weights["three"]], capsys)
    assert code == 0 and len(lines) == 24
    names = ("Normal", "bacterial", "viral")
    counts = dict.fromkeys(names, 0)
    right = 0
    for line in lines:
        path, *columns, label, truth = line.split("\t")
        assert [column.split(" = ")[0] for column in columns] == [f"P({name})" for name in names]
        probabilities = [float(column.split(" = ")[1]) for column in columns]
        assert sum(probabilities) == pytest.approx(1, abs=2e-4)  # each rounded to 4 decimals
        assert label == names[int(np.argmax(probabilities))]
        true_name = truth.removeprefix("(true: ").removesuffix(")")
        assert true_name in names  # the sample's pneumonias are all bacterial or viral
        kind = {"Normal": "", "bacterial": "_bacteria_", "viral": "_virus_"}[true_name]
        assert kind in Path(path).name  # the Kermany names: person..._bacteria_... / person..._virus_...
        counts[label] += 1
        right += label == true_name
    assert "each X-ray is called its most probable class (Normal, bacterial, viral)" in err[0]
    assert err[-1] == (
        f"24 images classified: {counts['Normal']} Normal, {counts['bacterial']} bacterial, {counts['viral']} viral; "
        f"{right} of the 24 with a known label right ({100 * right / 24:.1f} %)"
    )


def test_the_printed_probabilities_are_the_models(weights, xray_mini_dir, capsys):
    images = sorted((xray_mini_dir / "test").iterdir())[:3]
    code, lines, _ = run([*images, "--weights", weights["three"]], capsys)
    assert code == 0
    pixels = np.stack([decode_image(path, SIZE) for path in images])[..., None]
    expected = np.asarray(mc.load_model(weights["three"]).predict(rescale(pixels)))
    printed = np.array([[float(column.split(" = ")[1]) for column in line.split("\t")[1:4]] for line in lines])
    np.testing.assert_allclose(printed, expected, atol=5e-5)


def test_a_binary_model_still_prints_p_normal_and_its_label(weights, capsys):
    code, lines, err = run(["--sample", "--weights", weights["binary"]], capsys)
    assert code == 0 and len(lines) == 24
    assert all(len(line.split("\t")) == 4 and line.split("\t")[1].startswith("P(Normal) = ") for line in lines)
    assert "an X-ray is called Normal when P(Normal) > 0.5, else Pneumonia" in err[0]
    assert err[-1].startswith("24 images classified: ") and "Pneumonia" in err[-1]


# ---------------------------------------------------------------------------
# Wrong inputs: one line, status 2, nothing decoded, nothing written
# ---------------------------------------------------------------------------


@pytest.fixture
def nothing_decoded(monkeypatch):
    calls = []
    monkeypatch.setattr(predict_xray, "decode_image", lambda *args: calls.append(args))
    return calls


@pytest.mark.parametrize(
    "options, message",
    [
        (["--weights", "THREE", "--threshold", "0.5"], "--threshold 0.5: THREE is a 3-class model"),
        (["--weights", "THREE", "--thr", "0.3"], "so there is no threshold; leave out --threshold"),
        (["--weights", "BINARY", "--explain-target", "viral"], "--explain-target viral: give --explain FOLDER too"),
        (
            ["--weights", "BINARY", "--explain", "OUT", "--explain-target", "viral"],
            "--explain-target viral: must be one of predicted, Pneumonia, Normal for this model",
        ),
        (
            ["--weights", "THREE", "--explain", "OUT", "--explain-target", "pneumonia"],
            "must be one of predicted, Normal, bacterial, viral",
        ),
        (["--weights", "BINARY", "--explain", "A_FILE"], "--explain A_FILE: is a file, not a folder"),
    ],
)
def test_wrong_options_are_refused_before_any_image_is_decoded(
    options, message, weights, nothing_decoded, tmp_path, capsys
):
    (tmp_path / "a_file").write_text("")
    names = {
        "THREE": weights["three"],
        "BINARY": weights["binary"],
        "OUT": tmp_path / "out",
        "A_FILE": tmp_path / "a_file",
    }
    argv = ["--sample", *(str(names.get(option, option)) for option in options)]
    for name, path in names.items():
        message = message.replace(name, str(path))
    code, lines, err = run(argv, capsys)
    assert code == 2 and lines == [] and len(err) == 1 and err[0].startswith("error: ")
    assert message in err[0], err[0]
    assert nothing_decoded == [] and not (tmp_path / "out").exists()


def test_two_images_that_would_write_one_heatmap_are_refused(weights, xray_mini_dir, nothing_decoded, tmp_path, capsys):
    image = sorted((xray_mini_dir / "test").iterdir())[0]
    (tmp_path / "copy").mkdir()
    copy = tmp_path / "copy" / image.name
    copy.write_bytes(image.read_bytes())
    out = tmp_path / "out"
    code, _, err = run([image, copy, "--weights", weights["binary"], "--explain", out], capsys)
    assert code == 2 and nothing_decoded == [] and not out.exists()
    assert f"{image} and {copy} would both be written to {out / (image.stem + '_gradcam.png')}" in err[0]


# ---------------------------------------------------------------------------
# --explain
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind, target", [("binary", None), ("binary", "Pneumonia"), ("three", "viral")])
def test_explain_writes_each_xray_beside_its_grad_cam_overlay(kind, target, weights, xray_mini_dir, tmp_path, capsys):
    images = sorted((xray_mini_dir / "test").iterdir())[:3]
    out = tmp_path / "heatmaps"
    options = [] if target is None else ["--explain-target", target]
    code, lines, err = run([*images, "--weights", weights[kind], "--explain", out, *options], capsys)
    assert code == 0 and len(lines) == 3
    assert sorted(path.name for path in out.iterdir()) == sorted(f"{path.stem}_gradcam.png" for path in images)
    assert f"Grad-CAM heatmaps of 3 images written to {out}" in err

    model = mc.load_model(weights[kind])
    pixels = np.stack([decode_image(path, SIZE) for path in images])  # (3, S, S) uint8
    inputs = rescale(pixels[..., None])
    if target is None:  # each image's predicted class: for the sigmoid, P(Normal) > 0.5 -> Normal (1)
        targets = (np.asarray(model.predict(inputs))[:, 0] > 0.5).astype(int)
    else:
        targets = np.full(3, {"Pneumonia": 0, "viral": 2}[target])
    for path, picture, image_input, class_index in zip(images, pixels, inputs, targets, strict=True):
        written = np.asarray(Image.open(out / f"{path.stem}_gradcam.png"))
        assert written.shape == (SIZE, 2 * SIZE, 3) and written.dtype == np.uint8
        np.testing.assert_array_equal(written[:, :SIZE], np.repeat(picture[..., None], 3, axis=2))  # the X-ray
        heatmap = grad_cam(model, image_input[None], target=int(class_index))[0]
        expected = predict_xray.overlay_heatmap(picture, heatmap)
        assert np.abs(written[:, SIZE:].astype(int) - expected).max() <= 1  # the overlay of that class's map


def test_explain_replaces_an_earlier_heatmap_and_leaves_no_temporary_file(weights, xray_mini_dir, tmp_path, capsys):
    image = sorted((xray_mini_dir / "test").iterdir())[0]
    out = tmp_path / "heatmaps"
    out.mkdir()
    (out / f"{image.stem}_gradcam.png").write_text("an older file")
    assert run([image, "--weights", weights["binary"], "--explain", out], capsys)[0] == 0
    assert [path.name for path in out.iterdir()] == [f"{image.stem}_gradcam.png"]
    assert Image.open(out / f"{image.stem}_gradcam.png").size == (2 * SIZE, SIZE)


def test_the_overlay_leaves_cold_pixels_alone_and_mixes_in_the_colour_of_hot_ones():
    gray = np.array([[0, 128], [255, 64]], dtype=np.uint8)
    heat = np.array([[0.0, 0.0], [1.0, 0.5]])
    out = predict_xray.overlay_heatmap(gray, heat, opacity=0.5)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], [0, 0, 0])
    np.testing.assert_array_equal(out[0, 1], [128, 128, 128])
    hot = 0.5 * 1.0 + 0.5 * np.array(colormaps["jet"](1.0)[:3])  # half the X-ray's white, half jet's red
    np.testing.assert_allclose(out[1, 0], 255 * hot, atol=0.5)
    warm = (1 - 0.25) * 64 / 255 + 0.25 * np.array(colormaps["jet"](0.5)[:3])
    np.testing.assert_allclose(out[1, 1], 255 * warm, atol=0.5)


# ---------------------------------------------------------------------------
# examples/study_grad_cam.py
# ---------------------------------------------------------------------------


def test_the_panels_follow_the_stated_rule():
    labels = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    p_normal = np.array([0.9, 0.8, 0.05, 0.01, 0.3, 0.1, 0.2, 0.7, 0.1, 0.4])
    normal, pneumonia, mistakes = study_grad_cam.choose_panels(labels, p_normal, per_row=2, seed=0)
    assert set(normal) == {0, 1}  # the only Normal X-rays called Normal
    assert set(pneumonia) <= {6, 8, 9} and len(pneumonia) == 2  # Pneumonia called Pneumonia (index 7 is not)
    assert mistakes.tolist() == [3, 2]  # P(Normal) <= 0.1, lowest first (0.3 is a mistake, not a confident one)
    assert study_grad_cam.choose_panels(labels, p_normal, per_row=4, seed=0)[2].tolist() == [3, 2, 5]


def test_the_centre_share_of_a_uniform_map_is_a_third_and_of_a_midline_stripe_all():
    assert study_grad_cam.centre_share(np.ones((30, 30))) == pytest.approx(1 / 3)
    stripe = np.zeros((30, 30))
    stripe[:, 12:18] = 1
    assert study_grad_cam.centre_share(stripe) == 1
    assert np.isnan(study_grad_cam.centre_share(np.zeros((30, 30))))


def test_the_figure_script_runs_on_a_small_run(xray_mini_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "cache"))
    run_folder = tmp_path / "run"
    run_folder.mkdir()
    tiny_model(1).save(run_folder / "checkpoint.npz")
    out = tmp_path / "figure"
    argv = ["--run", str(run_folder), "--data", str(xray_mini_dir), "--out", str(out), "--per-row", "2"]
    assert study_grad_cam.main(argv) == 0
    record = json.loads((out / "grad_cam.json").read_text())
    assert record["run"] == "run" and record["n_test"] == 24 and record["image_size"] == SIZE
    with open(out / "panels.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == sum(record["panels"].values()) <= 6
    assert Image.open(out / "grad_cam.png").mode == "RGB"
    assert not list(run_folder.glob("*.png"))  # the run folder is only read


# ---------------------------------------------------------------------------
# The published figure and its section of the study page
# ---------------------------------------------------------------------------


def test_the_study_page_shows_the_grad_cam_figure_and_names_its_run():
    folder = RESULTS / "study-grad-cam"
    record = json.loads((folder / "grad_cam.json").read_text())
    figure = Image.open(folder / "grad_cam.png")
    assert figure.format == "PNG" and (folder / "grad_cam.png").stat().st_size < 500 * 1024
    with open(folder / "panels.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 12 and all(row["predicted"] == row["heatmap_of"] for row in rows)
    assert [row["row"] for row in rows].count(study_grad_cam.ROWS[2]) == record["panels"][study_grad_cam.ROWS[2]]
    assert all(row["label"] == "Normal" and float(row["p_normal"]) <= 0.1 for row in rows[8:])

    page = (RESULTS / "study.md").read_text()
    section = page[page.index("## Where the network looks") :]
    section = " ".join(section[: section.index("\n## ", 1)].split())  # up to the next section, unwrapped
    assert "study-grad-cam/grad_cam.png" in section
    assert f"`{record['run']}`" in section and f"{record['image_size']} × {record['image_size']}" in section
    assert f"{record['epochs']} epochs" in section and "measured on the test images" in section
    assert f"{record['normal_called_pneumonia']} of its {record['normal_test_xrays']} Normal" in section
    assert f"{record['normal_called_pneumonia_confident']} of them with P(Normal) ≤ 0.1" in section
    assert f"{100 * record['test_accuracy']:.1f} %" in section
    for row, share in record["mean_centre_share"].items():
        assert f"{100 * share:.0f} %" in section, row
