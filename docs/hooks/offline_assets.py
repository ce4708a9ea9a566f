"""An mkdocs hook: MathJax is served from the built site, so that the mathematics renders offline.

MathJax 3.2.2 comes from the PyPI package django-static-mathjax (its npm release as files, in
the docs extra of pyproject.toml: ``pip install -e ".[docs]"`` brings it, nothing is
downloaded by hand or committed). This hook adds the files the browser needs to the site, under
``javascripts/mathjax/``: the combined TeX + MathML + CHTML component that mkdocs.yml loads, and
the folders it loads from on demand (TeX extensions, CHTML fonts, the menu, accessibility). The
page settings stay in docs/javascripts/mathjax.js. ``mkdocs serve`` serves the same files.
tests/docs/test_site.py checks that no page loads a script, style or font from another host.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

SITE_FOLDER = "javascripts/mathjax"
ENTRY = "tex-mml-chtml.js"  # mkdocs.yml's extra_javascript: javascripts/mathjax/tex-mml-chtml.js
# What ENTRY loads by itself, relative to its own address: extensions, fonts, menu, speech.
ON_DEMAND = ("input", "output", "ui", "a11y", "sre", "adaptors")


def mathjax_folder() -> Path:
    """The es5/ folder of the installed MathJax (django-static-mathjax), or a build error saying how to get it."""
    try:
        import mathjax  # the django-static-mathjax package; only files, no Django needed
    except ImportError as error:
        raise PluginError(
            "MathJax is not installed: the site serves its own copy so that it works offline. "
            'Install the documentation tools with: pip install -e ".[docs]"'
        ) from error
    folder = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (folder / ENTRY).is_file():
        raise PluginError(f"{folder / ENTRY} is missing: reinstall with pip install -e '.[docs]'")
    return folder


def on_files(files: Files, config: Any) -> Files:
    """Add MathJax's files to the site, to be copied like any other static file."""
    folder = mathjax_folder()
    paths = [folder / ENTRY]
    for name in ON_DEMAND:
        paths += sorted(path for path in (folder / name).rglob("*") if path.is_file())
    for path in paths:
        uri = f"{SITE_FOLDER}/{path.relative_to(folder).as_posix()}"
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
