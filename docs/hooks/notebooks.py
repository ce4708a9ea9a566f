"""An mkdocs hook: each tutorial page also as a Jupyter notebook, built with the site and linked from the page.

The notebooks are made by docs/make_notebooks.py from the same Markdown the page is made from
(one source), at every build: nothing generated is committed, so nothing can go stale. Each
lands beside its page (``tutorials/06-convolution-forward.ipynb``), and the page gets a line
under its title that links to it; the link is ordinary Markdown, so ``mkdocs build --strict``
checks that its target exists. The page files themselves are not changed.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

GENERATOR = Path(__file__).resolve().parent.parent / "make_notebooks.py"
_spec = importlib.util.spec_from_file_location("make_notebooks", GENERATOR)
make_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_notebooks)

TITLE = re.compile(r"^# .*\n", re.MULTILINE)


def has_notebook(src_uri: str) -> bool:
    """Whether the page at ``src_uri`` ("tutorials/01-shapes.md") gets a notebook."""
    return Path(src_uri).parent.name == "tutorials" and Path(src_uri).name in {
        page.name for page in make_notebooks.pages()
    }


def on_files(files: Files, config: Any) -> Files:
    """Add one generated .ipynb beside each tutorial and solutions page."""
    for page in make_notebooks.pages():
        uri = f"tutorials/{make_notebooks.notebook_name(page)}"
        files.append(File.generated(config, uri, content=make_notebooks.dumps(make_notebooks.notebook(page))))
    return files


def on_page_markdown(markdown: str, page: Page, config: Any, files: Files) -> str:
    """Under the page's title: where its notebook is, and how to open it."""
    if not has_notebook(page.file.src_uri):
        return markdown
    name = make_notebooks.notebook_name(page.file.src_uri)
    kind = "the solutions" if name.startswith("solutions-") else "the examples, each exercise as an empty cell"
    line = (
        f"\n*This page as a Jupyter notebook: [{name}]({name}){{ download }} ({kind}; "
        "[how to open it](../index.md#the-tutorials-as-notebooks)).*\n"
    )
    match = TITLE.search(markdown)
    at = match.end() if match else 0
    return markdown[:at] + line + markdown[at:]
