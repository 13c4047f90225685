"""The built book in a real browser (Chromium driven by Playwright), at desktop and phone widths.

Every page of the table of contents is served over HTTP from the build and opened at 1280 px and 390 px.
A page fails on: a console error or uncaught exception, a failed request, a request that leaves the
machine, maths MathJax did not typeset, an equation wider than its box that cannot be scrolled, a code
block that scrolls sideways on a desktop, sideways scrolling of the page on a phone, a broken image, a
figure without real alt text, the stray output box of a glue call, a download link to a missing file or
a launch link to a notebook that is not in the repository. The sidebar must open and navigate at both
widths.

Uses the system Chromium (Debian's ``chromium``, installed by ``make test``); Playwright's own browser
download is not needed. ``TRAINLAB_BOOK_HTML=_build/html`` tests the book ``make book`` built.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = {"desktop": 1280, "phone": 390}
pytestmark = pytest.mark.slow


def _pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


def _chromium() -> str | None:
    return os.environ.get("TRAINLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server(book_html):
    handler = functools.partial(_QuietHandler, directory=str(book_html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    if executable is None:
        message = "Chromium not found: `make test` installs it (apt-get install chromium), or set TRAINLAB_CHROMIUM"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


class PageWatch:
    """A page with its console errors, failed and external requests recorded."""

    def __init__(self, browser, width: int, base: str) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.page = self.context.new_page()
        self.base = base
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.problems.append(f"uncaught exception: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url}"))
        self.page.on("response", lambda r: self.problems.append(f"HTTP {r.status}: {r.url}")
                     if r.status >= 400 else None)
        self.page.on("request", self._request)

    def _request(self, request) -> None:
        if urlparse(request.url).scheme in ("data", "blob", "about"):
            return
        if not request.url.startswith(self.base):
            self.problems.append(f"request leaves the machine: {request.url}")

    def open(self, page: str) -> None:
        self.page.goto(f"{self.base}/{page}.html", wait_until="load")
        self.page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
        self.page.wait_for_timeout(150)

    def close(self) -> None:
        self.context.close()


AUDIT = (Path(__file__).with_name("browser_audit.js")).read_text()


def _check_links(watch: PageWatch) -> list[str]:
    """Download links must fetch; launch links must name a notebook that exists in the repository."""
    problems = []
    links = watch.page.eval_on_selector_all(
        ".dropdown-download-buttons a, .dropdown-launch-buttons a", "els => els.map(a => a.href)")
    for href in links:
        if href.startswith(watch.base):
            response = watch.page.request.get(href)
            if response.status != 200:
                problems.append(f"download link {href} gives HTTP {response.status}")
            continue
        found = re.search(r"/blob/[^/]+/(.+\.ipynb)|urlpath=(?:lab/tree|tree)/(.+?\.ipynb)", unquote(href))
        if not found:
            problems.append(f"launch link does not open a notebook: {href}")
        elif not (ROOT / (found.group(1) or found.group(2))).exists():
            problems.append(f"launch link opens {found.group(1) or found.group(2)}, which is not in the repository")
    return problems


@pytest.mark.parametrize("width", WIDTHS, ids=str)
@pytest.mark.parametrize("page", _pages())
def test_page_works_in_a_browser(browser, server, page, width):
    watch = PageWatch(browser, WIDTHS[width], server)
    try:
        watch.open(page)
        problems = watch.problems + watch.page.evaluate(AUDIT, width == "desktop") + _check_links(watch)
    finally:
        watch.close()
    assert not problems, f"{page} at {WIDTHS[width]} px:\n- " + "\n- ".join(dict.fromkeys(problems))


@pytest.mark.parametrize("width", WIDTHS, ids=str)
def test_sidebar_opens_and_navigates(browser, server, width):
    watch = PageWatch(browser, WIDTHS[width], server)
    try:
        watch.open(_pages()[1])
        page = watch.page
        toggle = page.locator(".primary-toggle").locator("visible=true").first
        sidebar = page.locator("#pst-primary-sidebar")
        if width == "desktop":
            assert sidebar.is_visible()
            toggle.click()
            page.wait_for_timeout(400)
            assert not sidebar.is_visible(), "the sidebar button does not hide the sidebar"
            toggle.click()
            page.wait_for_timeout(400)
        else:
            assert not sidebar.is_visible()
            toggle.click()
            page.wait_for_timeout(400)
        link = page.locator("nav.bd-links a.reference.internal").locator("visible=true").last
        assert link.is_visible(), "the sidebar button does not show the chapter list"
        target = link.get_attribute("href")
        link.click()
        page.wait_for_load_state("load")
        assert page.url.split("#")[0].endswith(target.split("#")[0].lstrip("./").split("/")[-1]), (
            f"clicking {target} in the sidebar did not navigate (at {page.url})")
        assert not watch.problems, watch.problems
    finally:
        watch.close()
