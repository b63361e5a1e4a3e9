"""Princeton Instruments SPE (LightField 3.0 file from spe2py's public test set; WinSpec 2.x and
multi-frame 3.0 files from a writer that follows the published layouts) and two-column text
exports whose header names the x unit.

Expected numbers: the LightField file's own XML footer (wavelength list, ExposureTime 999.99... ms)
and raw float32 data at byte 4100; the generated files' inputs; hc = 1239.841984 eV nm (CODATA 2018).
"""

import re
import struct
from pathlib import Path

import numpy as np
import pytest

from fabplan.errors import UserError
from fabplan.lab.spectra_io import read_spectrum, read_spectrum_info

DATA = Path(__file__).resolve().parent / "data" / "spe"
REAL = DATA / "one_dimensional_spectrum.spe"


def test_lightfield_spe3_file():
    wl, counts, t, acq = read_spectrum_info(REAL)
    raw = REAL.read_bytes()
    assert np.array_equal(counts, np.frombuffer(raw[4100 : 4100 + 4096], "<f4"))
    xml = raw[struct.unpack_from("<Q", raw, 678)[0] :].decode()
    listed = re.search(r"<Wavelength[^>]*>([^<]+)</Wavelength>", xml)[1].split(",")
    assert len(wl) == 1024 and np.allclose(wl, [float(v) for v in listed])
    assert acq["format"] == "SPE 3.0" and acq["exposure_s"] == 1.0 and acq["accumulations"] == 1 and t == 1.0


def test_truncated_or_foreign_spe_is_refused(tmp_path):
    raw = REAL.read_bytes()
    for n in (0, 100, 4099, 5000, 8195, 8300):
        bad = tmp_path / f"cut{n}.spe"
        bad.write_bytes(raw[:n])
        with pytest.raises(UserError, match="truncated|XML|footer|not a Princeton"):
            read_spectrum(bad)
    other = tmp_path / "x.spe"
    other.write_bytes(b"\0" * 5000)
    with pytest.raises(UserError, match="not a Princeton Instruments SPE"):
        read_spectrum(other)


def _spe2(path: Path, frames: np.ndarray, exposure_s: float, accumulations: int, coeff) -> None:
    """WinSpec 2.x layout (CSMAHEAD offsets): uint16 frames x 1 row."""
    n, ydim, xdim = frames.shape
    h = bytearray(4100)
    struct.pack_into("<f", h, 10, exposure_s)
    struct.pack_into("<H", h, 42, xdim)
    struct.pack_into("<h", h, 108, 3)  # unsigned 16-bit
    struct.pack_into("<H", h, 656, ydim)
    struct.pack_into("<i", h, 668, accumulations)
    struct.pack_into("<i", h, 1446, n)
    struct.pack_into("<f", h, 1992, 2.5)
    h[3098], h[3101] = 1, len(coeff) - 1  # calib_valid, polynoorder
    struct.pack_into("<6d", h, 3263, *coeff, *[0.0] * (6 - len(coeff)))
    struct.pack_into("<h", h, 4098, 0x5555)
    path.write_bytes(bytes(h) + frames.astype("<u2").tobytes())


def test_winspec_spe2_frames_calibration_accumulations(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 60000, (3, 1, 100))
    p = tmp_path / "ws.spe"
    coeff = (500.0, 0.1, 1e-5)
    _spe2(p, frames, 0.5, 4, coeff)
    with pytest.raises(UserError, match="kinetic series of 3 frames"):
        read_spectrum(p)
    wl, counts, t, acq = read_spectrum_info(f"{p}#frame=2")
    px = np.arange(1, 101)
    assert np.allclose(wl, 500.0 + 0.1 * px + 1e-5 * px**2) and np.array_equal(counts, frames[1, 0])
    assert (acq["exposure_s"], acq["accumulations"], t) == (0.5, 4, 2.0)
    img = tmp_path / "img.spe"
    _spe2(img, rng.integers(0, 100, (1, 8, 100)), 1.0, 1, coeff)
    with pytest.raises(UserError, match=r"2-D image \(8 rows x 100 columns\)"):
        read_spectrum(img)
    assert read_spectrum(f"{img}#rows=2-3")[1].shape == (100,)


def _spe3(
    path: Path, frames: np.ndarray, sensor_wl: np.ndarray, x0: int, xbin: int, method: str, n_comb: int
):
    """SPE 3.0 layout: 4100-byte header (legacy fields), float32 frames, XML footer."""
    n, height, width = frames.shape
    data = frames.astype("<f4").tobytes()
    stride = height * width * 4
    xml = (
        '<SpeFormat version="3.0" xmlns="http://www.princetoninstruments.com/spe/2009"><DataFormat>'
        f'<DataBlock type="Frame" count="{n}" pixelFormat="MonochromeFloating32" size="{stride}" '
        f'stride="{stride}"><DataBlock type="Region" count="1" width="{width}" height="{height}" '
        f'size="{stride}" stride="{stride}"/></DataBlock></DataFormat><Calibrations>'
        f'<WavelengthMapping id="1"><Wavelength xml:space="preserve">{",".join(map(str, sensor_wl))}'
        f'</Wavelength></WavelengthMapping><SensorInformation id="2" width="{len(sensor_wl)}" height="100"/>'
        f'<SensorMapping id="3" x="{x0}" y="0" width="{width * xbin}" height="{height}" xBinning="{xbin}" '
        'yBinning="1"/></Calibrations><DataHistories><DataHistory><Origin><Experiment><Devices><Cameras>'
        '<Camera><ShutterTiming><ExposureTime type="Double">200</ExposureTime></ShutterTiming></Camera>'
        "</Cameras></Devices><OnlineProcessing><FrameCombination>"
        f'<FramesCombined type="Int64">{n_comb}</FramesCombined><Method>{method}</Method>'
        "</FrameCombination></OnlineProcessing></Experiment></Origin></DataHistory></DataHistories>"
        "</SpeFormat>"
    ).encode()
    h = bytearray(4100)
    struct.pack_into("<H", h, 42, width)
    struct.pack_into("<h", h, 108, 0)
    struct.pack_into("<H", h, 656, height)
    struct.pack_into("<Q", h, 678, 4100 + len(data))
    struct.pack_into("<i", h, 1446, n)
    struct.pack_into("<f", h, 1992, 3.0)
    struct.pack_into("<h", h, 4098, 0x5555)
    path.write_bytes(bytes(h) + data + xml)


