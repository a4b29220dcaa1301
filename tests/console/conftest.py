"""
Headless Chromium for the staff console's end-to-end tests: Debian's chromium (`make test` installs
it), driven by Playwright with `executable_path` — never a browser build Playwright downloads.
"""

import os
import shutil
from pathlib import Path

import pytest
from django.db import connections

CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # A closed network: without these Chromium keeps trying (and failing) to reach Google's hosts.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# UPDATE_SCREENSHOTS=1 writes the screenshots docs/guide.md shows; otherwise they go to a temporary directory.
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"


def chromium_executable() -> str | None:
    return shutil.which("chromium") or next(
        (path for path in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if os.path.exists(path)), None
    )


@pytest.fixture
def page(live_server, monkeypatch):
    """A page of a fresh headless Chromium, its base URL the live server's. Fails the test on a JavaScript error."""
    executable = chromium_executable()
    if executable is None:
        pytest.skip(
            "BROWSER TESTS SKIPPED: Debian's chromium is not installed and `make test` could not install it "
            "(it needs root and apt: apt-get install -y chromium)."
        )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop on this thread while it is open; the test's own ORM
    # calls stay synchronous. Started and stopped per test, so no loop outlives the browser tests.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1360, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
        browser.close()
        # Inside Playwright's greenlet the ORM had connections of its own; close them before the test database goes.
        connections.close_all()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture
def screenshot(tmp_path):
    """Save a full-page screenshot by name; into docs/img when UPDATE_SCREENSHOTS=1."""
    directory = DOCS_IMAGES if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    directory.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, *, full_page: bool = True, locator=None) -> Path:
        path = directory / f"{name}.png"
        (locator or page).screenshot(path=str(path), **({} if locator else {"full_page": full_page}))
        return path

    return take
