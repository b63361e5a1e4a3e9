"""`fabplan lab ...`: the lasing-threshold logbook: add/import spectra, fit, show, report, export.

The logbook is `--db ADDRESS`, else $FABPLAN_DB, else the `logbook` of the station profile named by
`--station NAME` or $FABPLAN_STATION (`fabplan station show`), else ./fabplan-lab.sqlite. ADDRESS is a file path
or sqlite:///path (one file, one computer) or postgresql://user@host/dbname (one server that every
setup of a lab writes to at once). Writes record who made them ($FABPLAN_OPERATOR or --operator,
else the login name) and from which host.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from fabplan.cli._output import print_json
from fabplan.errors import UserError
from fabplan.lab.db import STATUSES

META_OPTS = (
    # flag, series column, unit kind
    ("--pump-wavelength", "pump_wavelength_nm", "wavelength_nm", "pump wavelength (default 515 nm)"),
    ("--pulse-width", "pulse_width_fs", "duration_fs", "pump pulse width (default 220 fs)"),
    ("--rep-rate", "rep_rate_hz", "frequency_hz", "pump repetition rate"),
    ("--spot", "spot_fwhm_um", "length_um", "pump spot FWHM (default 20 um)"),
    ("--resolution", "resolution_nm", "wavelength_nm", "spectrometer resolution FWHM (default 0.1 nm)"),
)


def _ws(args) -> str:
    """Sample for writing commands."""
    return args.sample or "default"


def logbook_address(args) -> str | None:
    """--db, else $FABPLAN_DB, else the station's logbook (--station / $FABPLAN_STATION), else None (default)."""
    import os

    from fabplan.station import STATION_ENV, get_station

    if args.db:
        return args.db
    if os.environ.get("FABPLAN_DB"):
        return os.environ["FABPLAN_DB"]
    name = getattr(args, "station", None) or os.environ.get(STATION_ENV)
    if not name:
        return None
    return get_station(name).get("logbook") or None


def _db(args):
    from fabplan.lab.db import open_db

    con = open_db(logbook_address(args))
    con.action = f"lab {args.lab_command}"  # what the audit rows of this command's writes say
    if getattr(args, "operator", None):
        con.operator = args.operator
    return con


def _write(fn):
    """Run a whole write operation; again if the server aborted it as a serialization failure or
    deadlock (its transaction rolled back, nothing of it remains)."""
    from fabplan.lab.db import retrying

    return retrying(fn)


def _meta(args) -> dict:
    from fabplan.units import parse_kind

    meta = {}
    for flag, col, kind, _ in META_OPTS:
        v = getattr(args, flag.lstrip("-").replace("-", "_"), None)
        if v is not None:
            meta[col] = parse_kind(v, kind)
    if getattr(args, "operator", None):
        meta["operator"] = args.operator
    if getattr(args, "notes", None):
        meta["notes"] = args.notes
    if getattr(args, "fluence_definition", None):
        from fabplan.lab.importer import parse_pump_fluence_definition

        meta["fluence_definition"] = parse_pump_fluence_definition(args.fluence_definition)
    return meta


def _prepare(con, args) -> None:
    from fabplan.lab.records import import_journal, register_design

    if getattr(args, "design", None):
        register_design(con, args.design, _ws(args))
    if getattr(args, "journal", None):
        import_journal(con, args.journal, _ws(args), if_new=True)


def _add(args) -> int:
    from fabplan.lab.importer import add_spectrum

    con = _db(args)
    _write(lambda: _prepare(con, args))
    res = _write(lambda: add_spectrum(
        con,
        args.disc,
        args.fluence,
        args.spectrum,
        sample=_ws(args),
        allow_unknown=args.allow_unknown,
        new_series=args.new_series,
        meta=_meta(args),
    ))
    from fabplan.units import implausible

    slip = implausible(float(res["fluence_uj_cm2"]), "pump_fluence")  # e.g. 12mJ/cm^2 typed for 12uJ/cm^2
    if slip:
        print(f"warning: --fluence {args.fluence}: {slip} (stored as given)",
              file=sys.stderr)
    if args.json:
        print_json(res)
    else:
        print(
            f"{res['disc_id']}: spectrum {res['spectrum_id']} at {res['fluence_uj_cm2']:g} uJ/cm^2 "
            f"(series {res['series_id']})"
        )
    return 0


