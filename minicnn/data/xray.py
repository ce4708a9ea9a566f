"""Load the chest X-ray images of the study as NumPy arrays, with labels.

Two folder layouts are accepted. **CoronaHack** (Kaggle "CoronaHack - Chest X-Ray-Dataset"):

    data_dir/Chest_xray_Corona_Metadata.csv
    data_dir/train/*.jpeg          flat folders; labels come from the CSV
    data_dir/test/*.jpeg

The CSV columns are ``,X_ray_image_name,Label,Dataset_type,Label_2_Virus_category,
Label_1_Virus_category``. ``Label`` is ``Normal`` or ``Pnemonia`` (the typo is in
the original data) and ``Dataset_type`` is ``TRAIN`` or ``TEST``.

**Kermany** (the original "chest_xray" download, no CSV):

    data_dir/train/NORMAL/*.jpeg   labels come from the folder names
    data_dir/train/PNEUMONIA/*.jpeg
    data_dir/test/...

As in the study, Normal is class 1 and Pneumonia is class 0 (``classes=2``, the default).

With ``classes=3`` the pneumonias are told apart, as the study's future work proposes
([Normal, bacterial, viral]): Normal = 0, bacterial = 1, viral = 2 (:data:`THREE_CLASS_NAMES`).
Why not keep Normal = 1: that number exists for the sigmoid, whose one output is P(Normal); a
softmax has one output per class and no class is special, so the classes are numbered in the
order the study names them, which also puts the two pneumonias side by side: rows and columns
1-2 of the 3 x 3 confusion matrix are the bacterial-versus-viral block. The kind of pneumonia
comes from CoronaHack's ``Label_1_Virus_category`` ("bacteria" or "Virus"; COVID-19 and SARS
are Virus, Streptococcus is bacteria) or, in the Kermany layout, from the file name
(``person…_bacteria_…``, ``person…_virus_…``). A pneumonia of neither kind is skipped, with
a line in ``problems``: in CoronaHack those are the two ARDS X-rays of category
"Stress-Smoking" (both in train), and any pneumonia without a category. With ``classes=2``
they are Pneumonia, as before.

Every image is decoded once, turned to grayscale and resized to a square, then
kept in a cache file so that later runs start in a fraction of a second. A bad
file never stops a run: it is skipped, and the reason is recorded in
:attr:`XrayDataset.problems` and logged.

Examples
--------
The 72-image sample that ships with minicnn is a folder in the CoronaHack layout:

>>> from minicnn.data import sample_path
>>> train = load_split(sample_path(), "train", image_size=64, cache_dir=False, progress=False, log=print)
train: kept 48 images; skipped 0
>>> train.images.shape, train.images.dtype, np.bincount(train.labels)
((48, 64, 64, 1), dtype('uint8'), array([24, 24]))

On the full CoronaHack data, ``load_split("data/coronahack", "train")`` gives 5,283
images of 300 x 300 pixels, and caches them for the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps
from tqdm.auto import tqdm

from minicnn.checks import check_whole_number
from minicnn.files import write_atomic

CLASS_NAMES = {0: "Pneumonia", 1: "Normal"}
"""The study's labels: 0 is Pneumonia, 1 is Normal (the model outputs P(Normal))."""
THREE_CLASS_NAMES = {0: "Normal", 1: "bacterial", 2: "viral"}
"""The labels with ``classes=3``: Normal, then the two kinds of pneumonia (see the module docstring)."""
CLASSES = (2, 3)
"""The values the ``classes`` argument of :func:`read_metadata` and :func:`load_split` accepts."""
SPLITS = ("train", "test")

