"""Renders the built documentation site in headless Chromium and checks it works.

Serves the site on a free localhost port, opens it in Debian's Chromium through
Playwright (``executable_path``; no browser is downloaded), and

- takes screenshots of the home page, a concept page with a figure and an API
  page (``home.png``, ``concept.png``, ``api.png``), checking that each page
  loads, has its title, runs without JavaScript errors and that every image on
  it has loaded;
- types a query into Material's search box and checks that results appear
  (``search.png``).

Every request to anything but the local server is refused, so the check runs
offline and proves that the site needs nothing from the network.

Usage::

    .venv/bin/python docs/check_browser.py                  # builds site/ if missing
    .venv/bin/python docs/check_browser.py --build --out site-screenshots --query dropout

Exits with status 1 and one line per failed check, 0 when all pass.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 900}
API_PAGE = "api/layers/"
TIMEOUT_MS = 20_000
SEARCH_TRIES = 5
SEARCH_WAIT_MS = 3_000


def build(site: Path) -> None:
    """``mkdocs build --strict`` into ``site``."""
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir"]
    subprocess.run([*command, str(site)], cwd=ROOT, check=True)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def serve(site: Path) -> Iterator[str]:
    """Serves ``site`` on a free localhost port in a thread; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def concept_page_with_figure(site: Path) -> str:
    """The URL path of the first concept page (in file order) that shows an image."""
    for page in sorted((site / "concepts").glob("*/index.html")):
        if '<img alt="' in page.read_text(encoding="utf-8"):
            return f"concepts/{page.parent.name}/"
    raise FileNotFoundError(f"no concept page with a figure in {site / 'concepts'}")


def check(site: Path, out: Path, query: str, chromium: str = CHROMIUM) -> list[str]:
    """Runs every check on the built ``site``; returns the failures (empty when all pass).

    Screenshots go to ``out``.
    """
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    pages = {  # name: (path, an element the page must show)
        "home": ("", "article h1"),
        "concept": (concept_page_with_figure(site), "article img"),
        "api": (API_PAGE, '[id="funcnets.layers.Dense"]'),
    }
    with serve(site) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.route(
            "**/*",
            lambda route: (
                route.continue_() if route.request.url.startswith(base) else route.abort()
            ),
        )
        for name, (path, must_show) in pages.items():
            errors.clear()
            response = page.goto(base + path, wait_until="networkidle")
            if response is None or not response.ok:
                failures.append(f"{name}: {path or '/'} did not load")
                continue
            title = page.title()
            images = page.evaluate(
                "Array.from(document.querySelectorAll('article img'))"
                ".map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"
            )
            broken = [src for src, loaded in images if not loaded]
            if name == "concept" and images:  # the screenshot shows the first figure
                page.locator("article img").first.scroll_into_view_if_needed()
            page.screenshot(path=str(out / f"{name}.png"))
            print(f"{name}: /{path} {title!r}, {len(images)} image(s) -> {out / (name + '.png')}")
            if not page.locator(must_show).count():
                failures.append(f"{name}: /{path} has no {must_show}")
            if "funcnets" not in title:
                failures.append(f"{name}: the title {title!r} does not name the site")
            if broken:
                failures.append(f"{name}: images that did not load: {broken}")
            if errors:
                failures.append(f"{name}: JavaScript errors: {errors}")
        failures += _check_search(page, base, query, out)
        browser.close()
    return failures


def _check_search(page, base: str, query: str, out: Path) -> list[str]:
    """Types ``query`` into the search box of the home page; checks that results appear.

    Material builds its search index in a web worker after the page has loaded; a
    query typed before the index is ready is answered with nothing, so the query is
    typed again (up to ``SEARCH_TRIES`` times) until results show.
    """
    page.goto(base, wait_until="networkidle")
    box = page.locator("input.md-search__input")
    results = page.locator(".md-search-result__item")
    for _ in range(SEARCH_TRIES):
        box.click()
        box.clear()
        box.press_sequentially(query, delay=50)
        try:
            results.first.wait_for(state="visible", timeout=SEARCH_WAIT_MS)
            break
        except Exception:  # Playwright's TimeoutError: no result yet
            continue
    page.screenshot(path=str(out / "search.png"))
    meta = (page.locator(".md-search-result__meta").text_content() or "").strip()
    if not results.count():
        return [f"search: no results for {query!r} ({meta!r})"]
    first = results.first.locator("h1, h2").first.text_content() or ""
    print(f"search: {meta} for {query!r}, the first {first.strip()!r}")
    return []


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "site", help="the built site")
    parser.add_argument("--out", type=Path, default=ROOT / "site-screenshots",
                        help="where the screenshots go")  # fmt: skip
    parser.add_argument("--build", action="store_true", help="build the site first")
    parser.add_argument("--query", default="dropout", help="what to search for")
    parser.add_argument("--chromium", default=CHROMIUM, help="the Chromium executable")
    args = parser.parse_args(argv)
    if not Path(args.chromium).exists():
        print(f"no Chromium at {args.chromium} (apt-get install chromium)", file=sys.stderr)
        return 1
    if args.build or not (args.site / "index.html").exists():
        build(args.site)
    failures = check(args.site, args.out, args.query, args.chromium)
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