def _import(args) -> int:
    from fabplan.lab.importer import import_manifest

    con = _db(args)
    _write(lambda: _prepare(con, args))
    res = _write(lambda: import_manifest(
        con, args.manifest, sample=_ws(args), allow_unknown=args.allow_unknown, meta=_meta(args)
    ))
    if args.json:
        print_json(res)
    else:
        print(
            f"imported {res['spectra']} spectra in {res['series']} series for {res['discs']} discs "
            f"from {res['manifest']}"
        )
    return 0


def _add_design(args) -> int:
    from fabplan.lab.records import register_design

    con = _db(args)
    res = _write(lambda: register_design(con, args.design_file, _ws(args)))
    if args.json:
        print_json(res)
    else:
        print(
            f"design {res['name']!r} ({res['hash'][:12]}): {res['discs']} discs registered for sample {res['sample']!r}"
        )
    return 0


def _import_journal(args) -> int:
    from fabplan.lab.records import import_journal, register_design

    con = _db(args)
    if args.design:
        _write(lambda: register_design(con, args.design, _ws(args)))
    res = _write(lambda: import_journal(con, args.journal_file, _ws(args)))
    if args.json:
        print_json(res)
    else:
        print(
            f"run {res['run_id']} (plan {str(res['plan_hash'])[:12]}): {res['fired']} discs fired, "
            f"{res['uncertain']} uncertain{'' if res['design_linked'] else ' (design not registered)'}"
        )
    return 0


def _window(text: str | None):
    if not text:
        return None
    from fabplan.units import parse_kind

    lo, sep, hi = text.partition(":")
    if not sep:
        raise UserError(f"--window expects LO:HI (e.g. 525nm:550nm), got {text!r}")
    w = (parse_kind(lo, "wavelength_nm"), parse_kind(hi, "wavelength_nm"))
    if not w[0] < w[1]:
        raise UserError(f"--window: LO must be below HI, got {text!r}")
    return w


def _pump_jitter(text: str) -> float:
    """--pump-jitter FRACTION: relative 1-sigma pump fluence noise, 0 <= x < 1 ('3%' also accepted)."""
    t = text.strip()
    try:
        v = float(t[:-1]) / 100.0 if t.endswith("%") else float(t)
    except ValueError:
        raise UserError(f"--pump-jitter: expected a fraction such as 0.03 (or 3%), got {text!r}") from None
    if not 0.0 <= v < 1.0:
        raise UserError(f"--pump-jitter: must be a fraction in [0, 1), got {text!r}")
    return v


def _fit(args) -> int:
    from fabplan.lab.fitting import fit_all, result_dict
    from fabplan.units import parse_kind

    jitter = _pump_jitter(args.pump_jitter)
    con = _db(args)
    window = _window(args.window)
    res = _write(lambda: fit_all(
        con,
        pattern=args.disc,
        sample=args.sample,
        window_nm=window,
        resolution_nm=parse_kind(args.resolution, "wavelength_nm") if args.resolution else None,
        pump_jitter=jitter,
    ))
    if args.json:
        print_json([result_dict(r) for r in res])
        return 0
    if not res:
        print("no measurement series match")
        return 0
    print(
        f"{'disc':<12} {'status':<12} {'F_th [95 %]':>16} {'F_th predicted':>13} {'beta':>8} {'FWHM nm':>8} "
        f"{'Q':>7} {'FSR meas/pred':>14}  note"
    )
    for r in res:
        th = (
            f"{r.threshold_uj_cm2:.2f} [{r.threshold_lo:.2f},{r.threshold_hi:.2f}]"
            if r.has_threshold
            else "-"
        )
        print(
            f"{r.disc_id:<12} {r.status:<12} {th:>16} {_f(r.threshold_predicted_uj_cm2):>13} {_f(r.beta, '.1e'):>8} "
            f"{_f(r.linewidth_nm, '.3f'):>8}{'<' if r.resolution_limited else ' '}{_f(r.q, '.0f'):>6} "
            f"{_f(r.mode_spacing_nm) + '/' + _f(r.fsr_predicted_nm):>14}  {r.flag}"
        )
    n = sum(r.has_threshold for r in res)
    print(f"{len(res)} series fitted, {n} with a threshold, {len(res) - n} flagged")
    print("F_th: first lasing mode's threshold (uJ/cm^2, as the pump fluences were logged); predicted: "
          "physics (fabplan.physics.lasing), peak fluence of a 20 um FWHM Gaussian pump spot")
    return 0


