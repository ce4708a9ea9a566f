"""The docs' count of GPU test cases is today's, and every earlier count names its commits.

The README and tutorial 15 say how many test cases are marked ``gpu`` today; this test counts
them the way a reader would (``pytest --collect-only -m gpu``, in a subprocess) and compares.
A count of GPU cases that *ran* (27 on the H200) is history: it must name the commits it ran at.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES_WITH_TODAYS_COUNT = ["README.md", "docs/tutorials/15-on-a-gpu.md"]
PAGES_WITH_GPU_COUNTS = [*PAGES_WITH_TODAYS_COUNT, "docs/results.md"]
TODAYS_COUNT = re.compile(r"today (\d+) test cases are marked `gpu`", re.IGNORECASE)
ANY_COUNT = re.compile(r"\b(\d+) GPU (?:test )?cases|GPU test cases \(all (\d+)")
COMMIT = re.compile(r"\b[0-9a-f]{7}\b")


def page_text(page: str) -> str:
    return " ".join((ROOT / page).read_text().split())  # sentences across line breaks


def gpu_test_cases() -> list[str]:
    """The node ids pytest collects with ``-m gpu`` (collected only: nothing runs)."""
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return [line for line in result.stdout.splitlines() if "::" in line]


@pytest.fixture(scope="module")
def todays_count() -> int:
    return len(gpu_test_cases())


@pytest.mark.parametrize("page", PAGES_WITH_TODAYS_COUNT)
def test_the_page_states_todays_number_of_gpu_test_cases(page, todays_count):
    stated = [int(number) for number in TODAYS_COUNT.findall(page_text(page))]
    assert stated, f"{page} should say 'today N test cases are marked `gpu`'"
    assert stated == [todays_count] * len(stated), (
        f"{page} says {stated} test cases are marked gpu; pytest --collect-only -m gpu finds {todays_count}"
    )


@pytest.mark.parametrize("page", PAGES_WITH_GPU_COUNTS)
def test_every_count_of_gpu_cases_that_ran_names_its_commits(page):
    text = page_text(page)
    for match in ANY_COUNT.finditer(text):
        after = text[match.start() : match.end() + 80]
        assert COMMIT.search(after), f"{page}: {after!r} counts GPU cases without naming the commit they ran at"