METADATA_FILE = "Chest_xray_Corona_Metadata.csv"
REQUIRED_COLUMNS = ("X_ray_image_name", "Label", "Dataset_type")
# Kept in the frame for analysis (bacteria / Virus / COVID-19 ...); filled with
# missing values when a CSV lacks them, since the labels do not depend on them.
CATEGORY_COLUMNS = ("Label_1_Virus_category", "Label_2_Virus_category")
KERMANY_FOLDERS = {"NORMAL": "Normal", "PNEUMONIA": "Pneumonia"}
FRAME_COLUMNS = ("file", "path", "label_name", "label", *CATEGORY_COLUMNS, "split")

# Label_1_Virus_category (lower-cased) of a pneumonia -> its label with classes=3.
_PNEUMONIA_KINDS = {"bacteria": 1, "virus": 2}
NO_KIND = -2
"""The ``label`` of a pneumonia that is neither bacterial nor viral, with ``classes=3`` (skipped by load_split)."""
# CSV spellings (lower-cased) -> label name; "pnemonia" is the CoronaHack typo.
_LABEL_NAMES = {"normal": "Normal", "pnemonia": "Pneumonia", "pneumonia": "Pneumonia"}
_LABEL_NUMBERS = {"Normal": 1, "Pneumonia": 0}

_LAYOUTS_HELP = (
    "Accepted layouts: (1) CoronaHack: "
    f"{METADATA_FILE} plus flat train/ and test/ image folders; "
    "(2) Kermany: train/NORMAL, train/PNEUMONIA, test/NORMAL, test/PNEUMONIA image folders."
)

# Bump when decoding changes, so that old cache files are not reused.
_CACHE_VERSION = 1


@dataclass
class XrayDataset:
    """One split of the X-ray data, decoded into memory.

    Attributes
    ----------
    images : numpy.ndarray of shape (N, S, S, 1), uint8
        Grayscale images, resized to S x S.
    labels : numpy.ndarray of shape (N,), uint8
        1 = Normal, 0 = Pneumonia (see :data:`CLASS_NAMES`); with ``classes=3``,
        0 = Normal, 1 = bacterial, 2 = viral (:data:`THREE_CLASS_NAMES`).
    frame : pandas.DataFrame
        One row per kept image, in the same order as ``images`` (columns as in
        :func:`read_metadata`).
    problems : list of str
        One line per skipped or ignored file, naming the file and the reason.
    """

    images: np.ndarray
    labels: np.ndarray
    frame: pd.DataFrame
    problems: list[str] = field(default_factory=list)
    class_names: tuple[str, ...] = ("Pneumonia", "Normal")
    """The name of label 0, 1, ...: CLASS_NAMES's, or THREE_CLASS_NAMES's with ``classes=3``."""

    def __len__(self) -> int:
        """The number of images."""
        return len(self.labels)


# ----------------------------------------------------------------------------
# Layout and metadata
# ----------------------------------------------------------------------------


def detect_layout(data_dir: str | os.PathLike) -> str:
    """Tell which of the two accepted layouts ``data_dir`` holds.

    Returns
    -------
    str
        ``"coronahack"`` when the metadata CSV and a train/ or test/ folder are
        present, else ``"kermany"`` when a split folder holds NORMAL/ or PNEUMONIA/.

    Raises
    ------
    FileNotFoundError
        ``data_dir`` does not exist or is not a folder.
    ValueError
        ``data_dir`` exists but matches neither layout; the message lists what it holds.
    """
    folder = Path(data_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"X-ray data folder {folder} does not exist. {_LAYOUTS_HELP}")
    has_split_folder = any((folder / split).is_dir() for split in SPLITS)
    if (folder / METADATA_FILE).is_file() and has_split_folder:
        return "coronahack"
    if any((folder / split / name).is_dir() for split in SPLITS for name in KERMANY_FOLDERS):
        return "kermany"
    found = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in folder.iterdir())
    shown = ", ".join(found[:12]) + (f", ... ({len(found)} entries)" if len(found) > 12 else "")
    raise ValueError(f"{folder} is not an X-ray data folder. {_LAYOUTS_HELP} Found: {shown or 'nothing'}.")


