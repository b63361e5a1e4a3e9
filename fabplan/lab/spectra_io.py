"""Reading spectrum files: two-column CSV/TXT (header optional) and Andor SIF (optional sif-parser).

A spectrum is (wavelength_nm, counts, integration_s | None). Wavelengths must be finite; they are
returned ascending (some spectrometers write descending axes).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from fabplan.errors import UserError

_SEP = re.compile(r"[,;\t]")

SIF_HINT = "reading Andor .sif files needs the optional dependency: pip install 'fabplan[sif]' (sif-parser)"


def read_spectrum(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, float | None]:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: spectrum file not found")
    if p.suffix.lower() == ".sif":
        return _read_sif(p)
    return _read_text(p)


def _read_text(p: Path) -> tuple[np.ndarray, np.ndarray, float | None]:
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"{p}: cannot read ({exc.strerror})") from None
    integration_s = None
    # Header / comment lines come first; the body is parsed in one numpy call (the hot path).
    pos = 0
    lineno = 0
    while pos < len(text):
        nl = text.find("\n", pos)
        line = text[pos : (nl if nl >= 0 else len(text))].strip()
        if line and not line.startswith("#") and _numeric(line):
            break
        lineno += 1
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
    if not np.all(np.isfinite(wl)) or not np.all(np.isfinite(counts)):
        raise UserError(f"{p}: non-finite wavelength or counts")
    if wl[0] > wl[-1]:
        wl, counts = wl[::-1], counts[::-1]
    if np.any(np.diff(wl) <= 0):
        raise UserError(f"{p}: wavelength column is not strictly monotonic")
    if not (100.0 < wl[0] < 5000.0):
        raise UserError(f"{p}: wavelengths must be in nm (first value {wl[0]:g})")
    return np.ascontiguousarray(wl), np.ascontiguousarray(counts), integration_s


def _read_sif(p: Path) -> tuple[np.ndarray, np.ndarray, float | None]:
    try:
        import sif_parser  # type: ignore[import-not-found]
        from sif_parser.utils import extract_calibration  # type: ignore[import-not-found]
    except ImportError:
        raise UserError(f"{p}: {SIF_HINT}") from None
    try:
        data, info = sif_parser.np_open(str(p))
    except Exception as exc:  # sif_parser raises assorted errors on corrupt files
        raise UserError(f"{p}: cannot read Andor SIF ({exc})") from None
    counts = np.asarray(data, dtype=np.float64)
    counts = counts.reshape(-1, counts.shape[-1]).sum(axis=0)  # frames x rows (full vertical binning)
    wl = extract_calibration(info)
    if wl is None:
        raise UserError(f"{p}: SIF file has no wavelength calibration")
    wl = np.asarray(wl, dtype=np.float64)
    if wl.ndim == 2:
        wl = wl[0]
    exposure = info.get("ExposureTime")
    return _finish(p, wl, counts, float(exposure) if exposure is not None else None)


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
