"""Cross-field checks of a validated design, each located in the YAML file.

Pydantic checks each field on its own; these rules relate fields to each other (a sweep and a
shape, an alignment and the fiducials it names, a fluence limit and a threshold).
"""

from __future__ import annotations

import re

import numpy as np

from fabplan.design import models
from fabplan.design.yamlsource import YamlSource
from fabplan.errors import Problem

SKIP_PATTERN = re.compile(r"^(?:(?P<array>[A-Za-z0-9_.]+)-)?r(?P<row>\d+)c(?P<col>\d+)$")


# One disc, two specifications of its size: the planner would fire the fluence and silently drop the
# diameter (or the reverse), and outputs would disagree about which it used. Say so where it is written.
_BOTH = (
    "give a disc's diameter or its fluence, not both: with a diameter the planner finds the fluence "
    "that makes it; with a fluence the beam model predicts the diameter (shown by validate and plan)"
)


def sweep_counts(array: models.LatticeArray) -> tuple[int | None, int | None]:
    """Rows and cols implied by the sweep (None where that axis is not swept)."""
    sweep = array.sweep
    rows = cols = None
    if sweep and sweep.rows:
        rows = int(np.prod([len(v) for _, v in sweep.rows.parameters()])) * array.repeats
    if sweep and sweep.cols:
        cols = int(np.prod([len(v) for _, v in sweep.cols.parameters()]))
    return rows, cols


def lattice_shape(array: models.LatticeArray) -> tuple[int, int]:
    """Final (rows, cols): the given shape, else implied by the sweep (1 on an unswept axis)."""
    rows, cols = sweep_counts(array)
    if array.shape is not None:
        return array.shape
    return (rows or array.repeats, cols or 1)


def _check_lattice(a: models.LatticeArray, i: int, src: YamlSource) -> list[Problem]:
    out: list[Problem] = []
    base = ("arrays", i)
    two = isinstance(a.pitch, tuple)
    if a.lattice == "rect" and not two:
        out.append(src.problem(base + ("pitch",), "a rect lattice needs pitch [px, py]"))
    if a.lattice != "rect" and two:
        out.append(src.problem(base + ("pitch",), f"a {a.lattice} lattice takes one pitch, not [px, py]"))
    pitches = a.pitch if two else (a.pitch,)
    if any(p <= 0 for p in pitches):
        out.append(src.problem(base + ("pitch",), "pitch must be positive"))
    rows, cols = sweep_counts(a)
    if a.shape is not None:
        if a.shape[0] < 1 or a.shape[1] < 1:
            out.append(src.problem(base + ("shape",), "shape must be [rows, cols] with both >= 1"))
        for axis, implied, given in (("rows", rows, a.shape[0]), ("cols", cols, a.shape[1])):
            if implied is not None and implied != given:
                out.append(
                    src.problem(
                        base + ("shape",),
                        f"shape gives {given} {axis} but the sweep (with repeats) gives {implied}",
                    )
                )
    elif rows is None and cols is None and a.repeats == 1:
        out.append(src.problem(base, "give 'shape: [rows, cols]' or a 'sweep' that implies it"))
    n_rows, n_cols = lattice_shape(a)
    if n_rows * n_cols > 20_000_000:
        out.append(src.problem(base + ("shape",), f"{n_rows} x {n_cols} discs is more than 20 million"))
    swept: set[str] = set()
    if a.sweep:
        for axis_name, axis in (("rows", a.sweep.rows), ("cols", a.sweep.cols)):
            if axis:
                names = {name for name, _ in axis.parameters()}
                for name in sorted(names & swept):
                    out.append(
                        src.problem(
                            base + ("sweep", axis_name, name), f"{name} is swept along both rows and cols"
                        )
                    )
                swept |= names
    if a.disc.diameter is None and a.disc.fluence is None and not ({"diameter", "fluence"} & swept):
        out.append(src.problem(base + ("disc",), "each disc needs a target diameter or a fluence"))
    given = {k for k in ("diameter", "fluence") if getattr(a.disc, k) is not None}
    if given == {"diameter", "fluence"}:
        out.append(src.problem(base + ("disc", "fluence"), _BOTH))
    elif given | (swept & {"diameter", "fluence"}) == {"diameter", "fluence"}:
        # one in disc: and the other swept, or both swept: located at the sweep of the one not in disc:
        name = "fluence" if "fluence" not in given else "diameter"
        axis = next(n for n, ax in (("rows", a.sweep.rows), ("cols", a.sweep.cols))
                    if ax and getattr(ax, name) is not None)
        what = f"disc.{next(iter(given))} is given" if given else "diameter and fluence are both swept"
        out.append(src.problem(base + ("sweep", axis, name),
                               f"{what}{' and ' + name + ' is swept' if given else ''}: " + _BOTH))
    for k, entry in enumerate(a.skip):
        m = SKIP_PATTERN.match(entry)
        if not m or (m["array"] and m["array"] != a.id):
            out.append(
                src.problem(
                    base + ("skip", k), f"expected a site like 'r03c07' in array {a.id}, got {entry!r}"
                )
            )
        elif int(m["row"]) >= n_rows or int(m["col"]) >= n_cols:
            out.append(src.problem(base + ("skip", k), f"{entry!r} is outside the {n_rows} x {n_cols} array"))
    return out


