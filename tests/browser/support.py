"""Helpers of the browser tests: what a page may do (only the test server, no console
error), how a path through the screens is counted, and the screenshots for docs/."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Locator, Page, Route

PROJECT_DIR = Path(__file__).resolve().parents[2]
SCREENSHOTS_DIR = PROJECT_DIR / "docs" / "screenshots"
SCREENSHOTS_ENV = "SHELFWATCH_SCREENSHOTS"
# Schemes that never leave the browser.
LOCAL_SCHEMES = frozenset({"data", "blob", "about"})


@dataclass
class PageGuard:
    """Collects what a page must not do: console errors, uncaught exceptions, and requests to
    any origin but the test server's (those are aborted, so nothing leaves the machine)."""

    allowed_origin: str
    problems: list[str] = field(default_factory=list)

    def _origin(self, url: str) -> tuple[str, str]:
        parts = urlsplit(url)
        return parts.scheme, parts.netloc

    def route(self, route: Route) -> None:
        """Let requests to the test server through; abort and record any other."""
        url = route.request.url
        scheme = urlsplit(url).scheme
        if scheme in LOCAL_SCHEMES or self._origin(url) == self._origin(self.allowed_origin):
            route.continue_()
            return
        self.problems.append(f"request to another host: {route.request.method} {url}")
        route.abort("blockedbyclient")

    def on_console(self, message: ConsoleMessage) -> None:
        """Record console errors (``console.error``, failed loads, CSP violations...)."""
        if message.type == "error":
            where = message.location
            self.problems.append(
                f"console error: {message.text} ({where.get('url')}:{where.get('lineNumber')})"
            )

    def on_page_error(self, error: Exception) -> None:
        """Record uncaught JavaScript exceptions."""
        self.problems.append(f"page error: {error}")

    def watch(self, page: Page) -> None:
        """Attach the console and error listeners to ``page``."""
        page.on("console", self.on_console)
        page.on("pageerror", self.on_page_error)


def _describe(locator: Locator) -> str:
    """The locator's selector (its repr also names the frame and its URL)."""
    found = re.search(r"selector='(.*)'>$", repr(locator))
    return found.group(1) if found else repr(locator)


class Journey:
    """Drives a page the way a person does and counts what it took.

    ``interactions`` counts the person's actions: a click, a field filled, a key pressed, and
    typing a value into the focused field (one entry, like a fill, however many characters).
    ``loads`` counts documents loaded in the page (its ``load`` events) from the moment the
    journey starts, so opening the list is the first one.
    """

    def __init__(self, page: Page) -> None:
        self.page = page
        self.interactions: list[str] = []
        self.loads: list[str] = []
        page.on("load", self._loaded)

    def _loaded(self, page: Page) -> None:
        self.loads.append(page.url)

    def open(self, url: str) -> None:
        """Where the journey starts (a page load, no interaction)."""
        self.page.goto(url)

    def click(self, locator: Locator) -> None:
        """Click ``locator`` with the mouse."""
        self.interactions.append(f"click {_describe(locator)}")
        locator.click()

    def fill(self, locator: Locator, value: str) -> None:
        """Click into a field and enter ``value`` (one interaction)."""
        self.interactions.append(f"fill {_describe(locator)} = {value!r}")
        locator.fill(value)

    def press(self, key: str) -> None:
        """Press one key on whatever has the focus."""
        self.interactions.append(f"press {key}")
        self.page.keyboard.press(key)

    def type(self, text: str) -> None:
        """Type ``text`` into the focused element, key by key (one interaction)."""
        self.interactions.append(f"type {text!r}")
        self.page.keyboard.type(text)

    def settle(self) -> None:
        """Wait until the current document has loaded, so that ``loads`` is complete."""
        self.page.wait_for_load_state("load")


def screenshots_enabled() -> bool:
    """``SHELFWATCH_SCREENSHOTS=1`` (``make screenshots``) refreshes docs/screenshots/."""
    return os.environ.get(SCREENSHOTS_ENV) == "1"


def screenshot(page: Page, name: str, *, full_page: bool = False) -> Path | None:
    """Write ``docs/screenshots/<name>.png`` of ``page`` when screenshots are enabled."""
    if not screenshots_enabled():
        return None
    SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS_DIR / f"{name}.png"
    # Carets and animations would make two runs differ for nothing.
    page.screenshot(path=str(path), full_page=full_page, animations="disabled", caret="hide")
    return path
