"""Andor SIF files written by Andor Solis (tests/data/sif, from sif_parser's public test set, see its
README): accumulations, kinetic series frames, images, truncated files.

Oracles: Solis' own ASCII export of raman1.sif (raman1.asc: wavelength and counts columns, then
"Exposure Time (secs): 0.1" and "Number of Accumulations: 500"), and sif_parser.np_open for frames.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fabplan.errors import ProblemsError, UserError
from fabplan.lab import import_manifest, open_db
from fabplan.lab.spectra_io import read_spectrum, read_spectrum_info, split_selection

sif_parser = pytest.importorskip("sif_parser")
DATA = Path(__file__).resolve().parent / "data" / "sif"


def _asc(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    rows, meta = [], {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            a, b = (float(v) for v in line.split())
            rows.append([a, b])
            continue
        except ValueError:
            pass
        if ":" in line:
            k, _, v = line.partition(":")
            meta[k.strip()] = v.strip()
    a = np.array(rows)
    return a[:, 0], a[:, 1], meta


def test_accumulated_spectrum_matches_solis_export_and_integrates_all_accumulations():
    wl, counts, t, acq = read_spectrum_info(DATA / "raman1.sif")
    awl, acounts, meta = _asc(DATA / "raman1.asc")
    # the export writes 6 significant digits (3076745 -> 3076750)
    assert np.allclose(wl, awl, atol=1e-5) and np.allclose(counts, acounts, rtol=5e-6, atol=0.5)
    exposure, acc = float(meta["Exposure Time (secs)"]), int(meta["Number of Accumulations"])
    assert (acq["exposure_s"], acq["accumulations"]) == (exposure, acc) == (0.1, 500)
    assert t == acq["integration_s"] == pytest.approx(exposure * acc)  # 50 s, not 0.1 s


def test_kinetic_series_is_one_spectrum_per_frame():
    p = DATA / "measurement.sif"
    with pytest.raises(UserError, match=r"kinetic series of 20 frames.*'frame' column.*#frame=N"):
        read_spectrum(p)
    data, info = sif_parser.np_open(str(p))
    assert data.shape == (20, 1, 1024)
    for k in (1, 7, 20):
        wl, counts, t, acq = read_spectrum_info(f"{p}#frame={k}")
        assert np.array_equal(counts, data[k - 1, 0]) and t == 3.0
        assert acq["frame"] == k and acq["frames"] == 20 and acq["exposure_s"] == 3.0
        assert 529.9 < wl[0] < wl[-1] < 593.0
    with pytest.raises(UserError, match="frame 21 out of range"):
        read_spectrum(f"{p}#frame=21")
    assert split_selection("a.sif#frame=3&rows=2-4") == (Path("a.sif"), {"frame": 3, "rows": (2, 4)})


def test_image_is_refused_as_an_image_or_binned_over_rows(tmp_path):
    p = DATA / "test.sif"
    with pytest.raises(UserError, match=r"2-D image \(256 rows x 256 columns\).*rows to bin"):
        read_spectrum(p)
    with pytest.raises(UserError, match="no wavelength calibration.*Pixel number"):
        read_spectrum(f"{p}#rows=100-120")
    # the same image with a wavelength calibration written into its header (500 nm + 0.1 nm/pixel)
    raw = p.read_bytes()
    i = raw.index(b"\n0 1 0 0\n", 2000)
    cal = tmp_path / "calibrated.sif"
    cal.write_bytes(raw[:i] + b"\n500 0.1 0 0\n" + raw[i + 9 :])
    data, _ = sif_parser.np_open(str(p))
    wl, counts, t, acq = read_spectrum_info(f"{cal}#rows=100-120")
    assert np.allclose(counts, data[0, 99:120].sum(axis=0)) and acq["rows"] == "100-120"
    assert np.allclose(wl, 500 + 0.1 * np.arange(1, 257))
    with pytest.raises(UserError, match="rows 0-3 out of range"):
        read_spectrum(f"{cal}#rows=0-3")


def test_truncated_files_are_refused_not_hung(tmp_path):
    """Every cut of the header and the data raises (in a child process, bounded by a timeout)."""
    src = (DATA / "measurement.sif").read_bytes()
    cuts = [0, 10, 36, 44, *range(45, 3200, 53), 5000, 60_000, 85_000]
    for n in cuts:
        (tmp_path / f"cut{n}.sif").write_bytes(src[:n])
    code = (
        "import sys\nfrom fabplan.lab.spectra_io import read_spectrum\nfrom fabplan.errors import UserError\n"
        "for f in sys.argv[1:]:\n"
        "    try:\n        read_spectrum(f); print('READ', f)\n"
        "    except UserError as e:\n        print('REFUSED', e)\n"
    )
    files = [str(tmp_path / f"cut{n}.sif#frame=1") for n in cuts]
    out = subprocess.run([sys.executable, "-c", code, *files], capture_output=True, text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and len(lines) == len(cuts), out.stderr[-2000:]
    assert all(line.startswith("REFUSED") for line in lines), [
        x for x in lines if not x.startswith("REFUSED")
    ]
    assert any("cut44.sif: truncated Andor SIF" in line for line in lines)


def test_manifest_maps_frames_to_fluences(tmp_path):
    fluences = [2.0 * (k + 1) for k in range(20)]
    man = tmp_path / "m.csv"
    rows = [f"A-r00c00,{f},{DATA / 'measurement.sif'}#frame={k + 1}" for k, f in enumerate(fluences)]
    man.write_text("disc_id,fluence,spectrum\n" + "\n".join(rows) + "\n")
    con = open_db(tmp_path / "lab.sqlite")
    res = import_manifest(con, man, allow_unknown=True)
    assert res["spectra"] == 20 and res["series"] == 1
    got = con.execute("SELECT fluence_uj_cm2, integration_s, source_file FROM spectra ORDER BY id").fetchall()
    assert [g[0] for g in got] == fluences and {g[1] for g in got} == {3.0}
    assert got[6][2].endswith("measurement.sif#frame=7")
    # the same with a 'frame' column, plus the 500 x 0.1 s accumulated file: exposure and accumulations kept
    man.write_text(
        "disc_id,fluence,spectrum,frame\n"
        + "\n".join(f"A-r00c02,{f},{DATA / 'measurement.sif'},{k + 1}" for k, f in enumerate(fluences[:3]))
        + f"\nA-r00c03,7,{DATA / 'raman1.sif'},\n"
    )
    import_manifest(con, man, allow_unknown=True)
    got = con.execute(
        "SELECT source_file, integration_s, exposure_s, accumulations FROM spectra WHERE id > 20 ORDER BY id"
    ).fetchall()
    assert [tuple(g)[1:] for g in got] == [(3.0, 3.0, 1)] * 3 + [(50.0, 0.1, 500)]
    assert got[2][0].endswith("measurement.sif#frame=3") and got[3][0].endswith("raman1.sif")
    # the whole file without a frame: refused with the way to do it
    man.write_text(f"disc_id,fluence,spectrum\nA-r00c01,5,{DATA / 'measurement.sif'}\n")
    with pytest.raises(ProblemsError, match="kinetic series of 20 frames"):
        import_manifest(con, man, allow_unknown=True)


def test_lab_add_cli_truncated_sif_is_one_line_and_a_frame_can_be_named(tmp_path, capsys):
    from fabplan.cli import main

    db = str(tmp_path / "lab.sqlite")
    cut = tmp_path / "cut.sif"
    cut.write_bytes((DATA / "raman1.sif").read_bytes()[:44])  # the issue's 44-byte file
    base = ["lab", "add", "--db", db, "--disc", "A-r00c00", "--allow-unknown", "--fluence", "5"]
    assert main([*base, "--spectrum", str(cut)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "truncated Andor SIF" in err[0]
    assert main([*base, "--spectrum", f"{DATA / 'measurement.sif'}#frame=2", "--json"]) == 0
