"""The tutorials as Jupyter notebooks, made from their Markdown pages: one source, never two copies.

    python docs/make_notebooks.py --out notebooks      # every page of docs/tutorials/ -> notebooks/*.ipynb

Each page becomes one notebook: its text as Markdown cells, each of its ``>>>`` examples as a
code cell, with the output the page shows stored in the cell's metadata (``"doctest"``: the
expected text, the exception line, the page's line number). tests/docs/test_notebooks.py runs every
notebook in a kernel and compares each cell's output with that text, with the doctests' rules
(ELLIPSIS, pytest's default), so a notebook can never say something its page does not.
The exercises of a tutorial become one Markdown cell each followed by an empty code cell; the
solutions pages become the solution notebooks. The site builds the same notebooks (the mkdocs
hook docs/hooks/notebooks.py) and links each page to its own; nothing here is committed.

Examples are grouped the way a reader types them: a run of examples that print nothing shares a
cell with the next one, so each code cell ends with at most one expected output. A first code
cell sets the notebook up: how to install minicnn (in Colab, say), and outputs shown as
Python's ``repr``, as on the page. Links to other tutorial pages point to their notebooks; links
to the rest of the site keep their text only; the figures travel inside the notebook.

Only the standard library is used, so that building the site needs nothing more.
"""

from __future__ import annotations

import argparse
import base64
import doctest
import json
import re
import sys
from pathlib import Path
from typing import Any

TUTORIALS = Path(__file__).resolve().parent / "tutorials"
# A page that lists commands the tests cannot run holds no code to run: no notebook for it.
NOT_A_NOTEBOOK = {"not-run.md"}
FENCE_OPENING = re.compile(r"\n[ \t]*```python[ \t]*\n?\s*$")
FENCE_CLOSING = re.compile(r"^\s*```[ \t]*\n")
LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]+)\]\((?P<target>[^)\s]+)\)")
IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<target>[^)\s]+)\)")
EXERCISE = re.compile(r"^(\d+)\. ", re.MULTILINE)
SETUP_SOURCE = """\
# Set-up. In Colab, or any environment without minicnn, install it first: upload the wheel
# (built in a clone with `pip wheel . --no-deps -w dist`) and uncomment the first line, or,
# from a clone of the repository, the second.
# %pip install minicnn-0.1.0-py3-none-any.whl
# %pip install -e /path/to/the/clone
%config PlainTextFormatter.pprint = False  # show values as Python's repr, as the page does"""
# Tutorial 15 and its solutions use the test suite's CPU stand-in, tests/strict_backend.py.
TEST_HELPERS_SOURCE = """
# This page uses the test suite's CPU stand-in (tests/strict_backend.py) and pytest: it needs a clone
# installed with pip install -e ".[dev]", whose tests/ folder goes on the import path here.
import pathlib, sys, minicnn
sys.path.insert(0, str(pathlib.Path(minicnn.__file__).resolve().parents[1] / "tests"))"""


def pages(folder: Path = TUTORIALS) -> list[Path]:
    """The pages that become notebooks: every tutorial and solutions page, in name order."""
    return sorted(path for path in folder.glob("*.md") if path.name not in NOT_A_NOTEBOOK)


def notebook_name(page: Path | str) -> str:
    """'06-convolution-forward.md' -> '06-convolution-forward.ipynb'."""
    return Path(page).with_suffix(".ipynb").name


