"""Data for minicnn: the chest X-ray images, random augmentation and mini-batches.

* :mod:`minicnn.data.xray` reads the CoronaHack or Kermany folders into arrays.
* :mod:`minicnn.data.augment` randomly rotates, shifts and zooms whole batches.
* :mod:`minicnn.data.batches` serves seeded, reproducible mini-batches.
* :mod:`minicnn.data.sample` finds the 72-image X-ray sample shipped with the package.

This package uses only NumPy, pandas, Pillow and tqdm, never the layers or the model.
"""

from minicnn.data.augment import ImageAugmenter, rescale
from minicnn.data.batches import Batches
from minicnn.data.sample import sample_path
from minicnn.data.xray import (
    CLASS_NAMES,
    XrayDataset,
    decode_image,
    detect_layout,
    load_split,
    read_metadata,
    stratified_split,
)

__all__ = [
    "CLASS_NAMES",
    "Batches",
    "ImageAugmenter",
    "XrayDataset",
    "decode_image",
    "detect_layout",
    "load_split",
    "read_metadata",
    "rescale",
    "sample_path",
    "stratified_split",
]