def read_metadata(data_dir: str | os.PathLike, split: str, classes: int = 2) -> pd.DataFrame:
    """List the images of one split with their labels, without opening any image.

    Parameters
    ----------
    data_dir : str or os.PathLike
        A folder in the CoronaHack or Kermany layout (see the module docstring).
    split : str, one of {"train", "test"}
        Which split to list.
    classes : int, one of {2, 3}, default 2
        2: Normal (1) or Pneumonia (0); 3: Normal (0), bacterial (1) or viral (2).

    Returns
    -------
    pandas.DataFrame
        One row per image listed for the split, in CSV order (CoronaHack) or
        sorted by path (Kermany: all NORMAL/ then all PNEUMONIA/). Columns:

        - ``file``: path relative to the split folder (the bare file name for CoronaHack)
        - ``path``: full path as a string
        - ``label_name``: "Normal" or "Pneumonia" (the raw value when unknown); with
          ``classes=3`` "Normal", "bacterial" or "viral" ("Pneumonia" for one of neither kind)
        - ``label``: 1 = Normal, 0 = Pneumonia, -1 = unknown label value (int8); with
          ``classes=3`` 0 = Normal, 1 = bacterial, 2 = viral, -2 (:data:`NO_KIND`) = a
          pneumonia of neither kind
        - ``Label_1_Virus_category``, ``Label_2_Virus_category``: e.g. "bacteria",
          "Virus", "COVID-19"; missing when not given (Kermany: guessed from the
          file name, which says "bacteria" or "virus")
        - ``split``: the split asked for

        Files are not checked here; :func:`load_split` does that.

    Raises
    ------
    ValueError
        Unknown split, ``classes`` not 2 or 3, or the CSV lacks a required column (the
        message names the CSV and the missing columns).
    FileNotFoundError
        The split folder does not exist.
    """
    split = _check_split(split)
    classes = check_classes("read_metadata", classes)
    folder = Path(data_dir)
    layout = detect_layout(folder)
    split_folder = folder / split
    if not split_folder.is_dir():
        raise FileNotFoundError(f"{layout} data in {folder} has no {split}/ folder")
    if layout == "coronahack":
        frame = _read_coronahack_csv(folder / METADATA_FILE, split_folder, split)
    else:
        frame = _list_kermany_folders(split_folder, split)
    return _three_class_labels(frame) if classes == 3 else frame


def check_classes(where: str, classes: object) -> int:
    """``classes`` itself when it is the int 2 or 3; else an error naming ``where`` (True, 3.0, "3" are refused)."""
    if type(classes) is not int or classes not in CLASSES:
        raise ValueError(
            f"{where}: classes must be 2 (Normal, Pneumonia) or 3 (Normal, bacterial, viral), got {classes!r}"
        )
    return classes


def _three_class_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """Relabel a two-class frame: Normal -> 0, Pneumonia -> 1 (bacteria) or 2 (Virus) by Label_1_Virus_category.

    A pneumonia of another category or of none (CoronaHack's two "Stress-Smoking" ARDS
    rows) gets NO_KIND; an unknown label stays -1.
    """
    kinds = frame["Label_1_Virus_category"].fillna("").astype(str).str.strip().str.lower().map(_PNEUMONIA_KINDS)
    pneumonia = frame["label_name"] == "Pneumonia"
    labels = np.where(frame["label_name"] == "Normal", 0, -1)
    labels = np.where(pneumonia, kinds.fillna(NO_KIND).to_numpy(), labels)
    frame = frame.copy()
    frame["label"] = labels.astype(np.int8)
    names = frame["label"].map(THREE_CLASS_NAMES)
    frame["label_name"] = names.fillna(frame["label_name"])
    return frame


def _check_split(split: str) -> str:
    if not isinstance(split, str):
        raise TypeError(f"split must be one of {SPLITS}, got {split!r}")
    name = split.lower()
    if name not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return name


