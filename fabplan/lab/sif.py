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

from pathlib import Path

import numpy as np

from fabplan.errors import UserError
from fabplan.lab.frames import Frames, frame_store, pick

MAGIC = b"Andor Technology Multi-Channel File"
SIF_HINT = "reading Andor .sif files needs the optional dependency: pip install 'fabplan[sif]' (sif-parser)"


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


def read_sif(p: Path) -> Frames:
    try:
        import sif_parser  # type: ignore[import-not-found]  # noqa: F401  (fails first when absent)
        from sif_parser._sif_open import _open  # type: ignore[import-not-found]
    except ImportError:
        raise UserError(f"{p}: {SIF_HINT}") from None
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
        if n_frames < 1:
            raise UserError(f"{p}: Andor SIF with no data ({n_frames} frames of {width} x {height})")
        counts = frame_store(p, [int(t[2]) for t in tile], "<f4", int(height), int(width), "Andor SIF")
    exposure = info.get("ExposureTime")
    exposure = float(exposure) if exposure is not None else None
    acc = int(info.get("AccumulatedCycles") or 1)
    data_type = _text(info.get("DataType"))
    integration = (
        1.0 if "per second" in data_type.lower() else (round(exposure * acc, 9) if exposure else None)
    )
    return Frames(
        counts,
        _calibration(info, int(width), n_frames),
        exposure,
        acc,
        integration,
        "Andor SIF",
        _text(info.get("FrameAxis")),
        {"data_type": data_type},
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
    """One spectrum (wavelength_nm, counts, integration_s, acquisition): see frames.pick."""
    return pick(p, read_sif(p), frame, rows)
