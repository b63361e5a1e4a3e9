"""Andor SIF (Solis) spectra: every frame of a kinetic series, accumulations, images, bounded parsing.

The header is parsed by sif_parser (optional dependency `fabplan[sif]`) through a file wrapper that
raises at end of file: sif_parser reads words byte by byte until a space and loops for ever on a
truncated file (a 44-byte file hung `lab add`). Frame data are read here, after checking that the
file holds every frame the header announces.

What a frame is: counts of shape (rows, columns). A spectrum is one row (full vertical binning or
a single track); more rows is an image and needs a row range to bin (1-based, inclusive, as Solis
numbers rows). Wavelengths: the header's calibration polynomial at pixel numbers 1..columns (as
Solis' own ASCII export writes them, tests/data/sif/raman1.asc); [0, 1, 0, 0] is "no calibration"
(axis in pixel numbers) and is refused. Integration: Solis sums the accumulations of a frame, so the
counts integrate exposure x accumulations seconds; data already normalised per second (DataType
"... per second") integrate 1 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fabplan.errors import UserError

MAGIC = b"Andor Technology Multi-Channel File"
SIF_HINT = "reading Andor .sif files needs the optional dependency: pip install 'fabplan[sif]' (sif-parser)"


@dataclass
class SifFrames:
    counts: np.ndarray  # (frames, rows, columns) float64
    wavelength_nm: np.ndarray | None  # (columns,) or (frames, columns); None: not calibrated
    exposure_s: float | None
    accumulations: int
    integration_s: float | None  # of one frame: exposure x accumulations (1 for per-second data)
    data_type: str
    frame_axis: str


class _Bounded:
    """File wrapper for sif_parser: reading past the end raises instead of returning b''."""

    def __init__(self, fh, where: Path):
        self.fh, self.where = fh, where

    def _eof(self):
        raise UserError(f"{self.where}: truncated Andor SIF (the header ends at byte {self.fh.tell()})")

    def read(self, n: int = -1) -> bytes:
        b = self.fh.read(n)
        if n and not b:
            self._eof()
        return b

    def readline(self, *a) -> bytes:
        b = self.fh.readline(*a)
        if not b:
            self._eof()
        return b

    def tell(self) -> int:
        return self.fh.tell()

    def seek(self, *a) -> int:
        return self.fh.seek(*a)


def _text(v) -> str:
    return v.decode("latin-1", "replace").strip() if isinstance(v, bytes) else str(v or "").strip()


def read_sif(p: Path) -> SifFrames:
    try:
        import sif_parser  # type: ignore[import-not-found]  # noqa: F401  (fails first when absent)
        from sif_parser._sif_open import _open  # type: ignore[import-not-found]
    except ImportError:
        raise UserError(f"{p}: {SIF_HINT}") from None
    size = p.stat().st_size
    with p.open("rb") as fh:
        if fh.read(len(MAGIC)) != MAGIC:
            raise UserError(f"{p}: not an Andor SIF file (no 'Andor Technology Multi-Channel File' header)")
        fh.seek(0)
        try:
            tile, (width, height), n_frames, info = _open(_Bounded(fh, p))
        except UserError:
            raise
        except Exception as exc:  # sif_parser raises assorted errors on corrupt headers
            raise UserError(f"{p}: cannot read Andor SIF header ({type(exc).__name__}: {exc})") from None
        n = int(width) * int(height)
        if n_frames < 1 or n < 1:
            raise UserError(f"{p}: Andor SIF with no data ({n_frames} frames of {width} x {height})")
        offsets = [int(t[2]) for t in tile]
        end = max(offsets) + 4 * n
        if end > size:
            raise UserError(
                f"{p}: truncated Andor SIF: {n_frames} frames of {width} x {height} need {end} bytes, "
                f"the file has {size}"
            )
        counts = np.empty((n_frames, int(height), int(width)), np.float64)
        for i, off in enumerate(offsets):
            fh.seek(off)
            counts[i] = np.frombuffer(fh.read(4 * n), "<f4").reshape(int(height), int(width))
    exposure = info.get("ExposureTime")
    exposure = float(exposure) if exposure is not None else None
    acc = int(info.get("AccumulatedCycles") or 1)
    data_type = _text(info.get("DataType"))
    integration = 1.0 if "per second" in data_type.lower() else (round(exposure * acc, 9) if exposure else None)
    return SifFrames(
        counts,
        _calibration(info, int(width), n_frames),
        exposure,
        acc,
        integration,
        data_type,
        _text(info.get("FrameAxis")),
    )


def _calibration(info: dict, width: int, n_frames: int) -> np.ndarray | None:
    x = np.arange(1, width + 1, dtype=np.float64)

    def poly(coef) -> np.ndarray | None:
        c = [float(v) for v in coef]
        if len(c) < 2 or (c[0] == 0 and c[1] == 1 and not any(c[2:])):
            return None  # identity: the axis is the pixel number
        return np.polynomial.polynomial.polyval(x, c)

    if "Calibration_data_for_frame_1" in info:
        rows = [poly(info[f"Calibration_data_for_frame_{f + 1}"]) for f in range(n_frames)]
        return None if any(r is None for r in rows) else np.vstack(rows)
    if "Calibration_data" in info:
        return poly(info["Calibration_data"])
    return None


def sif_spectrum(
    p: Path, frame: int | None = None, rows: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray, float | None, dict]:
    """One spectrum (wavelength_nm, counts, integration_s, acquisition) from a SIF file.

    frame: 1-based frame of a kinetic series (required when there are several); rows: 1-based
    inclusive row range to sum for an image."""
    s = read_sif(p)
    n_frames, height, _ = s.counts.shape
    if frame is None:
        if n_frames > 1:
            raise UserError(
                f"{p}: a kinetic series of {n_frames} frames ({s.exposure_s:g} s x {s.accumulations} each), "
                f"not one spectrum: import each frame as its own spectrum, one manifest row per frame with a "
                f"'frame' column (1..{n_frames}) and its fluence, or name it as {p.name}#frame=N"
            )
        frame = 1
    if not 1 <= frame <= n_frames:
        raise UserError(
            f"{p}: frame {frame} out of range (the file has {n_frames} frame(s), numbered from 1)"
        )
    img = s.counts[frame - 1]
    if height > 1 and rows is None:
        raise UserError(
            f"{p}: a 2-D image ({height} rows x {img.shape[1]} columns), not a spectrum: give the rows to bin "
            f"(manifest column 'rows', e.g. 120-140, or {p.name}#rows=120-140; rows numbered 1..{height})"
        )
    if rows is not None:
        lo, hi = rows
        if not 1 <= lo <= hi <= height:
            raise UserError(f"{p}: rows {lo}-{hi} out of range (the file has rows 1..{height})")
        counts = img[lo - 1 : hi].sum(axis=0)
    else:
        counts = img[0]
    wl = s.wavelength_nm
    if wl is None:
        raise UserError(
            f"{p}: no wavelength calibration in this SIF (the x axis is '{s.frame_axis or 'pixel number'}'): "
            "calibrate the spectrograph in Solis, or export wavelength and counts as text"
        )
    if wl.ndim == 2:
        wl = wl[frame - 1]
    if len(wl) != len(counts):
        raise UserError(f"{p}: {len(wl)} wavelengths for {len(counts)} counts")
    acq = {
        "frame": frame if n_frames > 1 else None,
        "frames": n_frames,
        "exposure_s": s.exposure_s,
        "accumulations": s.accumulations,
        "integration_s": s.integration_s,
        "data_type": s.data_type,
    }
    if rows is not None:
        acq["rows"] = f"{rows[0]}-{rows[1]}"
    return wl, counts, s.integration_s, acq
