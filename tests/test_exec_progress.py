"""Progress: quiet (a line per 10 %) when not a terminal; nothing at all when disabled."""

from __future__ import annotations

import io

from fabplan.execute.progress import Progress


def test_quiet_progress_prints_deciles_only():
    out = io.StringIO()
    with Progress(1000, "step", stream=out, live=False) as p:
        for i in range(1, 1001):
            p.update(i, f"A-r00c{i:04d}")
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and lines[-1].startswith("step: 1000/1000 shots (100 %)")


def test_disabled_progress_is_silent():
    out = io.StringIO()
    with Progress(10, "fly", stream=out, enabled=False) as p:
        p.update(10, "x")
        p.message("hello")
    assert out.getvalue() == ""


def test_live_progress_renders(monkeypatch):
    out = io.StringIO()
    with Progress(50, "step", stream=out, live=True) as p:
        for i in range(50):
            p.update(i + 1, "A-r00c01")
    assert "50/50" in out.getvalue()
