"""`fabplan calibrate MEASURED.csv --beam lg01|annular`: ablation threshold and incubation from a dose matrix."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import numpy as np

from fabplan.cli._output import print_json
from fabplan.errors import UserError
from fabplan.units import parse_kind

if TYPE_CHECKING:  # heavy (scipy); imported inside the handler so `fabplan --help` stays fast
    from fabplan.beam.calibrate import CalibrationResult
    from fabplan.beam.dose_csv import DoseData

DESCRIPTION = """\
Fit the single-shot ablation threshold F_th(1), the incubation exponent S (F_th(N) = F_th(1) N^(S-1))
and, for an LG01 beam, the ring diameter, to measured disc diameters from a dose matrix.

MEASURED.csv has a header and one row per site: a dose column (pulse_energy_uj, or fluence_mj_cm2),
pulses, diameter_um (empty = nothing ablated). Cells may carry units.
Prints the parameters with 1-sigma uncertainties and a `beam:` block to paste into the design.

Fluence doses are peak fluence (the maximum of F(r)) unless the file or --fluence-definition says
otherwise: an optional fluence_definition column (peak, ring-fwhm-average or geometric-annulus; an
empty cell = the option's value) states it per row; a peak_fluence / peak_fluence_mj_cm2 column is
peak. Each dose is converted with the beam model to peak fluence for the fit (F_pk = F x A_def / A_eff),
and the threshold is reported in the design's beam.fluence_definition (--design), else in the doses'
own definition (peak for pulse energies). --damage-fluence is in that reported definition too.
"""


def _geometry(args: argparse.Namespace) -> dict:
    """Beam geometry and damage fluence from --design, overridden by explicit options."""
    geo: dict = {"model": args.beam, "damage": None}
    if args.design:
        from fabplan.design import load_design

        design = load_design(args.design)
        prof = design.beam.profile
        geo["model"] = args.beam or prof.model
        geo["damage"] = design.beam.damage_fluence
        geo["wavelength_nm"] = design.laser.wavelength
        geo["fluence_definition"] = design.beam.fluence_definition
        if prof.model == "annular":
            geo.update(
                inner_diameter_um=prof.inner_diameter, outer_diameter_um=prof.outer_diameter, na=prof.na
            )
    geo["model"] = geo["model"] or "lg01"
    for opt, key, kind in [
        ("ring_diameter", "ring_diameter_um", "length_um"),
        ("inner_diameter", "inner_diameter_um", "length_um"),
        ("outer_diameter", "outer_diameter_um", "length_um"),
        ("wavelength", "wavelength_nm", "wavelength_nm"),
    ]:
        if getattr(args, opt) is not None:
            geo[key] = parse_kind(getattr(args, opt), kind)
    if args.na is not None:
        geo["na"] = parse_kind(args.na, "dimensionless")
    if args.damage_fluence is not None:
        geo["damage"] = parse_kind(args.damage_fluence, "fluence_mj_cm2")
    return geo


def _handler(args: argparse.Namespace) -> int:
    from fabplan.beam.calibrate import calibrate
    from fabplan.beam.dose_csv import read_dose_csv

    data = read_dose_csv(args.measured)
    dose_def = _dose_definition(args, data)
    geo = _geometry(args)
    if geo["model"] != "annular":  # the mask annulus is that definition's area
        for where, name in (
            ("--fluence-definition", args.fluence_definition and dose_def),
            (f"{args.design}: beam.fluence_definition", geo.get("fluence_definition")),
        ):
            if name == "geometric-annulus":
                raise UserError(
                    f"{where} geometric-annulus needs an annular beam (mask annulus area); this calibration "
                    f"fits {geo['model']}: use peak or ring-fwhm-average, or --beam annular with its mask geometry"
                )
    s_fixed = (
        None if args.incubation_exponent is None else parse_kind(args.incubation_exponent, "dimensionless")
    )
    if geo["model"] == "lg01":
        result = calibrate(
            data,
            "lg01",
            ring_diameter_um=geo.get("ring_diameter_um"),
            incubation_exponent=s_fixed,
            diameter_noise=args.diameter_noise,
            dose_definition=dose_def,
            fluence_definition=geo.get("fluence_definition"),
        )
    else:
        result = calibrate(
            data,
            geo["model"],
            inner_diameter_um=geo.get("inner_diameter_um"),
            outer_diameter_um=geo.get("outer_diameter_um"),
            na=geo.get("na"),
            wavelength_nm=geo.get("wavelength_nm", 515.0),
            incubation_exponent=s_fixed,
            diameter_noise=args.diameter_noise,
            dose_definition=dose_def,
            fluence_definition=geo.get("fluence_definition"),
        )
    yaml_text = result.yaml_block(geo["damage"])
    if args.plot:
        save_plot(result, data, args.plot)
    if args.json:
        print_json({**result.to_dict(), "source": data.source, "beam_yaml": yaml_text, "plot": args.plot})
    else:
        print(format_result(result, data))
        if geo["damage"] is not None:
            print(format_ranges(result, data, geo["damage"]))
        print("\nPaste into the design:\n")
        print(yaml_text, end="")
        if args.plot:
            print(f"\nplot saved to {args.plot}")
    return 0


def _dose_definition(args: argparse.Namespace, data: DoseData) -> str:
    """The definition of fluence doses whose row does not state one: --fluence-definition, else peak.

    An unknown name, or an option contradicting what the file states, is refused (exit 2)."""
    from fabplan.beam.base import FLUENCE_DEFINITIONS
    from fabplan.beam.dose_csv import PEAK_NAMES

    opt = args.fluence_definition
    if opt is None:
        return "peak"
    name = opt.strip().lower()
    if name not in FLUENCE_DEFINITIONS:
        raise UserError(
            f"--fluence-definition {opt!r}: unknown fluence definition (expected {', '.join(FLUENCE_DEFINITIONS)})"
        )
    if data.dose_kind != "fluence_mj_cm2":
        raise UserError(
            f"--fluence-definition {name}: {data.source} gives pulse energies ({data.dose_column}), not fluences; "
            "drop the option (energies need no definition)"
        )
    if data.definition is not None:
        stated = {str(d) for d in data.definition if d}
        if stated - {name}:
            where = (
                f"its {data.dose_column!r} column is a peak fluence"
                if stated == {"peak"} and data.dose_column.strip().lower() in PEAK_NAMES
                else f"its fluence_definition column says {', '.join(sorted(stated))}"
            )
            raise UserError(f"{data.source}: {where}, but --fluence-definition is {name}: give one definition")
    return name


def format_result(result: CalibrationResult, data: DoseData) -> str:
    from fabplan.beam.base import fluence_definition_short

    if data.dose_kind == "energy_uj":
        dose = "pulse energy"
    else:
        dose = "fluence (" + ", ".join(result.dose_definitions) + ")"
        if result.dose_definitions != ["peak"]:
            dose += ", converted to peak fluence for the fit with the beam model"
    n_off = int((~data.ablated).sum())
    out = [
        f"{data.source}: {result.model} beam, {result.n_rows} rows ({result.n_fit} fitted, {n_off} not ablated), "
        f"dose given as {dose}"
    ]
    names = {
        "threshold_fluence_mj_cm2": "F_th(1)",
        "incubation_exponent": "S",
        "ring_diameter_um": "ring diameter",
    }
    units = {
        "threshold_fluence_mj_cm2": " mJ/cm^2 " + fluence_definition_short({"name": result.fluence_definition}),
        "incubation_exponent": "",
        "ring_diameter_um": " um",
    }
    for k, v in result.values.items():
        e = result.stderr.get(k)
        err = "(held fixed)" if e is None else f"+/- {e:.2g}"
        out.append(f"  {names[k]:<15} {v:.4g}{units[k]} {err}")
    ee = result.threshold_energy_stderr_uj
    out.append(f"  {'E_th(1)':<15} {result.threshold_energy_uj:.4g} uJ" + (f" +/- {ee:.2g}" if ee else ""))
    out.append(f"  rms residual    {result.rms_um:.3g} um (disc diameter)")
    out.append(f"  fluence: {result.beam().fluence_definition_text()}")
    for w in result.warnings:
        out.append(f"warning: {w}")
    return "\n".join(out)


def format_ranges(result: CalibrationResult, data: DoseData, damage_mj_cm2: float) -> str:
    """Achievable disc diameters per measured pulse count with the fitted beam (threshold .. damage)."""
    beam = result.beam(damage_fluence_mj_cm2=damage_mj_cm2)
    out = []
    for n in np.unique(data.pulses).tolist():
        try:
            lo, hi = beam.diameter_range_um(int(n))
            out.append(
                f"  achievable disc diameter, N = {n}: {lo:.3g} - {hi:.3g} um (threshold to damage fluence)"
            )
        except UserError as exc:
            out.append(f"  N = {n}: {exc}")
    return "\n".join(out)


def save_plot(result: CalibrationResult, data: DoseData, path: str) -> None:
    """Measured and fitted disc diameter against fluence (reported definition), one colour per pulse count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fabplan.beam.base import fluence_definition_short

    beam = result.beam()
    f = result.peak_fluence_mj_cm2 / result.peak_over_fluence  # in the reported definition
    fig, (ax, axr) = plt.subplots(
        2, 1, figsize=(6.4, 6.4), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    fmax = float(np.nanmax(f)) * 1.3
    for i, n in enumerate(np.unique(data.pulses)):
        c = f"C{i % 10}"
        sel = data.pulses == n
        on = sel & data.ablated
        ax.plot(f[on], data.diameter_um[on], "o", color=c, label=f"N = {n}")
        off = sel & ~data.ablated
        if np.any(off):
            ax.plot(f[off], np.zeros(off.sum()), "x", color=c)
        fth = float(beam.threshold_mj_cm2(int(n)))
        grid = np.geomspace(fth * 1.0001, max(fmax, fth * 1.5), 300)
        ax.plot(grid, beam.disc_diameter_um(grid, int(n)), "-", color=c)
        axr.plot(f[on], result.residual_um[on], "o", color=c)
    ax.set_xscale("log")
    axr.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylabel("disc diameter (um)")
    v = result.values
    ax.set_title(
        f"{result.model}: F_th(1) = {v['threshold_fluence_mj_cm2']:.3g} mJ/cm^2 ({result.fluence_definition}), "
        f"S = {v['incubation_exponent']:.3g}"
        + (f", ring {v['ring_diameter_um']:.3g} um" if "ring_diameter_um" in v else "")
    )
    ax.legend(title="x: not ablated")
    axr.axhline(0.0, color="k", lw=0.8)
    axr.set_xlabel(f"{fluence_definition_short({'name': result.fluence_definition})} (mJ/cm^2)")
    axr.set_ylabel("fit - measured (um)")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise UserError(f"cannot write plot {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit ablation threshold / incubation (and ring size) to a measured dose matrix",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("measured", metavar="MEASURED.csv", help="dose matrix: dose, pulses, diameter_um per site")
    p.add_argument(
        "--beam", choices=["lg01", "annular"], default=None, help="beam model (default lg01, or the design's)"
    )
    p.add_argument(
        "--design",
        metavar="DESIGN.yaml",
        help="take the annular mask geometry, wavelength and damage fluence from this design",
    )
    p.add_argument(
        "--ring-diameter",
        metavar="D",
        help="LG01: hold the ring diameter (2 r_p) fixed, e.g. '12 um' (else fitted)",
    )
    p.add_argument(
        "--inner-diameter", metavar="D", help="annular: inner mask edge in the focal plane, e.g. '10 um'"
    )
    p.add_argument("--outer-diameter", metavar="D", help="annular: outer mask edge in the focal plane")
    p.add_argument("--na", metavar="NA", help="annular: objective NA (e.g. 0.32)")
    p.add_argument("--wavelength", metavar="LAMBDA", help="annular: laser wavelength (default 515 nm)")
    p.add_argument(
        "--incubation-exponent", metavar="S", help="hold S fixed at this value instead of fitting it"
    )
    p.add_argument(
        "--damage-fluence",
        metavar="F",
        help="damage fluence to write into the beam block (not fitted; in the reported fluence definition)",
    )
    p.add_argument(
        "--fluence-definition",
        metavar="DEF",
        help="what the CSV's fluence doses are: peak (default: the maximum of F(r)), ring-fwhm-average or "
        "geometric-annulus (annular beam); for rows without a fluence_definition cell. Converted with the "
        "beam model; the result is reported in the design's definition (--design), else in this one",
    )
    p.add_argument(
        "--diameter-noise",
        choices=["relative", "absolute"],
        default="relative",
        help="measurement noise of the diameters: relative (default: SEM/optical sizing error scales with D, "
        "and an unweighted fit gave 1-sigma errors 1.15-1.58x too small) or absolute (same error in um)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--plot", metavar="PNG", help="save a plot of the fit to this file")
    p.set_defaults(func=_handler)
