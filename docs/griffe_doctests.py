"""A Griffe extension for the API reference: doctests become highlighted code blocks.

The package's docstrings carry their examples as doctests (``>>>`` lines and their
output), most under an ``Example:`` heading, some in the running text of a module.
Markdown would read ``>>>`` as nested block quotes and ``x[0][1]`` as a link reference,
so this extension wraps every doctest (a ``>>>`` line and the non-blank lines after it)
in a ````` ```pycon ````` fence before mkdocstrings renders the docstring. The docstrings
themselves stay plain doctests, run by ``pytest --doctest-modules``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_FLAGS = re.compile(r"\s*#\s*doctest:.+$")


def fence_doctests(text: str) -> str:
    r"""``text`` with each doctest example block wrapped in a ``pycon`` code fence.

    A block starts at a line whose first non-blank characters are ``>>>`` and runs
    to the next blank line or the next line indented less; ``# doctest:`` flags
    are dropped. A blank line is put before a fence that follows text.

    >>> fence_doctests("Example:\n    >>> 1 + 1\n    2\nText.").splitlines()
    ['Example:', '    ```pycon', '    >>> 1 + 1', '    2', '    ```', 'Text.']
    """
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        stripped = lines[i].lstrip()
        if not stripped.startswith(">>>"):
            out.append(lines[i])
            i += 1
            continue
        indent = lines[i][: len(lines[i]) - len(stripped)]
        if out and out[-1].strip() and not out[-1].rstrip().endswith(":"):
            out.append("")
        out.append(f"{indent}```pycon")
        while i < len(lines) and lines[i].strip() and lines[i].startswith(indent):
            out.append(_FLAGS.sub("", lines[i]))
            i += 1
        out.append(f"{indent}```")
    return "\n".join(out)


def _fence_all(obj: griffe.Object) -> None:
    if obj.docstring is not None:
        obj.docstring.value = fence_doctests(obj.docstring.value)
    for member in obj.members.values():
        if not member.is_alias:
            _fence_all(member)  # type: ignore[arg-type]


class DoctestFences(griffe.Extension):
    """Wraps the doctests of every docstring of a loaded package in ``pycon`` fences."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Rewrites the docstrings of ``pkg`` and of everything defined in it."""
        _fence_all(pkg)
