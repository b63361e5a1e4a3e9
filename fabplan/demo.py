"""`fabplan demo`: the whole experiment on one machine with no hardware.

design -> validate -> plan -> preview -> dry-run fabrication through the real drivers against the
emulators -> simulated lasing measurements of the discs that were fired -> logbook -> fits -> report,
then a short summary of where everything is. Each step is the same code a user runs by hand; the
demo only strings them together and checks each one succeeded before going on.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fabplan.errors import UserError


@dataclass
class DemoResult:
    out_dir: Path
    artefacts: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run_demo(out_dir: str | Path, design_path: str | Path | None = None, *, fresh: bool = True) -> DemoResult:
    """Run every stage of the product on `design_path` into `out_dir`; by default the shipped
    demo_array: the paper's 10 um disc among 6-14 um discs, so every figure has something to compare."""
    from fabplan.shipped import shipped_design

    design_path = Path(design_path) if design_path else shipped_design("demo_array")  # ships in the wheel
    if not design_path.is_file():
        raise UserError(f"{design_path}: design not found (pass --design FILE)")
    out = Path(out_dir)
    if fresh and out.exists():
        if not (out / "demo-summary.json").exists() and any(out.iterdir()):
            raise UserError(f"{out}: exists and is not a previous demo output; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    res = DemoResult(out)
    a = res.artefacts
    t_start = time.perf_counter()

    _step(f"1/6 validate {design_path}")
    design, discs = _validate(design_path)

    _step("2/6 plan")
    a["plan"] = str(out / "plan")
    plan, beam = _plan(design, discs, a["plan"])

    _step("3/6 preview")
    a["preview"] = str(out / "preview.png")
    _preview(design, discs, beam, plan, a["preview"])

    _step("4/6 dry-run fabrication: real drivers against the XPS + Pharos emulators")
    a["journal"] = str(out / "fabrication.jsonl")
    a["pulse_log"] = str(out / "pulses.csv")
    a["fabrication_report"] = str(out / "fabrication.png")
    _dry_run(design_path, a["journal"], a["pulse_log"], a["fabrication_report"])
    fired_ids, emulated_s, first_pulse_s = _fabricated(a["journal"], a["pulse_log"])

    _step("5/6 lasing measurements (simulated spectrometer) -> logbook -> threshold fits")
    results = _measure_and_fit(out, a, design_path, plan, fired_ids)

    _step("6/6 summary")
    res.summary = _summary(design, plan, fired_ids, emulated_s, results, time.perf_counter() - t_start)
    res.summary["emulated_before_first_pulse_s"] = first_pulse_s
    (out / "demo-summary.json").write_text(json.dumps({"artefacts": a, **res.summary}, indent=2, default=str))
    a["summary"] = str(out / "demo-summary.json")
    print(format_summary(res))
    return res


def _validate(design_path: Path):
    """Load, expand and layout-check the design (what `fabplan validate` does first); print its summary."""
    from fabplan.design import expand, load_design
    from fabplan.design.layout import layout_problems
    from fabplan.design.summary import design_summary, format_summary
    from fabplan.errors import ProblemsError

    design = load_design(design_path)
    discs = expand(design)
    problems = layout_problems(design, discs)
    if problems:
        raise ProblemsError(problems)
    print(format_summary(design_summary(design, discs)))
    return design, discs


def _plan(design, discs, plan_dir: str):
    """Plan (shot verification included: a violation stops the demo) and save it, as `fabplan plan`."""
    from fabplan.beam import make_beam
    from fabplan.planning import build_plan
    from fabplan.planning.summary import format_plan_summary, plan_summary

    beam = make_beam(design)
    plan = build_plan(design, discs=discs, beam=beam)
    plan.save(plan_dir)
    print(format_plan_summary(plan_summary(plan)))
    return plan, beam


def _preview(design, discs, beam, plan, path: str) -> None:
    from fabplan.export.preview import render_preview
    from fabplan.planning.shots import make_raw_shots

    render_preview(design, make_raw_shots(design, discs, beam), plan, path, color_by="diameter")
    print(f"wrote {path}")


def _dry_run(design_path: Path, journal: str, pulse_log: str, report: str) -> None:
    """The dry run session `fabplan dry-run` runs, with its summary and report figure."""
    from fabplan.execute.control import RunHooks
    from fabplan.execute.journal import read_journal
    from fabplan.execute.report import summary_lines, write_report
    from fabplan.execute.session import RunConfig, RunSession

    session = RunSession.dry_run(RunConfig(target=str(design_path), journal=journal, pulse_log=pulse_log))
    result = session.run(RunHooks(progress_bar=True))
    for line in summary_lines(result, result.dry_run["emulated_duration_s"], dry_run=True):
        print(line)
    write_report(report, read_journal(result.journal_path), session.plan, pulse_log=pulse_log)
    if result.status != "completed" or result.summary()["out_of_tolerance"]["shots"]:
        raise UserError(f"demo dry run ended {result.status}: {result.message}")


def _fabricated(journal: str, pulse_log: str) -> tuple[list[str], float, float]:
    """(fired disc ids, emulated time of the last pulse, of the first pulse: homing + approach)."""
    from fabplan.execute.pulselog import read_pulse_log
    from fabplan.lab.records import read_journal_shots

    _header, shots = read_journal_shots(Path(journal))
    fired = sorted(d for d, s in shots.items() if s.get("state") == "fired")
    pulses = read_pulse_log(pulse_log)
    if not len(pulses):
        return fired, 0.0, 0.0
    return fired, float(pulses[-1, 0]), float(pulses[0, 0])


def _measure_and_fit(out: Path, a: dict, design_path: Path, plan, fired_ids: list[str]) -> list:
    from fabplan import lab

    shots = plan.shots
    diameter = dict(zip(shots.disc_id.tolist(), shots.diameter_um.tolist(), strict=True))
    a["spectra"] = str(out / "spectra")
    a["lab_db"] = str(out / "lab.sqlite")
    a["lab_report"] = str(out / "report")
    manifest = lab.simulate_series({d: diameter[d] for d in fired_ids}, a["spectra"], seed=1)
    con = lab.open_db(a["lab_db"])
    try:
        lab.register_design(con, design_path)
        lab.import_journal(con, a["journal"])
        counts = lab.import_manifest(con, manifest)
        print(f"imported {counts}")
        results = lab.fit_all(con)
        written = lab.report(con, a["lab_report"], max_disc_figures=3)  # ~1 s each; overview.png has every disc
        print(f"report: {written['out']} ({written['disc_figures']} disc figure(s), "
              f"{len(written['array_figures'])} array figure(s), table {written['table_csv']})")
    finally:
        con.close()
    return results


def _summary(design, plan, fired_ids, emulated_s, results, wall_s) -> dict[str, Any]:
    from fabplan.wgm import annotate_diameters

    shots = plan.shots
    fired = np.isin(shots.disc_id, np.asarray(fired_ids, dtype=shots.disc_id.dtype))
    _fsr, n_modes, single = annotate_diameters(shots.diameter_um, thickness_nm=design.sample.film.thickness)
    lasing = [r for r in results if r.has_threshold]
    return {
        "design": design.name,
        "discs_planned": int(len(shots)),
        "discs_made": int(fired.sum()),
        "estimated_real_duration_s": float(plan.header.get("estimate", {}).get("total_s", float("nan"))),
        "estimated_attenuator_s": float(plan.header.get("estimate", {}).get("attenuator_s", 0.0)),
        "emulated_duration_s": emulated_s,
        "measured_series": len(results),
        "thresholds_found": len(lasing),
        "thresholds_uj_cm2": {r.disc_id: round(float(r.threshold_uj_cm2), 2) for r in lasing},
        "no_threshold": sorted(r.disc_id for r in results if not r.has_threshold),
        "single_mode_discs": sorted(shots.disc_id[single & fired].tolist()),
        "modes_in_window": {str(d): int(n) for d, n in zip(shots.disc_id[:20], n_modes[:20], strict=True)},
        "demo_wall_s": round(wall_s, 1),
    }


def format_summary(res: DemoResult) -> str:
    s, a = res.summary, res.artefacts
    lines = [
        f"design {s['design']!r}: {s['discs_made']} of {s['discs_planned']} disc(s) made; "
        f"estimated real duration {s['estimated_real_duration_s']:.2f} s first to last shot (of which "
        f"{s.get('estimated_attenuator_s', 0.0):.2f} s attenuator moves, instant in the emulator), emulated "
        f"{s['emulated_duration_s']:.2f} s (of which {s.get('emulated_before_first_pulse_s', 0.0):.2f} s homing and "
        "approach before the first pulse)",
        f"lasing: {s['thresholds_found']} of {s['measured_series']} measured disc(s) show a threshold"
        + (
            " (" + ", ".join(f"{k} {v:g} uJ/cm^2" for k, v in list(s["thresholds_uj_cm2"].items())[:5]) + ")"
            if s["thresholds_uj_cm2"]
            else ""
        ),
        "single-mode (predicted): " + (", ".join(s["single_mode_discs"][:10]) or "none"),
        "artefacts:",
    ]
    width = max(len(k) for k in a)
    lines += [f"  {k:<{width}}  {v}" for k, v in a.items()]
    return "\n".join(lines)