def _f(v, fmt: str = ".2f") -> str:
    return "-" if v is None or not math.isfinite(float(v)) else format(float(v), fmt)


def _show(args) -> int:
    from fabplan.lab.queries import disc_detail

    d = disc_detail(_db(args), args.disc_id, args.sample)
    if args.json:
        print_json(d)
        return 0
    print(
        f"{d['disc_id']} (sample {d['sample']}): status {d['status']}{' (set by hand)' if d['status_manual'] else ''}"
    )
    print(
        f"  designed D {_f(d['diameter_um'])} um, fab fluence {_f(d['fluence_mj_cm2'])} mJ/cm^2, "
        f"pulses {d['pulses'] or '-'}, run {d['run_id'] or '-'} ({d['fab_state'] or 'no journal'})"
        f"{'' if d['known'] else ', NOT in any design or run'}"
    )
    for s in d["series"]:
        print(
            f"  series {s['id']} ({s['created']}): pump {_f(s['pump_wavelength_nm'], 'g')} nm, "
            f"{_f(s['pulse_width_fs'], 'g')} fs, {_f(s['rep_rate_hz'], 'g')} Hz, spot {_f(s['spot_fwhm_um'], 'g')} um FWHM, "
            f"resolution {_f(s['resolution_nm'], 'g')} nm, {len(s['spectra'])} spectra, operator {s['operator'] or '-'}, "
            f"pump fluence {s.get('fluence_definition') or 'definition not stated'}"
        )
        if s["notes"]:
            print(f"    notes: {s['notes']}")
        for f in s["fits"]:
            extra = f", beta {f['beta']:.2g}" if f["beta"] is not None else ""
            if f["has_threshold"]:
                print(
                    f"    {f['method']:<12} F_th {f['threshold_uj_cm2']:.2f} uJ/cm^2 "
                    f"[{f['threshold_lo']:.2f}, {f['threshold_hi']:.2f}]{extra}"
                )
            else:
                print(f"    {f['method']:<12} no threshold: {f['flag']}")
        sp = s.get("spectral")
        if sp and sp["linewidth_nm"] is not None:
            print(
                f"    linewidth {sp['linewidth_nm']:.3f} nm{' (resolution-limited)' if sp['resolution_limited'] else ''}"
                f" at {sp['peak_nm']:.2f} nm, Q {sp['q']:.0f}, below threshold {_f(sp['below_linewidth_nm'])} nm"
            )
            print(
                f"    mode spacing {_f(sp['mode_spacing_nm'], '.3f')} nm measured, "
                f"{_f(sp['fsr_predicted_nm'], '.3f')} nm predicted at the measured peaks "
                f"({sp['fsr_source'] or 'no diameter'}; validate/plan quote the FSR at the window centre)"
            )
        for x in s["spectra"]:
            print(
                f"      F {x['fluence_uj_cm2']:8.3f}  t {_f(x['integration_s'], 'g'):>6} s  "
                f"I {_f(x['integrated'], '.4g'):>10}  peak {_f(x['peak_nm'])} nm  FWHM {_f(x['fwhm_nm'], '.3f')} nm"
            )
    return 0


