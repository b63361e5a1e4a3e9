"""The logbook and the run's files as pandas DataFrames (needs the `data` extra: pandas).

    from fabplan.lab import Logbook
    with Logbook("postgresql://ana@labdb/logbook") as lb:   # or a file path, or None: $FABPLAN_DB
        discs = lb.discs(status="lasing")          # one row per disc (latest series, its fits)
        fits = lb.fits()                           # one row per series and fit method
        sp = lb.spectra("A-r03c07")                # one row per spectrum: wavelength_nm, counts arrays

    from fabplan.lab.dataframes import plan_frame, journal_frame, pulse_log_frame
    plan_frame("run/plan"); journal_frame("run/journal.jsonl"); pulse_log_frame("run/pulses.csv")
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from fabplan.errors import UserError
from fabplan.lab.db import Connection, from_blob, open_db
from fabplan.lab.queries import disc_filter, disc_rows, find_disc, measurement_rows, where


def _pd():
    try:
        import pandas as pd
    except ImportError:
        raise UserError("DataFrames need pandas: pip install 'fabplan[data]'") from None
    return pd


FIT_SQL = """SELECT sm.name AS sample, d.disc_id, f.series_id, f.method, f.has_threshold, f.flag,
                    f.threshold_uj_cm2, f.threshold_lo, f.threshold_hi, f.slope_efficiency, f.beta,
                    f.params_json, f.created, a.operator AS fitted_by, a.host AS fitted_on
             FROM fits f JOIN series s ON s.id = f.series_id JOIN discs d ON d.id = s.disc_pk
             JOIN samples sm ON sm.id = d.sample_id LEFT JOIN audit a ON a.id = f.audit_id"""


def fit_rows(con: Connection, pattern: str | None = None, sample: str | None = None) -> list[dict]:
    """One row per stored fit (series x method); `params` is the decoded params_json."""
    cond, args = disc_filter(pattern, sample, con=con)
    out = []
    for r in con.execute(FIT_SQL + where(cond) + " ORDER BY sm.name, d.disc_id, f.series_id, f.method", args):
        d = dict(r)
        d["params"] = json.loads(d.pop("params_json") or "{}")
        d["has_threshold"] = bool(d["has_threshold"])
        out.append(d)
    return out


SPECTRA_SQL = """SELECT sm.name AS sample, d.disc_id, x.series_id, x.id AS spectrum_id, x.fluence_uj_cm2,
                        x.integration_s, x.integrated, x.peak_nm, x.fwhm_nm, x.source_file, x.acquired,
                        x.axis_id, x.counts
                 FROM spectra x JOIN series s ON s.id = x.series_id JOIN discs d ON d.id = s.disc_pk
                 JOIN samples sm ON sm.id = d.sample_id"""


def spectrum_rows(
    con: Connection, pattern: str | None = None, sample: str | None = None, disc_pk: int | None = None
) -> list[dict]:
    """Every stored spectrum with its arrays: wavelength_nm and counts (float32, as stored)."""
    cond, args = disc_filter(pattern, sample, con=con)
    if disc_pk is not None:
        cond.append("d.id = ?")
        args.append(disc_pk)
    axes: dict[int, np.ndarray] = {}
    out = []
    for r in con.execute(SPECTRA_SQL + where(cond) + " ORDER BY sm.name, d.disc_id, x.series_id, "
                         "x.fluence_uj_cm2, x.id", args):
        d = dict(r)
        aid = d.pop("axis_id")
        if aid not in axes:
            axes[aid] = from_blob(con.execute("SELECT wavelength_nm FROM axes WHERE id=?", (aid,)).fetchone()[0])
        d["wavelength_nm"] = axes[aid]
        d["counts"] = from_blob(d["counts"])
        out.append(d)
    return out


class Logbook:
    """A logbook (file path, sqlite:///path, postgresql://...; None: $FABPLAN_DB or the default file)
    whose tables come back as pandas DataFrames."""

    def __init__(self, url: str | os.PathLike | None = None) -> None:
        self.con = open_db(url)

    def __enter__(self) -> Logbook:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def __repr__(self) -> str:
        from fabplan.lab.db import redact

        return f"Logbook({redact(self.con.address)!r})"

    def discs(self, pattern: str | None = None, sample: str | None = None, status: str | None = None):
        """One row per disc: design/fabrication record, latest series, its thresholds and spectral summary."""
        from fabplan.lab.queries import DISC_COLUMNS

        rows = disc_rows(self.con, pattern, status=status, sample=sample)
        return _pd().DataFrame(rows, columns=list(DISC_COLUMNS))

    def measurements(self, pattern: str | None = None, sample: str | None = None):
        """One row per spectrum with its series metadata and derived scalars (no arrays)."""
        return _pd().DataFrame(measurement_rows(self.con, pattern, sample))

    def fits(self, pattern: str | None = None, sample: str | None = None):
        """One row per series and fit method; who fitted it (operator, host) from the audit."""
        pd = _pd()
        cols = ["sample", "disc_id", "series_id", "method", "has_threshold", "flag", "threshold_uj_cm2",
                "threshold_lo", "threshold_hi", "slope_efficiency", "beta", "created", "fitted_by",
                "fitted_on", "params"]
        return pd.DataFrame(fit_rows(self.con, pattern, sample), columns=cols)

    def spectra(self, disc: str, sample: str | None = None):
        """One row per spectrum of one disc (every series): fluence, exposure, derived scalars and the
        `wavelength_nm` / `counts` arrays (float32, as measured)."""
        d = find_disc(self.con, disc, sample)
        return _pd().DataFrame(spectrum_rows(self.con, disc_pk=int(d["id"])))

    def audit(self):
        """Who did what: one row per write (operator, host, pid, time, action, detail)."""
        return _pd().DataFrame([dict(r) for r in self.con.execute("SELECT * FROM audit ORDER BY id")])


def plan_frame(plan_dir: str | os.PathLike):
    """A saved plan's shots in firing order (fabplan.planning's own reader, hash verified)."""
    from fabplan.planning.plan import Plan

    _pd()
    return Plan.load(plan_dir).to_pandas()


def journal_frame(path: str | os.PathLike):
    """One row per planned shot of a fabrication journal, as the executor's reader replays it: state
    (pending/uncertain/fired), disc id, commanded and encoder positions, pulse energies, times."""
    from fabplan.execute.journal import FIRED, UNCERTAIN, read_journal

    pd = _pd()
    st = read_journal(Path(path))
    state = np.where(st.state == FIRED, "fired", np.where(st.state == UNCERTAIN, "uncertain", "pending"))
    return pd.DataFrame({
        "seq": np.arange(st.n_shots),
        "disc_id": st.disc_id,
        "state": state,
        "x_um": st.target_um[:, 0], "y_um": st.target_um[:, 1], "z_um": st.target_um[:, 2],
        "encoder_x_um": st.encoder[:, 0], "encoder_y_um": st.encoder[:, 1], "encoder_z_um": st.encoder[:, 2],
        "planned_pulse_energy_uj": st.planned_pulse_energy_uj,
        "pulse_energy_uj": st.pulse_energy_uj,
        "pulses": st.pulses,
        "fire_count": st.fire_count,
        "t_intent": st.t_intent, "t_fired": st.t_fired,
    })


def pulse_log_frame(path: str | os.PathLike):
    """The emulator's pulse log: one row per pulse with light (t_s, x_um, y_um, z_um)."""
    from fabplan.execute.pulselog import read_pulse_log

    pd = _pd()
    arr = read_pulse_log(path)
    return pd.DataFrame(arr, columns=["t_s", "x_um", "y_um", "z_um"])
