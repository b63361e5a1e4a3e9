"""End-of-run summary text and the `--report report.png` figure (from the journal, not from memory,
so a report can be made for any journal, including one from a crashed run)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from fabplan.execute.journal import FIRED, UNCERTAIN, JournalState


def placement_errors_nm(state: JournalState, plan) -> np.ndarray:
    """|encoder - target| of every fired shot with a recorded encoder position, nm."""
    s = plan.shots
    fired = state.fired
    enc = state.encoder[fired]
    ok = np.isfinite(enc[:, 0])
    fired, enc = fired[ok], enc[ok]
    tgt = np.column_stack([s.x_um[fired], s.y_um[fired], s.z_um[fired]])
    enc_z = np.where(np.isfinite(enc[:, 2]), enc[:, 2], tgt[:, 2])
    d = np.sqrt((enc[:, 0] - tgt[:, 0]) ** 2 + (enc[:, 1] - tgt[:, 1]) ** 2 + (enc_z - tgt[:, 2]) ** 2)
    return d * 1e3


def _fmt_s(t: float) -> str:
    if not math.isfinite(t):
        return "n/a"
    if t < 120:
        return f"{t:.1f} s"
    if t < 7200:
        return f"{t / 60:.1f} min"
    return f"{t / 3600:.2f} h"


def summary_lines(result, sim_time_s: float | None = None, dry_run: bool = False) -> list[str]:
    """Human summary of a session (fired, skipped, uncertain, failed, duration vs estimate)."""
    s = result.summary()
    c = s["journal_counts"]
    lines = [
        f"{result.status}: {result.message}",
        f"  fired this session {s['fired_this_session']}, failed {s['failed']}, "
        f"skipped uncertain {s['skipped_uncertain']}, not selected {s['not_selected']}",
        f"  journal: fired {c.get('fired', 0)}, uncertain {c.get('uncertain', 0)}, pending {c.get('pending', 0)}"
        + (f", FIRED TWICE {c['double_fired']}" if c.get("double_fired") else ""),
    ]
    if result.uncertain_ids:
        from fabplan.errors import summarize_ids

        lines.append(f"  uncertain (intent without confirmation, not refired): {summarize_ids(result.uncertain_ids)}")
    pe = s["placement_error_nm"]
    if pe:
        lines.append(f"  placement error: median {pe['median']:.1f} nm, p99 {pe['p99']:.1f} nm, max {pe['max']:.1f} nm")
    oot = s.get("out_of_tolerance") or {}
    if oot.get("shots"):
        from fabplan.errors import summarize_ids

        lines.append(f"  OUT OF TOLERANCE: {oot['shots']} fired shot(s) in {oot['rows']} row(s) (lines "
                     f"{', '.join(str(x) for x in oot['lines'][:10])}) beyond {oot['tolerance_nm']:g} nm: "
                     f"{summarize_ids(result.stats.out_of_tolerance_ids)}")
    if oot.get("warned_shots"):
        lines.append(f"  warning: {oot['warned_shots']} shot(s) of the first row (line "
                     f"{', '.join(str(x) for x in oot['warned_lines'])}), fired before the trigger lead was measured, "
                     f"beyond {oot['tolerance_nm']:g} nm but within 1.5x tolerance")
    if s["rows_out_of_tolerance"]:
        lines.append(f"  rows flagged (missing/extra pulses or out of tolerance): {s['rows_out_of_tolerance']} "
                     f"(lines {', '.join(str(r['line']) for r in result.stats.flagged_rows[:10])})")
    dry = getattr(result, "dry_run", None)
    if dry and "emulated_first_to_last_pulse_s" in dry:
        lines += _dry_run_duration_lines(result, dry, s["not_selected"])
    else:
        dur = f"  duration {_fmt_s(result.wall_s)} (wall)"
        if sim_time_s is not None and math.isfinite(sim_time_s):
            dur += f", {_fmt_s(sim_time_s)} emulated"
        dur += f"; estimated real duration {_fmt_s(result.estimate_s)}"
        approach = float((getattr(result, "estimate_parts_s", None) or {}).get("approach_s", 0.0))
        if approach > 0:
            dur += f" (a {_fmt_s(approach)} approach from the stage's position included)"
        plan_est = getattr(result, "plan_estimate_s", math.nan)
        if _subset(plan_est, result.estimate_s - approach):
            dur += f" for this session's shots only (whole plan {_fmt_s(plan_est)})"
        lines.append(dur)
    lines.append(f"  journal {result.journal_path}")
    if result.status in ("paused", "stopped", "failed"):
        lines.append(f"  resume with: fabplan {'dry-run' if dry_run else 'run'} --resume {result.journal_path}"
                     + (" (fresh emulators carry on from the journal)" if dry_run else ""))
    return lines


def _subset(plan_estimate_s: float, session_s: float) -> bool:
    """The session's estimate (approach left out) is not the whole plan's: it fires a part of it."""
    return math.isfinite(plan_estimate_s) and abs(plan_estimate_s - session_s) > 1e-6 * max(1.0, plan_estimate_s)


def _dry_run_duration_lines(result, dry: dict, not_selected: int) -> list[str]:
    """A dry run's three times, each saying what it covers, so that they can be compared.

    The estimate is the session's own (what it fired: its selection, less shots already done), from
    the stage's position after pre-flight to the last shot (the approach, moves, settle, pulses,
    attenuator moves; not homing). The emulated time runs from the emulated lab's start, so it also
    holds homing and pre-flight: only its first-to-last-pulse part compares with the estimate, less
    the approach and the attenuator moves (the emulated attenuator moves instantly). At a finite
    speedup the emulated clock is wall time x speedup, so the host's own time counts that many-fold."""
    est = dry.get("estimate_parts_s") or {}
    total = float(est.get("total_s", result.estimate_s if result.estimate_s is not None else math.nan))
    att = float(est.get("attenuator_s", 0.0))
    approach = float(est.get("approach_s", 0.0))
    before, span = dry["emulated_before_first_pulse_s"], dry["emulated_first_to_last_pulse_s"]
    speedup = float(dry.get("speedup", math.inf))
    lines = [f"  duration {_fmt_s(result.wall_s)} wall (executor, first command to last shot)"]
    lines.append(f"  emulated {_fmt_s(dry['emulated_duration_s'])} = {_fmt_s(before)} before the first pulse "
                 f"(homing, approach, pre-flight) + {_fmt_s(span)} first to last pulse")
    est_line = f"  estimated real duration {_fmt_s(total - approach)} first to last shot"
    if att > 0:
        est_line += (f" = {_fmt_s(total - approach - att)} moves, settle and pulses + {_fmt_s(att)} attenuator "
                     "moves (not emulated: the emulated attenuator moves instantly)")
    if approach > 0:
        est_line += f", after a {_fmt_s(approach)} approach from the stage's position"
    plan_est = getattr(result, "plan_estimate_s", math.nan)
    if _subset(plan_est, total - approach):
        est_line += f"; for this session's shots only (whole plan {_fmt_s(plan_est)})"
    lines.append(est_line)
    if math.isinf(speedup):
        lines.append(f"  compare: estimated {_fmt_s(total - approach - att)} first to last shot without attenuator "
                     f"moves vs emulated {_fmt_s(span)} first to last pulse")
    else:
        lines.append(f"  note: at speedup {speedup:g} the emulated clock is wall time x {speedup:g}, so this host's "
                     "own time (lab start, command round trips) counts that many-fold; emulated times compare "
                     "with the estimate only at speedup inf")
    return lines


