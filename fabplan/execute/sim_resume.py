"""Resuming a run made against `sim://` emulators: the journal keeps the URLs the user gave.

A `sim://NAME?...` URL starts an in-process emulated lab whose devices listen on loopback ports
chosen at random; the journal's `devices` holds those resolved `xps://127.0.0.1:PORT` addresses, which
are gone when the run's process ends. So a run whose stage was given as sim:// also records the
URLs as given (header `device_urls`), and `fabplan run --resume J` starts equivalent emulators from
them: the same lab parameters, without the injected faults (`xps_fault`, `pharos_fault`: a resume
after a fault is the point), a pulse log of its own beside the first (`F-2.csv`, `-3`, ...: the new
emulators' clock starts at zero again, as `fabplan dry-run --resume` does), and the fresh emulated
stage homed (it starts unreferenced, like a real one after power-up).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

FAULT_PARAMS = ("xps_fault", "pharos_fault")


def is_sim(url: str | None) -> bool:
    return bool(url) and str(url).lower().removeprefix("spy+").startswith("sim://")


def given_urls(stage: str | None, laser: str | None) -> dict[str, str]:
    """The header's `device_urls` for a run started on sim:// URLs ({} for any other devices)."""
    if not is_sim(stage):
        return {}
    return {k: str(v) for k, v in (("stage", stage), ("laser", laser)) if v}


def next_free(path: Path) -> Path:
    """PATH-2, PATH-3, ... beside `path`: the first that does not exist (a resume's own pulse log)."""
    k = 2
    while (cand := path.with_name(f"{path.stem}-{k}{path.suffix}")).exists():
        k += 1
    return cand


def fresh_url(url: str, pulse_logs: dict[str, str]) -> str:
    """The recorded sim:// URL for a resume: faults dropped, a pulse log of its own. `pulse_logs` maps
    each first pulse log to the resume's (so the stage and laser URLs keep naming one lab)."""
    spy = url[:4].lower() == "spy+"
    body = url[4:] if spy else url
    parts = urlsplit(body)
    params = [(k, v) for k, v in parse_qsl(parts.query) if k not in FAULT_PARAMS]
    out = []
    for k, v in params:
        if k == "pulse_log" and v:
            v = pulse_logs.setdefault(v, str(next_free(Path(v))))
        out.append((k, v))
    return (url[:4] if spy else "") + urlunsplit(parts._replace(query=urlencode(out)))


def resume_urls(header: dict) -> tuple[str, str | None] | None:
    """(stage URL, laser URL) for resuming a sim:// run from its journal header; None for other runs."""
    given = header.get("device_urls")
    if not isinstance(given, dict) or not is_sim(given.get("stage")):
        return None
    logs: dict[str, str] = {}
    stage = fresh_url(str(given["stage"]), logs)
    laser = given.get("laser")
    return stage, (fresh_url(str(laser), logs) if is_sim(laser) else laser)
