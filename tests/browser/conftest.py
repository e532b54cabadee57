"""The sandbox page in a real browser: Debian's headless Chromium driven by Selenium.

Nothing downloads a browser or a driver: both paths are given, so Selenium Manager is
never asked (SE_OFFLINE forbids it to fetch anything if it were). `.ci/run` installs
`chromium` and `chromium-driver` when they are missing; on a machine without them, and
outside CI, the tests are skipped with the reason.

Every step a test takes is photographed in memory; when a test fails the photographs
are written to an artifacts folder (BROWSER_ARTIFACTS, or the test's tmp dir) and the
failure report names it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.sandbox_process import SandboxProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT = 60.0  # a bound, not a measure: the sandbox's bot is a child process on a busy box

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} or {CHROMEDRIVER} is missing; .ci/run installs them")
    pytest.skip(f"no {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)",
                allow_module_level=True)

os.environ.setdefault("SE_OFFLINE", "true")

from selenium import webdriver  # noqa: E402  (after the skip: selenium may be absent too)
from selenium.common.exceptions import (  # noqa: E402
    ElementClickInterceptedException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

FLAKY_DOM = (StaleElementReferenceException, ElementClickInterceptedException)


def chrome(width: int, height: int) -> WebDriver:
    """Headless Chromium whose page (not window) is width x height."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--disable-extensions", "--no-first-run", f"--window-size={width},{height}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    return driver


