"""The logbook in formats other tools read: NeXus/HDF5 (h5py, nexusformat, silx, DAWN) and Parquet
(pandas, pyarrow, polars, DuckDB, Spark). Needs the `data` extra (h5py, pyarrow).

NeXus: one NXentry per measurement series (a disc measured twice has two), named
`<sample>__<disc>__series<id>`. In it: NXsample (disc id, status, diameter), `fabrication`
(NXcollection: the design/shot record of the disc: design name and hash, the design YAML, fluence,
pulses, position, run and plan hash), instrument/pump (NXbeam: pump wavelength, pulse width,
repetition rate, spot), one NXdata per spectrum (`spectrum_000`, ...: counts vs the wavelength axis
in nm, with its pump fluence and exposure), `light_in_light_out` (NXdata: integrated emission vs pump
fluence, the entry's default plot) and `fits` (NXprocess: one NXcollection per fit method, the
spectral summary). Units are `units` attributes. The design YAML is stored once per design and
linked (HDF5 soft link) from the other entries.

Parquet: a folder of tables: discs, measurements, fits and spectra (one row per spectrum, its
wavelength_nm and counts as float32 list columns).
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from fabplan.errors import UserError
from fabplan.lab.db import SCHEMA_VERSION, Connection, from_blob, redact
from fabplan.lab.queries import disc_filter, disc_rows, measurement_rows, where


def _need(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"this export needs {module.split('.')[0]}: pip install 'fabplan[data]'") from None


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("fabplan")
    except Exception:  # noqa: BLE001 - not installed as a distribution (source tree)
        return "unknown"


def _name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


_SERIES_SQL = """SELECT sm.name AS sample, d.id AS disc_pk, d.disc_id, d.array_id, d.status, d.status_manual,
                        d.known, d.diameter_um, d.fluence_mj_cm2, d.pulses, d.x_um, d.y_um, d.fab_state,
                        d.energy_uj, d.run_id, r.plan_hash, r.journal_sha256, r.started AS run_started,
                        g.name AS design_name, g.hash AS design_hash, g.film_thickness_nm,
                        s.id AS series_id, s.created, s.pump_wavelength_nm, s.pulse_width_fs, s.rep_rate_hz,
                        s.spot_fwhm_um, s.operator, s.notes, s.resolution_nm, s.fluence_definition
                 FROM series s JOIN discs d ON d.id = s.disc_pk JOIN samples sm ON sm.id = d.sample_id
                 LEFT JOIN runs r ON r.id = d.run_id LEFT JOIN designs g ON g.id = d.design_id"""


def _put(group, name: str, value, units: str | None = None) -> None:
    """A field; None is left out (NeXus has no null), NaN kept for numbers."""
    if value is None:
        return
    ds = group.create_dataset(name, data=value)
    if units:
        ds.attrs["units"] = units


def export_nexus(
    con: Connection, out: str | os.PathLike, pattern: str | None = None, sample: str | None = None
) -> dict:
    """Write every measured series (matching the disc glob / sample) to one NeXus HDF5 file."""
    h5py = _need("h5py")
    from fabplan.lab.dataframes import fit_rows

    cond, args = disc_filter(pattern, sample, con=con)
    series = [dict(r) for r in con.execute(_SERIES_SQL + where(cond) + " ORDER BY sm.name, d.disc_id, s.id", args)]
    fits: dict[int, list[dict]] = {}
    for f in fit_rows(con, pattern, sample):
        fits.setdefault(f["series_id"], []).append(f)
    axes = {int(r[0]): from_blob(r[1]) for r in con.execute("SELECT id, wavelength_nm FROM axes")}
    design_yaml: dict[str, str] = {}
    out = Path(out)
    n_spectra = 0
    tmp = out.with_name(out.name + ".part")
    with h5py.File(tmp, "w") as h5:
        h5.attrs.update({
            "NX_class": "NXroot", "creator": "fabplan", "creator_version": _version(),
            "file_name": out.name, "file_time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "HDF5_Version": h5py.version.hdf5_version, "h5py_version": h5py.version.version,
            "fabplan_logbook": redact(con.address), "fabplan_schema_version": SCHEMA_VERSION,
        })
        for s in series:
            name = _name(f"{s['sample']}__{s['disc_id']}__series{s['series_id']}")
            e = h5.create_group(name)
            e.attrs.update({"NX_class": "NXentry", "default": "light_in_light_out"})
            _put(e, "title", f"disc {s['disc_id']} (sample {s['sample']}), measurement series {s['series_id']}")
            _put(e, "start_time", s["created"])
            _put(e, "program_name", "fabplan")
            if s["operator"]:
                u = e.create_group("operator")
                u.attrs["NX_class"] = "NXuser"
                _put(u, "name", s["operator"])
            if s["notes"]:
                _put(e, "notes", s["notes"])
            smp = e.create_group("sample")
            smp.attrs["NX_class"] = "NXsample"
            _put(smp, "name", s["sample"])
            _put(smp, "disc_id", s["disc_id"])
            _put(smp, "status", s["status"])
            _put(smp, "status_set_by_hand", bool(s["status_manual"]))
            _put(smp, "diameter", s["diameter_um"], "um")
            _put(smp, "film_thickness", s["film_thickness_nm"], "nm")
            fab = e.create_group("fabrication")
            fab.attrs["NX_class"] = "NXcollection"
            _put(fab, "known", bool(s["known"]))  # named by a registered design or imported run
            for key, unit in (("array_id", None), ("fluence_mj_cm2", "mJ/cm^2"), ("pulses", None), ("x_um", "um"),
                              ("y_um", "um"), ("fab_state", None), ("energy_uj", "uJ"), ("run_id", None),
                              ("plan_hash", None), ("journal_sha256", None), ("run_started", None),
                              ("design_name", None), ("design_hash", None)):
                _put(fab, key, s[key], unit)
            h = s["design_hash"]
            if h:
                if h in design_yaml:
                    fab["design_yaml"] = h5py.SoftLink(design_yaml[h])
                else:
                    yaml = con.execute("SELECT yaml FROM designs WHERE hash=?", (h,)).fetchone()[0]
                    _put(fab, "design_yaml", yaml)
                    design_yaml[h] = fab["design_yaml"].name
            ins = e.create_group("instrument")
            ins.attrs["NX_class"] = "NXinstrument"
            pump = ins.create_group("pump")
            pump.attrs["NX_class"] = "NXbeam"
            _put(pump, "incident_wavelength", s["pump_wavelength_nm"], "nm")
            _put(pump, "pulse_duration", s["pulse_width_fs"], "fs")
            _put(pump, "frequency", s["rep_rate_hz"], "Hz")
            _put(pump, "spot_fwhm", s["spot_fwhm_um"], "um")
            if s["fluence_definition"] is not None:
                pump.attrs["fluence_definition"] = s["fluence_definition"]
            if s["resolution_nm"] is not None:
                spec = ins.create_group("spectrometer")
                spec.attrs["NX_class"] = "NXcollection"
                _put(spec, "resolution_fwhm", s["resolution_nm"], "nm")
            rows = con.execute(
                """SELECT id, fluence_uj_cm2, axis_id, counts, integration_s, integrated, peak_nm, fwhm_nm,
                          source_file, acquired FROM spectra WHERE series_id=? ORDER BY fluence_uj_cm2, id""",
                (s["series_id"],),
            ).fetchall()
            for k, x in enumerate(rows):
                g = e.create_group(f"spectrum_{k:03d}")
                g.attrs.update({"NX_class": "NXdata", "signal": "counts", "axes": "wavelength",
                                "wavelength_indices": 0})
                _put(g, "counts", from_blob(x["counts"]), "counts")
                _put(g, "wavelength", axes[x["axis_id"]], "nm")
                _put(g, "pump_fluence", float(x["fluence_uj_cm2"]), "uJ/cm^2")
                _put(g, "integration_time", x["integration_s"], "s")
                _put(g, "spectrum_id", int(x["id"]))
                _put(g, "acquired", x["acquired"])
                _put(g, "source_file", x["source_file"])
                g.attrs["title"] = f"{s['disc_id']} at {x['fluence_uj_cm2']:g} uJ/cm^2"
            n_spectra += len(rows)
            ll = e.create_group("light_in_light_out")
            ll.attrs.update({"NX_class": "NXdata", "signal": "integrated_emission", "axes": "pump_fluence",
                             "pump_fluence_indices": 0})
            _put(ll, "pump_fluence", np.array([x["fluence_uj_cm2"] for x in rows], float), "uJ/cm^2")
            _put(ll, "integrated_emission",
                 np.array([np.nan if x["integrated"] is None else x["integrated"] for x in rows], float),
                 "counts/s")
            proc = e.create_group("fits")
            proc.attrs["NX_class"] = "NXprocess"
            _put(proc, "program", "fabplan lab fit")
            _put(proc, "version", _version())
            for f in fits.get(s["series_id"], []):
                m = proc.create_group(_name(f["method"]))
                m.attrs["NX_class"] = "NXcollection"
                _put(m, "has_threshold", f["has_threshold"])
                _put(m, "flag", f["flag"] or "")
                for key in ("threshold_uj_cm2", "threshold_lo", "threshold_hi"):
                    _put(m, key.replace("_uj_cm2", ""), f[key], "uJ/cm^2")
                _put(m, "slope_efficiency", f["slope_efficiency"])
                _put(m, "beta", f["beta"])
                _put(m, "params_json", json.dumps(f["params"], sort_keys=True))
                _put(m, "fitted", f["created"])
            sp = con.execute("SELECT * FROM spectral WHERE series_id=?", (s["series_id"],)).fetchone()
            if sp is not None:
                g = proc.create_group("spectral")
                g.attrs["NX_class"] = "NXcollection"
                units = {"linewidth_nm": "nm", "linewidth_err_nm": "nm", "below_linewidth_nm": "nm", "peak_nm": "nm",
                         "mode_spacing_nm": "nm", "fsr_predicted_nm": "nm", "window_lo_nm": "nm", "window_hi_nm": "nm"}
                for key in sp.keys():
                    if key != "series_id":
                        _put(g, key, sp[key], units.get(key))
        if series:
            h5.attrs["default"] = _name(f"{series[0]['sample']}__{series[0]['disc_id']}__series{series[0]['series_id']}")
    os.replace(tmp, out)
    return {"out": str(out), "format": "nexus", "entries": len(series), "spectra": n_spectra}


def export_parquet(
    con: Connection, out: str | os.PathLike, pattern: str | None = None, sample: str | None = None
) -> dict:
    """Write discs, measurements, fits and spectra (arrays as list columns) as Parquet tables in `out`."""
    pa = _need("pyarrow")
    pq = _need("pyarrow.parquet")
    from fabplan.lab.dataframes import fit_rows, spectrum_rows

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: --format parquet writes a folder of tables; this is a file")
    out.mkdir(parents=True, exist_ok=True)
    meta = {b"fabplan": json.dumps({"logbook": redact(con.address), "schema_version": SCHEMA_VERSION,
                                    "fabplan_version": _version()}).encode()}
    tables = {
        "discs": pa.Table.from_pylist(disc_rows(con, pattern, sample=sample)),
        "measurements": pa.Table.from_pylist(measurement_rows(con, pattern, sample)),
        "fits": pa.Table.from_pylist(
            [{**{k: v for k, v in f.items() if k != "params"}, "params_json": json.dumps(f["params"], sort_keys=True)}
             for f in fit_rows(con, pattern, sample)]
        ),
    }
    rows = spectrum_rows(con, pattern, sample)
    cols = {k: [r[k] for r in rows] for k in (rows[0] if rows else {}) if k not in ("wavelength_nm", "counts")}
    spectra = pa.Table.from_pydict(cols)
    for k in ("wavelength_nm", "counts"):
        arrays = [r[k] for r in rows]
        offsets = np.concatenate([[0], np.cumsum([a.size for a in arrays])]).astype(np.int32)
        values = np.concatenate(arrays).astype(np.float32) if arrays else np.empty(0, np.float32)
        spectra = spectra.append_column(k, pa.ListArray.from_arrays(pa.array(offsets), pa.array(values)))
    tables["spectra"] = spectra
    written = {}
    for name, t in tables.items():
        path = out / f"{name}.parquet"
        pq.write_table(t.replace_schema_metadata({**(t.schema.metadata or {}), **meta}), path)
        written[name] = t.num_rows
    return {"out": str(out), "format": "parquet", "rows": written}
