"""The tutorials' notebooks (docs/make_notebooks.py) hold the pages' examples and print what the pages print.

Two checks. The cheap one, on every run: each notebook's code cells are exactly its page's
``>>>`` examples, in order, with their expected output, and each exercise of a tutorial has
its own empty cell. The costly one runs every notebook in a Jupyter kernel (nbclient, ipykernel)
and compares each cell's output with the doctest's expected text, with the doctests' own
normalisation: pytest's default ``ELLIPSIS`` (pyproject.toml sets no other doctest option), and
``<BLANKLINE>`` for an empty line. Output on stderr (progress bars) is not compared, as doctest
does not. The notebooks run the very code the doctests of docs/ run, so .ci/run executes
them in the first of its three pytest runs only (marker ``once``).
"""

from __future__ import annotations

import doctest
import importlib.util
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def load_generator():
    spec = importlib.util.spec_from_file_location("make_notebooks", REPO_ROOT / "docs" / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_notebooks"] = module
    spec.loader.exec_module(module)
    return module


make_notebooks = load_generator()
PAGES = make_notebooks.pages()
CHECKER = doctest.OutputChecker()
FLAGS = doctest.ELLIPSIS  # pytest's default doctest_optionflags; pyproject.toml adds none


def source(cell) -> str:
    return "".join(cell["source"])


def example_cells(notebook) -> list[dict]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code" and "doctest" in cell["metadata"]]


def test_every_tutorial_and_solutions_page_has_a_notebook():
    names = {page.name for page in PAGES}
    tutorials = {path.name for path in (REPO_ROOT / "docs" / "tutorials").glob("*.md")}
    assert names == tutorials - {"not-run.md"}  # the list of commands the tests cannot run has no code
    assert len([name for name in names if name.startswith("solutions-")]) == 5


@pytest.mark.parametrize("page", PAGES, ids=[page.stem for page in PAGES])
def test_the_notebook_holds_exactly_the_pages_examples_and_outputs(page):
    notebook = make_notebooks.notebook(page)
    examples = doctest.DocTestParser().get_examples(page.read_text(), page.name)
    cells = example_cells(notebook)
    assert examples and "".join(source(cell) + "\n" for cell in cells) == "".join(e.source for e in examples)
    wanted = [(e.want, e.exc_msg) for e in examples if e.want or e.exc_msg]
    stored = [(c["metadata"]["doctest"]["want"], c["metadata"]["doctest"]["exc_msg"]) for c in cells]
    assert [pair for pair in stored if any(pair)] == wanted
    nbformat = pytest.importorskip("nbformat")
    nbformat.validate(nbformat.reads(make_notebooks.dumps(notebook), as_version=4))


@pytest.mark.parametrize("page", [page for page in PAGES if page.name[0].isdigit()], ids=lambda page: page.stem)
def test_each_exercise_gets_its_own_empty_cell(page):
    exercises = page.read_text().split("\n## Exercises\n", 1)[1]
    numbers = [line.split(".")[0] for line in exercises.splitlines() if line[:1].isdigit() and ". " in line]
    cells = make_notebooks.notebook(page)["cells"]
    prompts = [i for i, cell in enumerate(cells) if source(cell).startswith("**Exercise ")]
    assert [source(cells[i]).split(".")[0].removeprefix("**Exercise ") for i in prompts] == numbers
    assert all(cells[i + 1]["cell_type"] == "code" and source(cells[i + 1]) == "" for i in prompts)


def test_links_between_pages_point_to_notebooks_and_figures_travel_inside():
    notebook = make_notebooks.notebook(make_notebooks.TUTORIALS / "06-convolution-forward.md")
    text = "".join(source(cell) for cell in notebook["cells"] if cell["cell_type"] == "markdown")
    assert "(solutions-01-06.ipynb)" in text and ".md)" not in text and ".md#" not in text
    (figure,) = [cell for cell in notebook["cells"] if "attachments" in cell]
    assert "](attachment:im2col.png)" in source(figure) and "image/png" in figure["attachments"]["im2col.png"]


def cell_output(cell) -> tuple[str, tuple[str, str] | None]:
    """What doctest would compare: stdout and displayed values in order, and the exception (name, message)."""
    text, error = "", None
    for output in cell["outputs"]:
        kind = output["output_type"]
        if kind == "stream" and output["name"] == "stdout":
            text += output["text"]
        elif kind in ("execute_result", "display_data") and "text/plain" in output["data"]:
            text += output["data"]["text/plain"] + "\n"  # doctest's displayhook ends the repr with a newline
        elif kind == "error":
            error = (output["ename"], output["evalue"])
    return text, error


def check_cell(cell, page: Path) -> str | None:
    """None when the cell printed what the page says, else what differs."""
    expected = cell["metadata"]["doctest"]
    where = f"{page.name}, line {expected['line']}"
    got, error = cell_output(cell)
    if expected["exc_msg"]:
        wanted_type, _, wanted_message = expected["exc_msg"].partition(": ")
        if error is None:
            return f"{where}: expected {expected['exc_msg'].strip()}, no exception was raised"
        if error[0] != wanted_type.rsplit(".", 1)[-1] or not CHECKER.check_output(
            wanted_message, error[1] + "\n", FLAGS
        ):
            return f"{where}: expected {expected['exc_msg'].strip()}, got {error[0]}: {error[1]}"
        return None
    if error is not None:
        return f"{where}: raised {error[0]}: {error[1]}"
    want = expected["want"].replace("<BLANKLINE>", "")
    if not CHECKER.check_output(want, got, FLAGS):
        return f"{where}:\nexpected:\n{expected['want']}got:\n{got}"
    return None


@pytest.mark.once
@pytest.mark.parametrize("page", PAGES, ids=[page.stem for page in PAGES])
def test_the_notebook_runs_and_prints_what_its_page_prints(page, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "cache"))  # as the doctests: a cache of this run's own
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.reads(make_notebooks.dumps(make_notebooks.notebook(page)), as_version=4)
    # From an empty folder, as a reader's: a notebook must not lean on the checkout's working directory.
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    problems = [problem for cell in example_cells(notebook) if (problem := check_cell(cell, page))]
    assert not problems, "\n\n".join(problems)