def _read_coronahack_csv(csv_path: Path, split_folder: Path, split: str) -> pd.DataFrame:
    # Everything as text: file names like "1.jpeg" must not become numbers.
    try:
        table = pd.read_csv(csv_path, dtype=str, encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{csv_path} is not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8 and try again"
        ) from None
    except pd.errors.EmptyDataError:
        raise ValueError(
            f"{csv_path} is empty; it must start with a header line holding at least the columns "
            f"{', '.join(REQUIRED_COLUMNS)}"
        ) from None
    except pd.errors.ParserError as error:
        raise ValueError(f"{csv_path} cannot be read as a CSV file ({str(error).strip()})") from None
    missing = [column for column in REQUIRED_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(
            f"{csv_path} is missing the required column(s) {missing}; "
            f"it has {list(table.columns)}, expected at least {list(REQUIRED_COLUMNS)}"
        )
    rows = table[table["Dataset_type"].str.strip().str.upper() == split.upper()]
    files = rows["X_ray_image_name"].fillna("").str.strip()
    raw_labels = rows["Label"].fillna("").str.strip()
    label_names = raw_labels.str.lower().map(_LABEL_NAMES).fillna(raw_labels)
    frame = pd.DataFrame(
        {
            "file": files.to_numpy(),
            "path": [str(split_folder / name) for name in files],
            "label_name": label_names.to_numpy(),
        }
    )
    frame["label"] = _label_numbers(frame["label_name"])
    for column in CATEGORY_COLUMNS:
        frame[column] = rows[column].to_numpy() if column in rows else None
    frame["split"] = split
    return frame


def _list_kermany_folders(split_folder: Path, split: str) -> pd.DataFrame:
    rows = []
    for class_folder, label_name in KERMANY_FOLDERS.items():
        folder = split_folder / class_folder
        if not folder.is_dir():
            continue
        for name in sorted(entry.name for entry in folder.iterdir() if _is_visible_file(entry)):
            file = f"{class_folder}/{name}"
            category = _category_from_file_name(name)
            label = _LABEL_NUMBERS[label_name]
            rows.append((file, str(split_folder / file), label_name, label, category, None, split))
    frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    frame["label"] = frame["label"].astype(np.int8)
    return frame


def _category_from_file_name(name: str) -> str | None:
    # Kermany names pneumonia files like person1_bacteria_1.jpeg or person7_virus_13.jpeg.
    lower_name = name.lower()
    if "bacteria" in lower_name:
        return "bacteria"
    if "virus" in lower_name:
        return "Virus"
    return None


def _label_numbers(label_names: pd.Series) -> np.ndarray:
    return label_names.map(_LABEL_NUMBERS).fillna(-1).to_numpy(dtype=np.int8)


def _is_visible_file(entry: os.DirEntry | Path) -> bool:
    # Hidden files (.DS_Store, ._name from macOS archives) are not images.
    return entry.is_file() and not entry.name.startswith(".")


# ----------------------------------------------------------------------------
# Decoding
# ----------------------------------------------------------------------------


def decode_image(path: str | os.PathLike, image_size: int) -> np.ndarray:
    """Decode one image file to a square grayscale array.

    Steps: apply the EXIF orientation, convert any mode to 8-bit grayscale
    (images with transparency are composited on black first; 16-bit images are
    scaled down, not clipped), then resize to ``image_size`` x ``image_size``
    without keeping the aspect ratio, as the study did.

    The resize uses bilinear filtering. Most files are 224 x 224 and are
    enlarged to 300, where a sharper filter (Lanczos) adds no real detail but
    adds ringing around the sharp edges of bones and text markers; bilinear is
    also what Keras and TensorFlow resize with by default. When shrinking,
    Pillow widens the filter to the scale, so large images are not aliased.

    Parameters
    ----------
    path : str or os.PathLike
        A JPEG, PNG or any other file Pillow reads.
    image_size : int
        The side of the output square, in pixels.

    Returns
    -------
    numpy.ndarray of shape (image_size, image_size), uint8
        The grayscale image.

    Raises
    ------
    Exception
        Whatever Pillow raises for an unreadable, truncated or non-image file
        (usually ``OSError``); :func:`load_split` catches and records it.
    """
    with Image.open(path) as image:
        # For JPEG, decode straight to grayscale at a reduced scale (1/2, 1/4,
        # 1/8) when the file is much larger than needed: far less work, and the
        # result is still at least image_size on each side.
        image.draft("L", (image_size, image_size))
        image = ImageOps.exif_transpose(image)
        image = _to_grayscale(image)
        image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8)


