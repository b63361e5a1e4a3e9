"""Princeton Instruments SPE spectra (WinSpec/WinView 2.x and LightField 3.x), read here.

Layout (Princeton Instruments "SPE 3.0 File Format Specification"; the 2.x header is WinSpec's
CSMAHEAD structure): a 4100-byte little-endian header, then the frames, then (3.x) an XML footer.
  header  42 xdim (uint16)   656 ydim (uint16)   1446 NumFrames (int32)   108 datatype (int16)
          10 exp_sec (float32)   668 lavgexp = accumulations (int32)   1992 file_header_ver (float32)
          678 XML footer offset (uint64, 3.x)   4098 lastvalue = 0x5555
          3000.. x calibration: 3098 calib_valid, 3101 polynoorder, 3263 polynocoeff[6] (float64)
  2.x     wavelength = sum_k coeff[k] * p^k at pixel numbers p = 1..xdim (WinSpec counts from 1);
          counts of an accumulated frame are the sum of the accumulations (WinSpec adds them).
  3.x     the footer's DataFormat gives frames, pixel format, frame stride and the region(s);
          Calibrations/WavelengthMapping/Wavelength lists one wavelength per sensor pixel (or
          WavelengthError "wavelength,error" pairs), SensorMapping the region's x offset and binning;
          ShutterTiming/ExposureTime is in ms; OnlineProcessing/FrameCombination: FramesCombined
          frames were summed ("Sum") or averaged ("Average") into each stored frame.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from fabplan.errors import UserError
from fabplan.lab.frames import Frames, frame_store, pick

HEADER = 4100
LASTVALUE = 0x5555
DTYPES_V2 = {0: "<f4", 1: "<i4", 2: "<i2", 3: "<u2", 5: "<f8", 6: "<u1", 8: "<u4"}
PIXEL_FORMATS = {
    "MonochromeUnsigned16": "<u2",
    "MonochromeUnsigned32": "<u4",
    "MonochromeFloating32": "<f4",
}


def _u(buf: bytes, fmt: str, off: int):
    return struct.unpack_from("<" + fmt, buf, off)[0]


def read_spe(p: Path) -> Frames:
    size = p.stat().st_size
    with p.open("rb") as fh:
        head = fh.read(HEADER)
        if len(head) < HEADER:
            raise UserError(f"{p}: truncated SPE file ({len(head)} bytes, the header alone is {HEADER})")
        if _u(head, "h", 4098) != LASTVALUE:
            raise UserError(f"{p}: not a Princeton Instruments SPE file (no 0x5555 at byte 4098)")
        version = float(_u(head, "f", 1992))
        if version >= 3.0:
            xml_at = int(_u(head, "Q", 678))
            if not HEADER <= xml_at < size:
                raise UserError(f"{p}: SPE {version:g} without its XML footer (offset {xml_at}, size {size})")
            fh.seek(xml_at)
            footer = fh.read()
            return _v3(p, head, footer, version, size)
        return _v2(p, head, version, size)


def _v2(p: Path, head: bytes, version: float, size: int) -> Frames:
    xdim, ydim, nfr = _u(head, "H", 42), _u(head, "H", 656), _u(head, "i", 1446)
    code = _u(head, "h", 108)
    if code not in DTYPES_V2:
        raise UserError(f"{p}: SPE data type {code} unknown")
    dtype = DTYPES_V2[code]
    frame_bytes = xdim * ydim * np.dtype(dtype).itemsize
    if nfr < 1 or nfr * frame_bytes > size:  # nonsense counts would allocate for ever
        raise UserError(
            f"{p}: truncated SPE file: {nfr} frames of {xdim} x {ydim} do not fit in {size} bytes"
        )
    counts = frame_store(p, [HEADER + k * frame_bytes for k in range(nfr)], dtype, ydim, xdim, "SPE")
    exposure = float(_u(head, "f", 10))
    acc = max(int(_u(head, "i", 668)), 1)
    wl = None
    order = head[3101]
    if head[3098] and 1 <= order <= 5:
        coeff = struct.unpack_from("<6d", head, 3263)[: order + 1]
        wl = np.polynomial.polynomial.polyval(np.arange(1, xdim + 1, dtype=np.float64), coeff)
    exposure = exposure if exposure > 0 else None
    return Frames(
        counts,
        wl,
        exposure,
        acc,
        round(exposure * acc, 9) if exposure else None,
        f"SPE {version:.1f}",
        "pixel number",
    )


def _strip_ns(root: ET.Element) -> ET.Element:
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def _v3(p: Path, head: bytes, footer: bytes, version: float, size: int) -> Frames:
    try:
        root = _strip_ns(ET.fromstring(footer))
    except ET.ParseError as exc:
        raise UserError(f"{p}: SPE {version:g} XML footer is not valid XML ({exc})") from None
    frame = root.find("DataFormat/DataBlock[@type='Frame']")
    if frame is None:
        raise UserError(f"{p}: SPE {version:g} footer has no DataFormat frame block")
    regions = frame.findall("DataBlock[@type='Region']")
    if len(regions) != 1:
        raise UserError(
            f"{p}: {len(regions)} regions of interest per frame; one region (a spectrum) expected"
        )
    fmt = frame.get("pixelFormat", "")
    if fmt not in PIXEL_FORMATS:
        raise UserError(f"{p}: SPE pixel format {fmt!r} unknown")
    try:
        nfr = int(frame.get("count", "0"))
        stride = int(frame.get("stride") or frame.get("size") or 0)
        width, height = int(regions[0].get("width", "0")), int(regions[0].get("height", "0"))
    except ValueError:
        raise UserError(f"{p}: SPE footer has non-numeric frame/region sizes") from None
    if nfr < 1 or nfr * stride > size:
        raise UserError(f"{p}: truncated SPE file: {nfr} frames of {stride} bytes do not fit in {size} bytes")
    counts = frame_store(
        p, [HEADER + k * stride for k in range(nfr)], PIXEL_FORMATS[fmt], height, width, "SPE"
    )
    wl = _wavelengths_v3(p, root, regions[0], width)
    exposure = _number(root, ".//ShutterTiming/ExposureTime")
    exposure_s = round(exposure / 1000.0, 9) if exposure and exposure > 0 else None
    combined = int(_number(root, ".//FrameCombination/FramesCombined") or 1)
    method_el = root.find(".//FrameCombination/Method")
    method = (method_el.text or "").strip() if method_el is not None else ""
    summed = method.lower() == "sum" or combined == 1
    integration = round(exposure_s * (combined if summed else 1), 9) if exposure_s else None
    extra = {"frame_combination": method} if combined > 1 else {}
    return Frames(counts, wl, exposure_s, combined, integration, f"SPE {version:.1f}", "pixel number", extra)


def _number(root: ET.Element, path: str) -> float | None:
    el = root.find(path)
    try:
        return float(el.text) if el is not None and el.text else None
    except ValueError:
        return None


def _wavelengths_v3(p: Path, root: ET.Element, region: ET.Element, width: int) -> np.ndarray | None:
    mapping = root.find("Calibrations/WavelengthMapping")
    if mapping is None:
        return None
    el = mapping.find("Wavelength")
    try:
        if el is not None and el.text:
            wl = np.array([v for v in el.text.replace("\n", ",").split(",") if v.strip()], dtype=np.float64)
        else:
            el = mapping.find("WavelengthError")
            if el is None or not el.text:
                return None
            wl = np.array([float(pair.split(",")[0]) for pair in el.text.split()])
    except ValueError:
        raise UserError(f"{p}: SPE wavelength calibration has non-numeric values") from None
    if len(wl) == width:
        return wl
    # one wavelength per sensor pixel: the region's columns are x .. x + width*xBinning, binned
    sm = root.find("Calibrations/SensorMapping")
    try:
        x0 = int(sm.get("x", "0")) if sm is not None else 0
        xb = int(sm.get("xBinning", "1")) if sm is not None else 1
    except ValueError:
        raise UserError(f"{p}: SPE sensor mapping has non-numeric x/xBinning") from None
    if x0 < 0 or xb < 1 or x0 + width * xb > len(wl):
        raise UserError(
            f"{p}: {len(wl)} wavelengths do not cover a region of {width} x {xb} pixels from x={x0}"
        )
    return wl[x0 : x0 + width * xb].reshape(width, xb).mean(axis=1)


def spe_spectrum(
    p: Path, frame: int | None = None, rows: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray, float | None, dict]:
    """One spectrum (wavelength_nm, counts, integration_s, acquisition): see frames.pick."""
    return pick(p, read_spe(p), frame, rows)
