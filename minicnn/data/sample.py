"""The 72-image chest X-ray sample that ships inside the package.

Like scikit-learn's bundled datasets, it needs no download: it is package data, so
``sample_path()`` finds it after a plain ``pip install`` as well as in a checkout.
Its source, licence (CC BY 4.0) and attribution are in its own README.md.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_SPLITS = {"train": 48, "test": 24}


def sample_path() -> Path:
    """Folder of the bundled X-ray sample (CoronaHack layout: the metadata CSV, train/, test/).

    Returns
    -------
    Path
        ``.../minicnn/datasets/xray_mini``; pass it to :func:`~minicnn.data.xray.load_split`
        or to ``examples/train_xray.py --data``.

    Examples
    --------
    >>> from minicnn.data import sample_path
    >>> sorted(entry.name for entry in sample_path().iterdir())[:3]
    ['Chest_xray_Corona_Metadata.csv', 'Chest_xray_Corona_dataset_Summary.csv', 'README.md']
    """
    # The sample sits next to this package, as a plain folder of package data: a file path
    # (not an importlib.resources Traversable) is what Pillow, pandas and the CLI need.
    path = Path(__file__).resolve().parent.parent / "datasets" / "xray_mini"
    if not (path / "Chest_xray_Corona_Metadata.csv").is_file():
        raise FileNotFoundError(
            f"the bundled X-ray sample is missing from {path}; reinstall minicnn "
            "(pip install --force-reinstall minicnn) or pass your own data folder"
        )
    return path
