"""The README's picture of the monitor page: a real dry run with `--monitor`, photographed halfway
by headless Chromium (`fabplan docs --pictures`)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def monitor_picture(out_png: Path, design: Path, *, fraction: float = 0.5, speedup: float = 0.25,
                    timeout_s: float = 180.0) -> Path | None:
    """Screenshot of the page while `design` is dry-run (`speedup` < 1: slower than real, so the
    browser catches it halfway), with the first disc clicked; None (and why, on stderr) when no
    headless browser is available here."""
    from fabplan.monitor import browser

    why = browser.available()
    if why:
        print(f"skipped {out_png.name}: {why}", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        journal = Path(tmp) / "run.jsonl"
        proc = subprocess.Popen(
            [sys.executable, "-m", "fabplan.cli.cmd_run", "dry-run", str(design), "--journal", str(journal),
             "--monitor", "--monitor-port", "0", "--speedup", str(speedup), "--json"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()
        driver = None
        try:
            deadline = time.monotonic() + timeout_s
            url = None
            while url is None and time.monotonic() < deadline and proc.poll() is None:
                url = next((ln.split()[1] for ln in lines if ln.startswith("monitor: ")), None)
                time.sleep(0.05)
            if url is None:
                raise RuntimeError(f"the dry run did not start its monitor: {''.join(lines)[-500:]}")
            driver = browser.chromium(1400, 1000)
            driver.get(url)
            while time.monotonic() < deadline:
                fired = int(driver.find_element("id", "count-fired").text or 0)
                total = fired + int(driver.find_element("id", "count-pending").text or 0)
                if total and fired >= fraction * total and driver.execute_script("return mapCodes !== null"):
                    break
                time.sleep(0.1)
            driver.execute_script("api('/api/disc?seq=0').then(showDisc)")  # a disc's records, as a click shows
            time.sleep(0.8)  # one more push, so the map and the counts agree
            out_png.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(out_png))
        finally:
            if driver is not None:
                driver.quit()
            if proc.poll() is None:
                proc.terminate()  # SIGTERM: the run stops at once, gate closed
            proc.wait(60)
    return out_png
