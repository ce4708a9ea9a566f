"""PACKAGE.md, the package index's description of minicnn: no link that would be dead there, its code runs.

README.md links to files of the repository (``docs/results.md``, ...), which a package index
shows as dead links; the package's long description is PACKAGE.md instead (``readme`` in
pyproject.toml), which has no links at all, and whose figures are the README's.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "PACKAGE.md"


def test_the_package_description_has_no_links():
    text = PACKAGE.read_text()
    assert re.findall(r"\]\(([^)]*)\)", text) == []  # Markdown links and images
    assert re.findall(r"(?:href|src)\s*=", text, flags=re.IGNORECASE) == []  # HTML ones


def test_the_package_description_states_only_the_readmes_figures():
    readme = " ".join((ROOT / "README.md").read_text().split())
    for figure in re.findall(r"\d+(?:\.\d+)? ?(?:%|hours|s\b)|\d+–\d+ s", PACKAGE.read_text()):
        assert figure in readme, f"PACKAGE.md states {figure!r}, which README.md does not"
    for machine in ["2-core Intel Xeon CPU in 7.8 hours", "11–14 s on a 2-core AMD EPYC (Zen 4)"]:
        assert machine in " ".join(PACKAGE.read_text().split())


def test_the_package_descriptions_code_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", PACKAGE.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], str(PACKAGE), "exec"), namespace)  # noqa: S102 - our own file's example
    assert namespace["model"].built
    assert "Total params" in capsys.readouterr().out