class SandboxPage:
    """The page as a person uses it: what they see, what they click, what they type."""

    def __init__(self, driver: WebDriver, url: str, artifacts: Path) -> None:
        self.driver, self.url, self.artifacts = driver, url, artifacts
        self.steps: list[tuple[str, bytes]] = []

    # ----- the window ------------------------------------------------------------------

    def size(self, width: int, height: int) -> None:
        """Make the page itself width x height (the window adds its frame)."""
        self.driver.set_window_size(width, height)
        inner = self.driver.execute_script("return [window.innerWidth, window.innerHeight]")
        self.driver.set_window_size(width + (width - inner[0]), height + (height - inner[1]))

    def step(self, name: str) -> None:
        """Photograph the page now (written out only if the test fails)."""
        self.steps.append((name, self.driver.get_screenshot_as_png()))

    def save_steps(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for number, (name, png) in enumerate(self.steps, 1):
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
            (folder / f"{number:02d}-{slug}.png").write_bytes(png)
        return folder

    def wait(self, found: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        """Poll `found()` until it is truthy; that value. The page redraws as the bot
        posts, so an element may go stale between finding and using it: try again."""
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.2,
                                 ignored_exceptions=FLAKY_DOM).until(lambda _: found())
        except TimeoutException:
            self.step(f"never saw {what}")
            raise AssertionError(f"the page never showed {what} in {timeout:.0f}s; "
                                 f"it shows: {self.text('#main')[-1500:]!r}") from None

    def steady(self, look: Callable[[], Any]) -> Any:
        """`look()`, read again if the page redrew under it (a bot post, an edit): what a
        person sees once the page is still. Not a wait: it does not wait for anything new."""
        for _ in range(50):
            try:
                return look()
            except StaleElementReferenceException:
                time.sleep(0.1)
        return look()

    # ----- finding things --------------------------------------------------------------

    def text(self, css: str) -> str:
        return "\n".join(e.text for e in self.driver.find_elements(By.CSS_SELECTOR, css))

    def messages(self, where: str = "#messages") -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, f"{where} .message")

    def message(self, *words: str, button: str | None = None, ephemeral: bool | None = None,
                where: str = "#messages") -> WebElement | None:
        """The latest message showing every word (and the button, if named)."""
        for message in reversed(self.messages(where)):
            if ephemeral is not None and ("ephemeral" in message.get_attribute("class").split()) != ephemeral:
                continue
            shown = message.text
            if all(w in shown for w in words) and (button is None or self.buttons(message, button)):
                return message
        return None

    def buttons(self, inside: WebElement, action_id: str) -> list[WebElement]:
        return inside.find_elements(By.CSS_SELECTOR, f'button[data-action-id="{action_id}"]')

    # ----- doing things ----------------------------------------------------------------

    def open(self, person: str) -> None:
        """Load the page and pick `person` in the switcher."""
        self.driver.get(self.url)
        self.wait(lambda: self.driver.find_elements(By.CSS_SELECTOR, "#person option"), "the people")
        self.as_person(person)

    def as_person(self, person: str) -> None:
        Select(self.driver.find_element(By.ID, "person")).select_by_value(person)
        self.wait(lambda: self.driver.execute_script("return ui.state && ui.state.me") == person,
                  f"the page as {person}")
        self.step(f"as {person}")

    def go(self, name: str) -> None:
        """Open a channel or DM by the name in the sidebar (opening the sidebar if folded)."""
        toggle = self.driver.find_element(By.ID, "menu-toggle")
        if toggle.is_displayed() and toggle.get_attribute("aria-expanded") != "true":
            toggle.click()

        def clicked() -> bool:
            for item in self.driver.find_elements(By.CSS_SELECTOR, "#sidebar .side-item"):
                if item.find_element(By.CSS_SELECTOR, ".side-name").text == name and item.is_displayed():
                    item.click()
                    return True
            return False

        self.wait(clicked, f"{name} in the sidebar")
        self.step(f"open {name}")

    def send(self, text: str, box: str = "composer-text") -> None:
        field = self.driver.find_element(By.ID, box)
        field.clear()
        field.send_keys(text)
        self.step(f"typed {text[:40]}")
        field.find_element(By.XPATH, "./ancestor::form//button[@type='submit']").click()
        self.wait(lambda: field.get_attribute("value") == "", "the composer emptied after sending")

    def click(self, message: Callable[[], WebElement | None], action_id: str, what: str) -> None:
        """Click the button `action_id` on the message `message()` finds (found afresh)."""
        def clicked() -> bool:
            found = message()
            if found is None or not self.buttons(found, action_id):
                return False
            self.buttons(found, action_id)[0].click()
            return True

        self.wait(clicked, what)
        self.step(f"clicked {action_id}")

    def first(self, css: str) -> WebElement | None:
        return next(iter(self.driver.find_elements(By.CSS_SELECTOR, css)), None)

    def modal(self) -> WebElement:
        return self.wait(lambda: self.first("#modal-layer .modal"), "a modal")

    def fill_modal(self, text: str) -> None:
        """Type into the modal's first input, submit, and see the modal go."""
        modal = self.modal()
        field = modal.find_element(By.CSS_SELECTOR, ".bk-input textarea, .bk-input input")
        label = modal.find_element(By.CSS_SELECTOR, f'label[for="{field.get_attribute("id")}"]')
        assert label.text, "the modal's input has a label"
        field.send_keys(text)
        self.step("modal filled")
        modal.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        self.wait(lambda: self.first("#modal-layer .modal") is None, "the modal close")
        self.step("modal submitted")


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> Iterator[SandboxProcess]:
    with SandboxProcess(tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.fixture(scope="session")
def driver() -> Iterator[WebDriver]:
    browser = chrome(1280, 800)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture()
def page(driver: WebDriver, sandbox: SandboxProcess, tmp_path: Path) -> SandboxPage:
    shown = SandboxPage(driver, sandbox.url, Path(os.environ.get("BROWSER_ARTIFACTS") or tmp_path))
    shown.size(1280, 800)
    return shown


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    page = getattr(item, "funcargs", {}).get("page")
    if report.when != "call" or not report.failed or not isinstance(page, SandboxPage):
        return
    try:
        page.step("at the failure")
    except Exception as error:  # noqa: BLE001 - the browser may be what broke
        report.sections.append(("screenshots", f"no final screenshot: {error}"))
    folder = page.save_steps(page.artifacts / "screenshots" / re.sub(r"[^A-Za-z0-9_.-]+", "_", item.name))
    report.sections.append(("screenshots", f"the steps' screenshots are in {folder}"))
    sandbox = item.funcargs.get("sandbox")
    if isinstance(sandbox, SandboxProcess):
        report.sections.append(("sandbox output", "".join(sandbox.output)[-3000:]))
