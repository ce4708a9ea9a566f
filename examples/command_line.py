"""What the example scripts share about the command line, now in the package: :mod:`minicnn.cli.command_line`.

Kept so that scripts written against examples/ (benchmarks/keras_study.py) import it as before.
"""

from minicnn.cli.command_line import OneLineErrorParser, add_threshold_option, fail, use_backend

__all__ = ["OneLineErrorParser", "add_threshold_option", "fail", "use_backend"]
