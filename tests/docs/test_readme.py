"""The README's code runs as written: its ``>>>`` block trains the study's network on the bundled sample.

README.md is not under pytest's testpaths (tests, docs), so this file runs its examples with
the doctests' rules (ELLIPSIS, pytest's default). Training two epochs at 300 x 300 takes a
while on two cores, so .ci/run runs it in the first of its three pytest runs only (``once``).
"""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_test() -> doctest.DocTest:
    return doctest.DocTestParser().get_doctest(README.read_text(), {}, "README.md", str(README), 0)


def test_the_readme_snippet_says_where_x_and_y_come_from_and_splits_by_class():
    source = "".join(example.source for example in readme_test().examples)
    assert "load_split(sample_path()" in source and "stratified_split(y, 0.2" in source
    assert "validation_split" not in source  # the last 20 % of the loader's class-ordered images: one class


@pytest.mark.once
def test_the_readme_snippet_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    test = readme_test()
    assert len(test.examples) > 5
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0 and result.attempted == len(test.examples)
