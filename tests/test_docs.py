"""Every ```python block of docs/ runs, so the documentation cannot rot.

A page is one test: its python blocks run in order in one fresh module namespace, in a
temporary working directory (files a page writes land there). Other fences (```bash,
```text, ```pycon) are not run. A block preceded by the HTML comment ``<!-- slow -->``
runs only under ``-m slow``; so does the whole page when its first line is that comment.
A page with slow blocks gives two tests: ``PAGE`` (its other blocks, in the default run)
and ``PAGE+slow`` (all its blocks, under ``-m slow``); later blocks must therefore not
depend on a slow one. A failure names the page, the block's line and the traceback, whose
line numbers are the Markdown file's own.

Also here: every page is in the nav of mkdocs.yml and every nav entry has a page, and
(slow, needs /usr/bin/chromium and the docs extra) docs/check_browser.py renders a
strict build of the site in headless Chromium.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import traceback
import types
from pathlib import Path
from typing import NamedTuple

import jax
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SLOW = "<!-- slow -->"
CHROMIUM = Path("/usr/bin/chromium")
_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*\{?\.?(?P<lang>[\w+-]*)")


class Block(NamedTuple):
    """A python code block: the line of its opening fence (1-based), its code, its marker."""

    line: int
    code: str
    slow: bool


def python_blocks(path: Path) -> list[Block]:
    """The ```python (or ```py) blocks of a Markdown file, in order, dedented to their fence."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence, lang = match["indent"], match["fence"], match["lang"]
        start, body, i = i, [], i + 1
        while i < len(lines) and not (
            lines[i].strip().startswith(fence) and set(lines[i].strip()) == {fence[0]}
        ):
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        if lang in ("python", "py"):
            before = [line.strip() for line in lines[:start] if line.strip()]
            blocks.append(Block(start + 1, "\n".join(body), bool(before) and before[-1] == SLOW))
    return blocks


def page_is_slow(path: Path) -> bool:
    """True when the page's first line is ``<!-- slow -->``: every block of it is slow."""
    text = path.read_text(encoding="utf-8")
    return text.splitlines()[0].strip() == SLOW if text else False


def _cases() -> list:
    cases = []
    for path in sorted(DOCS.rglob("*.md")):
        blocks = python_blocks(path)
        if not blocks:
            continue
        name = path.relative_to(DOCS).as_posix()
        slow_page = page_is_slow(path)
        fast = [b for b in blocks if not b.slow]
        if fast and not slow_page:
            cases.append(pytest.param(path, fast, id=name))
        if slow_page or len(fast) < len(blocks):
            cases.append(pytest.param(path, blocks, id=f"{name}+slow", marks=pytest.mark.slow))
    return cases


def _failure(path: Path, block: Block, namespace: dict) -> str | None:
    """Runs one block; returns None, or the traceback of its error from the page's frames on."""
    try:
        # Blank lines in front put every line of the block at its line number in the page.
        exec(compile("\n" * block.line + block.code, str(path), "exec"), namespace)
    except Exception as error:
        tb = error.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != str(path):
            tb = tb.tb_next
        return "".join(traceback.format_exception(type(error), error, tb))
    return None


@pytest.mark.parametrize(("path", "blocks"), _cases())
def test_page_runs(path: Path, blocks: list[Block], tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = types.ModuleType("docs_" + re.sub(r"\W", "_", path.stem))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    x64 = jax.config.jax_enable_x64
    page = path.relative_to(ROOT).as_posix()
    try:
        for block in blocks:
            failure = _failure(path, block, module.__dict__)
            if failure is not None:
                pytest.fail(
                    f"{page}: the block at line {block.line} raised\n{failure}", pytrace=False
                )
    finally:
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")
    assert jax.config.jax_enable_x64 == x64, f"{page} changed jax_enable_x64; use jax.enable_x64"


def test_the_site_builds_with_strict_checks(tmp_path):
    """`mkdocs build --strict`: no broken link or anchor, no page outside the nav, every
    API reference resolved, no docstring the API generator cannot read."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir",
         str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "api" / "layers" / "index.html").exists()


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    """mkdocs build --strict checks this too; here it also holds without mkdocs installed."""
    nav = set(re.findall(r"^\s*-\s+(?:[^:\n]+:\s+)?([\w./-]+\.md)\s*$", _read("mkdocs.yml"), re.M))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert sorted(pages - nav) == [], "pages missing from the nav of mkdocs.yml"
    assert sorted(nav - pages) == [], "nav entries of mkdocs.yml without a page"


def test_the_block_reader_finds_python_fences_markers_and_lines(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n```python\nx = 1\n```\n\n```bash\nls\n```\n\n<!-- slow -->\n\n"
        "```py\ny = x\n```\n\n!!! note\n    ```python\n    z = 2\n    ```\n"
    )
    assert python_blocks(page) == [
        Block(3, "x = 1", False),
        Block(13, "y = x", True),
        Block(18, "z = 2", False),
    ]
    assert not page_is_slow(page)


@pytest.mark.slow
@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
)
def test_the_site_renders_in_chromium_and_search_finds_results(tmp_path):
    """docs/check_browser.py on a fresh strict build: screenshots, no JS errors, search works."""
    pytest.importorskip("mkdocs", reason='needs the docs extra: pip install -e ".[docs]"')
    pytest.importorskip("playwright", reason='needs the docs extra: pip install -e ".[docs]"')
    shots = tmp_path / "shots"
    command = [sys.executable, str(DOCS / "check_browser.py"), "--build"]
    command += ["--site", str(tmp_path / "site"), "--out", str(shots), "--query", "dropout"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("home", "concept", "api", "search"):
        png = (shots / f"{name}.png").read_bytes()
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and (width, height) == (1280, 900), name
        assert len(png) > 20_000, f"{name}.png is nearly blank"
    assert "matching documents for 'dropout'" in result.stdout


def _read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")
