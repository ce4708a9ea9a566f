"""Classify chest X-rays with a model trained by train_xray.py, from a clone.

    python examples/predict_xray.py scan1.jpeg scan2.png --weights runs/xray/best.npz
    python examples/predict_xray.py --sample --weights runs/demo/best.npz   # the 24 bundled test images

The code lives in the package, :mod:`minicnn.cli.predict_xray`, so that an installed minicnn runs
the same command as ``minicnn-xray predict``; this script only calls it.
"""

import sys

from minicnn.cli.predict_xray import *  # noqa: F403  (its names, importable from here as before)
from minicnn.cli.predict_xray import main

if __name__ == "__main__":
    sys.exit(main())