def _list(args) -> int:
    from fabplan.lab.queries import disc_rows

    rows = disc_rows(_db(args), pattern=args.disc, status=args.status, sample=args.sample)
    if args.json:
        print_json(rows)
        return 0
    print(
        f"{'sample':<10} {'disc':<12} {'status':<12} {'D um':>6} {'spectra':>7} {'F_th':>7} {'FWHM nm':>8} {'Q':>7}"
    )
    for r in rows:
        print(
            f"{r['sample']:<10} {r['disc_id']:<12} {r['status']:<12} {_f(r['diameter_um']):>6} "
            f"{r['n_spectra'] or 0:>7} {_f(r['threshold_uj_cm2']):>7} {_f(r['linewidth_nm'], '.3f'):>8} "
            f"{_f(r['q'], '.0f'):>7}"
        )
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    print(f"{len(rows)} discs: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    return 0


def _set_status(args) -> int:
    from fabplan.lab.db import transaction
    from fabplan.lab.queries import find_disc

    con = _db(args)

    def write() -> None:
        with transaction(con, "set-status", disc=args.disc_id, status=args.status):
            d = find_disc(con, args.disc_id, args.sample)
            con.execute(
                "UPDATE discs SET status=?, status_manual=?, status_audit_id=? WHERE id=?",
                (args.status if args.status != "auto" else d["status"], int(args.status != "auto"),
                 con.audit_id, d["id"]),
            )

    _write(write)
    if args.json:
        print_json({"disc_id": args.disc_id, "status": args.status})
    else:
        print(f"{args.disc_id}: status {args.status}")
    return 0


def _report(args) -> int:
    from fabplan.lab.figures import report

    def tick(done: int, total: int) -> None:
        if not args.json and (done % 50 == 0 or done == total):
            print(f"  disc figures {done}/{total}", file=sys.stderr)

    # Per-disc figures cost ~1 s each: by default only for the discs named with --disc; the overview
    # page shows every disc's light-in/light-out at once.
    cap = args.max_disc_figures if args.max_disc_figures is not None else (None if args.disc else 0)
    res = report(
        _db(args),
        args.out,
        pattern=args.disc,
        sample=args.sample,
        max_disc_figures=cap,
        progress=tick,
        fmt=args.format,
    )
    if args.json:
        print_json(res)
    else:
        print(
            f"report in {res['out']}: overview {res['overview'] or '-'}, {res['disc_figures']} disc figures"
            f"{'' if res['disc_figures'] else ' (--disc GLOB for some, --max-disc-figures N for more)'}, "
            f"{len(res['array_figures'])} array figures, table {res['table_csv']}"
        )
    return 0


def _export(args) -> int:
    from fabplan.lab.queries import disc_rows, measurement_rows

    if args.format in ("nexus", "parquet"):
        return _export_data(args)
    con = _db(args)
    rows = (
        measurement_rows(con, args.disc, args.sample)
        if args.all
        else disc_rows(con, args.disc, sample=args.sample)
    )
    out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    try:
        from fabplan.lab.tables import to_json, write_csv

        if args.format == "json" or args.json:  # --json (shared by every lab command) means JSON too
            out.write(to_json(rows) + "\n")
        else:
            write_csv(rows, out)
    finally:
        if args.out:
            out.close()
    if args.out:
        print(f"{len(rows)} rows -> {args.out}", file=sys.stderr)
    return 0


def _export_data(args) -> int:
    """NeXus/HDF5 file or Parquet folder: files other tools read (the `data` extra)."""
    if not args.out:
        raise UserError(f"lab export --format {args.format} needs --out "
                        f"({'a .nxs file' if args.format == 'nexus' else 'a folder for the tables'})")
    from fabplan.lab.export import export_nexus, export_parquet

    con = _db(args)
    fn = export_nexus if args.format == "nexus" else export_parquet
    res = fn(con, args.out, pattern=args.disc, sample=args.sample)
    if args.json:
        print_json(res)
    elif args.format == "nexus":
        print(f"{res['entries']} series ({res['spectra']} spectra) -> {res['out']} (NeXus/HDF5)")
    else:
        print(", ".join(f"{n} {k}" for k, n in res["rows"].items()) + f" -> {res['out']}/*.parquet")
    return 0


def _copy(args) -> int:
    """Copy the whole logbook (--db) into a new, empty one: a SQLite file into the lab's server."""
    from fabplan.lab.db import copy_logbook, open_db, redact

    src = _db(args)
    dst = open_db(args.destination)
    dst.action = "lab copy"
    res = copy_logbook(src, dst)
    if args.json:
        print_json({"destination": redact(args.destination), "rows": res})
    else:
        print(f"copied {res['spectra']} spectra, {res['series']} series, {res['discs']} discs, {res['fits']} fits "
              f"-> {redact(args.destination)}")
    return 0


def _simulate(args) -> int:
    from fabplan.lab.simulate import simulate_series

    if args.from_db:
        from fabplan.lab.queries import fabricated_discs

        discs = fabricated_discs(_db(args), args.sample)
        if not discs:
            raise UserError(
                "no fabricated or designed discs in the lab database (lab import-journal / add-design)"
            )
    elif args.design:
        from fabplan.design import expand, load_design

        discs = expand(load_design(args.design))
    elif args.ids:
        discs = [(i.strip(), args.diameter) for i in args.ids.split(",") if i.strip()]
    else:
        raise UserError("lab simulate needs --from-db, --design FILE or --ids A-r00c00,A-r00c01")
    from fabplan.units import parse_quantity

    if args.points < 1:
        raise UserError(f"--points must be at least 1, got {args.points}")
    parts = args.fluence_range.split(":")
    if len(parts) != 2:
        raise UserError(f"--fluence-range {args.fluence_range!r}: expected LO:HI in uJ/cm^2, e.g. 2:60")
    lo, hi = (parse_quantity(v, "uJ/cm^2", "a pump fluence") for v in parts)
    if lo < 0 or hi < lo or (hi == lo and args.points > 1):
        raise UserError(f"--fluence-range {args.fluence_range}: need 0 <= LO < HI (a sweep from low to high "
                        f"pump fluence), got LO {lo:g}, HI {hi:g} uJ/cm^2")
    import numpy as np

    m = simulate_series(
        discs,
        args.out,
        fluences_uj_cm2=np.round(np.linspace(lo, hi, args.points), 3),
        seed=args.seed,
        dead_fraction=args.dead_fraction,
    )
    print(str(m) if not args.json else json.dumps({"manifest": str(m)}))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    lab = sub.add_parser(
        "lab",
        help="lasing-threshold logbook: spectra, fits, reports, exports (SQLite or PostgreSQL)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND")
    lab.set_defaults(func=lambda a: (lab.print_help(), 2)[1])

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        metavar="ADDRESS",
        help="logbook: a file, sqlite:///file or postgresql://user@host/db (default: $FABPLAN_DB, else "
        "the --station's logbook, else ./fabplan-lab.sqlite)",
    )
    common.add_argument(
        "--station",
        metavar="NAME",
        help="use this station profile's logbook (`fabplan station show NAME`; $FABPLAN_STATION) when "
        "neither --db nor $FABPLAN_DB is given",
    )
    common.add_argument(
        "--sample", default=None, help="sample name (default: 'default' when writing, all when reading)"
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")

    def add(name, func, help_, **kw):
        p = lab_sub.add_parser(name, parents=[common], help=help_, description=help_, **kw)
        p.set_defaults(func=func)
        return p

    def meta_opts(p):
        for flag, _col, _kind, h in META_OPTS:
            p.add_argument(flag, help=h)
        p.add_argument("--operator", help="who measured")
        p.add_argument("--notes", help="free text for the series")
        p.add_argument(
            "--fluence-definition",
            choices=("peak", "average"),
            help="what the pump fluences mean: peak of the Gaussian spot, or average (energy / spot area); "
            "a manifest column fluence_definition sets it per series",
        )
        p.add_argument(
            "--allow-unknown",
            action="store_true",
            help="accept disc ids that no registered design or fabrication run names",
        )
        p.add_argument("--design", help="register this design file first (checks disc ids against it)")
        p.add_argument("--journal", help="import this fabrication journal first")

    p = add("add", _add, "add one spectrum of one disc at one pump fluence")
    p.add_argument("--disc", required=True, help="disc id, e.g. A-r03c07")
    p.add_argument("--fluence", required=True, help="pump fluence, e.g. 12uJ/cm^2 (bare number: uJ/cm^2)")
    p.add_argument(
        "--spectrum",
        required=True,
        help="two-column CSV/TXT (a header may name the x unit: nm, um, eV, cm^-1), Andor .sif (needs "
        "sif-parser) or Princeton Instruments .spe; one frame of a kinetic series or rows of an image: "
        "FILE#frame=N, FILE#rows=A-B",
    )
    p.add_argument("--new-series", action="store_true", help="start a new measurement series for this disc")
    meta_opts(p)

    p = add(
        "import",
        _import,
        "import a manifest CSV (disc_id, fluence, spectrum[, frame, rows, metadata]) atomically; 'frame' picks "
        "one frame of a kinetic-series .sif/.spe (one row per frame and fluence), 'rows' (A-B) sums rows of an image",
    )
    p.add_argument("manifest")
    meta_opts(p)

    p = add("add-design", _add_design, "register a design (hash + YAML) and its discs")
    p.add_argument("design_file")

    p = add("import-journal", _import_journal, "import a fabrication run from an executor journal")
    p.add_argument("journal_file")
    p.add_argument("--design", help="register this design file first")

    p = add("fit", _fit, "fit thresholds, linewidth, Q and mode spacing; store them and update disc status")
    p.add_argument("--disc", help="glob of disc ids, e.g. 'A-r0*'")
    p.add_argument("--window", help="integration window LO:HI, e.g. 525nm:550nm (default: whole spectrum)")
    p.add_argument("--resolution", help="spectrometer resolution FWHM (overrides the series' value)")
    p.add_argument(
        "--pump-jitter",
        metavar="FRACTION",
        default="0.03",
        help="relative 1-sigma shot-to-shot pump fluence noise carried into the threshold intervals "
        "(default 0.03; use what the pump's energy monitor shows)",
    )

    p = add("show", _show, "everything recorded about one disc")
    p.add_argument("disc_id")

    p = add("list", _list, "one line per disc")
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("--disc", help="glob of disc ids")

    p = add("set-status", _set_status, "set a disc's status by hand ('auto' hands it back to `lab fit`)")
    p.add_argument("disc_id")
    p.add_argument("status", choices=(*STATUSES, "auto"))

    p = add("report", _report, "figures (an overview of every disc, per array, per disc on request) and a table "
            "of all fits")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--disc", help="glob of disc ids")
    p.add_argument(
        "--max-disc-figures", type=int, default=None,
        help="per-disc figures to write (default: every disc --disc selects; none without --disc: "
        "overview.png shows every disc)",
    )
    p.add_argument("--format", choices=("png", "svg", "pdf"), default="png", help="figure format (default png)")

    p = add(
        "export",
        _export,
        "export fits (one row per disc) or every measurement (--all) as CSV/JSON; everything, spectra "
        "included, as NeXus/HDF5 (--format nexus --out FILE.nxs) or Parquet tables (--format parquet "
        "--out FOLDER)",
    )
    p.add_argument("--format", choices=("csv", "json", "nexus", "parquet"), default="csv")
    p.add_argument("--all", action="store_true", help="one row per measured spectrum")
    p.add_argument("--disc", help="glob of disc ids")
    p.add_argument("--out", help="file (default: stdout); a folder for parquet")

    p = add("copy", _copy, "copy the whole logbook (--db) into a new empty one, e.g. a SQLite file into "
            "the lab's PostgreSQL server (ids, audit and spectra kept)")
    p.add_argument("destination", help="the new logbook: postgresql://user@host/db, a file or sqlite:///file")

    p = add("simulate", _simulate, "dry run: simulated lasing spectra + manifest for `lab import`")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument(
        "--from-db",
        action="store_true",
        help="simulate the discs the lab database knows were fabricated (imported journal or design)",
    )
    p.add_argument("--design", help="simulate every disc of this design")
    p.add_argument("--ids", help="comma-separated disc ids (with --diameter)")
    p.add_argument("--diameter", type=float, default=10.0, help="disc diameter in um for --ids (default 10)")
    p.add_argument("--fluence-range", default="2:60", help="pump sweep LO:HI in uJ/cm^2 (default 2:60)")
    p.add_argument("--points", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dead-fraction", type=float, default=0.1)
