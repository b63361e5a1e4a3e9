"""Camera files hold frames (a kinetic series) of rows x columns: choosing the one spectrum to store.

Shared by the Andor SIF and Princeton Instruments SPE readers. A file with several frames needs a
frame number (each frame is its own spectrum, e.g. one per pump fluence); a frame with several rows
is an image and needs a row range to sum (1-based, inclusive, as Solis and LightField number rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fabplan.errors import UserError


@dataclass
class FrameStore:
    """Where the frames are in the file; one frame is read only when it is picked (an image series
    of a few GB costs one frame of memory)."""

    path: Path
    offsets: list[int]
    dtype: str
    rows: int
    columns: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.offsets), self.rows, self.columns)

    def frame(self, i: int) -> np.ndarray:
        nbytes = self.rows * self.columns * np.dtype(self.dtype).itemsize
        with self.path.open("rb") as fh:
            fh.seek(self.offsets[i])
            raw = fh.read(nbytes)
        if len(raw) < nbytes:  # the file shrank since it was opened
            raise UserError(f"{self.path}: truncated: frame {i + 1} is incomplete")
        return np.frombuffer(raw, self.dtype).astype(np.float64).reshape(self.rows, self.columns)


def frame_store(p: Path, offsets: list[int], dtype: str, rows: int, columns: int, fmt: str) -> FrameStore:
    """Check that the file holds every frame its header announces, before anything is read."""
    nbytes = rows * columns * np.dtype(dtype).itemsize
    if rows < 1 or columns < 1 or not offsets:
        raise UserError(f"{p}: {fmt} file with no data ({len(offsets)} frames of {columns} x {rows})")
    size = p.stat().st_size
    if max(offsets) + nbytes > size:
        raise UserError(
            f"{p}: truncated {fmt} file: {len(offsets)} frames of {columns} x {rows} need "
            f"{max(offsets) + nbytes} bytes, the file has {size}"
        )
    return FrameStore(p, offsets, dtype, rows, columns)


@dataclass
class Frames:
    counts: FrameStore  # (frames, rows, columns)
    wavelength_nm: np.ndarray | None  # (columns,) or (frames, columns); None: not calibrated
    exposure_s: float | None
    accumulations: int
    integration_s: float | None  # what the counts of one frame integrate (see each reader)
    fmt: str  # "Andor SIF", "SPE 3.0", ...
    axis: str = ""  # what the file calls its x axis when it is not calibrated
    extra: dict = field(default_factory=dict)  # reader-specific acquisition facts


def pick(
    p: Path, fr: Frames, frame: int | None, rows: tuple[int, int] | None
) -> tuple[np.ndarray, np.ndarray, float | None, dict]:
    """(wavelength_nm, counts, integration_s, acquisition) of one frame, rows summed if asked."""
    n_frames, height, width = fr.counts.shape
    if frame is None:
        if n_frames > 1:
            each = f"{fr.exposure_s:g} s x {fr.accumulations} each" if fr.exposure_s else "each"
            raise UserError(
                f"{p}: a kinetic series of {n_frames} frames ({each}), not one spectrum: import each frame "
                f"as its own spectrum, one manifest row per frame with a 'frame' column (1..{n_frames}) and "
                f"its fluence, or name it as {p.name}#frame=N"
            )
        frame = 1
    if not 1 <= frame <= n_frames:
        raise UserError(
            f"{p}: frame {frame} out of range (the file has {n_frames} frame(s), numbered from 1)"
        )
    img = fr.counts.frame(frame - 1)
    if height > 1 and rows is None:
        raise UserError(
            f"{p}: a 2-D image ({height} rows x {width} columns), not a spectrum: give the rows to bin "
            f"(manifest column 'rows', e.g. 120-140, or {p.name}#rows=120-140; rows numbered 1..{height})"
        )
    if rows is not None:
        lo, hi = rows
        if not 1 <= lo <= hi <= height:
            raise UserError(f"{p}: rows {lo}-{hi} out of range (the file has rows 1..{height})")
        counts = img[lo - 1 : hi].sum(axis=0)
    else:
        counts = img[0]
    wl = fr.wavelength_nm
    if wl is None:
        raise UserError(
            f"{p}: no wavelength calibration in this {fr.fmt} file (x axis: {fr.axis or 'pixel number'}): "
            "calibrate the spectrograph in the acquisition software, or export wavelength and counts as text"
        )
    if wl.ndim == 2:
        wl = wl[frame - 1]
    if len(wl) != len(counts):
        raise UserError(f"{p}: {len(wl)} wavelengths for {len(counts)} counts")
    acq = {
        "format": fr.fmt,
        "frame": frame if n_frames > 1 else None,
        "frames": n_frames,
        "exposure_s": fr.exposure_s,
        "accumulations": fr.accumulations,
        "integration_s": fr.integration_s,
        **fr.extra,
    }
    if rows is not None:
        acq["rows"] = f"{rows[0]}-{rows[1]}"
    return wl, counts, fr.integration_s, acq