def _emulated_pulse_times(pulse_log: str | Path) -> tuple[np.ndarray, list[float]]:
    """Pulse times of a dry run on one clock: its first pulse log and the logs of resumed sessions
    (NAME.pulses.csv, NAME.pulses-2.csv, ...), each later one shifted to start where the one before
    ended. Returns (sorted times, start times of the resumed sessions)."""
    import re

    from fabplan.execute.pulselog import read_pulse_log

    given = Path(pulse_log)
    base = re.sub(r"-\d+$", "", given.stem)
    logs = [given.with_name(f"{base}{given.suffix}")]
    k = 2
    while given.with_name(f"{base}-{k}{given.suffix}").is_file():
        logs.append(given.with_name(f"{base}-{k}{given.suffix}"))
        k += 1
    parts, starts, end = [], [], 0.0
    for i, log in enumerate(p for p in logs if p.is_file()):
        t = np.sort(read_pulse_log(log)[:, 0])
        if not len(t):
            continue
        if i and parts:
            t = t - t[0] + end
            starts.append(float(t[0]))
        parts.append(t)
        end = float(t[-1])
    return (np.concatenate(parts) if parts else np.empty(0)), starts


def write_report(path: str | Path, state: JournalState, plan, title: str = "",
                 pulse_log: str | Path | None = None) -> dict[str, Any]:
    """Three panels: placement error histogram, map of the discs by state, timeline of firing.

    The timeline is in fabrication time: the journal's clock for a real run, the emulator's clock
    (`pulse_log`, the dry run's pulse log) for a dry run, whose wall time says nothing about the run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fabplan.plotting import fraction_map, integer_counts, legend_clear, sample_map, span_limits

    s = plan.shots
    err = placement_errors_nm(state, plan)
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    ax = axes[0]
    if len(err):
        tol = state.header.get("position_tolerance_um")
        top = max(float(err.max()), float(tol) * 1e3 if tol else 0.0) * 1.05
        ax.hist(err, bins=np.linspace(0.0, top, min(100, max(20, int(np.sqrt(len(err))))) + 1), color="tab:blue")
        p99 = float(np.percentile(err, 99))
        ax.axvline(p99, color="k", ls="--", label=f"p99 {p99:.1f} nm")
        if tol:
            ax.axvline(float(tol) * 1e3, color="tab:red", label=f"tolerance {float(tol) * 1e3:.0f} nm")
        integer_counts(ax.yaxis)
        legend_clear(ax)
    else:
        ax.text(0.5, 0.5, "no encoder positions recorded", ha="center", transform=ax.transAxes)
    ax.set_xlabel("placement error |recorded position - target| (nm)\n(step: encoder at firing; fly: pulse read-back)")
    ax.set_ylabel("shots")
    ax.set_title("placement error")

    ax = axes[1]
    colors = {FIRED: "tab:green", UNCERTAIN: "tab:orange"}
    n = len(s)
    size = max(0.05, min(20.0, 2e4 / max(n, 1)))
    pending = state.state == 0
    if pending.any() and n <= 20_000:  # above that, the fraction map below shows what is pending
        sample_map(ax, s.sample_x_um[pending], s.sample_y_um[pending], color="lightgrey", size=size,
                   label=f"pending {pending.sum()}")
    for st, col in colors.items():
        m = state.state == st
        if m.any():
            if st == FIRED and n > 20_000:  # binned: 250,000 markers say nothing more than a fraction per bin
                mesh = fraction_map(ax, s.sample_x_um, s.sample_y_um, m)
                fig.colorbar(mesh, ax=ax, fraction=0.046, pad=0.02).set_label(
                    f"fraction of discs fired per bin ({m.sum():,} of {n:,})")
                continue
            ax.scatter(s.sample_x_um[m], s.sample_y_um[m], s=size if st == FIRED else size * 4 + 4, c=col,
                       label=f"{'fired' if st == FIRED else 'uncertain'} {m.sum():,}", rasterized=True, linewidths=0)
    twice = state.fire_count > 1
    if twice.any():
        ax.scatter(s.sample_x_um[twice], s.sample_y_um[twice], s=30, c="red", marker="x", label=f"fired twice {twice.sum()}")
    trench = float(np.nanmax(s.trench_outer_um)) if n and np.isfinite(s.trench_outer_um).any() else 10.0
    span_limits(ax, s.sample_x_um, s.sample_y_um, min_span_um=4 * trench)
    ax.set_xlabel("x (um, sample)")
    ax.set_ylabel("y (um, sample)")
    ax.set_title("discs")
    legend_clear(ax, fontsize=8)

    ax = axes[2]
    t, starts = _emulated_pulse_times(pulse_log) if pulse_log is not None else (np.empty(0), [])
    if len(t):
        ax.step(np.r_[0.0, t - t[0]], np.arange(len(t) + 1), where="post", lw=1,
                marker="o" if len(t) <= 50 else None, ms=3)
        for i, t_resume in enumerate(starts):  # a resumed dry run: each session's emulators start at zero
            ax.axvline(t_resume - t[0], color="tab:purple", lw=0.8, ls=":", label="resume" if i == 0 else None)
        ax.set_xlabel("emulated fabrication time since first pulse (s)")
        ax.set_ylabel("pulses fired (emulator's pulse log)")
    else:
        t = state.t_fired
        ok = np.isfinite(t)
        if ok.any():
            t0 = np.nanmin(t)
            order = np.argsort(t[ok])
            ax.step(np.r_[0.0, t[ok][order] - t0], np.arange(ok.sum() + 1), where="post", lw=1,
                    marker="o" if ok.sum() <= 50 else None, ms=3)
            for ev in state.events:
                if ev.get("what") in ("pause", "error") and ev.get("t"):
                    ax.axvline(float(ev["t"]) - t0, color="tab:orange", lw=0.8)
            for i, sess in enumerate(state.sessions[1:], 1):
                if sess.get("t"):
                    ax.axvline(float(sess["t"]) - t0, color="tab:purple", lw=0.8, ls=":",
                               label="resume" if i == 1 else None)
        ax.set_xlabel("fabrication time since first shot (s)")
        ax.set_ylabel("shots fired")
    ax.set_xlim(left=0.0)
    ax.set_ylim(bottom=0.0)
    integer_counts(ax.yaxis)
    ax.set_title("timeline")
    if len(state.sessions) > 1:
        legend_clear(ax)
    fig.suptitle(title or f"{state.header.get('design_name', '')} run {state.header.get('run_id', '')}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return {"placement_error_p99_nm": float(np.percentile(err, 99)) if len(err) else None, "path": str(path)}
