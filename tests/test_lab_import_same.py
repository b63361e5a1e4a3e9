"""The faster import (issue 16 leftover) stores exactly what the import stored before.

Reference: the two-column text reader as it was before the speed work (fabplan 31cb717,
fabplan/lab/spectra_io.py `_read_text`/`_numbers`/`_finish`), kept below verbatim apart from names
(`_axis`'s cache dropped: it never changed a value). The new reader must return bit-identical arrays
(float64 bytes, so -0.0 vs 0.0 counts too), the same integration time and the same error message for
every file below, and a manifest import (in worker processes and in one process, on SQLite and
PostgreSQL) must store the same rows: axes, spectra blobs, series and discs, as the reference reader's
arrays predict them. Outside files: Andor Solis' own ASCII export (tests/data/sif/raman1.asc, CRLF and
tabs), the Solis SIF and LightField SPE samples (tests/data, their READMEs).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabplan.errors import UserError
from fabplan.lab import import_manifest, open_db
from fabplan.lab import spectra_io as sio
from fabplan.lab.axis_units import axis_unit, counts_per_second, to_nm
from fabplan.lab.db import from_blob, to_blob
from fabplan.lab.simulate import simulate_series
from tests import lab_pg

lab_url, pg_url = lab_pg.lab_url, lab_pg.pg_url  # fixtures: SQLite file, PostgreSQL database

DATA = Path(__file__).parent / "data"


# ---- the reader before the speed work (reference) ------------------------------------------------


def ref_read_text(p: Path):
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"{p}: cannot read ({exc.strerror})") from None
    integration_s = None
    header = ""
    pos = 0
    lineno = 0
    while pos < len(text):
        nl = text.find("\n", pos)
        line = text[pos : (nl if nl >= 0 else len(text))].strip()
        if line and not line.startswith("#") and sio._numeric(line):
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
        wl = np.array(tuple(tokens[0::2]), dtype=np.float64)
        counts = ref_numbers(tokens[1::2])
    except ValueError:
        for k, line in enumerate(body.splitlines(), lineno + 1):
            if line.strip() and not sio._numeric(line.strip()):
                raise UserError(f"{p}:{k}: not two numbers: {line.strip()[:60]!r}") from None
        raise
    if header:
        wl = to_nm(p, wl, axis_unit(header))
        if integration_s is None and counts_per_second(header):
            integration_s = 1.0
    return ref_finish(p, wl, counts, integration_s)


def ref_numbers(tokens):
    try:
        return np.array(tokens, dtype=np.int64).astype(np.float64)
    except (ValueError, OverflowError):
        return np.array(tokens, dtype=np.float64)


def ref_finish(p, wl, counts, integration_s):
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


def _outcome(fn, *args):
    """What a reader gives: (dtype, bytes) of each array and the other values, or the error."""
    try:
        out = fn(*args)
    except (UserError, ValueError, OverflowError) as exc:
        return ("error", type(exc).__name__, str(exc))
    return tuple((a.dtype.str, a.tobytes()) if isinstance(a, np.ndarray) else a for a in out)


# ---- files ---------------------------------------------------------------------------------------

WL = np.round(np.linspace(520.0, 560.0, 64), 4)
INTS = [str(v) for v in np.random.default_rng(3).integers(0, 60000, 64)]


def _lines(wl=WL, counts=INTS, sep=","):
    return [f"{w:.4f}{sep}{c}" for w, c in zip(wl, counts, strict=True)]


def _with(counts_change: dict[int, str]):
    c = list(INTS)
    for k, v in counts_change.items():
        c[k] = v
    return c


TEXT_FILES: dict[str, bytes | str] = {
    "plain": "# integration_s=1\nwavelength_nm,counts\n" + "\n".join(_lines()) + "\n",
    "same_axis_again": "# integration_s=2\nwavelength_nm,counts\n" + "\n".join(_lines(counts=INTS[::-1])) + "\n",
    "no_header": "\n".join(_lines()),
    "crlf": "wavelength_nm,counts\r\n" + "\r\n".join(_lines()) + "\r\n",
    "cr_only": "# exposure_s=0.5\rwavelength_nm,counts\r" + "\r".join(_lines()) + "\r",
    "descending": "wavelength_nm,counts\n" + "\n".join(_lines()[::-1]) + "\n",
    "descending_again": "\n".join(_lines(counts=INTS[::-1])[::-1]) + "\n",
    "semicolon": "\n".join(_lines(sep=";")),
    "tab": "\n".join(_lines(sep="\t")),
    "spaces": "\n".join(_lines(sep="   ")),
    "micrometres": "wavelength (um),counts\n" + "\n".join(_lines(wl=WL / 1000)),
    "electronvolts": "energy_eV,counts\n" + "\n".join(_lines(wl=1239.841984 / WL)),
    "counts_per_second": "wavelength_nm,counts/s\n" + "\n".join(_lines()),
    "decimal_counts": "\n".join(_lines(counts=[f"{int(c) / 7:.1f}" for c in INTS])),
    "negative_and_signs": "\n".join(_lines(counts=_with({0: "-12", 1: "+5", 2: "007", 3: "-0", 4: "0"}))),
    "negative_zero_decimal": "\n".join(_lines(counts=_with({3: "-0", 7: "1.5"}))),
    "int64_limit": "\n".join(_lines(counts=_with({5: "9223372036854775807"}))),
    "beyond_int64": "\n".join(_lines(counts=_with({5: "99999999999999999999", 6: "-99999999999999999999"}))),
    "underscore": "\n".join(_lines(counts=_with({5: "1_000"}))),
    "exponent": "\n".join(_lines(counts=_with({5: "1e3"}))),
    "arabic_digit": "\n".join(_lines(counts=_with({5: "\u0663"}))),
    "sign_alone": "\n".join(_lines(counts=_with({5: "- 3"}))),
    "nan_count": "\n".join(_lines(counts=_with({5: "nan"}))),
    "inf_count": "\n".join(_lines(counts=_with({5: "inf"}))),
    "junk_count": "\n".join(_lines(counts=_with({5: "12abc"}))),
    "hex_count": "\n".join(_lines(counts=_with({5: "0x10"}))),
    "odd_tokens": "\n".join(_lines()) + "\n561.0\n",
    "too_few": "530.0,1\n",
    "empty": "",
    "not_monotonic": "\n".join(_lines(wl=np.r_[WL[:10], WL[9], WL[11:]])),
    "not_nm": "\n".join(_lines(wl=WL / 1000)),
    "nan_axis": "\n".join(_lines(wl=np.r_[WL[:10], np.nan, WL[11:]])),
    "bom": "\ufeffwavelength_nm,counts\n" + "\n".join(_lines()),
    "bad_utf8": b"# operator=\xff\xfe caf\xc3\n" + "\n".join(_lines()).encode(),
    # invalid bytes around read_text()'s 8 KiB decoding chunks
    "bad_utf8_long": b"".join(b"# note " + b"x" * k + b"\xe2\x82\n" for k in range(0, 9000, 997))
    + "\n".join(_lines()).encode(),
    "crlf_long_comment": ("# " + "y" * 8189 + "\r\n" + "\r\n".join(_lines())).encode(),
    "nul_in_count": "\n".join(_lines(counts=_with({5: "1\x002"}))),
}


@pytest.fixture(scope="module")
def text_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("spectra")
    out = {}
    for name, content in TEXT_FILES.items():
        p = d / f"{name}.csv"
        p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        out[name] = p
    return out


def test_text_reader_returns_what_the_reference_returned(text_files):
    errors = 0
    for _ in range(2):  # the second pass reads every axis from the parser's cache
        for name, p in text_files.items():
            got = _outcome(sio._read_text, p)
            assert got == _outcome(ref_read_text, p), name
            errors += got[0] == "error"
    assert 0 < errors < 2 * len(text_files)  # both kinds of file are in the set
    wl, counts, t = sio._read_text(text_files["negative_and_signs"])
    assert np.signbit(counts[3]) == np.False_  # '-0' among integer counts is stored as 0.0, as before
    wl, counts, t = sio._read_text(text_files["negative_zero_decimal"])
    assert np.signbit(counts[3]) == np.True_  # ... and as -0.0 where the column is decimal


def test_solis_ascii_export_reads_as_before():
    p = DATA / "sif" / "raman1.asc"  # Andor Solis' own export: CRLF, tab-separated, settings after the data
    assert _outcome(sio._read_text, p) == _outcome(ref_read_text, p)


_TOKEN = st.text(alphabet="0123456789+-._eExX\u0663\x00a", min_size=1, max_size=24)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_TOKEN, st.integers(-(2**70), 2**70).map(str)), min_size=1, max_size=12))
def test_count_column_parses_as_before(tokens):
    assert _outcome(lambda t: (sio._numbers(t),), tokens) == _outcome(lambda t: (ref_numbers(t),), tokens)


# ---- a whole import ------------------------------------------------------------------------------


def _dump(con) -> dict:
    """Every stored value of an import that does not depend on when or by whom it ran (no timestamps,
    no audit ids), rows keyed by what they are rather than by their ids."""
    axes = {r[0]: (r[1], r[2], bytes(r[3])) for r in con.execute("SELECT id, sha1, n, wavelength_nm FROM axes")}
    discs = {r[0]: tuple(r[1:]) for r in con.execute(
        "SELECT d.id, s.name, d.disc_id, d.array_id, d.known, d.status FROM discs d JOIN samples s ON s.id=d.sample_id")}
    series_cols = ("pump_wavelength_nm", "pulse_width_fs", "rep_rate_hz", "spot_fwhm_um", "operator", "notes",
                   "resolution_nm", "fluence_definition")
    series = {r[0]: (discs[r[1]], *r[2:]) for r in con.execute(
        f"SELECT id, disc_pk, {', '.join(series_cols)} FROM series")}
    order = {sid: k for k, sid in enumerate(sorted(series))}  # series numbered in creation order
    spectra = sorted(
        (order[r[0]], series[r[0]], r[1], axes[r[2]], bytes(r[3]), r[4], r[5], r[6], r[7])
        for r in con.execute("SELECT series_id, fluence_uj_cm2, axis_id, counts, integration_s, source_file, "
                             "exposure_s, accumulations FROM spectra")
    )
    return {"axes": sorted(axes.values()), "discs": sorted(discs.values()), "spectra": spectra}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory, text_files) -> Path:
    """Simulated series (20 fluences x 12 discs), the readable edge-case files, SIF frames and an SPE."""
    d = tmp_path_factory.mktemp("import")
    sim = simulate_series([(f"A-r00c{k:02d}", 5.0 + k) for k in range(12)], d / "sim",
                          np.round(np.linspace(2.0, 60.0, 20), 3), seed=4)
    head = "disc_id,fluence_uj_cm2,spectrum,integration_s,resolution_nm,sample,series"
    rows = []
    for ln in sim.read_text().splitlines()[1:]:  # disc_id,fluence_uj_cm2,spectrum,integration_s,resolution_nm
        disc, fluence, spec, integ, res = ln.split(",")
        rows.append(f"{disc},{fluence},{sim.parent / spec},{integ},{res},,")
    readable = [n for n, p in text_files.items() if _outcome(ref_read_text, p)[0] != "error"]
    for k, name in enumerate(readable):  # three files per disc, two series each on another sample
        rows.append(f"B-r01c{k // 3:02d},{3 + k},{text_files[name]},,,other,{k % 2}")
    for k in range(4):
        rows.append(f"C-r00c00,{10 + k},{DATA / 'sif' / 'measurement.sif'}#frame={k + 1},,,,")
    rows.append(f"C-r00c01,7,{DATA / 'sif' / 'raman1.sif'},,,,")
    rows.append(f"C-r00c02,8,{DATA / 'spe' / 'one_dimensional_spectrum.spe'},,0.2,,")
    m = d / "manifest.csv"
    m.write_text("\n".join([head, *rows]) + "\n")
    return m


def _expected_spectra(manifest: Path) -> list[tuple]:
    """(source file, fluence, axis bytes, counts bytes, integration_s) per row, from the reference reader
    for text files (camera files take the one reader both versions share)."""
    out = []
    for ln in manifest.read_text().splitlines()[1:]:
        disc, fluence, spec, integ, _res, _sample, _series = ln.split(",")
        p = Path(spec)
        wl, counts, t = (ref_read_text(p) if p.suffix == ".csv" else sio.read_spectrum(spec))
        out.append((spec, float(fluence), to_blob(wl), to_blob(counts), float(integ) if integ else t))
    return sorted(out)


@pytest.mark.parametrize("workers", [2, 1])
def test_import_stores_what_the_reference_reader_reads(lab_url, manifest, workers):
    con = open_db(lab_url)
    res = import_manifest(con, manifest, allow_unknown=True, workers=workers, chunk=37)
    got = _dump(con)
    con.close()
    n = len(manifest.read_text().splitlines()) - 1
    assert res["spectra"] == n == len(got["spectra"])
    stored = sorted((s[6], s[2], s[3][2], s[4], s[5]) for s in got["spectra"])
    assert stored == _expected_spectra(manifest)
    blobs = [blob for _, _, blob in got["axes"]]
    assert len(blobs) == len(set(blobs))  # each distinct axis stored once, content-addressed
    for sha1, n_px, blob in got["axes"]:
        assert sha1 == hashlib.sha1(blob).hexdigest() and n_px == len(from_blob(blob))


def test_import_in_workers_equals_import_in_one_process(tmp_path, manifest, lab_url):
    dumps = []
    for k, workers in enumerate((2, 1)):
        url = lab_url if k == 0 else str(tmp_path / "one.sqlite")
        con = open_db(url)
        import_manifest(con, manifest, allow_unknown=True, workers=workers, chunk=50)
        dumps.append(_dump(con))
        con.close()
    assert dumps[0] == dumps[1]
