"""Journals for the monitor tests, written by the executor's own `Journal` writer."""

from __future__ import annotations

import numpy as np

from fabplan.execute.journal import Journal


def _header(n: int, **extra) -> dict:
    return {"run_id": "r1", "plan_hash": "p" * 64, "design_hash": "d", "design_name": "t", "mode": "step",
            "n_shots": n, "devices": {"stage": "sim://xps", "laser": "sim://pharos"}, "estimate_s": n * 0.1,
            "position_tolerance_um": 0.1, "host": "elsewhere", "pid": 1, "user": "u", **extra}


def write_journal(path, n: int = 300, seed: int = 1) -> None:
    """A journal with every record kind: two sessions, fired, not_fired, unconfirmed, uncertain, skip,
    events, a shot re-fired in a later session, and an unfinished intent (uncertain)."""
    rng = np.random.default_rng(seed)
    j = Journal.create(path, _header(n), sync="none")
    j.write({"k": "session", "n": 0, "resume": False, "pid": 1, "to_fire": n})
    for s in range(0, n // 2):
        j.intent(s, f"A-r00c{s:03d}", s * 20.0, 0.0, 1.0, 0.5, 1)
        if s == 17:
            j.not_fired(s, "NotInPosition: 300 nm off")
            continue
        j.fired(s, s * 20.0 + rng.normal(0, 0.01), rng.normal(0, 0.01), 1.0, 0.5 * (1 + rng.normal(0, 0.01)))
        if s == 40:
            j.flush(durable=False)
            j.write({"k": "event", "what": "pause", "message": "Ctrl+C"})
            j.write({"k": "event", "what": "resume"})
    j.intent(n // 2, "A-r00cX", 1.0, 2.0, 3.0, 0.5, 1)  # no confirmation: uncertain
    j.flush(durable=False)
    j.write({"k": "unconfirmed", "seqs": [n // 3, n // 3 + 1], "reason": "interlock open"})
    j.write({"k": "end", "status": "failed", "message": "XPS dropped the connection"})
    j.write({"k": "session", "n": 1, "resume": True, "pid": 1, "to_fire": n // 2})
    j.write({"k": "uncertain", "seqs": [n - 1], "reason": "horizon"})
    j.write({"k": "skip", "seqs": [n // 3, n // 3 + 1, n // 2], "reason": "uncertain"})
    for s in list(range(n // 2 + 1, n - 10)) + [17]:
        j.intent(s, f"A-r01c{s:03d}", s * 20.0, 20.0, 1.0, 0.5, 1)
        j.fired(s, s * 20.0, 20.0, None, None)
    j.flush(durable=False)
    j.close()
