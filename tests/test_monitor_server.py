"""The monitor served for real (uvicorn in a child process, as beside a run): JSON API, server-sent
events, token, request pause through the journal's request file, and webhook alerts received by a
local HTTP server (the standard library's, an independent receiver)."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from fabplan.execute.journal import Journal
from fabplan.monitor.pause import request_file
from fabplan.monitor.server import is_loopback, start_beside
from tests.monitor_http import WebhookReceiver, get
from tests.monitor_journals import write_journal
from tests.waiting import wait_for

pytest.importorskip("uvicorn")


@pytest.fixture
def journal(tmp_path):
    p = tmp_path / "run.jsonl"
    write_journal(p, n=200)
    return p


def test_api_state_disc_events_and_pause(journal):
    mon = start_beside(journal)
    try:
        base = mon.url
        status, body = get(base + "api/state")
        st = json.loads(body)
        assert status == 200 and st["counts"]["total"] == 200 and st["state"]["state"] == "running"
        status, body = get(base)
        assert status == 200 and b"fabplan monitor" in body and b"<canvas" in body
        status, body = get(base + "api/disc?seq=3")
        d = json.loads(body)
        assert d["state"] == "fired" and [r["k"] for r in d["records"]] == ["intent", "fired"]
        assert d["records"][0]["seq"] == 3 and d["error_nm"] is not None
        assert get(base + "api/disc?seq=99999")[0] == 404 and get(base + "api/disc?x=nan&y=1")[0] == 400
        # server-sent events: the first event carries the same state
        with urllib.request.urlopen(base + "api/events", timeout=10) as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            lines = []
            while not any(ln.startswith(b"data: ") for ln in lines):
                lines.append(r.readline())
        ev = json.loads([ln for ln in lines if ln.startswith(b"data: ")][0][6:])
        assert ev["counts"] == st["counts"]
        # request pause: refused without the confirmation header, then the file the run's session polls
        assert get(base + "api/pause", data=b"{}")[0] == 400 and not request_file(journal).exists()
        status, body = get(base + "api/pause", data=b"{}", headers={"X-Fabplan-Confirm": "pause"})
        assert status == 200 and json.loads(body)["ok"]
        assert "monitor page" in json.loads(request_file(journal).read_text())["reason"]
        assert json.loads(get(base + "api/state")[1])["pause_requested"]
    finally:
        mon.stop()
    assert mon.proc.returncode is not None


def test_token_required_when_set(journal):
    mon = start_beside(journal, token="s3cret-token")
    try:
        assert get(mon.url + "api/state")[0] == 401
        assert get(mon.url + "api/state?token=wrong")[0] == 401
        assert get(mon.url + "api/state", token="s3cret-token")[0] == 200
        assert get(mon.url + "api/state?token=s3cret-token")[0] == 200
        assert get(mon.url)[0] == 200  # the page itself asks for the token
    finally:
        mon.stop()


def test_request_file_is_the_one_the_session_polls(tmp_path):
    from types import SimpleNamespace

    from fabplan.execute.session import RunSession

    j = tmp_path / "x.jsonl"
    assert RunSession.pause_file.fget(SimpleNamespace(journal_path=j)) == request_file(j)


def test_loopback_rule():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.0.10")


def test_pause_request_refused_when_the_run_is_over(tmp_path):
    p = tmp_path / "done.jsonl"
    write_journal(p, n=50)
    with open(p, "a") as fh:
        fh.write(json.dumps({"k": "end", "status": "completed", "message": "", "t": time.time()}) + "\n")
    mon = start_beside(p)
    try:
        status, body = get(mon.url + "api/pause", data=b"{}", headers={"X-Fabplan-Confirm": "pause"})
        assert status == 409 and "completed" in json.loads(body)["error"]
        assert not request_file(p).exists()
    finally:
        mon.stop()


def test_webhooks_on_pause_stall_uncertain_failure(tmp_path):
    p = tmp_path / "live.jsonl"
    from tests.monitor_journals import _header

    j = Journal.create(p, {**_header(20), "host": "elsewhere"}, sync="none")
    j.write({"k": "session", "n": 0, "resume": False, "pid": 1, "to_fire": 20})
    j.intent(0, "A-r00c00", 0.0, 0.0, 0.0, 0.5, 1)
    j.fired(0, 0.0, 0.0, 0.0, 0.5)
    j.flush(durable=False)
    with WebhookReceiver() as hooks:
        mon = start_beside(p, serve_page=False, notify=[hooks.url("/hooks/SECRET")], stall_s=1.0,
                           log_file=tmp_path / "mon.log")
        try:
            wait_for(lambda: "stall" in hooks.events(), what="the stall alert")  # nothing written for > 1 s
            j.write({"k": "event", "what": "pause", "message": "interrupted (Ctrl+C)"})
            wait_for(lambda: "pause" in hooks.events(), what="the pause alert")
            j.write({"k": "event", "what": "resume"})
            j.write({"k": "unconfirmed", "seqs": [0], "reason": "laser interlock found open"})
            wait_for(lambda: "uncertain" in hooks.events(), what="the first-uncertain alert")
            j.write({"k": "end", "status": "failed", "message": "XPS: connection dropped"})
            j.close()
            wait_for(lambda: "failure" in hooks.events(), what="the failure alert")
        finally:
            mon.stop()
    by = {g[2]["event"]: g for g in hooks.got}
    path, ctype, msg = by["failure"]
    assert path == "/hooks/SECRET" and ctype == "application/json"
    assert "connection dropped" in msg["text"] and msg["run_id"] == "r1" and msg["counts"]["uncertain"] == 1
    assert "resume_command" in msg
    assert hooks.events().count("uncertain") == 1  # the first uncertain shot only
    log = (tmp_path / "mon.log").read_text()
    assert "SECRET" not in log  # webhook URLs are secrets: the log names the host only


def test_cli_json_and_refusals(journal, tmp_path, capsys):
    from fabplan.cli import main

    assert main(["monitor", str(journal), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["counts"]["total"] == 200 and st["card"]["run_id"] == "r1"
    assert main(["monitor", str(tmp_path / "none.jsonl"), "--json"]) == 2
    assert "no such journal" in capsys.readouterr().err
    assert main(["monitor", str(journal), "--notify", "ftp://x/y"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "http://" in err
    # run/dry-run refuse a bad webhook before anything is planned or moved
    design = str(Path(__file__).resolve().parents[1] / "designs" / "hex_sweep.yaml")
    assert main(["dry-run", design, "--notify", "nope", "--journal", str(tmp_path / "j.jsonl")]) == 2
    assert not (tmp_path / "j.jsonl").exists()


def test_dry_run_notify_posts_the_failure(tmp_path, capsys):
    """`fabplan dry-run --notify URL` with a dropped controller connection: the webhook hears the
    failure (the notifier's last look at the journal comes after the run's end record)."""
    from fabplan.cli import main
    from tests.exec_designs import lattice_design

    d = tmp_path / "d.yaml"
    d.write_text(lattice_design("notify-test", "N", 3, 8))
    with WebhookReceiver() as hooks:
        rc = main(["dry-run", str(d), "--journal", str(tmp_path / "j.jsonl"), "--json", "--notify", hooks.url(),
                   "--fault", "xps=drop@GroupMoveAbsolute#10"])
        assert rc == 1
        wait_for(lambda: "failure" in hooks.events(), what="the failure webhook")
    msg = next(g[2] for g in hooks.got if g[2]["event"] == "failure")
    assert "FAILED" in msg["text"] and msg["design"] == "notify-test"
    assert msg["resume_command"].startswith("fabplan dry-run --resume ")  # a dry run goes on on fresh emulators