def notebook(page: Path) -> dict[str, Any]:
    """The notebook of one page, as the JSON object of nbformat 4.5."""
    text = page.read_text()
    parts = doctest.DocTestParser().parse(text, page.name)
    cells: list[dict[str, Any]] = [markdown_cell(generated_note(page))]
    setup = SETUP_SOURCE + (TEST_HELPERS_SOURCE if "strict_backend" in text else "")
    cells.append(code_cell(setup, tags=["setup"]))
    group: list[doctest.Example] = []
    for part in parts:
        if isinstance(part, doctest.Example):
            group.append(part)
            if part.want or part.exc_msg:  # an output ends the cell: each cell shows at most one
                cells.append(example_cell(group))
                group = []
            continue
        if group and not part.strip():
            continue  # between two examples of one code block
        if group:
            cells.append(example_cell(group))
            group = []
        cells += text_cells(part, page)
    if group:
        cells.append(example_cell(group))
    for number, cell in enumerate(cells):
        cell["id"] = f"{page.stem}-{number:03d}"
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            "minicnn": {"source": f"docs/tutorials/{page.name}"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def generated_note(page: Path) -> str:
    return (
        f"*This notebook is made from the page `docs/tutorials/{page.name}` by `docs/make_notebooks.py`; "
        "edit the page, not the notebook. Run the cells in order: each one's output is the page's.*"
    )


def text_cells(text: str, page: Path) -> list[dict[str, Any]]:
    """The Markdown between two code blocks: one cell, or, in ## Exercises, one cell per exercise and an empty one."""
    text = FENCE_CLOSING.sub("", FENCE_OPENING.sub("\n", text)).strip("\n")
    if not text.strip():
        return []
    before, heading, exercises = ("\n" + text).partition("\n## Exercises\n")
    before = before[1:]
    if not heading:
        return [markdown_cell(text, page)]
    cells = [markdown_cell(before, page)] if before.strip() else []
    starts = [match.start() for match in EXERCISE.finditer(exercises)]
    if not starts:
        return [*cells, markdown_cell("## Exercises\n" + exercises, page)]
    cells.append(markdown_cell("## Exercises\n" + exercises[: starts[0]], page))
    for start, end in zip(starts, [*starts[1:], len(exercises)], strict=True):
        item = exercises[start:end].strip("\n")
        number, body = item.split(". ", 1)
        body = re.sub(r"\n {3}", "\n", body)  # the list item's indentation, no longer in a list
        cells.append(markdown_cell(f"**Exercise {number}.** {body}", page))
        cells.append(code_cell("", tags=["exercise"]))  # the reader's own solution goes here
    return cells


def markdown_cell(text: str, page: Path | None = None) -> dict[str, Any]:
    attachments: dict[str, dict[str, str]] = {}
    if page is not None:
        text = IMAGE.sub(lambda match: attach(match, page, attachments), text)
        text = LINK.sub(lambda match: relink(match, page), text)
    cell: dict[str, Any] = {"cell_type": "markdown", "metadata": {}, "source": lines(text.strip("\n"))}
    if attachments:
        cell["attachments"] = attachments
    return cell


def attach(match: re.Match[str], page: Path, attachments: dict[str, dict[str, str]]) -> str:
    """A figure of the site, carried inside the cell, so that the notebook needs no other file."""
    path = (page.parent / match["target"]).resolve()
    if match["target"].startswith(("http://", "https://")) or path.suffix != ".png" or not path.is_file():
        return match[0]
    attachments[path.name] = {"image/png": base64.b64encode(path.read_bytes()).decode()}
    return f"![{match['alt']}](attachment:{path.name})"


def relink(match: re.Match[str], page: Path) -> str:
    """A link to another tutorial page -> to its notebook; to the rest of the site -> its text only."""
    target = match["target"]
    if target.startswith(("http://", "https://", "mailto:")):
        return match[0]
    path, _, _ = target.partition("#")
    if not path:  # an anchor of this page: Jupyter's heading anchors are not the site's
        return match["text"]
    if "/" not in path and path.endswith(".md") and (page.parent / path).is_file() and path not in NOT_A_NOTEBOOK:
        return f"[{match['text']}]({notebook_name(path)})"
    return match["text"]


def example_cell(group: list[doctest.Example]) -> dict[str, Any]:
    """One code cell for a run of examples; its metadata holds the last one's expected output."""
    last = group[-1]
    expected = {"want": last.want, "exc_msg": last.exc_msg, "line": last.lineno + 1}
    tags = ["raises-exception"] if last.exc_msg else []
    return code_cell("".join(example.source for example in group).rstrip("\n"), tags=tags, doctest=expected)


def code_cell(source: str, tags: list[str] | None = None, **metadata: Any) -> dict[str, Any]:
    if tags:
        metadata["tags"] = tags
    return {"cell_type": "code", "execution_count": None, "metadata": metadata, "outputs": [], "source": lines(source)}


def lines(text: str) -> list[str]:
    """A cell's source as nbformat stores it: lines that keep their newline."""
    return text.splitlines(keepends=True)


def dumps(notebook_json: dict[str, Any]) -> str:
    """The notebook file's text (one space of indentation and sorted keys, as Jupyter writes it)."""
    return json.dumps(notebook_json, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(out: Path, folder: Path = TUTORIALS) -> list[Path]:
    """Write every page's notebook into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for page in pages(folder):
        path = out / notebook_name(page)
        path.write_text(dumps(notebook(page)))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the .ipynb files")
    args = parser.parse_args(argv)
    for path in write_all(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
