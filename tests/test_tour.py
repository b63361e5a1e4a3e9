"""The README tour runs as written, in order, from a fresh clone (issue 17).

Every line of the tour's ```bash blocks is run, top to bottom, in one folder that holds only what a
clone has (designs/, with the sample inputs the package ships): a command may use only files the
tour made before it or the package ships. `export` lines set the environment for the lines after.
A line's expected exit code is written in its comment (`# ... exit 1 ...`), else 0. Commands for
the lab's real devices are in ```sh blocks (never run here) and must name a device URL.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

import pytest

from fabplan.cli import main

ROOT = Path(__file__).resolve().parents[1]
DEVICE_URL = re.compile(r"\b(xps|esp301|pharos)://")


def tour_text() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## A short tour")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def tour_lines() -> list[tuple[str, int]]:
    """(command line, expected exit code) for every line of the tour's bash blocks, in order."""
    out = []
    for block in re.findall(r"^```bash\n(.*?)^```", tour_text(), flags=re.S | re.M):
        for raw in block.replace("\\\n", " ").splitlines():
            words = shlex.split(raw, comments=True)
            if not words:
                continue
            comment = raw.split("#", 1)[1] if "#" in raw and not raw.lstrip().startswith("#") else ""
            m = re.search(r"\bexit (\d+)\b", comment)
            out.append((shlex.join(words), int(m.group(1)) if m else 0))
    return out


def test_the_tour_has_no_hidden_steps():
    lines = tour_lines()
    assert len(lines) >= 15
    sh_blocks = re.findall(r"^```sh\n(.*?)^```", tour_text(), flags=re.S | re.M)
    assert any(DEVICE_URL.search(b) for b in sh_blocks)  # the hardware commands are shown, not run
    for cmd, _ in lines:
        assert not DEVICE_URL.search(cmd), f"needs real hardware, put it in a ```sh block: {cmd}"


@pytest.mark.slow
def test_every_tour_command_runs_in_order(tmp_path, monkeypatch, capsys):
    clone = tmp_path / "clone"
    shutil.copytree(ROOT / "designs", clone / "designs", ignore=shutil.ignore_patterns("pictures", "__pycache__"))
    monkeypatch.chdir(clone)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for var in ("FABPLAN_DB", "FABPLAN_STATION"):
        monkeypatch.delenv(var, raising=False)
    for cmd, expected in tour_lines():
        words = shlex.split(cmd)
        if words[0] == "source":
            continue  # activating the venv: this test already runs inside it
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            monkeypatch.setenv(name, os.path.expandvars(value))
            continue
        assert words[0] == "fabplan", f"the tour runs fabplan commands only (or export): {cmd}"
        code = main(words[1:])
        out, err = capsys.readouterr()
        assert code == expected, f"`{cmd}` exited {code}, expected {expected}\nstdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}"
        assert "Traceback" not in err, cmd
