"""The examples in minicnn's docstrings run: every ``>>>`` line under minicnn/ is a doctest.

pytest collects the Markdown pages under docs/ as doctests (``--doctest-glob=*.md``); this
file does the same for the docstrings of every module of the package, so that an example
shown in the API reference cannot go stale. A module without examples passes trivially.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import minicnn

MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(minicnn.__path__, prefix="minicnn."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    for test in finder.find(module, name):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_the_examples_are_found() -> None:
    """At least the modules known to hold examples are searched (a rename would silently drop them)."""
    with_examples = {
        name
        for name in MODULES
        if any(test.examples for test in doctest.DocTestFinder().find(importlib.import_module(name), name))
    }
    assert {"minicnn.metrics", "minicnn.data.batches", "minicnn.data.augment", "minicnn.data.xray"} <= with_examples
