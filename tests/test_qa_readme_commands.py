"""Every `fabplan ...` line of the README tour that needs no hardware and no user-made file runs as written.

The commands are taken from the README's bash blocks (not copied here), so a tour edit that breaks a
command, or a CLI change that breaks the tour, fails this test. Commands that need a real device,
a file the user makes (measured_diameters.csv, drawn.gds, a journal, spectra) or a lab database are
classified as skipped, and every README command must fall in one of the two groups. my_design.yaml is
the README's own example design (section 1), so the commands on it run too.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from fabplan.cli import main

ROOT = Path(__file__).resolve().parents[1]

RUNNABLE = {"validate", "plan", "preview", "export-gds", "wgm", "dry-run", "schema", "docs", "station", "designs"}
NEEDS_USER_FILES_OR_HARDWARE = {"calibrate", "import-gds", "run", "stage", "lab", "monitor"}  # monitor: a journal
# The README's 250,000-disc fly dry run takes ~15 s of CPU on its own: left to the executor's tests.
TOO_SLOW = {"fabplan dry-run designs/dense_cm2.yaml --mode fly"}
# `--fault xps=drop@40` drops the controller's connection mid-run on purpose: the run stops with a
# device fault (exit 1, as `fabplan run` documents) and prints how to resume.
EXPECTED_EXIT = {"fabplan dry-run designs/hex_sweep.yaml --fault xps=drop@40 --journal runs/cut.jsonl": 1}


def readme_design() -> str:
    """The README's own example design (section 1), which a new user saves as my_design.yaml."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```yaml\n(.*?)^```", text, flags=re.S | re.M)[0]


def readme_commands() -> list[str]:
    """`fabplan ...` command lines of the README's bash blocks after the first (install) block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)[1:]
    out = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "fabplan":
                out.append(shlex.join(words))
    return out


def _classify(cmd: str) -> str:
    words = shlex.split(cmd)
    sub = words[1]
    if cmd in TOO_SLOW:
        return "slow"
    if sub in NEEDS_USER_FILES_OR_HARDWARE or "--resume" in words:  # (tests/test_tour.py runs them in order)
        return "needs files or hardware"
    designs = [w for w in words if w.endswith(".yaml") and w != "my_design.yaml"]  # made from the README
    if any(not (ROOT / w).is_file() for w in designs):
        return "needs a user design"
    if sub in RUNNABLE:
        return "run"
    return "unclassified"


def test_every_readme_command_is_classified():
    commands = readme_commands()
    assert len(commands) >= 20, commands  # the extraction itself still works
    unclassified = [c for c in commands if _classify(c) == "unclassified"]
    assert not unclassified, f"classify these README commands in {Path(__file__).name}: {unclassified}"
    assert sum(_classify(c) == "run" for c in commands) >= 9


RUN = [c for c in readme_commands() if _classify(c) == "run"]
# Not in the tour's bash blocks but named by it (editors' schema, the generated reference).
EXTRA = ["fabplan schema -o schema.json", f"fabplan docs --check --readme {ROOT / 'README.md'} --designs designs"]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "designs").symlink_to(ROOT / "designs", target_is_directory=True)
    (tmp_path / "my_design.yaml").write_text(readme_design())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FABPLAN_DB", str(tmp_path / "lab.sqlite"))
    return tmp_path


@pytest.mark.parametrize("cmd", RUN + EXTRA)
def test_readme_command_runs(cmd, workdir, capsys):
    code = main(shlex.split(cmd)[1:])
    out, err = capsys.readouterr()
    assert code == EXPECTED_EXIT.get(cmd, 0), f"{cmd}\nstdout:\n{out[-2000:]}\nstderr:\n{err[-2000:]}"
    assert "Traceback" not in err
    if "--json" in cmd:
        json.loads(out)
