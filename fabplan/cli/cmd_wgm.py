"""`fabplan wgm`: whispering-gallery-mode estimates for a disc, the slab alone, or a diameter sweep."""

from __future__ import annotations

import argparse

import numpy as np

from fabplan.cli._output import print_json
from fabplan.errors import UserError
from fabplan.units import parse_kind


def _range(text: str, kind: str, what: str, n_parts: int) -> tuple[float, ...]:
    parts = [p for p in text.split(":")]
    if len(parts) != n_parts or not all(p.strip() for p in parts):
        form = "LO:HI" if n_parts == 2 else "START:STOP:STEP"
        raise UserError(f"{what} must be {form} (e.g. {'530nm:545nm' if n_parts == 2 else '2um:30um:0.5um'}), "
                        f"got {text!r}")
    return tuple(parse_kind(p, kind) for p in parts)


def _outside(text: str) -> str | float:
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        return t


def _common(args: argparse.Namespace) -> dict:
    thickness = parse_kind(args.thickness, "wavelength_nm")
    scale = parse_kind(args.index_scale, "dimensionless")
    return dict(thickness_nm=thickness, material=args.material, substrate=args.substrate,
                polarization=args.polarization, index_scale=scale)


def _fmt_q(q: float) -> str:
    return f"{q:.0f}" if q < 1e5 else f"{q:.1e}"


def _slab(args: argparse.Namespace) -> int:
    from fabplan.wgm import estimate_slab

    common = _common(args)
    wl = parse_kind(args.wavelength, "wavelength_nm")
    s = estimate_slab(wavelength_nm=wl, order=args.order, **common)
    out = {"wavelength_nm": s.wavelength_nm, "thickness_nm": s.thickness_nm, "polarization": s.polarization,
           "order": s.order, "n_eff": s.n_eff, "n_group": s.n_group, "confinement": s.confinement,
           "n_film": s.n_film, "n_substrate": s.n_substrate, "n_cover": s.n_cover}
    if args.json:
        print_json(out)
        return 0
    print(f"slab {s.polarization.upper()}{s.order}: {s.thickness_nm:g} nm {args.material} on {args.substrate}, "
          f"{s.wavelength_nm:g} nm")
    print(f"  film / substrate / cover index  {s.n_film:.4f} / {s.n_substrate:.4f} / {s.n_cover:.4f}")
    print(f"  effective index N               {s.n_eff:.4f}")
    print(f"  group index n_g                 {s.n_group:.3f}  (material dispersion included)")
    print(f"  confinement in film             {s.confinement:.3f}")
    return 0


