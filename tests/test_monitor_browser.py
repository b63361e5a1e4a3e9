"""The monitor page in a real browser (headless Chromium, Debian's package, driven by selenium) during
a dry run of 3,000 shots started with `--monitor`: the counts on the page move and end equal to the
journal's (read by the executor's own reader), the map is drawn, a click on a disc shows its journal
records, and "request pause" pauses the run: the session ends "paused" (exit 3), the gate closed,
no pulse left the emulated laser after the last confirmed shot."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request

import pytest

from fabplan.execute.journal import read_journal
from fabplan.execute.pulselog import read_pulse_log
from fabplan.monitor import browser
from tests.exec_designs import lattice_design
from tests.waiting import wait_for

pytestmark = pytest.mark.skipif(browser.available() is not None, reason=str(browser.available()))

ROWS, COLS = 50, 60


def _count(driver, name: str) -> int:
    return int(driver.find_element("id", f"count-{name}").text or 0)


@pytest.fixture
def run(tmp_path):
    design = tmp_path / "browser.yaml"
    design.write_text(lattice_design("browser-test", "B", ROWS, COLS))
    journal = tmp_path / "run.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fabplan.cli.cmd_run", "dry-run", str(design), "--journal", str(journal),
         "--monitor", "--monitor-port", "0", "--speedup", "1", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()
    try:
        url = wait_for(lambda: next((ln.split()[1] for ln in lines if ln.startswith("monitor: ")), None),
                       what="the monitor address on stderr")
        yield proc, url, journal, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)


def test_page_follows_the_run_and_pauses_it(run):
    proc, url, journal, stderr = run
    driver = browser.chromium()
    try:
        driver.get(url)
        wait_for(lambda: driver.find_element("id", "state").text.lower() == "running", what="state running")
        first = wait_for(lambda: _count(driver, "fired"), what="fired shots on the page")
        wait_for(lambda: _count(driver, "fired") > first, what="the count to move")
        assert _count(driver, "pending") > 0 and _count(driver, "fired") <= read_journal(journal).counts()["fired"]
        assert driver.find_element("id", "card-design").text.startswith("browser-test")

        # the map: the canvas has pixels in the "fired" colour
        fired_px = """const c = document.getElementById('map'), g = c.getContext('2d');
            const d = g.getImageData(0, 0, c.width, c.height).data; let n = 0;
            for (let i = 0; i < d.length; i += 4) if (d[i] === 46 && d[i+1] === 158 && d[i+2] === 91) n++;
            return n;"""
        wait_for(lambda: driver.execute_script(fired_px) > 50, what="fired discs drawn on the map")

        # click the first disc fired: its records appear
        with urllib.request.urlopen(url + "api/disc?seq=0", timeout=10) as r:
            d0 = json.loads(r.read())
        x, y = d0["map_xy_um"]
        canvas = driver.find_element("id", "map")
        px, py = driver.execute_script(f"return [view.X({x}) / view.dpr, view.Y({y}) / view.dpr];")
        from selenium.webdriver.common.action_chains import ActionChains

        size = canvas.size
        ActionChains(driver).move_to_element_with_offset(canvas, int(px - size["width"] / 2),
                                                         int(py - size["height"] / 2)).click().perform()
        wait_for(lambda: d0["id"] in driver.find_element("id", "disc").text, what="the clicked disc's details")
        records = driver.find_element("id", "disc-records").text
        assert '"k":"intent"' in records and '"k":"fired"' in records and '"seq":0' in records

        # request pause, behind the confirmation
        driver.find_element("id", "pause-btn").click()
        wait_for(lambda: driver.find_element("id", "pause-dialog").is_displayed(), what="the confirmation")
        driver.find_element("id", "pause-confirm").click()
        rc = proc.wait(60)
        out = json.loads(proc.stdout.read())
        assert rc == 3 and out["status"] == "paused", "".join(stderr)
        wait_for(lambda: driver.find_element("id", "state").text.lower() == "paused", what="the page to say paused")

        st = read_journal(journal)
        assert st.last_status == "paused" and any(e.get("what") == "pause" for e in st.events)
        assert 0 < st.counts()["fired"] < ROWS * COLS and st.counts()["uncertain"] == 0
        # the gate: every pulse that left the emulated laser is a confirmed shot, none after the pause
        assert len(read_pulse_log(journal.with_suffix(".pulses.csv"))) == st.counts()["fired"]
        # the page's counts end equal to the journal's
        wait_for(lambda: _count(driver, "fired") == st.counts()["fired"], what="page fired == journal fired")
        assert _count(driver, "uncertain") == 0 and _count(driver, "pending") == ROWS * COLS - st.counts()["fired"]
        assert "fabplan dry-run --resume" in driver.find_element("id", "resume-cmd").text  # a dry run's
        # no script error (network errors are the monitor leaving with the run's process)
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and e.get("source") != "network"]
        assert not severe, severe
    finally:
        driver.quit()
