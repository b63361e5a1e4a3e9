"""Reading spectrum files: two-column CSV/TXT (header optional; a header naming the x unit, nm, um,
angstrom, eV or cm^-1, is converted to nm: fabplan/lab/axis_units.py), Andor SIF (optional
sif-parser), Princeton Instruments SPE 2.x/3.x (fabplan/lab/spe.py).

A spectrum is (wavelength_nm, counts, integration_s | None). Wavelengths must be finite; they are
returned ascending (some spectrometers write descending axes). integration_s is the total time the
counts integrate (exposure x accumulations for an accumulated SIF).

A file name may end in a selection `#frame=N` (1-based frame of a kinetic series) and/or
`#rows=A-B` (1-based inclusive rows of an image to sum), joined by '&': `series.sif#frame=3`.
The name with its selection is what the logbook stores as the spectrum's source.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from fabplan.errors import UserError
from fabplan.lab.axis_units import axis_unit, counts_per_second, to_nm
from fabplan.lab.sif import SIF_HINT  # noqa: F401  (re-exported: the tests and the CLI name it)

_SEP = re.compile(r"[,;\t]")

_SELECTION = re.compile(r"^(?P<path>.*)#(?P<sel>(?:frame|rows)=[^#&]*(?:&(?:frame|rows)=[^#&]*)*)$")


def split_selection(path: str | os.PathLike) -> tuple[Path, dict]:
    """'a.sif#frame=3&rows=10-20' -> (Path('a.sif'), {'frame': 3, 'rows': (10, 20)})."""
    text = os.fspath(path)
    m = _SELECTION.match(text)
    if m is None or Path(text).is_file():  # a real file name containing '#'
        return Path(text), {}
    sel: dict = {}
    for part in m["sel"].split("&"):
        key, _, val = part.partition("=")
        try:
            if key == "frame":
                sel["frame"] = int(val)
            else:
                lo, _, hi = val.partition("-")
                sel["rows"] = (int(lo), int(hi or lo))
        except ValueError:
            raise UserError(f"{text}: bad selection {part!r} (frame=N, rows=A-B)") from None
    return Path(m["path"]), sel


def with_selection(path: str | os.PathLike, frame: int | None = None, rows: str | None = None) -> str:
    """The spectrum's name with a frame/rows selection appended (as split_selection reads it)."""
    parts = ([f"frame={frame}"] if frame is not None else []) + ([f"rows={rows}"] if rows else [])
    return os.fspath(path) + ("#" + "&".join(parts) if parts else "")


def read_spectrum(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, float | None]:
    wl, counts, t, _ = read_spectrum_info(path)
    return wl, counts, t


def read_spectrum_info(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, float | None, dict]:
    """(wavelength_nm, counts, integration_s, acquisition): acquisition holds what the file says
    about how it was taken (SIF: frame, frames, exposure_s, accumulations, data_type)."""
    p, sel = split_selection(path)
    if not p.is_file():
        raise UserError(f"{p}: spectrum file not found")
    if p.suffix.lower() == ".sif":
        from fabplan.lab.sif import sif_spectrum

        wl, counts, t, acq = sif_spectrum(p, sel.get("frame"), sel.get("rows"))
        return (*_finish(p, wl, counts, t), acq)
    if p.suffix.lower() == ".spe":
        from fabplan.lab.spe import spe_spectrum

        wl, counts, t, acq = spe_spectrum(p, sel.get("frame"), sel.get("rows"))
        return (*_finish(p, wl, counts, t), acq)
    if sel:
        raise UserError(f"{path}: a frame/rows selection applies to camera files (.sif, .spe) only")
    return (*_read_text(p), {})


