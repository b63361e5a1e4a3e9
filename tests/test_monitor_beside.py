"""The monitor child beside a run costs the run nothing it can avoid (issue 15, overhead):

- the run binds the monitor's socket and prints the address at once, without waiting for the child
  to import its web stack; a page opened meanwhile waits in the listen queue and is answered;
- at the run's end the run tells the child on its stdin; the child takes its last look at once and
  pushes that final state to every open page (no poll tick, no fixed sleep in the run);
- alerts are for what the run's session adds, measured from the journal's size when the run started
  the child, not from whenever the child first looks;
- $FABPLAN_MONITOR_CPUS keeps the monitor off the run's CPU.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request

import pytest

from fabplan.errors import UserError
from fabplan.monitor.server import monitor_cpus, start_beside
from tests.monitor_http import WebhookReceiver, get
from tests.monitor_journals import write_journal
from tests.waiting import wait_for

pytest.importorskip("uvicorn")


def append(path, rec: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps({**rec, "t": time.time()}) + "\n")


def test_address_answers_before_the_child_is_up(tmp_path):
    p = tmp_path / "run.jsonl"
    write_journal(p, n=120)
    mon = start_beside(p, wait=False)  # what `run --monitor` does: print the address, go on
    try:
        assert mon.url and mon.url.startswith("http://127.0.0.1:")
        status, body = get(mon.url + "api/state")  # queued until the child serves, then answered
        assert status == 200 and json.loads(body)["counts"]["total"] == 120
    finally:
        mon.stop()
    assert mon.proc.returncode == 0


def test_run_end_reaches_open_pages_at_once(tmp_path):
    p = tmp_path / "run.jsonl"
    write_journal(p, n=80)
    log = tmp_path / "run.log"
    mon = start_beside(p, log_file=log)
    events: list[dict] = []
    ended = threading.Event()

    def listen() -> None:
        with urllib.request.urlopen(mon.url + "api/events", timeout=30) as r:
            for line in r:  # until the server ends the stream
                if line.startswith(b"data: "):
                    events.append(json.loads(line[6:]))
        ended.set()

    threading.Thread(target=listen, daemon=True).start()
    try:
        wait_for(lambda: events and events[-1]["state"]["state"] == "running", what="the page's first state")
        append(p, {"k": "end", "status": "completed", "message": "all shots fired"})
    finally:
        mon.stop()  # right after the end record: no poll tick has to come first
    assert mon.proc.returncode == 0
    assert ended.wait(10), "the event stream did not end with the monitor"
    last = events[-1]
    assert last.get("final") is True and last["state"]["state"] == "completed"
    assert not any(e.get("final") for e in events[:-1])
    assert "its last state reached 1 open page(s)" in log.read_text()


def test_alerts_count_from_the_journal_as_the_run_found_it(tmp_path):
    """An old pause and old uncertain shots are not news; a pause written after the run started its
    monitor is, even when the child's first look comes after it."""
    p = tmp_path / "resumed.jsonl"
    write_journal(p, n=60)  # a pause, a failed session, uncertain shots: all before this session
    append(p, {"k": "session", "n": 2, "resume": True, "pid": os.getpid(), "to_fire": 5})
    with WebhookReceiver() as hooks:
        mon = start_beside(p, serve_page=False, notify=[hooks.url()], wait=False)
        append(p, {"k": "event", "what": "pause", "message": "paused by the new session"})  # before the child looks
        try:
            wait_for(lambda: "pause" in hooks.events(), what="the new pause's alert")
        finally:
            mon.stop()
    got = [g[2] for g in hooks.got]
    assert [g["event"] for g in got] == ["pause"], got
    assert "paused by the new session" in got[0]["text"]


def test_monitor_cpus_knob(tmp_path, monkeypatch):
    assert monitor_cpus("") is None and monitor_cpus("0") == {0}
    assert monitor_cpus("0-1") == {0, 1} and monitor_cpus(" 1 , 0") == {0, 1}
    for bad in ("x", "2-1", "-1", "1-"):
        with pytest.raises(UserError, match="FABPLAN_MONITOR_CPUS"):
            monitor_cpus(bad)
    with pytest.raises(UserError, match="this machine has CPUs"):
        monitor_cpus(str(os.cpu_count() + 3))
    p = tmp_path / "run.jsonl"
    write_journal(p, n=20)
    cpu = max(os.sched_getaffinity(0))
    monkeypatch.setenv("FABPLAN_MONITOR_CPUS", str(cpu))
    mon = start_beside(p)
    try:
        assert os.sched_getaffinity(mon.proc.pid) == {cpu}
    finally:
        mon.stop()
    monkeypatch.setenv("FABPLAN_MONITOR_CPUS", "zero")
    with pytest.raises(UserError, match="FABPLAN_MONITOR_CPUS"):
        start_beside(p)  # refused before a child or a socket exists


def test_usual_port_taken_means_any_free_one(tmp_path):
    """`run --monitor` without --monitor-port: the usual port, or any free one when another run's
    monitor holds it; a port asked for explicitly and taken is a user error, not a silent other port."""
    import socket

    from fabplan.monitor.server import DEFAULT_PORT

    p = tmp_path / "run.jsonl"
    write_journal(p, n=20)
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind(("127.0.0.1", DEFAULT_PORT))
        holder.listen(1)
    except OSError:
        pass  # someone else holds it already: the same situation
    try:
        mon = start_beside(p, port=None)
        try:
            assert not mon.url.endswith(f":{DEFAULT_PORT}/")
            assert get(mon.url + "api/state")[0] == 200
        finally:
            mon.stop()
        with pytest.raises(UserError, match=f"--port {DEFAULT_PORT}"):
            start_beside(p, port=DEFAULT_PORT)
    finally:
        holder.close()