def test_lightfield_spe3_binned_region_and_frame_combination(tmp_path):
    sensor = 600.0 + 0.05 * np.arange(400)
    frames = np.arange(2 * 50, dtype=float).reshape(2, 1, 50)
    p = tmp_path / "lf.spe"
    _spe3(p, frames, sensor, x0=20, xbin=2, method="Sum", n_comb=10)
    wl, counts, t, acq = read_spectrum_info(f"{p}#frame=2")
    assert np.allclose(wl, sensor[20:120].reshape(50, 2).mean(axis=1)) and np.array_equal(
        counts, frames[1, 0]
    )
    assert (acq["exposure_s"], acq["accumulations"], t) == (0.2, 10, 2.0)  # 10 summed frames of 200 ms
    _spe3(p, frames, sensor, x0=20, xbin=2, method="Average", n_comb=10)
    assert read_spectrum(f"{p}#frame=1")[2] == 0.2  # an average integrates like one exposure


HEADERS = {
    "wavelength (nm),counts": lambda w: w,
    "Wavelength [um]\tIntensity": lambda w: w / 1000,
    "Wavelength (Å);counts": lambda w: w * 10,
    "Energy (eV),counts": lambda w: 1239.841984 / w,
    "wavenumber (cm^-1),counts": lambda w: 1e7 / w,
    "k [1/cm],counts": lambda w: 1e7 / w,
}


@pytest.mark.parametrize("header", list(HEADERS))
def test_text_export_units_are_honoured(tmp_path, header):
    wl = np.linspace(510.0, 530.0, 41)
    y = 100 + 1000 * np.exp(-(((wl - 520) / 1.5) ** 2))
    x = HEADERS[header](wl)
    sep = "\t" if "\t" in header else (";" if ";" in header else ",")
    p = tmp_path / "s.txt"
    p.write_text(
        header + "\n" + "\n".join(f"{a:.17g}{sep}{b:.17g}" for a, b in zip(x, y, strict=True)) + "\n"
    )
    got_wl, got_y, _ = read_spectrum(p)
    assert np.allclose(got_wl, wl, rtol=1e-12) and np.allclose(got_y, y)  # ascending, counts unchanged


def test_text_export_refusals_and_counts_per_second(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("Raman shift (cm-1),counts\n100,5\n200,6\n300,7\n")
    with pytest.raises(UserError, match="Raman shift"):
        read_spectrum(p)
    p.write_text("pixel,counts\n1,5\n2,6\n3,7\n")
    with pytest.raises(UserError, match="pixels"):
        read_spectrum(p)
    p.write_text("wavelength_nm,counts/s\n500,5\n501,6\n502,7\n")
    assert read_spectrum(p)[2] == 1.0
    p.write_text("wavelength,counts\n500,5\n501,6\n")
    assert read_spectrum(p)[0].tolist() == [500.0, 501.0]  # no unit named: nm, as before


def test_mutated_camera_files_fail_cleanly_and_never_hang(tmp_path):
    """Random byte changes in SIF/SPE headers and the SPE footer: a spectrum or a UserError, never
    another exception or a hang (child process, bounded by a timeout)."""
    import subprocess
    import sys

    code = """
import random, sys, traceback
from pathlib import Path
from fabplan.errors import UserError
from fabplan.lab.spectra_io import read_spectrum
random.seed(7)
data, tmp = Path(sys.argv[1]), Path(sys.argv[2])
for src, lo, hi in ((data / "sif/measurement.sif", 0, 3000), (data / "sif/raman1.sif", 0, 3000),
                    (data / "spe/one_dimensional_spectrum.spe", 0, 4100),
                    (data / "spe/one_dimensional_spectrum.spe", 8196, 44175)):
    raw = src.read_bytes()
    for k in range(40):
        b = bytearray(raw)
        for _ in range(random.randint(1, 6)):
            b[random.randrange(lo, hi)] = random.choice(b'0123456789 -.\\n\\x00\\xff<>="')
        f = tmp / ("m" + src.suffix)
        f.write_bytes(bytes(b))
        for sel in ("", "#frame=1", "#rows=1-1"):
            try:
                read_spectrum(str(f) + sel)
            except UserError:
                pass
            except Exception:
                print("CRASH", src.name, k, sel, traceback.format_exc().splitlines()[-1])
print("done")
"""
    data = Path(__file__).resolve().parent / "data"
    out = subprocess.run(
        [sys.executable, "-c", code, str(data), str(tmp_path)], capture_output=True, text=True, timeout=240
    )
    assert out.stdout.strip().splitlines() == ["done"], out.stdout[-2000:] + out.stderr[-2000:]