def _to_grayscale(image: Image.Image) -> Image.Image:
    if image.mode == "L":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        # 16-bit pixels: convert("L") would clip everything above 255 to white.
        return image.convert("I").point(lambda value: value / 257, "L")
    if "A" in image.getbands() or "transparency" in image.info:
        # Transparent areas have no defined colour; showing them as black
        # matches the background of an X-ray film.
        image = image.convert("RGBA")
        black = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(black, image)
    return image.convert("L")


def _decode_all(
    paths: list[str], image_size: int, progress: bool, description: str
) -> tuple[np.ndarray, list[str | None]]:
    """Decode many files in a thread pool; returns the images and one error (or None) per file."""
    images = np.zeros((len(paths), image_size, image_size, 1), dtype=np.uint8)
    errors: list[str | None] = [None] * len(paths)

    def decode_into(index: int) -> None:
        try:
            images[index, :, :, 0] = decode_image(paths[index], image_size)
        # Pillow raises many kinds of errors for broken files (OSError,
        # SyntaxError, ValueError ...); none of them may stop the whole run.
        except Exception as error:
            errors[index] = f"{type(error).__name__}: {error}"

    # Pillow releases the GIL while decoding and resizing, so threads decode in parallel.
    with (
        ThreadPoolExecutor(max_workers=_cpu_count()) as pool,
        tqdm(total=len(paths), desc=description, unit="img", disable=not progress, leave=False) as bar,
    ):
        for _ in pool.map(decode_into, range(len(paths))):
            bar.update()
    return images, errors


def _cpu_count() -> int:
    # The CPUs this process may use, which can be fewer than the machine has.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


# ----------------------------------------------------------------------------
# Cache
# ----------------------------------------------------------------------------


def _default_cache_dir() -> Path:
    return Path(os.environ.get("MINICNN_CACHE") or Path.home() / ".cache" / "minicnn")


def _cache_stem(cache_dir: Path, layout: str, split: str, image_size: int, limit: int | None, files: list) -> Path:
    """Name the cache entry after everything that changes its content.

    ``files`` holds (file, size in bytes, modification time in ns) for each
    image to decode, so editing, adding or removing an image changes the name.
    An entry is two files: ``<stem>.npy`` with the images, and ``<stem>.json``
    saying which files decoded and why the others did not. A plain ``.npy``
    loads several times faster than the same array inside an ``.npz`` archive.
    """
    description = [_CACHE_VERSION, layout, split, image_size, limit, sorted(files)]
    digest = hashlib.sha256(json.dumps(description).encode()).hexdigest()[:20]
    return cache_dir / f"xray-{layout}-{split}-{image_size}px-{digest}"


