"""Samples, designs, fabrication runs and discs in the logbook (who a measurement belongs to).

A disc row is *known* when a registered design or an imported fabrication journal names it; a
measurement on any other id is refused unless the caller allows unknown ids (then the row is kept
with known=0 so it can be reconciled later).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sqlite3
from pathlib import Path

import numpy as np

from fabplan.disctable import parse_id
from fabplan.errors import UserError, summarize_ids
from fabplan.lab.db import sample_id, transaction
from fabplan.planning.plan import design_hash

log = logging.getLogger(__name__)


def register_design(con: sqlite3.Connection, path: str | os.PathLike, sample: str = "default") -> dict:
    """Store the design (hash + YAML text) and upsert every designed disc for `sample`.

    Discs specified by fluence get the beam model's predicted diameter (fabplan.beam), so the WGM
    prediction of their mode spacing is available too; a run imported earlier is linked by hash.
    """
    from fabplan.design import expand, load_design

    design = load_design(path)
    text = design.source_text or Path(path).read_text(encoding="utf-8")
    discs = expand(design)
    from fabplan.beam import expected_diameters

    diameter = expected_diameters(design, discs)  # fluence-specified discs: the beam model's prediction
    h = design_hash(text)
    with transaction(con, "add-design", design=str(path), sample=sample):
        sid = sample_id(con, sample)
        row = con.execute("SELECT id FROM designs WHERE hash=?", (h,)).fetchone()
        did = (
            int(row[0])
            if row
            else con.insert_id(
                "INSERT INTO designs(hash, name, yaml, film_thickness_nm) VALUES (?,?,?,?)",
                (h, design.name, text, _film_thickness(design)),
            )
        )
        arrays = np.asarray(discs.array_ids, dtype=object)[discs.array_index] if len(discs) else []
        rows = [
            (sid, str(i), str(a), did, _f(d), _f(fl), int(p), _f(x), _f(y))
            for i, a, d, fl, p, x, y in zip(
                discs.ids,
                arrays,
                diameter,
                discs.fluence_mj_cm2,
                discs.pulses,
                discs.x_um,
                discs.y_um,
                strict=False,
            )
        ]
        con.executemany(
            """INSERT INTO discs(sample_id, disc_id, array_id, design_id, diameter_um, fluence_mj_cm2,
                                 pulses, x_um, y_um, known) VALUES (?,?,?,?,?,?,?,?,?,1)
               ON CONFLICT(sample_id, disc_id) DO UPDATE SET array_id=excluded.array_id,
                 design_id=excluded.design_id, diameter_um=excluded.diameter_um,
                 fluence_mj_cm2=excluded.fluence_mj_cm2, pulses=excluded.pulses,
                 x_um=excluded.x_um, y_um=excluded.y_um, known=1""",
            rows,
        )
        unlinked = con.execute("SELECT id, header_json FROM runs WHERE design_id IS NULL").fetchall()
        con.executemany(  # runs imported before their design (header_json is text on every backend)
            "UPDATE runs SET design_id=? WHERE id=?",
            [(did, r[0]) for r in unlinked if json.loads(r[1] or "{}").get("design_hash") == h],
        )
    return {"design_id": did, "hash": h, "name": design.name, "discs": len(rows), "sample": sample}


def _film_thickness(design) -> float | None:
    try:
        return float(design.sample.film.thickness)
    except (AttributeError, TypeError, ValueError):
        return None


def _f(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


# ---- fabrication journal ------------------------------------------------------------------------


def read_journal_shots(path: Path) -> tuple[dict, dict[str, dict]]:
    """An executor journal -> (header, {disc_id: shot}) for its fired and uncertain shots.

    Everything comes from the executor's one reader (`fabplan.execute.journal.read_journal`: shot
    states with the horizon, unconfirmed and boot-id rules, disc ids, positions and energies from
    the intents); sample positions and predicted diameters from the saved plan (header plan_dir)
    when it is at hand, which also names horizon shots that never got an intent."""
    from fabplan.execute.journal import read_journal
    from fabplan.execute.records import FIRED, UNCERTAIN

    try:
        st = read_journal(path)
    except (ValueError, KeyError, IndexError) as exc:
        raise UserError(f"{path}: cannot read journal ({exc})") from None
    wanted = np.flatnonzero((st.state == FIRED) | (st.state == UNCERTAIN))
    plan = _plan_info(st.header)
    shots: dict[str, dict] = {}
    for q in wanted.tolist():
        pinfo = plan.get(q)
        disc_id = st.disc_id[q] or (pinfo[0] if pinfo else None)
        if not disc_id:
            continue
        e = st.pulse_energy_uj[q] if np.isfinite(st.pulse_energy_uj[q]) else st.planned_pulse_energy_uj[q]
        shots[disc_id] = {
            "disc_id": disc_id,
            "state": "fired" if st.state[q] == FIRED else "uncertain",
            # Sample coordinates from the plan when it is at hand; else the journal's stage position.
            "x_um": pinfo[2] if pinfo else _f(st.target_um[q, 0]),
            "y_um": pinfo[3] if pinfo else _f(st.target_um[q, 1]),
            "diameter_um": pinfo[1] if pinfo else None,
            "energy_uj": _f(e),
            "pulses": int(st.pulses[q]) if st.pulses[q] else None,
        }
    return st.header, shots


def _plan_info(header: dict) -> dict[int, tuple[str, float | None, float | None, float | None]]:
    """seq -> (disc id, predicted diameter, sample x, sample y) from the saved plan named in the
    journal header; empty when the plan is not at hand (it is optional context here). A plan that is
    there but cannot be read is said out loud: the import then falls back to stage coordinates."""
    plan_dir = header.get("plan_dir")
    if not plan_dir or not Path(plan_dir).is_dir():
        return {}
    from fabplan.planning import Plan

    try:
        sh = Plan.load(plan_dir).shots
    except (UserError, OSError, ValueError, KeyError) as exc:
        log.warning("plan %s beside the journal cannot be read (%s): discs keep the journal's stage "
                    "coordinates and no predicted diameter", plan_dir, exc)
        return {}
    return {
        int(q): (str(d), _f(dm), _f(x), _f(y))
        for q, d, dm, x, y in zip(
            sh.seq, sh.disc_id, sh.diameter_um, sh.sample_x_um, sh.sample_y_um, strict=True
        )
    }


def import_journal(
    con: sqlite3.Connection, path: str | os.PathLike, sample: str = "default", if_new: bool = False
) -> dict:
    """Record a fabrication run and mark its fired (and uncertain) discs as known, linked to the run.

    Importing the same journal bytes twice is refused (journal_sha256 is unique), or with `if_new`
    a no-op returning {"already_imported": True}.
    """
    p = Path(path)
    if not p.is_file():  # a run's <journal>.plan/ folder sits next to it: say which file is wanted
        what = "is a folder, not a journal (.jsonl)" if p.is_dir() else "journal not found"
        raise UserError(f"{p}: {what}")
    sha = hashlib.sha256(p.read_bytes()).hexdigest()
    header, shots = read_journal_shots(p)
    bad = [d for d in shots if not _valid_id(d)]
    if bad:
        raise UserError(f"{p}: malformed disc ids: {summarize_ids(bad)}")
    fab = [s for s in shots.values() if s["state"] in ("fired", "uncertain")]
    with transaction(con, "import-journal", journal=str(p), sample=sample):
        prev = con.execute("SELECT id FROM runs WHERE journal_sha256=?", (sha,)).fetchone()
        if prev and if_new:
            return {"run_id": int(prev[0]), "already_imported": True}
        if prev:
            raise UserError(f"{p}: this journal is already imported (run {prev[0]})")
        sid = sample_id(con, sample)
        drow = con.execute("SELECT id FROM designs WHERE hash=?", (header.get("design_hash", ""),)).fetchone()
        did = int(drow[0]) if drow else None
        run = con.insert_id(
            """INSERT INTO runs(sample_id, design_id, plan_hash, journal_path, journal_sha256, started,
                                header_json, n_fired) VALUES (?,?,?,?,?,?,?,?)""",
            (
                sid,
                did,
                header.get("plan_hash"),
                str(p.resolve()),
                sha,
                header.get("started"),
                json.dumps(header, sort_keys=True),
                sum(s["state"] == "fired" for s in fab),
            ),
        )
        con.executemany(
            """INSERT INTO discs(sample_id, disc_id, array_id, run_id, design_id, pulses, x_um, y_um,
                                 fab_state, energy_uj, diameter_um, known) VALUES (?,?,?,?,?,?,?,?,?,?,?,1)
               ON CONFLICT(sample_id, disc_id) DO UPDATE SET run_id=excluded.run_id,
                 design_id=COALESCE(discs.design_id, excluded.design_id),
                 pulses=COALESCE(discs.pulses, excluded.pulses), x_um=COALESCE(discs.x_um, excluded.x_um),
                 y_um=COALESCE(discs.y_um, excluded.y_um), fab_state=excluded.fab_state,
                 energy_uj=excluded.energy_uj, diameter_um=COALESCE(discs.diameter_um, excluded.diameter_um),
                 known=1""",
            [
                (
                    sid,
                    s["disc_id"],
                    parse_id(s["disc_id"])[0],
                    run,
                    did,
                    s.get("pulses"),
                    s.get("x_um"),
                    s.get("y_um"),
                    s["state"],
                    s.get("energy_uj"),
                    s.get("diameter_um"),
                )
                for s in fab
            ],
        )
    return {
        "run_id": run,
        "plan_hash": header.get("plan_hash"),
        "fired": sum(s["state"] == "fired" for s in fab),
        "uncertain": sum(s["state"] == "uncertain" for s in fab),
        "design_linked": did is not None,
    }


def _valid_id(disc_id: str) -> bool:
    try:
        parse_id(disc_id)
    except ValueError:
        return False
    return True


def resolve_discs(
    con: sqlite3.Connection,
    sample: str,
    disc_ids: list[str],
    allow_unknown: bool,
    where: list[str] | None = None,
) -> dict[str, int]:
    """Disc primary keys for these ids; unknown ids raise unless allow_unknown (then inserted).

    `where` gives a location ("file:line") per id for error messages.
    """
    from fabplan.errors import Problem, ProblemsError

    problems = []
    valid = {d: _valid_id(d) for d in dict.fromkeys(disc_ids)}  # a manifest names each disc ~20 times
    for k, d in enumerate(disc_ids):
        if not valid[d]:
            problems.append(
                Problem(
                    f"malformed disc id {d!r} (expected <array>-r<row>c<col>)",
                    file=(where[k] if where else None),
                )
            )
    if problems:
        raise ProblemsError(problems)
    sid = sample_id(con, sample)
    known = {
        r[0]: (int(r[1]), int(r[2]))
        for r in con.execute("SELECT disc_id, id, known FROM discs WHERE sample_id=?", (sid,))
    }
    out: dict[str, int] = {}
    missing = []
    for d in dict.fromkeys(disc_ids):
        if d in known and (known[d][1] or allow_unknown):
            out[d] = known[d][0]
        elif allow_unknown:
            out[d] = con.insert_id(
                "INSERT INTO discs(sample_id, disc_id, array_id, known) VALUES (?,?,?,0)",
                (sid, d, parse_id(d)[0]),
            )
        else:
            missing.append(d)
    if missing:
        n_known = sum(1 for v in known.values() if v[1])
        hint = (
            f"sample {sample!r} has {n_known} known discs"
            if n_known
            else f"sample {sample!r} has no registered design or fabrication run "
            "(lab add-design / lab import-journal)"
        )
        first = where[disc_ids.index(missing[0])] + ": " if where else ""
        raise UserError(
            f"{first}unknown disc ids {summarize_ids(missing)}: {hint}; "
            "pass --allow-unknown to record them anyway"
        )
    return out
