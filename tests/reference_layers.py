"""The plain nested-loop layers, now in the package: :mod:`minicnn.plain` (read it first).

This file only keeps the old names importable for the tests that use them; each is the
plain function with its ``cache`` left out.
"""

from __future__ import annotations

from minicnn import plain
from minicnn.plain import col2im as col2im_reference
from minicnn.plain import im2col as im2col_reference
from minicnn.plain import same_padding

__all__ = ["col2im_reference", "conv2d_reference", "im2col_reference", "maxpool_reference", "same_padding"]


def conv2d_reference(x, kernel, bias, strides=(1, 1), padding="valid"):
    """y = :func:`minicnn.plain.conv2d_forward_loops` (x, kernel, bias, strides, padding), without its cache."""
    return plain.conv2d_forward_loops(x, kernel, bias, strides, padding)[0]


def maxpool_reference(x, pool_size=(2, 2), strides=(2, 2)):
    """y = :func:`minicnn.plain.max_pool_forward` (x, pool_size, strides), without its cache."""
    return plain.max_pool_forward(x, pool_size, strides)[0]
