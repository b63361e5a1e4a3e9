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
    try:  # bytes, decoded at once: what read_text() gives, without its incremental text layer
        with open(p, "rb") as fh:
            text = fh.read().decode("utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"{p}: cannot read ({exc.strerror})") from None
    if "\r" in text:  # universal newlines, as read_text() translates them
        text = text.replace("\r\n", "\n").replace("\r", "\n")
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
        wl, wl_checked = _axis(tuple(tokens[0::2]))
        counts = _numbers(tokens[1::2])
    except ValueError:
        for k, line in enumerate(body.splitlines(), lineno + 1):
            if line.strip() and not _numeric(line.strip()):
                raise UserError(f"{p}:{k}: not two numbers: {line.strip()[:60]!r}") from None
        raise
    if header:
        nm = to_nm(p, wl, axis_unit(header))
        wl_checked = wl_checked and nm is wl  # converted: a new axis, checked in full
        wl = nm
        if integration_s is None and counts_per_second(header):
            integration_s = 1.0  # counts per second: what 1 s collects
    return _finish(p, wl, counts, integration_s, wl_checked)


_INT64 = np.iinfo(np.int64)


def _numbers(tokens: list[str]) -> np.ndarray:
    """Counts as float64; integer text (ADC counts) parses ~3x faster as int64, so try that first."""
    ints = _plain_integers(tokens)
    if ints is not None:
        return ints.astype(np.float64)
    try:
        return np.array(tokens, dtype=np.int64).astype(np.float64)
    except (ValueError, OverflowError):
        return np.array(tokens, dtype=np.float64)


def _plain_integers(tokens: list[str]) -> np.ndarray | None:
    """int64 values of tokens that are all plain integers ([+-]?[0-9]+, within int64), else None.

    numpy's C integer scanner over the joined text is ~2x faster than `np.array(tokens, dtype=int64)`
    but more lenient (a lone sign reads as 0, values beyond int64 saturate), so it only runs on text
    proven to hold nothing else: digits, single spaces between tokens, and signs only at the start of
    a token and followed by a digit. Then both read the same integers."""
    try:
        text = " ".join(tokens).encode("ascii")
    except UnicodeEncodeError:
        return None
    signs = text.translate(None, b"0123456789 ")
    if signs and (
        signs.strip(b"+-")  # any other character
        or len(signs) != text.count(b" -") + text.count(b" +") + text.startswith((b"-", b"+"))
        or any(s in text for s in (b"- ", b"+ ", b"--", b"-+", b"+-", b"++"))
        or text.endswith((b"-", b"+"))
    ):
        return None
    try:
        a = np.fromstring(text, dtype=np.int64, sep=" ")
    except ValueError:
        return None
    if len(a) != len(tokens) or not len(a) or a.min() == _INT64.min or a.max() == _INT64.max:
        return None
    return a


@lru_cache(maxsize=16)
def _axis(tokens: tuple[str, ...]) -> tuple[np.ndarray, bool]:
    """Parsed wavelength column, cached by its exact text: a spectrometer writes the same
    calibration into every file of a session, so only the counts need parsing (half the work).
    Also whether that axis passes `_finish`'s wavelength checks as it is (finite, ascending,
    in nm), so files sharing it skip them."""
    a = np.array(tokens, dtype=np.float64)
    a.flags.writeable = False
    ok = bool(len(a) >= 2 and np.all(np.isfinite(a)) and np.all(np.diff(a) > 0) and 100.0 < a[0] < 5000.0)
    return a, ok


def _numeric(line: str) -> bool:
    try:
        [float(x) for x in _SEP.sub(" ", line).split()]
    except ValueError:
        return False
    return True


def _finish(p: Path, wl: np.ndarray, counts: np.ndarray, integration_s: float | None, wl_checked: bool = False):
    """Checks (in this order, first failure reported) and ascending, contiguous arrays. wl_checked:
    `wl` is known to pass every wavelength-only check unchanged (`_axis`), so only counts are left."""
    if wl_checked and len(wl) == len(counts):
        if not np.all(np.isfinite(counts)):
            raise UserError(f"{p}: non-finite wavelength or counts")
        return wl, np.ascontiguousarray(counts), integration_s
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
