"""What the two example scripts share about the command line: one-line errors, the backend switch, --threshold.

A wrong input gets ``error: what is wrong`` on stderr and exit status 2 (the Unix convention
for a wrong command line), never a traceback, and before any work is done.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

from minicnn import backend


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 2, the convention for a wrong command line."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse's parser, but a wrong input gets one line, not the whole usage text above it."""

    def error(self, message: str) -> NoReturn:
        fail(message)


def use_backend(name: str) -> None:
    """Switch to the backend now, so a missing GPU is reported before any decoding or training."""
    try:
        backend.set_backend(name)
    except backend.BackendError as error:
        # The library's advice names set_backend('numpy'); on the command line that is --backend numpy.
        fail(
            f"--backend {name}: " + str(error).replace(backend.CPU_FALLBACK, "Or run on the CPU with --backend numpy.")
        )


def check_writable_folder(option: str, folder: Path) -> None:
    """``option``'s folder must exist or be creatable, and be writable: else a one-line error naming it."""
    if folder.exists() and not folder.is_dir():
        fail(f"{option} {folder}: is a file, not a folder")
    existing = folder
    while not existing.exists():  # the nearest folder that exists, where ours would be created
        existing = existing.parent
    if not os.access(existing, os.W_OK):
        fail(f"{option} {folder}: cannot write in {existing} (no permission)")


def add_threshold_option(parser: argparse.ArgumentParser) -> None:
    """Add --threshold P, the P(Normal) above which an X-ray is called Normal (checked by each script)."""
    parser.add_argument(
        "--threshold",
        default=0.5,
        metavar="P",
        help="P(Normal) above which an X-ray is called Normal; binary models only (default: %(default)s)",
    )