def _disc(args: argparse.Namespace) -> int:
    from fabplan.physics.lasing import predict_threshold
    from fabplan.wgm import estimate_disc, mode_uncertainty

    common = _common(args)
    d_um = parse_kind(args.diameter, "length_um")
    window = _range(args.window, "wavelength_nm", "--window", 2)
    t_sd = parse_kind(args.thickness_sd, "wavelength_nm")
    n_sd = parse_kind(args.index_sd, "dimensionless")
    rough = parse_kind(args.roughness, "wavelength_nm")
    spot = parse_kind(args.spot_fwhm, "length_um")
    if t_sd < 0 or n_sd < 0 or rough < 0 or spot <= 0:
        raise UserError("--thickness-sd, --index-sd and --roughness must be >= 0 and --spot-fwhm > 0")
    outside = _outside(args.outside)
    r = estimate_disc(d_um, outside=outside, window_nm=window, max_radial_order=args.radial_orders,
                      q_min=args.q_min, **common)
    # Leakage into the substrate: the lateral outside of a disc on glass is air above glass; the
    # substrate index bounds the leak (air alone gives Q_rad 1e37-1e47 at D = 10 um).
    on_substrate = isinstance(outside, str) and outside.lower() == "substrate"
    rs = r if on_substrate else estimate_disc(d_um, outside="substrate", window_nm=window,
                                              max_radial_order=args.radial_orders, q_min=args.q_min, **common)
    q_sub = {(md.m, md.radial_order): md.q_rad for md in rs.modes}
    unc = mode_uncertainty(r, t_sd, n_sd, common["material"], common["substrate"], outside, common["index_scale"])
    pred = predict_threshold(d_um, common["thickness_nm"], common["material"], common["substrate"],
                             roughness_nm=rough, spot_fwhm_um=spot, index_scale=common["index_scale"])
    if args.json:
        d = r.to_dict()
        for md, sd in zip(d["modes"], unc.wavelength_sd_nm, strict=True):
            md["wavelength_sd_nm"] = sd
            md["q_rad_substrate"] = q_sub.get((md["m"], md["radial_order"]), float("nan"))
        d["uncertainty"] = unc.to_dict()
        p = pred.to_dict()
        p.pop("modes")
        d["predicted_threshold"] = p
        print_json(d)
        return 0
    c = 0.5 * (window[0] + window[1])
    print(f"disc D = {r.diameter_um:g} um, {r.thickness_nm:g} nm {args.material} on {args.substrate}, "
          f"outside n = {r.n_outside:.3f}, slab {r.polarization.upper()}0 -> {r.family} family")
    print(f"  at {c:g} nm: N = {r.n_eff:.4f}, n_g = {r.n_group:.3f}, confinement = {r.confinement:.3f}")
    print(f"  FSR at {c:g} nm: {r.fsr_nm:.3f} +- {unc.fsr_sd_nm:.3f} nm  "
          f"(lambda^2/(pi D n_g) = {r.fsr_estimate_nm:.3f} nm)")
    print(f"  {'m':>5} {'radial':>6} {'lambda (nm)':>18} {'Q_rad':>10} {'Q_rad,sub':>10} {'Q_abs*':>8}")
    for md, sd in zip(r.modes, unc.wavelength_sd_nm, strict=True):
        flag = "" if md.q_rad >= r.q_min else "  (below Q_min)"
        qs = q_sub.get((md.m, md.radial_order), float("nan"))
        print(f"  {md.m:>5d} {md.radial_order:>6d} {md.wavelength_nm:>10.2f} +-{sd:>5.2f} {_fmt_q(md.q_rad):>10} "
              f"{_fmt_q(qs) if qs == qs else '-':>10} {_fmt_q(md.q_abs):>8}{flag}")
    verdict = "single-mode" if r.single_mode else ("no mode" if r.n_modes_in_window == 0 else "multimode")
    print("  * Q_abs: absorption of the unpumped film, n_g N / (2 n_f Gamma k); gain bleaches it above threshold")
    print(f"  +- : 1 sigma from film thickness +-{t_sd:g} nm and index +-{100 * n_sd:g} %. {unc.note}.")
    print(f"  {r.n_modes_in_window} mode(s) with Q >= {r.q_min:g} in {window[0]:g}-{window[1]:g} nm: {verdict}")
    if pred.lasing_possible:
        print(f"  predicted lasing threshold: {pred.threshold_peak_uj_cm2:.1f} uJ/cm^2 peak fluence of a "
              f"{spot:g} um FWHM Gaussian pump spot ({pred.threshold_local_uj_cm2:.1f} at the disc rim, "
              f"{pred.threshold_fwhm_average_uj_cm2:.1f} as E/(pi (FWHM/2)^2))")
        print(f"    mode {pred.wavelength_nm:.2f} nm: Q = {pred.q_cavity:.0f} (radiation into substrate "
              f"{_fmt_q(pred.q_rad)}, sidewall scattering {_fmt_q(pred.q_scat)} at {rough:g} nm roughness), "
              f"threshold modal gain {pred.modal_gain_th_cm:.0f} /cm, N = {pred.carriers_th_cm3:.3g} /cm^3, "
              f"pump absorbed {100 * pred.pump_absorbed:.0f} % at 515 nm ({pred.gain_model})")
    else:
        print("  predicted lasing threshold: none (cavity loss exceeds the saturated gain sigma N_s, or the film "
              "does not absorb the pump)")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from fabplan.wgm import sweep

    common = _common(args)
    start, stop, step = _range(args.sweep, "length_um", "--sweep", 3)
    if step <= 0 or stop < start or start <= 0:
        raise UserError("--sweep needs 0 < START <= STOP and STEP > 0")
    if (stop - start) / step > 20000:
        raise UserError("--sweep: more than 20000 diameters; use a larger step")
    d = start + step * np.arange(int(np.floor((stop - start) / step + 1e-9)) + 1)
    window = _range(args.window, "wavelength_nm", "--window", 2)
    s = sweep(d, outside=_outside(args.outside), window_nm=window, max_radial_order=args.radial_orders,
              q_min=args.q_min, **common)
    if args.plot:
        _plot(s, args.plot)
    if args.json:
        print_json(s.to_dict())
        return 0
    print(f"sweep {d[0]:g}-{d[-1]:g} um ({d.size} discs), window {window[0]:g}-{window[1]:g} nm; "
          f"single-mode (FSR > window) below D = {s.single_mode_limit_um:.3f} um")
    print(f"  {'D (um)':>8} {'FSR (nm)':>9} {'modes':>6} {'Q_rad':>10}")
    for i in range(d.size):
        print(f"  {d[i]:>8.3f} {s.fsr_nm[i]:>9.3f} {s.n_modes[i]:>6d} {_fmt_q(s.q_rad[i]):>10}")
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def _design(args: argparse.Namespace) -> int:
    """Per-disc annotation of a design: diameters as planned (nominal, or predicted by the beam model
    for discs given by fluence), film and substrate from the design's sample."""
    from fabplan.beam import make_beam
    from fabplan.design import expand, load_design
    from fabplan.planning.shots import make_raw_shots
    from fabplan.wgm.design import design_wgm_summary, format_wgm_summary, public

    design = load_design(args.design)
    discs = expand(design)
    beam = make_beam(design.beam, design.laser, base_dir=design.path.parent if design.path else None)
    diam = np.asarray(make_raw_shots(design, discs, beam).diameter_um, dtype=float)
    window = _range(args.window, "wavelength_nm", "--window", 2)
    s = design_wgm_summary(design, diam, ids=lambda idx: discs.take(idx).ids, window_nm=window)
    per = s.get("_per_disc")
    groups = []
    if per is not None:
        key = np.round(diam, 3)
        for d_um in np.unique(key[np.isfinite(key)]):
            sel = key == d_um
            i = int(np.argmax(sel))
            groups.append({"diameter_um": float(d_um), "n_discs": int(sel.sum()), "fsr_nm": float(per["fsr_nm"][i]),
                           "n_modes": int(per["n_modes"][i]), "single_mode": bool(per["single_mode"][i])})
    if args.json:
        print_json({**public(s), "by_diameter": groups})
        return 0
    print(format_wgm_summary(s))
    if groups:
        print(f"  {'D (um)':>8} {'discs':>7} {'FSR (nm)':>9} {'modes':>6}")
        for g in groups:
            flag = "  single-mode" if g["single_mode"] else ""
            print(f"  {g['diameter_um']:>8.3f} {g['n_discs']:>7d} {g['fsr_nm']:>9.3f} {g['n_modes']:>6d}{flag}")
    return 0


