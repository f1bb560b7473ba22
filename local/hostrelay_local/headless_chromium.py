"""Debian's headless Chromium through chromium-driver, for the console's tests and bench."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Chromium as root in a container: no sandbox, no GPU, no background traffic of its own.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,800",
)


def chromium_missing() -> str:
    """Why no browser can start here, or "" when one can."""
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return ""
    return "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"


@contextmanager
def headless_chromium() -> Iterator[webdriver.Chrome]:
    """A fresh profile each time, with the performance log (every request) switched on."""
    profile = tempfile.mkdtemp(prefix="hostrelay-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.execute_cdp_cmd("Page.enable", {})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
