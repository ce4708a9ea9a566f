"""docs/make_figures.py, which draws the site's figures from minicnn's real output, must keep working.

The script runs into a temporary folder (the committed PNGs in docs/figures/ are left alone); every
figure must be written, open as a PNG, have the size the pages were laid out for, and stay small.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "docs" / "make_figures.py"

# (width, height) in pixels: the figure size in inches times the script's 80 dpi (curves.png comes
# from minicnn.plots.plot_history, 11 x 4.2 inches at 100 dpi).
EXPECTED_SIZES = {
    "augmentation.png": (560, 448),
    "im2col.png": (640, 360),
    "curves.png": (1100, 420),
}
MAX_BYTES = 150 * 1024


def test_make_figures_writes_every_figure(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "figures")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # the script must not depend on the working folder
    )
    assert result.returncode == 0, result.stderr
    written = sorted(path.name for path in (tmp_path / "figures").iterdir())
    assert written == sorted(EXPECTED_SIZES)
    for name, size in EXPECTED_SIZES.items():
        path = tmp_path / "figures" / name
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size == size, name
            image.load()  # the whole file decodes, not only its header
        assert path.stat().st_size < MAX_BYTES, f"{name}: {path.stat().st_size} bytes"
        assert f"wrote {path}" in result.stdout


def test_committed_figures_are_there():
    """The site shows these files; they must exist in docs/figures/ with the expected sizes."""
    for name, size in EXPECTED_SIZES.items():
        path = REPO_ROOT / "docs" / "figures" / name
        with Image.open(path) as image:
            assert image.size == size, name