def _check_explicit(a: models.ExplicitArray, i: int, design: models.Design, src: YamlSource) -> list[Problem]:
    out: list[Problem] = []
    base = ("arrays", i)
    if a.csv is not None and not design.resolve(a.csv).is_file():
        out.append(src.problem(base + ("csv",), f"CSV file not found: {design.resolve(a.csv)}"))
    has_default = a.disc.diameter is not None or a.disc.fluence is not None
    if a.disc.diameter is not None and a.disc.fluence is not None:
        out.append(src.problem(base + ("disc", "fluence"), _BOTH))
    for k, disc in enumerate(a.discs or []):
        if not has_default and disc.diameter is None and disc.fluence is None:
            out.append(src.problem(base + ("discs", k), "each disc needs a target diameter or a fluence"))
        if disc.diameter is not None and disc.fluence is not None:
            out.append(src.problem(base + ("discs", k, "fluence"), _BOTH))
    return out


def check_design(design: models.Design, src: YamlSource) -> list[Problem]:
    """All cross-field problems of a design (empty list when it is consistent)."""
    out: list[Problem] = []
    seen: dict[str, int] = {}
    for i, a in enumerate(design.arrays):
        if a.id in seen:
            out.append(
                src.problem(("arrays", i, "id"), f"array id {a.id!r} already used by arrays[{seen[a.id]}]")
            )
        seen.setdefault(a.id, i)
        if isinstance(a, models.LatticeArray):
            out += _check_lattice(a, i, src)
        else:
            out += _check_explicit(a, i, design, src)

    beam = design.beam
    if beam.damage_fluence <= beam.threshold_fluence:
        out.append(
            src.problem(
                ("beam", "damage_fluence"),
                f"damage_fluence ({beam.damage_fluence:g} mJ/cm^2) must exceed threshold_fluence "
                f"({beam.threshold_fluence:g} mJ/cm^2)",
            )
        )
    if isinstance(beam.profile, models.MeasuredProfile) and not design.resolve(beam.profile.csv).is_file():
        out.append(
            src.problem(("beam", "profile", "csv"), f"CSV file not found: {design.resolve(beam.profile.csv)}")
        )

    att = design.laser.attenuator
    if isinstance(att, models.WaveplateAttenuator) and att.energy_max <= att.energy_min:
        out.append(src.problem(("laser", "attenuator", "energy_max"), "energy_max must exceed energy_min"))

    proc = design.process
    if proc.alignment is not None:
        names = design.sample.fiducials
        for name in proc.alignment.fiducials:
            if name not in names:
                known = ", ".join(sorted(names)) or "none defined under sample.fiducials"
                out.append(
                    src.problem(
                        ("process", "alignment", "fiducials", name),
                        f"unknown fiducial {name!r} (known: {known})",
                        key=True,
                    )
                )
        if not proc.alignment.fiducials:
            out.append(
                src.problem(("process", "alignment", "fiducials"), "alignment needs at least one fiducial")
            )
    if proc.focus_map is not None:
        pts = np.asarray(proc.focus_map.points, float)
        need = 3 if proc.focus_map.model == "plane" else 4
        if len(pts) < need:
            out.append(
                src.problem(
                    ("process", "focus_map", "points"),
                    f"a {proc.focus_map.model} focus map needs at least {need} points, got {len(pts)}",
                )
            )
        elif np.linalg.matrix_rank(np.c_[pts[:, :2], np.ones(len(pts))]) < 3:
            out.append(src.problem(("process", "focus_map", "points"), "focus map points are collinear"))
    return out


