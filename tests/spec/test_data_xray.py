"""Specification of minicnn.data.xray: reading the X-ray folders into labelled arrays."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from minicnn.data import xray
from minicnn.data.xray import (
    CLASS_NAMES,
    decode_image,
    detect_layout,
    first_of_each_class,
    load_split,
    read_metadata,
    stratified_split,
)

SMALL = 32  # image size for tests: decoding is then quick


# ----------------------------------------------------------------------------
# Helpers and fixtures
# ----------------------------------------------------------------------------


class Log(list):
    """A `log` callable that keeps the lines it receives."""

    def __call__(self, line: str) -> None:
        self.append(line)


def load(data_dir, split="train", **options):
    """load_split with quiet test defaults; pass cache_dir to use a cache."""
    options.setdefault("image_size", SMALL)
    options.setdefault("cache_dir", False)
    options.setdefault("progress", False)
    options.setdefault("log", Log())
    return load_split(data_dir, split, **options)


@pytest.fixture
def mini_copy(tmp_path, xray_mini_dir) -> Path:
    """A writable copy of xray-mini, for tests that damage it."""
    return Path(shutil.copytree(xray_mini_dir, tmp_path / "xray-mini"))


@pytest.fixture
def kermany_dir(tmp_path, xray_mini_dir) -> Path:
    """A small Kermany-layout folder: 3 + 3 train and 2 + 2 test images from xray-mini."""
    table = pd.read_csv(xray_mini_dir / xray.METADATA_FILE)
    root = tmp_path / "kermany"
    for split, per_class in (("train", 3), ("test", 2)):
        rows = table[table["Dataset_type"] == split.upper()]
        for label, folder in (("Normal", "NORMAL"), ("Pnemonia", "PNEUMONIA")):
            (root / split / folder).mkdir(parents=True)
            for name in rows[rows["Label"] == label]["X_ray_image_name"][:per_class]:
                shutil.copy(xray_mini_dir / split / name, root / split / folder / name)
    return root


def csv_rows(data_dir: Path, split: str = "train") -> pd.DataFrame:
    table = pd.read_csv(data_dir / xray.METADATA_FILE)
    return table[table["Dataset_type"] == split.upper()].reset_index(drop=True)


# ----------------------------------------------------------------------------
# Layout and metadata
# ----------------------------------------------------------------------------


def test_class_names_follow_the_study():
    assert CLASS_NAMES == {0: "Pneumonia", 1: "Normal"}


@pytest.mark.parametrize("split, normal, pneumonia", [("train", 24, 24), ("test", 12, 12)])
def test_metadata_lists_every_image_of_the_split(xray_mini_dir, split, normal, pneumonia):
    frame = read_metadata(xray_mini_dir, split)
    assert len(frame) == normal + pneumonia
    assert (frame["label"] == 1).sum() == normal
    assert (frame["label"] == 0).sum() == pneumonia
    assert set(frame["split"]) == {split}
    assert list(frame["file"]) == list(csv_rows(xray_mini_dir, split)["X_ray_image_name"])
    assert all(Path(path).is_file() for path in frame["path"])


def test_the_pnemonia_typo_is_class_0_and_normal_is_class_1(xray_mini_dir):
    frame = read_metadata(xray_mini_dir, "train")
    raw_labels = csv_rows(xray_mini_dir)["Label"]
    assert set(raw_labels) == {"Normal", "Pnemonia"}
    assert (frame["label_name"] == raw_labels.replace("Pnemonia", "Pneumonia")).all()
    assert (frame["label"] == np.where(raw_labels == "Normal", 1, 0)).all()


def test_virus_categories_are_kept(xray_mini_dir):
    frame = read_metadata(xray_mini_dir, "train")
    pneumonia = frame[frame["label"] == 0]
    assert pneumonia["Label_1_Virus_category"].value_counts().to_dict() == {
        "bacteria": 12,
        "Virus": 12,
    }
    assert frame.loc[frame["label"] == 1, "Label_1_Virus_category"].isna().all()
    assert "Label_2_Virus_category" in frame.columns


def test_layouts_are_detected(xray_mini_dir, kermany_dir):
    assert detect_layout(xray_mini_dir) == "coronahack"
    assert detect_layout(kermany_dir) == "kermany"


def test_a_folder_of_neither_layout_is_refused_with_both_layouts_named(tmp_path):
    (tmp_path / "notes.txt").write_text("not X-rays")
    with pytest.raises(ValueError) as refused:
        detect_layout(tmp_path)
    message = str(refused.value)
    assert "CoronaHack" in message and "Kermany" in message
    assert "notes.txt" in message  # says what was found

    with pytest.raises(FileNotFoundError, match="CoronaHack.*Kermany"):
        load_split(tmp_path / "no-such-folder", cache_dir=False)


def test_unknown_split_is_refused(xray_mini_dir):
    with pytest.raises(ValueError, match="split"):
        read_metadata(xray_mini_dir, "validation")


def test_kermany_layout_takes_labels_from_the_folders(kermany_dir):
    frame = read_metadata(kermany_dir, "train")
    assert list(frame["label"]) == [1, 1, 1, 0, 0, 0]
    assert all(name.startswith("NORMAL/") for name in frame["file"][:3])
    pneumonia_names = frame["file"][3:]
    expected = ["bacteria" if "bacteria" in name else "Virus" for name in pneumonia_names]
    assert list(frame["Label_1_Virus_category"][3:]) == expected

    test = load(kermany_dir, "test")
    assert test.images.shape == (4, SMALL, SMALL, 1)
    assert list(test.labels) == [1, 1, 0, 0]
    assert test.problems == []


# ----------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------


def test_images_are_square_grayscale_uint8_in_csv_order(xray_mini_dir):
    data = load(xray_mini_dir, "train", image_size=SMALL)
    assert data.images.shape == (48, SMALL, SMALL, 1)
    assert data.images.dtype == np.uint8
    assert data.labels.dtype == np.uint8
    assert len(data) == len(data.frame) == 48
    assert list(data.labels) == list(data.frame["label"])
    first = decode_image(data.frame["path"][0], SMALL)
    np.testing.assert_array_equal(data.images[0, :, :, 0], first)
    assert data.images.std() > 10  # real pictures, not blank arrays


def test_limit_keeps_the_first_images_of_each_class(xray_mini_dir):
    """The CSV lists the classes in blocks; a quick run must still see both of them."""
    data = load(xray_mini_dir, "test", limit=6)
    assert data.images.shape == (6, SMALL, SMALL, 1)
    listed = read_metadata(xray_mini_dir, "test")
    assert sorted(data.labels) == [0, 0, 0, 1, 1, 1]  # 12 + 12 images: half of each
    for label in (0, 1):
        expected = list(listed["file"][listed["label"] == label][:3])
        assert list(data.frame["file"][data.frame["label"] == label]) == expected


@given(labels=st.lists(st.sampled_from([0, 1]), min_size=1, max_size=60), fraction=st.floats(0, 1))
def test_first_of_each_class_is_proportional_and_ordered(labels, fraction):
    labels = np.array(labels)
    limit = int(round(fraction * len(labels)))
    chosen = first_of_each_class(labels, limit)
    assert len(chosen) == limit and list(chosen) == sorted(set(chosen))
    for label in (0, 1):
        members = np.flatnonzero(labels == label)
        taken = chosen[labels[chosen] == label]
        assert list(taken) == list(members[: len(taken)])  # a prefix of the class, in order
        assert abs(len(taken) - limit * len(members) / len(labels)) <= 1


def test_decoding_resizes_without_keeping_the_aspect_ratio(tmp_path):
    wide = np.zeros((10, 40, 3), np.uint8)
    wide[:, 20:] = 255  # left half black, right half white
    Image.fromarray(wide).save(tmp_path / "wide.png")
    square = decode_image(tmp_path / "wide.png", 16)
    assert square.shape == (16, 16) and square.dtype == np.uint8
    assert (square[:, :7] == 0).all() and (square[:, 9:] == 255).all()


def test_decoding_applies_the_exif_orientation(tmp_path):
    picture = np.zeros((10, 20), np.uint8)
    picture[:, 10:] = 255  # left black, right white ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... stored sideways: viewers turn it 90 degrees clockwise
    Image.fromarray(picture).save(tmp_path / "sideways.jpeg", exif=exif, quality=95)
    shown = decode_image(tmp_path / "sideways.jpeg", 8).astype(int)
    assert shown[:3].max() < 40 and shown[5:].min() > 215  # black on top, white below


@pytest.mark.parametrize(
    "mode, pixel, expected",
    [
        ("RGB", (255, 255, 255), 255),
        ("RGBA", (255, 255, 255, 0), 0),  # fully transparent: composited on black
        ("RGBA", (255, 255, 255, 255), 255),
        ("LA", (200, 255), 200),
        ("I;16", 65535, 255),  # 16-bit white is scaled, not clipped
        ("I;16", 257 * 100, 100),
        ("P", 0, 0),
    ],
)
def test_any_pixel_mode_becomes_8_bit_grayscale(tmp_path, mode, pixel, expected):
    Image.new(mode, (6, 4), pixel).save(tmp_path / "image.png")
    decoded = decode_image(tmp_path / "image.png", 5)
    assert decoded.shape == (5, 5)
    assert (decoded == expected).all()


# ----------------------------------------------------------------------------
# Bad input: recorded, never fatal
# ----------------------------------------------------------------------------


def test_bad_files_are_skipped_and_named_and_the_good_images_still_load(mini_copy):
    names = list(csv_rows(mini_copy)["X_ray_image_name"])
    train = mini_copy / "train"
    (train / names[0]).write_bytes(np.random.default_rng(0).bytes(5000))  # corrupt JPEG
    (train / names[1]).write_text("this is a text file, not an image")
    truncated = (train / names[2]).read_bytes()
    (train / names[2]).write_bytes(truncated[: len(truncated) // 2])
    (train / names[3]).unlink()  # CSV row whose file is missing
    shutil.copy(train / names[4], train / "extra-not-in-csv.jpeg")
    (train / ".DS_Store").write_bytes(b"\0")  # hidden files are not images

    log = Log()
    data = load(mini_copy, "train", log=log)

    assert data.images.shape == (44, SMALL, SMALL, 1)
    assert not set(names[:4]) & set(data.frame["file"])
    assert list(data.frame["file"]) == names[4:]
    assert len(data.problems) == 5
    for name in names[:4] + ["extra-not-in-csv.jpeg"]:
        assert sum(name in line for line in data.problems) == 1, name
    assert [line for line in data.problems if names[3] in line][0].count("missing") == 1
    assert set(data.problems) <= set(log)  # every problem is logged too
    assert log[-1] == ("train: kept 44 images; skipped 4 (1 missing file, 3 unreadable); 1 file not in the CSV ignored")


def test_unknown_labels_and_repeated_rows_are_skipped(mini_copy):
    table = pd.read_csv(mini_copy / xray.METADATA_FILE)
    table.loc[0, "Label"] = "Covid?"
    table = pd.concat([table, table.iloc[[5]]])  # the sixth row twice
    table.to_csv(mini_copy / xray.METADATA_FILE, index=False)

    data = load(mini_copy, "train")
    assert len(data) == 47
    assert any("Covid?" in line and table.iloc[0]["X_ray_image_name"] in line for line in data.problems)
    assert any("more than once" in line for line in data.problems)
    assert (data.frame["label"] <= 1).all()


def test_a_csv_without_a_required_column_is_refused_naming_the_file(mini_copy):
    table = pd.read_csv(mini_copy / xray.METADATA_FILE)
    table.drop(columns=["Label"]).to_csv(mini_copy / xray.METADATA_FILE, index=False)
    with pytest.raises(ValueError) as refused:
        load(mini_copy, "train")
    assert xray.METADATA_FILE in str(refused.value)
    assert "'Label'" in str(refused.value)


def test_a_csv_without_category_columns_still_loads(mini_copy):
    table = pd.read_csv(mini_copy / xray.METADATA_FILE)
    table.drop(columns=list(xray.CATEGORY_COLUMNS)).to_csv(mini_copy / xray.METADATA_FILE, index=False)
    frame = read_metadata(mini_copy, "test")
    assert len(frame) == 24 and frame["Label_1_Virus_category"].isna().all()


def test_a_non_image_in_a_kermany_folder_is_skipped(kermany_dir):
    (kermany_dir / "train" / "NORMAL" / "readme.jpeg").write_text("not an image")
    data = load(kermany_dir, "train")
    assert len(data) == 6
    assert len(data.problems) == 1 and "NORMAL/readme.jpeg" in data.problems[0]


# ----------------------------------------------------------------------------
# Cache
# ----------------------------------------------------------------------------


def fail_to_decode(path, image_size):
    raise AssertionError("decoded although the cache should have been used")


def test_second_load_comes_from_the_cache_without_decoding(xray_mini_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = load(xray_mini_dir, "test", cache_dir=cache)
    assert len(list(cache.glob("*.npy"))) == 1 and len(list(cache.glob("*.json"))) == 1

    monkeypatch.setattr(xray, "decode_image", fail_to_decode)
    second = load(xray_mini_dir, "test", cache_dir=cache)
    np.testing.assert_array_equal(second.images, first.images)
    np.testing.assert_array_equal(second.labels, first.labels)
    pd.testing.assert_frame_equal(second.frame, first.frame)


def test_problems_found_while_decoding_are_cached_too(mini_copy, tmp_path, monkeypatch):
    bad_name = csv_rows(mini_copy)["X_ray_image_name"][0]
    (mini_copy / "train" / bad_name).write_text("not an image")
    first = load(mini_copy, "train", cache_dir=tmp_path / "cache")

    monkeypatch.setattr(xray, "decode_image", fail_to_decode)
    second = load(mini_copy, "train", cache_dir=tmp_path / "cache")
    assert second.problems == first.problems and bad_name in second.problems[0]
    assert len(second) == 47


def test_a_damaged_cache_is_rebuilt(xray_mini_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = load(xray_mini_dir, "test", cache_dir=cache)
    (cached_images,) = cache.glob("*.npy")
    cached_images.write_bytes(b"garbage")

    log = Log()
    rebuilt = load(xray_mini_dir, "test", cache_dir=cache, log=log)
    assert any("damaged" in line for line in log)
    np.testing.assert_array_equal(rebuilt.images, first.images)

    monkeypatch.setattr(xray, "decode_image", fail_to_decode)
    again = load(xray_mini_dir, "test", cache_dir=cache)  # the rebuilt cache works
    np.testing.assert_array_equal(again.images, first.images)


def test_changing_an_image_or_the_size_misses_the_cache(mini_copy, tmp_path):
    cache = tmp_path / "cache"
    load(mini_copy, "test", cache_dir=cache)
    load(mini_copy, "test", cache_dir=cache, image_size=SMALL + 1)
    changed = mini_copy / "test" / csv_rows(mini_copy, "test")["X_ray_image_name"][0]
    os.utime(changed, ns=(0, 10**18))
    load(mini_copy, "test", cache_dir=cache)
    assert len(list(cache.glob("*.npy"))) == 3


def test_cache_location_defaults_to_minicnn_cache_and_can_be_disabled(xray_mini_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "env-cache"))
    load(xray_mini_dir, "test", cache_dir=False)
    assert not (tmp_path / "env-cache").exists()
    load(xray_mini_dir, "test", cache_dir=None)
    assert len(list((tmp_path / "env-cache").glob("*.npy"))) == 1


def test_the_data_folder_is_never_written(mini_copy, tmp_path):
    before = sorted(path.relative_to(mini_copy) for path in mini_copy.rglob("*"))
    load(mini_copy, "train", cache_dir=tmp_path / "cache")
    assert sorted(path.relative_to(mini_copy) for path in mini_copy.rglob("*")) == before


# ----------------------------------------------------------------------------
# Stratified train / validation split
# ----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 2), min_size=1, max_size=300),
    fraction=st.floats(0, 0.95),
    seed=st.integers(0, 2**32 - 1),
)
def test_stratified_split_partitions_and_keeps_class_shares(labels, fraction, seed):
    labels = np.array(labels)
    train, validation = stratified_split(labels, fraction, seed)
    assert not set(train) & set(validation)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, validation])), np.arange(len(labels)))
    assert (np.diff(train) > 0).all() and (np.diff(validation) > 0).all()  # sorted
    for label in np.unique(labels):
        in_class = (labels == label).sum()
        in_validation = (labels[validation] == label).sum()
        assert abs(in_validation - fraction * in_class) <= 0.5 + 1e-9  # within one sample
    again = stratified_split(labels, fraction, seed)
    np.testing.assert_array_equal(again[0], train)
    np.testing.assert_array_equal(again[1], validation)


def test_stratified_split_depends_on_the_seed():
    labels = np.repeat([0, 1], 100)
    assert not np.array_equal(stratified_split(labels, 0.2, seed=0)[1], stratified_split(labels, 0.2, seed=1)[1])


def test_stratified_split_with_fraction_0_has_no_validation():
    train, validation = stratified_split(np.array([0, 1, 1, 0]), 0.0)
    assert list(train) == [0, 1, 2, 3] and len(validation) == 0


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, float("nan")])
def test_stratified_split_refuses_a_bad_fraction(fraction):
    with pytest.raises(ValueError, match="validation_fraction"):
        stratified_split(np.array([0, 1]), fraction)


# ----------------------------------------------------------------------------
# Three classes: Normal, bacterial, viral
# ----------------------------------------------------------------------------


def test_three_classes_are_numbered_normal_bacterial_viral():
    assert xray.THREE_CLASS_NAMES == {0: "Normal", 1: "bacterial", 2: "viral"}


@pytest.mark.parametrize("split, counts", [("train", [24, 12, 12]), ("test", [12, 6, 6])])
def test_the_bundled_sample_loads_with_three_classes_from_the_csv(xray_mini_dir, split, counts):
    data = load(xray_mini_dir, split, classes=3)
    assert np.bincount(data.labels).tolist() == counts and data.problems == []
    assert data.class_names == ("Normal", "bacterial", "viral")
    kinds = data.frame["Label_1_Virus_category"].fillna("none").str.lower()
    expected = kinds.map({"none": 0, "bacteria": 1, "virus": 2}).to_numpy()
    np.testing.assert_array_equal(data.labels, expected)
    # the same images as with two classes, in the same order: only the labels differ
    two = load(xray_mini_dir, split)
    np.testing.assert_array_equal(data.images, two.images)
    np.testing.assert_array_equal(data.labels == 0, two.labels == 1)  # Normal is 0 here, 1 there
    assert two.class_names == ("Pneumonia", "Normal")


def test_kermany_file_names_give_the_kind_of_pneumonia(kermany_dir):
    frame = read_metadata(kermany_dir, "train", classes=3)
    for name, label in zip(frame["file"], frame["label"], strict=True):
        expected = 0 if name.startswith("NORMAL/") else 1 if "_bacteria_" in name else 2
        assert label == expected, name
    assert set(frame["label_name"]) <= {"Normal", "bacterial", "viral"}


def test_a_pneumonia_of_neither_kind_is_skipped_and_named_with_three_classes_only(mini_copy):
    """Like CoronaHack's two "Stress-Smoking" ARDS X-rays: Pneumonia with two classes, skipped with three."""
    table = pd.read_csv(mini_copy / xray.METADATA_FILE, dtype=str)
    pneumonia = table.index[(table["Label"] == "Pnemonia") & (table["Dataset_type"] == "TRAIN")]
    table.loc[pneumonia[0], "Label_1_Virus_category"] = "Stress-Smoking"
    table.loc[pneumonia[1], "Label_1_Virus_category"] = None
    table.to_csv(mini_copy / xray.METADATA_FILE, index=False)
    names = table.loc[pneumonia[:2], "X_ray_image_name"].tolist()
    two = load(mini_copy, "train")
    assert len(two) == 48 and two.problems == []
    log = Log()
    three = load(mini_copy, "train", classes=3, log=log)
    assert len(three) == 46 and not set(names) & set(three.frame["file"])
    assert three.problems == [
        f"{names[0]}: a pneumonia of category 'Stress-Smoking', neither bacterial nor viral; skipped (classes=3)",
        f"{names[1]}: a pneumonia of category none, neither bacterial nor viral; skipped (classes=3)",
    ]
    assert log[-1] == "train: kept 46 images; skipped 2 (2 neither bacterial nor viral)"


