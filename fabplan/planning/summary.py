"""Human and JSON summaries of a Plan (what `fabplan plan` prints)."""

from __future__ import annotations

from typing import Any

from fabplan.planning.plan import Plan


def plan_summary(plan: Plan) -> dict[str, Any]:
    """The numbers a user checks before a run, JSON-able."""
    h = plan.header
    return {
        "design_name": h["design_name"],
        "mode": h["mode"],
        "n_discs": h.get("n_discs", h["n_shots"]),
        "n_shots": h["n_shots"],
        "n_lines": h.get("n_lines", 0),
        "ordering": h.get("ordering"),
        "attenuator_grouping": h.get("attenuator_grouping", False),
        "path_length_um": h["path_length_um"],
        "path_lower_bound_um": h["path_lower_bound_um"],
        "lower_bound_method": h.get("lower_bound_method"),
        "path_ratio": h.get("path_ratio"),
        "estimate": h["estimate"],
        "travel": h["travel"],
        "plan_hash": h["plan_hash"],
        "design_hash": h["design_hash"],
        "warnings": list(h.get("warnings", [])),
        "fluence_definition": h.get("fluence_definition"),
    }


def format_duration(seconds: float) -> str:
    s = float(seconds)
    if s < 60:
        return f"{s:.2f} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{int(m)} min {s:04.1f} s"
    h, m = divmod(m, 60)
    return f"{int(h)} h {int(m):02d} min {int(s):02d} s"


def format_plan_summary(s: dict[str, Any]) -> str:
    e = s["estimate"]
    ratio = s.get("path_ratio")
    lines = [
        f"plan for {s['design_name']!r}: {s['n_discs']} discs, {s['n_shots']} shots, mode {s['mode']}"
        + (f" ({s['n_lines']} fly lines)" if s["mode"] == "fly" else ""),
        f"ordering: {s['ordering']}"
        + (", grouped by attenuator setting" if s["attenuator_grouping"] else ""),
        f"path length: {s['path_length_um'] / 1000:.3f} mm; lower bound {s['path_lower_bound_um'] / 1000:.3f} mm"
        + (f" (x{ratio:.3f}; {s['lower_bound_method']})" if ratio else f" ({s['lower_bound_method']})"),
        f"estimated time: {format_duration(e['total_s'])}",
        f"  moves {format_duration(e['moves_s'])}, settle {format_duration(e['settle_s'])}, "
        f"pulses {format_duration(e['pulses_s'])}, attenuator {format_duration(e['attenuator_s'])}, "
        f"turnarounds {format_duration(e['turnarounds_s'])}",
        "stage travel used: " + ", ".join(f"{k} [{v[0]:.1f}, {v[1]:.1f}] um" for k, v in s["travel"].items()),
        f"plan hash: {s['plan_hash']}",
    ]
    if s.get("fluence_definition"):
        from fabplan.beam.base import format_fluence_definition

        lines.insert(-1, f"fluence: {format_fluence_definition(s['fluence_definition'])}")
    lines += [f"warning: {w}" for w in s.get("warnings", [])]
    return "\n".join(lines)
