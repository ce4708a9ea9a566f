"""Elementwise functions shared by layers and losses (kept below both, so neither imports the other)."""

from __future__ import annotations

from typing import Any

from minicnn import backend


def sigmoid(x: Any) -> Any:
    """1 / (1 + exp(-x)) without overflow: only exp(-|x|) <= 1 is ever computed.

    exp(-x) overflows for x < -88 in float32, so we only ever exponentiate -|x| <= 0:
    for x >= 0, sigmoid(x) = 1 / (1 + e);  for x < 0, sigmoid(x) = e / (1 + e),  e = exp(-|x|).

    Parameters
    ----------
    x : ndarray
        Any shape, on the active backend.

    Returns
    -------
    ndarray
        sigmoid(x), elementwise, of the shape and dtype of ``x``.
    """
    xp = backend.array_module()
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
