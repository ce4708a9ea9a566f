"""``python -m minicnn``: the same command as ``minicnn-xray`` (train, predict); see :mod:`minicnn.cli`."""

import sys

from minicnn.cli import main

if __name__ == "__main__":
    sys.exit(main(command="python -m minicnn"))
