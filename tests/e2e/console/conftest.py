"""One local stack and one headless Chromium per module, for the web console's browser tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from hostrelay_local.headless_chromium import chromium_missing, headless_chromium
from hostrelay_local.local_relay import DEMO_EXEC_COMMANDS
from hostrelay_local.stack import LocalStack, StackOptions

SCREENSHOTS = Path(__file__).parents[3] / "docs" / "console"
WAIT_S = 20.0
# What the exec test runs: a line a second, so output is seen while the job runs.
SLOW_LINES = "for i in $(seq 1 40); do echo line $i; sleep 1; done"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Given the local stack on free ports, with the demo directory and `/bin/sh` allowed as a
    launcher for the one slow script the exec test runs."""
    if reason := chromium_missing():
        pytest.fail(reason)
    options = StackOptions(
        api_port=0,
        with_samba=False,
        with_directory=True,
        heartbeat_s=5,
        schedule_period_s=1.0,
        exec_commands=(
            *DEMO_EXEC_COMMANDS,
            {"command": "/bin/sh", "launcher": True, "args": [["-c", SLOW_LINES]]},
        ),
    )
    with LocalStack(tmp_path_factory.mktemp("hostrelay-console"), options) as running:
        assert running.host_state("dc01") == "online", running.relay and running.relay.log_tail()
        yield running


class Browser:
    """A headless Chromium on the console, remembering every URL it requested."""

    def __init__(self, driver: webdriver.Chrome, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url
        self.requested_urls: list[str] = []

    def open(self, fragment: str = "") -> None:
        self.driver.get(f"{self.base_url}/console/{fragment}")

    def go(self, fragment: str) -> None:
        """Follow an in-page link (the hash router), as clicking one would."""
        self.driver.execute_script("location.hash = arguments[0]", fragment)

    def wait(self, condition: Callable[[webdriver.Chrome], Any], timeout_s: float = WAIT_S) -> Any:
        return WebDriverWait(self.driver, timeout_s, poll_frequency=0.05).until(condition)

    def element(self, css: str, timeout_s: float = WAIT_S) -> WebElement:
        return self.wait(lambda d: _first_displayed(d, css), timeout_s)

    def elements(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        return " ".join(element.text for element in self.elements(css))

    def wait_text(self, css: str, expected: str, timeout_s: float = WAIT_S) -> str:
        self.wait(lambda d: expected in self.text(css), timeout_s)
        return self.text(css)

    def sign_in(self, token: str) -> None:
        self.sign_out()
        field = self.element("#token")
        field.send_keys(token)
        self.element("#signin button[type=submit]").click()

    def sign_out(self) -> None:
        self.open()
        self.wait(lambda d: _first_displayed(d, "#token") or _first_displayed(d, "#signout"))
        if self.elements("#signout"):
            self.element("#signout").click()
        self.element("#token")

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))

    def collect_requests(self) -> list[str]:
        """Every URL requested or navigated to since the browser started."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message.get("method") == "Network.requestWillBeSent":
                self.requested_urls.append(params["request"]["url"])
                if params.get("documentURL"):
                    self.requested_urls.append(params["documentURL"])
            elif message.get("method") == "Page.navigatedWithinDocument":
                self.requested_urls.append(params["url"])
        return self.requested_urls

    def history(self) -> list[str]:
        entries = self.driver.execute_cdp_cmd("Page.getNavigationHistory", {})["entries"]
        return [entry["url"] for entry in entries]


def _first_displayed(driver: webdriver.Chrome, css: str) -> WebElement | None:
    for element in driver.find_elements(By.CSS_SELECTOR, css):
        try:
            if element.is_displayed():
                return element
        except WebDriverException:
            continue
    return None


@pytest.fixture(scope="module")
def browser(stack: LocalStack) -> Iterator[Browser]:
    with headless_chromium() as driver:
        yield Browser(driver, stack.api_url)