def test_the_limit_keeps_all_three_classes(xray_mini_dir):
    data = load(xray_mini_dir, "train", classes=3, limit=8)
    assert np.bincount(data.labels).tolist() == [4, 2, 2]


@pytest.mark.parametrize("classes", [1, 4, True, 3.0, "3", None])
def test_classes_must_be_the_int_2_or_3(xray_mini_dir, classes):
    message = r"classes must be 2 \(Normal, Pneumonia\) or 3 \(Normal, bacterial, viral\), got "
    with pytest.raises(ValueError, match="load_split: " + message):
        load(xray_mini_dir, "train", classes=classes)
    with pytest.raises(ValueError, match="read_metadata: " + message):
        read_metadata(xray_mini_dir, "train", classes=classes)


def test_the_full_coronahack_metadata_has_two_stress_smoking_rows_and_these_are_the_only_ones_skipped():
    """On the machine's full data, when it is there (the suite does not need it)."""
    folder = Path(__file__).resolve().parents[3] / "shared" / "data" / "coronahack"
    if not (folder / xray.METADATA_FILE).is_file():
        pytest.skip(f"no CoronaHack data at {folder}")
    frame = read_metadata(folder, "train", classes=3)
    skipped = frame[frame["label"] == xray.NO_KIND]
    assert skipped["Label_1_Virus_category"].tolist() == ["Stress-Smoking", "Stress-Smoking"]
    assert (frame["label"] == 0).sum() == 1342 and (frame["label"] == 1).sum() == 2535
    assert (frame["label"] == 2).sum() == 1404  # Virus 1,345 + COVID-19 55 + SARS 4
    test = read_metadata(folder, "test", classes=3)
    assert np.bincount(test["label"]).tolist() == [234, 242, 148]
