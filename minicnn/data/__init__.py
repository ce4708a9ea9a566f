"""Data for minicnn: the chest X-ray images, random augmentation and mini-batches.

* :mod:`minicnn.data.xray` reads the CoronaHack or Kermany folders into arrays.
* :mod:`minicnn.data.augment` randomly rotates, shifts and zooms whole batches.
* :mod:`minicnn.data.batches` serves seeded, reproducible mini-batches.
* :mod:`minicnn.data.sample` finds the 72-image X-ray sample shipped with the package.

This package uses only NumPy, pandas, Pillow and tqdm, never the layers or the model.
The training loop needs only ``Batches`` (NumPy), so the reader of image folders, with
pandas and Pillow, is imported the first time one of its names is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from minicnn.data.augment import ImageAugmenter, rescale
from minicnn.data.batches import Batches
from minicnn.data.sample import sample_path

# Names from minicnn.data.xray, imported on first use (PEP 562).
XRAY_NAMES = (
    "CLASS_NAMES",
    "THREE_CLASS_NAMES",
    "XrayDataset",
    "decode_image",
    "detect_layout",
    "load_split",
    "read_metadata",
    "stratified_split",
)

__all__ = ["Batches", "ImageAugmenter", "rescale", "sample_path", *XRAY_NAMES]


def __getattr__(name: str) -> Any:
    if name in XRAY_NAMES:
        return getattr(importlib.import_module("minicnn.data.xray"), name)
    raise AttributeError(f"module 'minicnn.data' has no attribute {name!r}")
