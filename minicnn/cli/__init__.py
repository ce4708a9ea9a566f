"""The X-ray study's two commands for an installed minicnn: ``minicnn-xray train`` and ``minicnn-xray predict``.

    minicnn-xray train --demo                                  # the bundled 72-image sample
    minicnn-xray train --data path/to/coronahack --out runs/study
    minicnn-xray predict --sample --weights runs/demo/best.npz

``minicnn-xray`` is the console script that ``pip install`` puts on the PATH (pyproject.toml,
``[project.scripts]``); ``python -m minicnn`` is the same command. Each subcommand takes the
options of its script in a clone, and runs the same code: :mod:`minicnn.cli.train_xray` is
``examples/train_xray.py``, :mod:`minicnn.cli.predict_xray` is ``examples/predict_xray.py``.

``import minicnn`` does not import this package: training and plotting load pandas, Pillow
and matplotlib, which the library itself loads only on first use. Nor does this module
import its subcommands before one is chosen, so that ``minicnn-xray --help`` is instant.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

COMMAND = "minicnn-xray"  # the console script's name; python -m minicnn passes its own
# subcommand -> (the module that runs it, one line of help)
SUBCOMMANDS = {
    "train": ("minicnn.cli.train_xray", "train the study's network and evaluate it (try: train --demo)"),
    "predict": ("minicnn.cli.predict_xray", "P(Normal) and the predicted label for X-ray images"),
}


def usage(command: str = COMMAND) -> str:
    """What ``minicnn-xray --help`` prints: the subcommands and where each one's options are listed."""
    width = max(map(len, SUBCOMMANDS))
    lines = [f"usage: {command} {{{','.join(SUBCOMMANDS)}}} [options]", "", __doc__.split("\n\n")[0], ""]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in SUBCOMMANDS.items()]
    lines += ["", f"{command} SUBCOMMAND --help lists that subcommand's options with their defaults."]
    return "\n".join(lines)


def subcommand_main(name: str) -> Callable[..., int]:
    """The ``main`` of a subcommand's module, imported only now."""
    from importlib import import_module

    return import_module(SUBCOMMANDS[name][0]).main


def main(argv: list[str] | None = None, command: str = COMMAND) -> int:
    """Run ``minicnn-xray SUBCOMMAND OPTIONS``; returns the exit status (2: a wrong command line).

    ``argv``: the words after the command (default: the command line's); ``command``: its name, for messages.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(usage(command))
        return 0
    choices = " or ".join(SUBCOMMANDS)
    if not argv or argv[0] not in SUBCOMMANDS:
        got = f"{argv[0]}: not a subcommand" if argv else "no subcommand given"
        print(f"error: {got}; give {choices} (see {command} --help)", file=sys.stderr)
        return 2
    name, options = argv[0], argv[1:]
    return subcommand_main(name)(options, prog=f"{command} {name}")
