"""Drive the monitor page in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver` packages) through selenium, for the browser test and the README picture.

Selenium is given both the browser and the driver binary, so its driver manager never downloads
anything; the browser starts with a fresh profile and without background networking.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
DRIVER = ("/usr/bin/chromedriver",)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--disable-default-apps", "--disable-extensions", "--force-device-scale-factor=1")


def find(paths, name: str) -> str | None:
    for p in paths:
        if Path(p).is_file() and os.access(p, os.X_OK):
            return p
    return shutil.which(name)


def available() -> str | None:
    """None when a headless browser can be driven here, else why not."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (test extra)"
    if not find(CHROMIUM, "chromium"):
        return "chromium is not installed (apt-get install chromium)"
    if not find(DRIVER, "chromedriver"):
        return "chromedriver is not installed (apt-get install chromium-driver)"
    return None


def chromium(width: int = 1400, height: int = 1000):
    """A headless Chromium webdriver with a fresh profile (quit() it; the profile folder goes with it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium manager: never fetch a browser or driver
    profile = tempfile.mkdtemp(prefix="fabplan-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = find(CHROMIUM, "chromium")
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument(f"--window-size={width},{height}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(find(DRIVER, "chromedriver")), options=opts)
    quit_ = driver.quit

    def quit_and_clean() -> None:
        try:
            quit_()
        finally:
            shutil.rmtree(profile, ignore_errors=True)

    driver.quit = quit_and_clean
    return driver
