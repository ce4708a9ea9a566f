"""The X-ray loaders refuse what they cannot read with one line that names the file or the argument.

A CSV in another encoding, an empty CSV, a file name that is not UTF-8, wrong arguments:
never a bare UnicodeDecodeError, EmptyDataError or UnicodeEncodeError.
"""

from __future__ import annotations

import os
import shutil

import pytest

from minicnn.data import sample_path
from minicnn.data.xray import METADATA_FILE, load_split, read_metadata, stratified_split


@pytest.fixture
def sample_copy(tmp_path):
    folder = tmp_path / "xray"
    shutil.copytree(sample_path(), folder)
    return folder


def latin_1_csv(folder):
    csv = folder / METADATA_FILE
    csv.write_bytes(csv.read_bytes().replace(b"Normal", b"Norm\xe9l", 1))


def empty_csv(folder):
    (folder / METADATA_FILE).write_text("")


def broken_csv(folder):
    (folder / METADATA_FILE).write_text('a,b\n"1,2\n')


CSV_ROWS = [
    (latin_1_csv, f"{METADATA_FILE} is not UTF-8 text (invalid continuation byte at byte"),
    (empty_csv, f"{METADATA_FILE} is empty; it must start with a header line holding at least the columns"),
    (broken_csv, f"{METADATA_FILE} cannot be read as a CSV file"),
]


@pytest.mark.parametrize("spoil, words", CSV_ROWS)
def test_a_csv_that_cannot_be_read_is_one_error_naming_it(sample_copy, spoil, words):
    spoil(sample_copy)
    with pytest.raises(ValueError) as raised:
        read_metadata(sample_copy, "train")
    assert words in str(raised.value) and str(sample_copy) in str(raised.value), str(raised.value)


ARGUMENT_ROWS = [
    (dict(image_size="64"), TypeError, "load_split: image_size must be a whole number of at least 1, got '64' (str)"),
    (dict(image_size=0), ValueError, "load_split: image_size must be a whole number of at least 1, got 0"),
    (dict(image_size=64.5), TypeError, "load_split: image_size must be a whole number"),
    (dict(limit=-1), ValueError, "load_split: limit must be a whole number of at least 0"),
    (dict(limit="all"), TypeError, "load_split: limit must be a whole number"),
    (dict(split="validation"), ValueError, "split must be one of ('train', 'test'), got 'validation'"),
    (dict(split=None), TypeError, "split must be one of ('train', 'test'), got None"),
    (dict(log="print"), TypeError, "load_split: log must be a function such as print"),
]


@pytest.mark.parametrize("arguments, error, words", ARGUMENT_ROWS)
def test_a_bad_load_split_argument_is_one_clear_error(arguments, error, words):
    arguments = {"image_size": 16, "cache_dir": False, "progress": False, "log": lambda line: None, **arguments}
    with pytest.raises(error) as raised:
        load_split(sample_path(), **arguments)
    assert words in str(raised.value), str(raised.value)


def test_load_split_data_dir_must_be_a_path():
    with pytest.raises(TypeError, match="load_split: data_dir must be a str or a path, got 3"):
        load_split(3, "train", image_size=16, cache_dir=False, progress=False, log=lambda line: None)


def test_stratified_split_refuses_a_fraction_outside_0_1():
    with pytest.raises(ValueError, match=r"validation_fraction must be in \[0, 1\), got 1.5"):
        stratified_split([0, 1, 0, 1], 1.5)


@pytest.mark.skipif(os.name != "posix" or os.uname().sysname == "Darwin", reason="needs byte file names")
def test_a_file_name_that_is_not_utf_8_is_reported_not_a_crash(sample_copy, tmp_path):
    train = sample_copy / "train"
    os.rename(next(train.iterdir()), os.fsencode(train) + b"/scan\xff.jpeg")
    lines = []
    dataset = load_split(
        sample_copy, "train", image_size=16, cache_dir=tmp_path / "cache", progress=False, log=lines.append
    )
    assert len(dataset) == 47
    for line in lines:
        line.encode("utf-8")  # every line can be written to a UTF-8 log
    assert any("scan\\xff.jpeg (a file name that is not valid UTF-8)" in line for line in lines), lines