def _raw(src: YamlSource, path: tuple) -> object:
    cur: object = src.data
    for part in path:
        try:
            cur = cur[part]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None
    return cur


def design_warnings(design: models.Design) -> list[Problem]:
    """Values that are valid but almost certainly not meant (a unit slip): located, with the likely
    intended value. Warnings, not errors: `validate` and `plan` print them and carry on.

    >>> from fabplan.design import loads_design
    >>> d = loads_design('''
    ... schema_version: 1
    ... sample: {film: {thickness: 0.1}, region: {rect: [0, 0, 100, 100]}}
    ... laser: {max_pulse_energy: 5 uJ}
    ... beam: {profile: {model: lg01, ring_diameter: 12 um}, threshold_fluence: 40 mJ/cm^2,
    ...        damage_fluence: 400 mJ/cm^2}
    ... arrays: [{id: A, pitch: 40, shape: [1, 1], disc: {fluence: 100 mJ/cm^2}}]
    ... ''', file="d.yaml")
    >>> for w in design_warnings(d): print(format_warning(w))
    d.yaml:3:28: warning: sample.film.thickness: 0.1 nm is outside 10-5000 nm, the usual range for a perovskite film thickness; did you mean 100 nm? (a bare number is read as nm: write the unit, e.g. '0.1 um')
    """
    from fabplan.units import PLAUSIBLE, implausible

    src = getattr(design, "_yaml", None)
    if src is None:
        return []
    checks: list[tuple[tuple, float | None, str]] = [
        (("sample", "film", "thickness"), design.sample.film.thickness, "film_thickness"),
        (("laser", "wavelength"), design.laser.wavelength, "wavelength"),
        (("laser", "max_pulse_energy"), design.laser.max_pulse_energy, "pulse_energy"),
        (("beam", "threshold_fluence"), design.beam.threshold_fluence, "ablation_fluence"),
        (("beam", "damage_fluence"), design.beam.damage_fluence, "ablation_fluence"),
    ]
    prof = design.beam.profile
    for name in ("ring_diameter", "inner_diameter", "outer_diameter"):
        if hasattr(prof, name):
            checks.append((("beam", "profile", name), getattr(prof, name), "ring_diameter"))
    for i, a in enumerate(design.arrays):
        checks.append((("arrays", i, "disc", "diameter"), a.disc.diameter, "disc_diameter"))
        checks.append((("arrays", i, "disc", "fluence"), a.disc.fluence, "ablation_fluence"))
        sweep = getattr(a, "sweep", None)
        for axis_name in ("rows", "cols"):
            axis = getattr(sweep, axis_name, None) if sweep else None
            for name, role in (("diameter", "disc_diameter"), ("fluence", "ablation_fluence")):
                values = getattr(axis, name, None) if axis else None
                if values:  # the extreme value that is furthest out, located at the sweep
                    lo, hi = PLAUSIBLE[role][:2]
                    worst = min(values) if min(values) < lo else max(values)
                    checks.append((("arrays", i, "sweep", axis_name, name), worst, role))
    out = []
    for path, value, role in checks:
        msg = None if value is None else implausible(float(value), role)
        if msg:
            raw = _raw(src, path)
            if isinstance(raw, (int, float)) and not isinstance(raw, bool):
                unit = PLAUSIBLE[role][2]
                msg += f" (a bare number is read as {unit}: write the unit, e.g. '{raw:g} {_other_unit(unit)}')"
            out.append(src.problem(path, msg))
    return out


def _other_unit(unit: str) -> str:
    """The unit a bare number was most likely meant in (one prefix step up)."""
    return {"nm": "um", "um": "mm", "uJ": "mJ", "mJ/cm^2": "J/cm^2"}.get(unit, unit)


def format_warning(p: Problem) -> str:
    """`file:line:col: warning: path: message`, the compiler convention editors understand."""
    where = p.file or "<input>"
    if p.line is not None:
        where += f":{p.line}" + (f":{p.col}" if p.col is not None else "")
    return f"{where}: warning: {p.path + ': ' if p.path else ''}{p.message}"


def report_design_warnings(design: models.Design) -> list[str]:
    """Print the design's plausibility warnings to stderr (one located line each) and return them
    (for --json output)."""
    import sys

    lines = [format_warning(w) for w in design_warnings(design)]
    for line in lines:
        print(line, file=sys.stderr)
    return lines