def _load_cache(stem: Path, count: int, image_size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a cache entry; raises if it is damaged or does not fit ``count`` candidate files."""
    notes = json.loads(stem.with_suffix(".json").read_text())
    decoded = np.array(notes["decoded"], dtype=bool)
    problems = [str(line) for line in notes["problems"]]
    images = np.load(stem.with_suffix(".npy"), allow_pickle=False)
    expected_shape = (int(decoded.sum()), image_size, image_size, 1)
    if decoded.shape != (count,) or images.shape != expected_shape or images.dtype != np.uint8:
        raise ValueError(f"unexpected contents: images {images.shape} for {count} files")
    return images, decoded, problems


def _save_cache(stem: Path, images: np.ndarray, decoded: np.ndarray, problems: list[str], log: Callable) -> None:
    """Write the images, then the notes; the notes file marks a complete entry."""
    notes = {"decoded": decoded.tolist(), "problems": problems}
    try:
        write_atomic(stem.with_suffix(".npy"), lambda file: np.save(file, images))
        notes_text = json.dumps(notes).encode()
        write_atomic(stem.with_suffix(".json"), lambda file: file.write(notes_text))
        log(f"saved the decoded images to the cache {stem}.npy")
    except OSError as error:  # a full disk or read-only cache must not stop the run
        log(f"could not write the cache {stem}.npy ({error}); continuing without it")


# ----------------------------------------------------------------------------
# Loading a split
# ----------------------------------------------------------------------------


def load_split(
    data_dir: str | os.PathLike,
    split: str = "train",
    image_size: int = 300,
    limit: int | None = None,
    cache_dir: str | os.PathLike | None | bool = None,
    progress: bool = True,
    log: Callable[[str], object] = print,
    classes: int = 2,
) -> XrayDataset:
    """Load one split as arrays, decoding the images or reading them from the cache.

    Parameters
    ----------
    data_dir : str or os.PathLike
        A folder in the CoronaHack or Kermany layout; it is only read, never written.
    split : str, one of {"train", "test"}, default "train"
        Which split to load.
    image_size : int
        Side S of the square images, in pixels.
    limit : int, optional
        Use only ``limit`` images of the split, for quick runs: the first ones
        of each class (CSV order, or sorted path order for Kermany), in
        proportion to the class sizes, counted after dropping rows whose file
        is missing. Taking the first ``limit`` rows as listed would give a
        single class, since both orders group the classes.
    cache_dir : str or os.PathLike or None or False
        Where decoded arrays are kept: None means ``$MINICNN_CACHE``, else
        ``~/.cache/minicnn``; False disables the cache. An entry is found by a
        hash of the layout, split, image size, limit and every image's name,
        size and modification time, so any change to the data is noticed. A
        damaged entry is logged and rebuilt.
    progress : bool
        Show a progress bar while decoding.
    log : callable
        Receives one string per problem and a one-line summary.
    classes : int, one of {2, 3}, default 2
        2: Normal (1) or Pneumonia (0), the study's labels; 3: Normal (0), bacterial (1) or
        viral (2), a pneumonia of neither kind skipped (see the module docstring).

    Returns
    -------
    XrayDataset
        ``images`` (N, S, S, 1) uint8, ``labels`` (N,) uint8, ``frame``, ``problems`` and
        ``class_names``.

    Raises
    ------
    FileNotFoundError
        The folder or its split folder does not exist (see :func:`read_metadata`).
    ValueError
        The folder matches neither layout, the CSV lacks a required column, or an argument
        is out of range. Problems with single files never raise: they are recorded instead.
    """
    image_size = check_whole_number("load_split", "image_size", image_size, 1)
    classes = check_classes("load_split", classes)
    if limit is not None:
        limit = check_whole_number("load_split", "limit", limit, 0)
    if not callable(log):
        raise TypeError(f"load_split: log must be a function such as print, got {log!r}")
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"load_split: data_dir must be a str or a path, got {data_dir!r}")
    layout = detect_layout(data_dir)
    frame = read_metadata(data_dir, split, classes)
    split = _check_split(split)
    problems: list[tuple[str, str]] = []  # (kind, line); kinds are counted in the summary

    if layout == "coronahack":
        _note_files_not_listed(Path(data_dir) / split, frame, problems)
    frame, file_stats = _drop_unusable_rows(frame, problems)
    if limit is not None:
        chosen = first_of_each_class(frame["label"].to_numpy(), limit)
        frame, file_stats = frame.iloc[chosen], [file_stats[row] for row in chosen]

    images, decoded, decode_problems = _decode_or_load_cache(
        frame, file_stats, layout, split, int(image_size), limit, cache_dir, progress, log
    )
    problems += [("unreadable", line) for line in decode_problems]
    frame = frame[decoded].reset_index(drop=True)
    frame["label"] = frame["label"].astype(np.uint8)

    for _, line in problems:
        log(line)
    log(_summary(split, len(frame), problems))
    return XrayDataset(
        images=images,
        labels=frame["label"].to_numpy(dtype=np.uint8),
        frame=frame,
        problems=[line for _, line in problems],
        class_names=tuple((THREE_CLASS_NAMES if classes == 3 else CLASS_NAMES).values()),
    )


def first_of_each_class(labels: np.ndarray, limit: int) -> np.ndarray:
    """Indices of ``limit`` rows: the first rows of every class, in proportion to the class sizes.

    Row k of a class of size n sits at the relative position (k + 0.5) / n; taking the
    ``limit`` smallest positions takes about limit * n / total rows from each class.
    Returned in increasing order, so the listing order is kept.

    Parameters
    ----------
    labels : numpy.ndarray of shape (N,)
        The class of every row.
    limit : int
        How many rows to take.

    Returns
    -------
    numpy.ndarray of shape (min(limit, N),), int
        Row indices, increasing.
    """
    rows, positions = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rows.append(members)
        positions.append((np.arange(len(members)) + 0.5) / len(members))
    rows, positions = np.concatenate(rows), np.concatenate(positions)
    return np.sort(rows[np.argsort(positions, kind="stable")[:limit]])


def _drop_unusable_rows(
    frame: pd.DataFrame, problems: list[tuple[str, str]]
) -> tuple[pd.DataFrame, list[tuple[str, int, int]]]:
    """Drop rows with an unknown label, a repeated file or a missing file.

    Returns the remaining rows and, for each, (file, size in bytes, mtime in ns).
    """
    keep = np.ones(len(frame), dtype=bool)
    file_stats = []
    seen = set()
    kinds = frame["Label_1_Virus_category"]
    for row, (file, path, label, label_name, kind) in enumerate(
        zip(frame["file"], frame["path"], frame["label"], frame["label_name"], kinds, strict=True)
    ):
        shown = shown_name(file) if file else f"(row {row} of the list has no file name)"
        if label == NO_KIND:
            kind = "none" if pd.isna(kind) or not str(kind).strip() else repr(kind)
            line = f"{shown}: a pneumonia of category {kind}, neither bacterial nor viral; skipped (classes=3)"
            problems.append(("neither bacterial nor viral", line))
        elif label < 0:
            problems.append(("unknown label", f"{shown}: unknown label {label_name!r}; skipped"))
        elif file in seen:
            problems.append(("duplicate", f"{shown}: listed more than once; kept the first"))
        elif (info := _stat_file(path)) is None:
            problems.append(("missing file", f"{shown}: listed but the file is missing; skipped"))
        else:
            seen.add(file)
            file_stats.append((file, info.st_size, info.st_mtime_ns))
            continue
        keep[row] = False
    return frame[keep].reset_index(drop=True), file_stats


def shown_name(name: str) -> str:
    """A file name as a message can print it: one that is not valid UTF-8 gets its bad bytes escaped.

    On Linux a file name is bytes; Python keeps bytes that are not UTF-8 as "surrogates", which
    no UTF-8 log or console can write (UnicodeEncodeError). They are shown as \\xff instead.
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        escaped = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return f"{escaped} (a file name that is not valid UTF-8)"
    return name


def _stat_file(path: str) -> os.stat_result | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info if stat.S_ISREG(info.st_mode) else None


def _note_files_not_listed(split_folder: Path, frame: pd.DataFrame, problems: list[tuple[str, str]]) -> None:
    listed = set(frame["file"])
    for entry in sorted(os.scandir(split_folder), key=lambda entry: entry.name):
        if _is_visible_file(entry) and entry.name not in listed:
            line = f"{shown_name(entry.name)}: in {split_folder.name}/ but not in the CSV for it; ignored"
            problems.append(("not listed", line))


def _decode_or_load_cache(
    frame: pd.DataFrame,
    file_stats: list[tuple[str, int, int]],
    layout: str,
    split: str,
    image_size: int,
    limit: int | None,
    cache_dir: str | os.PathLike | None | bool,
    progress: bool,
    log: Callable,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Get the images of ``frame``'s files from the cache, or decode (and cache) them.

    Returns images (K, S, S, 1) uint8, a (len(frame),) bool mask of the rows
    that decoded, and one problem line per file that did not.
    """
    cache_stem = None
    if cache_dir is not False:
        folder = _default_cache_dir() if cache_dir in (None, True) else Path(cache_dir)
        cache_stem = _cache_stem(folder, layout, split, image_size, limit, file_stats)
        if cache_stem.with_suffix(".json").is_file():
            try:
                cached = _load_cache(cache_stem, len(frame), image_size)
                log(f"{split}: loaded the decoded images from the cache {cache_stem}.npy")
                return cached
            except Exception as error:  # a damaged cache must only cost a rebuild
                log(f"ignoring the damaged cache {cache_stem}.npy ({error}); rebuilding it")

    images, errors = _decode_all(list(frame["path"]), image_size, progress, description=f"decoding {split}")
    decoded = np.array([error is None for error in errors], dtype=bool)
    if not decoded.all():
        images = images[decoded]
    problems = [
        f"{shown_name(file)}: unreadable image ({error}); skipped"
        for file, error in zip(frame["file"], errors, strict=True)
        if error is not None
    ]
    if cache_stem is not None:
        _save_cache(cache_stem, images, decoded, problems, log)
    return images, decoded, problems


def _summary(split: str, kept: int, problems: list[tuple[str, str]]) -> str:
    counts = Counter(kind for kind, _ in problems)
    not_listed = counts.pop("not listed", 0)
    skipped = sum(counts.values())
    line = f"{split}: kept {kept} images; skipped {skipped}"
    if skipped:
        line += " (" + ", ".join(f"{count} {kind}" for kind, count in counts.items()) + ")"
    if not_listed:
        line += f"; {not_listed} file{'s' if not_listed != 1 else ''} not in the CSV ignored"
    return line


# ----------------------------------------------------------------------------
# Train / validation split
# ----------------------------------------------------------------------------


def stratified_split(
    labels: np.ndarray, validation_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into training and validation sets with the same class mix.

    From each class, ``round(validation_fraction * class_count)`` randomly chosen
    samples go to validation, so each class's share of the validation set is
    within one sample of its share in ``labels``.

    Parameters
    ----------
    labels : numpy.ndarray of shape (N,)
        Integer class labels.
    validation_fraction : float, default 0.2
        In [0, 1); 0 gives an empty validation set.
    seed : int, default 0
        The same seed and labels always give the same split.

    Returns
    -------
    train_indices : numpy.ndarray of shape (N - V,), int64
        The training samples, sorted in increasing order.
    validation_indices : numpy.ndarray of shape (V,), int64
        The validation samples, sorted; disjoint from ``train_indices``, and together they
        cover 0..N-1 (shuffle later, e.g. with :class:`~minicnn.data.batches.Batches`).

    Raises
    ------
    ValueError
        ``validation_fraction`` outside [0, 1), or ``labels`` not one-dimensional.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {labels.shape}")
    if not 0.0 <= validation_fraction < 1.0:  # also rejects NaN
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}")
    rng = np.random.default_rng(seed)
    is_validation = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = int(np.floor(validation_fraction * len(members) + 0.5))
        is_validation[rng.choice(members, size=count, replace=False)] = True
    return np.flatnonzero(~is_validation), np.flatnonzero(is_validation)