def _read_text(p: Path) -> tuple[np.ndarray, np.ndarray, float | None]:
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"{p}: cannot read ({exc.strerror})") from None
    integration_s = None
    header = ""  # the last non-comment line before the numbers: column names (with units)
    # Header / comment lines come first; the body is parsed in one numpy call (the hot path).
    pos = 0
    lineno = 0
    while pos < len(text):
        nl = text.find("\n", pos)
        line = text[pos : (nl if nl >= 0 else len(text))].strip()
        if line and not line.startswith("#") and _numeric(line):
            break
        lineno += 1
        if line and not line.startswith("#"):
            header = line
        if line.startswith("#"):
            key, _, val = line.lstrip("# ").partition("=")
            if key.strip().lower() in ("integration_s", "exposure_s"):
                try:
                    integration_s = float(val)
                except ValueError:
                    pass
        pos = len(text) if nl < 0 else nl + 1
    body = text[pos:]
    tokens = body.replace(",", " ").replace(";", " ").split()
    try:
        if len(tokens) < 4 or len(tokens) % 2:
            raise UserError(
                f"{p}: expected two numeric columns (wavelength, counts), got {len(tokens)} values"
            )
        wl = _axis(tuple(tokens[0::2]))
        counts = _numbers(tokens[1::2])
    except ValueError:
        for k, line in enumerate(body.splitlines(), lineno + 1):
            if line.strip() and not _numeric(line.strip()):
                raise UserError(f"{p}:{k}: not two numbers: {line.strip()[:60]!r}") from None
        raise
    if header:
        wl = to_nm(p, wl, axis_unit(header))
        if integration_s is None and counts_per_second(header):
            integration_s = 1.0  # counts per second: what 1 s collects
    return _finish(p, wl, counts, integration_s)


def _numbers(tokens: list[str]) -> np.ndarray:
    """Counts as float64; integer text (ADC counts) parses ~3x faster as int64, so try that first."""
    try:
        return np.array(tokens, dtype=np.int64).astype(np.float64)
    except (ValueError, OverflowError):
        return np.array(tokens, dtype=np.float64)


@lru_cache(maxsize=16)
def _axis(tokens: tuple[str, ...]) -> np.ndarray:
    """Parsed wavelength column, cached by its exact text: a spectrometer writes the same
    calibration into every file of a session, so only the counts need parsing (half the work)."""
    a = np.array(tokens, dtype=np.float64)
    a.flags.writeable = False
    return a


def _numeric(line: str) -> bool:
    try:
        [float(x) for x in _SEP.sub(" ", line).split()]
    except ValueError:
        return False
    return True


def _finish(p: Path, wl: np.ndarray, counts: np.ndarray, integration_s: float | None):
    if len(wl) != len(counts):
        raise UserError(f"{p}: {len(wl)} wavelengths for {len(counts)} counts")
    if len(wl) < 2:
        raise UserError(f"{p}: a spectrum needs at least 2 points, got {len(wl)}")
    if not np.all(np.isfinite(wl)) or not np.all(np.isfinite(counts)):
        raise UserError(f"{p}: non-finite wavelength or counts")
    if wl[0] > wl[-1]:
        wl, counts = wl[::-1], counts[::-1]
    if np.any(np.diff(wl) <= 0):
        raise UserError(f"{p}: wavelength column is not strictly monotonic")
    if not (100.0 < wl[0] < 5000.0):
        raise UserError(f"{p}: wavelengths must be in nm (first value {wl[0]:g})")
    return np.ascontiguousarray(wl), np.ascontiguousarray(counts), integration_s


def write_spectrum(
    path: str | os.PathLike, wavelength_nm: np.ndarray, counts: np.ndarray, integration_s: float | None = None
) -> None:
    """Two-column CSV as a spectrometer export would look (header line, then numbers)."""
    lines = []
    if integration_s is not None:
        lines.append(f"# integration_s={integration_s:g}")
    lines.append("wavelength_nm,counts")
    body = np.column_stack([wavelength_nm, counts])
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
        np.savetxt(fh, body, fmt=("%.4f", "%.1f"), delimiter=",")