def _plot(s, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(6.5, 8), sharex=True)
    ax = axes[0]
    ax.plot(s.diameter_um, s.fsr_nm, label="exact roots")
    ax.plot(s.diameter_um, s.fsr_estimate_nm, "--", lw=1, label=r"$\lambda^2/(\pi D n_g)$")
    ax.axhline(s.window_nm[1] - s.window_nm[0], color="grey", lw=0.8, ls=":", label="window width")
    ax.set_ylabel("FSR (nm)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    axes[1].step(s.diameter_um, s.n_modes, where="mid")
    axes[1].set_ylabel(f"modes in {s.window_nm[0]:g}-{s.window_nm[1]:g} nm")
    with np.errstate(divide="ignore"):
        axes[2].plot(s.diameter_um, np.log10(s.q_rad))
    axes[2].set_ylabel(r"log$_{10}$ Q$_{rad}$ (fundamental)")
    axes[2].set_xlabel("disc diameter (um)")
    lim = s.single_mode_limit_um
    if np.isfinite(lim) and s.diameter_um.min() <= lim <= s.diameter_um.max():
        for a in axes:
            a.axvline(lim, color="C3", lw=1)
        axes[0].annotate(f" single-mode below {lim:.2f} um", (lim, 0.98), xycoords=("data", "axes fraction"),
                         va="top", ha="left", color="C3", fontsize=8)
    else:
        where = "not found" if not np.isfinite(lim) else f"below {lim:.2f} um, outside the sweep"
        axes[0].text(0.99, 0.85, f"single-mode: {where}", transform=axes[0].transAxes, va="top", ha="right",
                     color="C3", fontsize=8, bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    fig.suptitle(f"{s.thickness_nm:g} nm film, slab {s.polarization.upper()}0")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except (OSError, ValueError) as exc:  # missing folder, or an extension matplotlib cannot write
        raise UserError(f"cannot write plot {path}: {getattr(exc, 'strerror', None) or exc}") from None
    finally:
        plt.close(fig)


def _handler(args: argparse.Namespace) -> int:
    modes = [bool(args.slab), args.sweep is not None, args.diameter is not None, args.design is not None]
    if sum(modes) != 1:
        raise UserError("give exactly one of --diameter D, --slab, --sweep START:STOP:STEP or --design FILE")
    if args.design is not None:
        return _design(args)
    if args.slab:
        return _slab(args)
    if args.sweep is not None:
        return _sweep(args)
    return _disc(args)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "wgm",
        help="whispering-gallery modes of a disc: resonances, FSR, Q, single-mode limit",
        description=(
            "Estimate whispering-gallery modes of a thin microdisc: slab effective index, group index and "
            "confinement, exact 2-D resonances (m, radial order, wavelength, radiative Q into air and into "
            "the substrate) and the FSR, with the film's material dispersion included; mode positions with "
            "1-sigma intervals from thickness and index uncertainty; the lasing threshold predicted from "
            "cavity loss, the paper's gain model and the pump absorption."
        ),
    )
    p.add_argument("--diameter", help="disc diameter, e.g. 10um")
    p.add_argument("--slab", action="store_true", help="slab results only (needs --wavelength)")
    p.add_argument("--sweep", metavar="START:STOP:STEP", help="diameter sweep, e.g. 2um:30um:0.5um")
    p.add_argument("--design", metavar="FILE",
                   help="annotate every disc of a design (film, substrate from the design; --window applies)")
    p.add_argument("--thickness", default="100nm", help="film thickness (default 100nm)")
    p.add_argument("--material", default="cspbbr3-ermolaev-o",
                   help="film: cspbbr3-ermolaev-o (default), cspbbr3-ermolaev-e, cspbbr3-brennan, a CSV "
                        "(wavelength,n,k) or a number")
    p.add_argument("--index-scale", default="1", help="multiply the film n,k (less dense films, e.g. 0.92)")
    p.add_argument("--substrate", default="fused-silica", help="substrate material (default fused-silica)")
    p.add_argument("--outside", default="air", help="index outside the disc rim: air, substrate or a number")
    p.add_argument("--window", default="530nm:545nm", help="gain window LO:HI (default 530nm:545nm)")
    p.add_argument("--wavelength", default="540nm", help="wavelength for --slab (default 540nm)")
    p.add_argument("--polarization", choices=("te", "tm"), default="te",
                   help="slab mode: te (in-plane E, disc H_z family; default) or tm (E_z family)")
    p.add_argument("--order", type=int, default=0, help="slab mode order for --slab (default 0)")
    p.add_argument("--radial-orders", type=int, default=1,
                   help="radial families to solve (default 1: the fundamental, which sets the FSR)")
    p.add_argument("--q-min", type=float, default=100.0,
                   help="count a mode in the window only if its radiative Q >= this (default 100)")
    p.add_argument("--thickness-sd", default="5nm",
                   help="with --diameter: 1-sigma film thickness uncertainty for the mode intervals (default 5nm)")
    p.add_argument("--index-sd", default="0.01",
                   help="with --diameter: 1-sigma relative film index uncertainty (default 0.01 = 1 %%)")
    p.add_argument("--roughness", default="25nm",
                   help="with --diameter: sidewall rms roughness for the scattering Q of the threshold "
                        "prediction (default 25nm; paper: < 50 nm)")
    p.add_argument("--spot-fwhm", default="20um",
                   help="with --diameter: pump spot FWHM for the predicted peak fluence (default 20um, paper)")
    p.add_argument("--plot", help="with --sweep: write FSR / mode count / Q vs D to this image")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_handler)
