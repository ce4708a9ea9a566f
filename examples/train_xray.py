"""Reproduce "Image Classification of Lung X-Ray Scans" end to end with minicnn, from a clone.

    python examples/train_xray.py --demo                                        # the bundled sample
    python examples/train_xray.py --data path/to/coronahack --out runs/study    # the study
    python examples/train_xray.py --demo --classes 3                           # Normal / bacterial / viral
    python examples/train_xray.py --demo --optimizer rmsprop                    # RMSprop instead of Adam
    python examples/train_xray.py --help                                        # every option

The code lives in the package, :mod:`minicnn.cli.train_xray`, so that an installed minicnn runs
the same command as ``minicnn-xray train``; this script only calls it. Its names (build_study_model,
write_split, HistoryFile, ...) are importable from here as before, for the scripts that do
(examples/study_results.py, benchmarks/keras_study.py, benchmarks/epoch_time.py).
"""

import sys

from minicnn.cli.train_xray import *  # noqa: F403  (the names other scripts import from here)
from minicnn.cli.train_xray import main

if __name__ == "__main__":
    sys.exit(main())
