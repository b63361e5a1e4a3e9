"""What the page shows, as JSON (/api/state): one `Monitor` per journal.

Progress in time: remaining = pending shots x the plan's per-shot estimate x (observed / estimated)
so far this session, the ratio measured on the shots this session fired; the plan's estimate alone
when nothing has fired yet. Quality over the last QUALITY_WINDOW fired shots: placement error
|encoder - target| p50/p99 against the position tolerance, laser-reported pulse energy against the
planned one. A run is "stalled" when its last session is still open and no record has arrived for
`stall_s` seconds; "interrupted" when its writer (same host) is gone without an end record.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from fabplan.monitor.follow import FIRED, PENDING, UNCERTAIN, JournalFollower
from fabplan.monitor.layout import Layout, load_layout

QUALITY_WINDOW = 1000
EVENTS_SHOWN = 60
UNCERTAIN_SHOWN = 200
OPEN_STATES = ("starting", "running", "paused")
ROUTINE_EVENTS = {"row_captured"}  # one per fly row: counted, not listed among the events


def _iso(t: float) -> str | None:
    if not math.isfinite(t):
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _f(v: Any, nd: int = 3) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return round(v, nd) if math.isfinite(v) else None


def _pid_alive(pid: Any) -> bool | None:
    """True/False for a pid on this host, None when it cannot be told."""
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return None
    return True


class Monitor:
    """Follows one journal; `update()` reads what is new, `state()` is the page's JSON."""

    def __init__(self, journal: str | os.PathLike, *, stall_s: float = 60.0, window: int = QUALITY_WINDOW):
        self.path = Path(journal)
        self.follower = JournalFollower(self.path)
        self.stall_s = float(stall_s)
        self.window = int(window)
        self.layout: Layout | None = None
        self._layout_for: str | None = None
        self._layout_thread: threading.Thread | None = None
        self._state_cache: tuple | None = None
        self.pause_allowed = False  # set by the web app when it offers the request-pause control
        self._selected: np.ndarray | None = None
        self.lock = threading.RLock()
        self._map_cache: tuple[int, str] | None = None
        self.pause_requested_at = math.nan

    # ------------------------------------------------------------------ reading
    @property
    def model(self):
        return self.follower.model

    def update(self, wait_layout: bool = False, upto: int | None = None) -> int:
        """Read the journal's new bytes (all of them); returns the number of records applied.

        The map's layout (plan + design: seconds for 250,000 discs) loads on a helper thread the first
        time, so counts and the run card are there at once; `wait_layout` waits for it (tests, --json)."""
        with self.lock:
            n = self.follower.poll_all(upto)
            h = self.model.header
            key = None if h is None else str(h.get("run_id", "")) + str(h.get("plan_hash"))
            if key is not None and self._layout_for != key:
                self._layout_for = key
                self.layout = None
                self._layout_thread = threading.Thread(target=self._load_layout, args=(dict(h), key),
                                                       name="monitor-layout", daemon=True)
                self._layout_thread.start()
        if wait_layout and self._layout_thread is not None:
            self._layout_thread.join()
        return n

    def _load_layout(self, header: dict[str, Any], key: str) -> None:
        layout = load_layout(header, self.path)
        with self.lock:
            if self._layout_for == key:
                self.layout = layout
                self._selected = None
                self._map_cache = None
                self.model.version += 1  # the page learns the map is there

    @property
    def layout_loading(self) -> bool:
        return self._layout_thread is not None and self._layout_thread.is_alive()

    def selected(self) -> np.ndarray:
        """Shots in the run's selection (--only/--skip recorded in the header); all without a plan."""
        m = self.model
        if self._selected is None or len(self._selected) != m.n:
            sel = np.ones(m.n, bool)
            spec = (m.header or {}).get("selection") or {}
            if self.layout is not None and spec:
                try:
                    from fabplan.execute.runner import selection_mask

                    sel = selection_mask(self.layout.id_strings(), only=spec.get("only"))
                except Exception:
                    sel = np.ones(m.n, bool)
                skip = spec.get("skip_ids") or []
                if skip:
                    sel &= ~np.isin(self.layout.id_strings(), np.array(skip))
            self._selected = sel
        return self._selected

    def disc_id(self, seq: int) -> str:
        if self.layout is not None and 0 <= seq < self.layout.n:
            return self.layout.id_of(seq)
        return f"#{seq}"

    # ------------------------------------------------------------------ state
    def in_flight(self) -> np.ndarray:
        """Shots whose intent this live session wrote and whose outcome is not written yet: the shot
        (or fly row) being fired now. The journal calls them uncertain, as it must for a run that
        died; while the writer lives they are simply under way (not alarms, not in the uncertain list)."""
        m = self.model
        live = m.status() in ("starting", "running")
        if not live or not m.sessions:
            return np.zeros(m.n, bool)
        session = m.sessions[-1]
        if session.get("pid") is not None and (m.header or {}).get("host") == socket.gethostname() \
                and _pid_alive(session.get("pid")) is False:
            return np.zeros(m.n, bool)
        mask = (m.state == UNCERTAIN) & (m.off_intent >= int(session.get("_off", 0)))
        if m.declared_uncertain:
            d = np.fromiter(m.declared_uncertain, np.int64)
            mask[d[(d >= 0) & (d < m.n)]] = False
        return mask

    def counts(self, in_flight: np.ndarray | None = None) -> dict[str, int]:
        m = self.model
        sel = self.selected()
        skipped = ~sel
        if m.skipped:
            sk = np.fromiter(m.skipped, np.int64)
            skipped = skipped.copy()
            skipped[sk[(sk >= 0) & (sk < m.n)]] = True
        st = m.state
        fl = self.in_flight() if in_flight is None else in_flight
        n_fl = int(fl.sum())
        return {
            "total": m.n,
            "fired": int((st == FIRED).sum()),
            "uncertain": int((st == UNCERTAIN).sum()) - n_fl,
            "pending": int(((st == PENDING) & ~skipped).sum()) + n_fl,
            "skipped": int(((st == PENDING) & skipped).sum()),
            "in_flight": n_fl,
            "not_fired": int(sum(1 for s in m.not_fired if st[s] == PENDING)),
            "double_fired": int((m.fire_count > 1).sum()),
        }

    def run_status(self, now: float) -> dict[str, Any]:
        m = self.model
        h = m.header or {}
        status = m.status()
        age = now - m.last_t if math.isfinite(m.last_t) else math.nan
        writer = None
        session = m.sessions[-1] if m.sessions else h
        if status in OPEN_STATES and session.get("pid") is not None and (h.get("host") == socket.gethostname()):
            writer = _pid_alive(session.get("pid"))
        if status in OPEN_STATES and writer is False:
            status = "interrupted"  # the process died without its end record
        stalled = status in ("starting", "running") and math.isfinite(age) and age > self.stall_s
        return {"state": status, "last_record_age_s": _f(age, 1), "stalled": bool(stalled),
                "stall_after_s": self.stall_s, "writer_alive": writer}

    def progress(self, counts: dict[str, int], now: float) -> dict[str, Any]:
        m = self.model
        h = m.header or {}
        est_total = _f(h.get("estimate_s"))
        if est_total is None and self.layout is not None:
            est_total = _f(self.layout.estimate_s)
        per_shot = est_total / m.n if (est_total and m.n) else None
        session_est = (m.sessions[-1].get("estimate") or {}) if m.sessions else {}
        if _f(session_est.get("total_s")) and _f(session_est.get("n_shots")):
            # this session's own estimate (its selection, what a resume has left, the approach move)
            per_shot = float(session_est["total_s"]) / float(session_est["n_shots"])
        ratio = None
        rate = None
        session_fired = 0
        if m.sessions:
            t0 = float(m.sessions[-1].get("t") or math.nan)
            session_fired = int((m.off_fired >= int(m.sessions[-1].get("_off", 0))).sum())
            if session_fired:
                elapsed = m.last_t - t0
                if elapsed > 0:
                    rate = session_fired / elapsed
                    if per_shot:
                        ratio = elapsed / (session_fired * per_shot)
        todo = counts["pending"]
        remaining = None
        if per_shot is not None:
            remaining = todo * per_shot * (ratio if ratio is not None else 1.0)
        done = counts["fired"]
        selectable = counts["total"] - counts["skipped"]
        return {"estimate_s": est_total, "session_estimate_s": _f(session_est.get("total_s"), 1),
                "per_shot_estimate_s": _f(per_shot, 6),
                "observed_over_estimated": _f(ratio, 3), "remaining_s": _f(remaining, 1),
                "shots_per_s": _f(rate, 2), "fired_this_session": session_fired,
                "fraction_done": _f(done / selectable if selectable else 0.0, 4),
                "eta": _iso(now + remaining) if remaining is not None and m.status() == "running" else None}

    def quality(self, now: float) -> dict[str, Any]:
        m = self.model
        h = m.header or {}
        tol_um = _f(h.get("position_tolerance_um"), 6)
        fired = m.fired_seqs()
        fired = fired[m.state[fired] == FIRED] if len(fired) else fired
        recent = fired[-self.window:]
        self.follower.fill(recent)  # their numbers, parsed now from their lines
        out: dict[str, Any] = {"window": int(len(recent)), "tolerance_nm": tol_um * 1e3 if tol_um else None}
        err = m.error_um(recent) * 1e3 if len(recent) else np.empty(0)
        err = err[np.isfinite(err)]
        if len(err):
            out["error_p50_nm"] = _f(np.percentile(err, 50), 1)
            out["error_p99_nm"] = _f(np.percentile(err, 99), 1)
            out["error_max_nm"] = _f(err.max(), 1)
            if tol_um:
                out["out_of_tolerance_in_window"] = int((err > tol_um * 1e3).sum())
        e, p = m.energy[recent], m.planned_e[recent]
        ok = np.isfinite(e) & np.isfinite(p) & (p > 0)
        if ok.any():
            rel = (e[ok] - p[ok]) / p[ok] * 100.0
            out["energy_dev_p50_percent"] = _f(np.percentile(rel, 50), 2)
            out["energy_dev_max_percent"] = _f(rel[np.argmax(np.abs(rel))], 2)
            out["energy_last_uj"] = _f(e[ok][-1], 4)
            out["energy_planned_last_uj"] = _f(p[ok][-1], 4)
        out["rows_out_of_tolerance"] = int(m.n_events.get("row_out_of_tolerance", 0))
        # The executor journals "interlock" records (records.py): the age comes from them. A journal
        # written before they existed falls back on the last confirmed shot (the laser confirms pulses
        # only through a closed interlock).
        t_ok = m.interlock_closed_t
        out["interlock_source"] = "interlock records" if m.interlock_open is not None else None
        out["interlock_open"] = m.interlock_open
        if m.interlock_open is None and len(fired):
            t_last = m.t_fired[fired[-64:]]
            if np.isfinite(t_last).any():
                t_ok = float(np.nanmax(t_last))
                out["interlock_source"] = "last confirmed shot"
        out["interlock_closed_age_s"] = _f(now - t_ok, 1) if math.isfinite(t_ok) else None
        return out

    def events(self) -> list[dict[str, Any]]:
        out = []
        shown = [ev for ev in self.model.events if ev.get("what") not in ROUTINE_EVENTS]
        for ev in shown[-EVENTS_SHOWN:]:
            k = ev.get("k")
            what = ev.get("what") or k
            msg = ev.get("message") or ev.get("reason") or ""
            if k == "session":
                msg = ("resumed" if ev.get("resume") else "started") + f", {ev.get('to_fire', '?')} shot(s) to fire"
            elif k == "end":
                msg = f"{ev.get('status')}: {ev.get('message', '')}"
                what = f"end ({ev.get('status')})"
            elif k in ("unconfirmed", "uncertain", "skip"):
                msg = f"{len(ev.get('seqs') or [])} shot(s): {msg}"
            elif k == "not_fired":
                msg = f"{self.disc_id(int(ev.get('seq', -1)))}: {msg}"
            elif what == "row_out_of_tolerance":
                msg = (f"row {ev.get('line')}: {ev.get('n_out_of_tolerance', 0)} shot(s) beyond "
                       f"{ev.get('tolerance_nm', 0):.0f} nm, worst {ev.get('worst_error_nm') or 0:.0f} nm")
            level = "error" if (k == "end" and ev.get("status") == "failed") or what in ("error", "fault") else (
                "warn" if k in ("unconfirmed", "uncertain", "not_fired") or what in ("pause", "row_out_of_tolerance")
                or (k == "end" and ev.get("status") != "completed") else "info")
            out.append({"t": _iso(float(ev.get("t") or math.nan)), "what": what, "message": str(msg)[:500],
                        "level": level})
        return out

    def resume_command(self, status: str, counts: dict[str, int]) -> dict[str, str] | None:
        if status in ("completed", "starting", "running") and not (status == "completed" and counts["uncertain"]):
            return None
        h = self.model.header or {}
        j = _quote(str(self.path))
        cmd = f"fabplan {'dry-run' if h.get('dry_run') else 'run'} --resume {j}"
        out = {"command": cmd}
        if h.get("dry_run"):
            out["note"] = (f"fresh emulators carry the dry run on; `fabplan run --resume {j} --stage URL "
                           "--laser URL` runs the rest on devices")
        if counts["uncertain"]:
            out["refire_command"] = cmd + " --refire-uncertain"
        return out

    def state(self, now: float | None = None, max_age_s: float = 0.0) -> dict[str, Any]:
        """The page's JSON (the map is served separately). With `max_age_s`, a state computed less
        than that long ago for the same journal version is reused: every open page and the webhooks
        share one computation per second, however fast the run writes."""
        if now is not None or max_age_s <= 0:
            return self._state(now)
        key = (self.model.version, self.pause_requested_at, self.layout is not None)
        t = time.monotonic()
        cached = self._state_cache
        if cached is not None and cached[0] == key and t - cached[1] < max_age_s:
            return cached[2]
        st = self._state(None)
        self._state_cache = (key, t, st)
        return st

    def _state(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        with self.lock:
            m = self.model
            h = m.header or {}
            if m.header is None:
                return {"journal": str(self.path), "state": {"state": "waiting", "stalled": False},
                        "error": self.follower.error, "version": m.version}
            flying = self.in_flight()
            counts = self.counts(flying)
            run = self.run_status(now)
            unc = np.flatnonzero((m.state == UNCERTAIN) & ~flying)
            cur = m.last_seq
            position = None
            if cur >= 0:
                if self.layout is not None:
                    position = {"seq": cur, "id": self.disc_id(cur), "x": _f(self.layout.x[cur], 2),
                                "y": _f(self.layout.y[cur], 2)}
                else:
                    position = {"seq": cur, "id": self.disc_id(cur)}
            card = {
                "design": h.get("design_name"), "design_file": h.get("design_file"), "plan_hash": h.get("plan_hash"),
                "run_id": h.get("run_id"), "user": h.get("user"), "host": h.get("host"), "mode": h.get("mode"),
                "dry_run": bool(h.get("dry_run")), "started": h.get("started"), "sessions": len(m.sessions),
                "journal": str(self.path), "devices": {k: v for k, v in (h.get("devices") or {}).items()
                                                       if k in ("stage", "laser")},
            }
            return {
                "version": m.version, "now": _iso(now), "card": card, "state": run, "counts": counts,
                "progress": self.progress(counts, now), "quality": self.quality(now), "events": self.events(),
                "uncertain": {"n": int(len(unc)), "ids": [self.disc_id(int(s)) for s in unc[:UNCERTAIN_SHOWN]]},
                "resume": self.resume_command(run["state"], counts), "position": position,
                "map": {"available": self.layout is not None, "loading": self.layout_loading, "version": m.version},
                "journal": {"bytes": self.follower.offset, "records": m.records, "bad_lines": m.bad_lines,
                            "error": self.follower.error},
                "pause_requested": _iso(self.pause_requested_at), "pause_allowed": self.pause_allowed,
            }

    # ------------------------------------------------------------------ map and discs
    def map_static(self) -> dict[str, Any] | None:
        with self.lock:
            return self.layout.to_json() if self.layout is not None else None

    def map_state(self) -> dict[str, Any] | None:
        with self.lock:
            if self.layout is None:
                return None
            m = self.model
            if self._map_cache is None or self._map_cache[0] != m.version:
                nf = np.zeros(m.n, bool)
                if m.not_fired:
                    nf[np.fromiter(m.not_fired, np.int64)] = True
                sk = np.zeros(m.n, bool)
                if m.skipped:
                    sk[np.fromiter(m.skipped, np.int64)] = True
                st = m.state.copy()
                st[self.in_flight()] = PENDING  # under way: the current-position ring marks it
                code = self.layout.codes(st, self.selected(), sk, nf)
                self._map_cache = (m.version, self.layout.map_bytes(code))
            return {"version": m.version, "mode": "bins" if self.layout.binned else "discs",
                    "codes": self._map_cache[1]}

    def find_disc(self, *, seq: int | None = None, disc_id: str | None = None, x: float | None = None,
                  y: float | None = None) -> int | None:
        with self.lock:
            m = self.model
            if seq is not None:
                return seq if 0 <= seq < m.n else None
            if disc_id is not None and self.layout is not None:
                return self.layout.seq_of(disc_id)
            if x is not None and y is not None and self.layout is not None:
                return self.layout.nearest(x, y)
            return None

    def disc(self, seq: int) -> dict[str, Any]:
        """One disc's state and its journal records (read back from the file by offset)."""
        with self.lock:
            m = self.model
            self.follower.fill(np.array([seq]))
            names = {PENDING: "pending", UNCERTAIN: "uncertain", FIRED: "fired"}
            err = m.error_um(np.array([seq]))[0] * 1e3
            out = {
                "seq": seq, "id": self.disc_id(seq), "state": names[int(m.state[seq])],
                "target_um": [_f(v, 4) for v in m.target[seq]], "encoder_um": [_f(v, 4) for v in m.encoder[seq]],
                "error_nm": _f(err, 1), "energy_uj": _f(m.energy[seq], 6), "planned_energy_uj": _f(m.planned_e[seq], 6),
                "intent_t": _iso(float(m.t_intent[seq])), "fired_t": _iso(float(m.t_fired[seq])),
                "intents": int(m.intent_count[seq]), "fired_records": int(m.fire_count[seq]),
                "not_fired_reason": m.not_fired.get(seq),
            }
            if self.layout is not None:
                out["map_xy_um"] = [_f(self.layout.x[seq], 2), _f(self.layout.y[seq], 2)]
                if self.layout.planned_e is not None and out["planned_energy_uj"] is None:
                    out["planned_energy_uj"] = _f(self.layout.planned_e[seq], 6)
            offs = (int(m.off_intent[seq]), int(m.off_fired[seq]))
        out["records"] = [r for r in (self.follower.read_line(o) for o in offs if o >= 0) if r is not None]
        return out


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)
