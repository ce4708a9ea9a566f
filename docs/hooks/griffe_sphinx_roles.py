"""A Griffe extension for the API reference: Sphinx roles in docstrings become links.

minicnn's docstrings are numpydoc, and numpydoc writes a cross-reference as a Sphinx
role: :func:`set_backend`, or :class:`~minicnn.data.batches.Batches` to show only the
last name. mkdocstrings does not read roles, so this extension rewrites each one before
the docstring is rendered: into a Markdown cross-reference, [`set_backend`][minicnn.backend.set_backend],
when the target is an object the API reference shows, and into plain code otherwise
(a name outside minicnn, a private helper, an attribute without a docstring), so that
``mkdocs build --strict`` never meets a link it cannot resolve.

The source files keep their roles; only the rendered pages change. mkdocs.yml loads
this file (``extensions:`` of the mkdocstrings Python handler). It reads the object tree
that Griffe built from the source text; nothing of minicnn is imported or run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import griffe

# :func:`name`, :class:`~a.b.C`, :py:meth:`C.method`, ...
ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|exc|obj):`(?P<target>[^`]+)`")


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles into mkdocstrings cross-references once the package is loaded."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        """Griffe 2 calls this once a package is loaded."""
        self.rewrite(pkg, loader)

    def on_package_loaded(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        """The same hook under its Griffe 1 name (a second pass finds no role left to rewrite)."""
        self.rewrite(pkg, loader)

    def rewrite(self, pkg: griffe.Module, loader: griffe.GriffeLoader) -> None:
        """Replace every role in every docstring of ``pkg``."""
        for obj in walk(pkg):
            docstring = obj.docstring
            if docstring is None or ":" not in docstring.value:
                continue
            docstring.value = ROLE.sub(lambda match, obj=obj: link(match["target"], obj, loader), docstring.value)
            docstring.__dict__.pop("parsed", None)  # parse the new text, should anything have parsed the old one


def walk(obj: griffe.Object) -> Iterator[griffe.Object]:
    """``obj`` and every object defined in it (aliases, which are imported names, are skipped)."""
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from walk(member)


def link(target: str, scope: griffe.Object, loader: griffe.GriffeLoader) -> str:
    """The Markdown for one role: a cross-reference when the target is rendered, else code."""
    shown = target
    if target.startswith("~"):
        target = target[1:]
        shown = target.rsplit(".", 1)[-1]
    path = rendered_path(target, scope, loader)
    return f"[`{shown}`][{path}]" if path else f"`{shown}`"


def rendered_path(target: str, scope: griffe.Object, loader: griffe.GriffeLoader) -> str | None:
    """The canonical path of ``target`` as seen from ``scope``, or None when the API pages do not show it."""
    first, _, rest = target.partition(".")
    try:
        full = target if first == scope.package.name else scope.resolve(first) + (f".{rest}" if rest else "")
        found = loader.modules_collection[full]
        if found.is_alias:
            found = found.final_target
    except Exception:  # not in minicnn (numpy, the standard library), or not resolvable statically
        return None
    if found.package.name != scope.package.name:
        return None
    if any(part.startswith("_") and not part.startswith("__") for part in found.path.split(".")):
        return None  # private: filtered out of the API pages
    if not found.is_module and found.docstring is None:
        return None  # mkdocstrings shows only documented objects
    return found.path
