"""`fabplan calibrate` reads doses in any fluence definition and reports the design's (issue 18 leftover).

Expected numbers come from closed forms computed here, independently of fabplan's own grids:
- Gaussian spot, f = exp(-2 r^2 / w0^2): pulse energy E = F0 pi w0^2 / 2, i.e. peak fluence
  F0 = 2 E / (pi w0^2) (Liu, Opt. Lett. 7, 196 (1982), eq. 1). Its FWHM region is u = 2 r^2/w0^2 <= ln 2
  and dA is proportional to du, so the area-weighted mean of f there is
  (1/ln 2) integral_0^ln2 exp(-u) du = 1 / (2 ln 2) = 0.72135: ring-fwhm-average = peak / (2 ln 2).
- LG01 donut, I ~ (2 r^2/w^2) exp(-2 r^2/w^2) (Allen et al., Phys. Rev. A 45, 8185 (1992); Siegman,
  Lasers (1986) sec. 16.4), normalised to its ring maximum at r_p: f = e x exp(-x), x = r^2 / r_p^2,
  dA = pi r_p^2 dx, so E = F_pk e pi r_p^2 (integral of x exp(-x) = 1). Here the FWHM ring edges are
  found by brentq and the ring mean by quad (not fabplan's Lambert W or its grid).
  Disc edge: the inner root of e x exp(-x) = s, s = F_th(1) N^(S-1) / F_pk (brentq again).
- Annular mask 10/16 um: geometric-annulus area pi (8^2 - 5^2) = 39 pi um^2, so a pulse of E uJ is
  E / (39 pi 1e-5) mJ/cm^2 in that definition.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import brentq

from fabplan.beam import AnnularBeam, Lg01Beam, MeasuredBeam
from fabplan.cli import main

DESIGNS = Path(__file__).resolve().parents[1] / "designs"
F_TH, S_EXP, RING_UM = 40.0, 0.8, 12.0
PEAK_DOSES = [60.0, 80.0, 110.0, 150.0, 200.0, 280.0]
PULSES = [1, 2, 5]


def _lg01(x: float) -> float:
    return math.e * x * math.exp(-x)


def lg01_ring_mean() -> float:
    x1 = brentq(lambda x: _lg01(x) - 0.5, 1e-12, 1.0)
    x2 = brentq(lambda x: _lg01(x) - 0.5, 1.0, 50.0)
    return quad(_lg01, x1, x2)[0] / (x2 - x1)


def lg01_disc_um(f_peak: float, n: int) -> float:
    s = F_TH * n ** (S_EXP - 1) / f_peak
    x = brentq(lambda x: _lg01(x) - s, 0.0, 1.0)
    return 2 * (RING_UM / 2) * math.sqrt(x)


def _matrix(path: Path, factor: float, column: str = "fluence_mj_cm2", definition: str | None = None) -> Path:
    """Exact LG01 dose matrix; doses = peak fluence x factor (the same pulses in another definition)."""
    head = f"site,{column},pulses,diameter_um" + (",fluence_definition" if definition is not None else "")
    rows = [head]
    for n in PULSES:
        for f in PEAK_DOSES:
            extra = f",{definition}" if definition is not None else ""
            rows.append(f"s{n}-{f:g},{f * factor:.10g},{n},{lg01_disc_um(f, n):.10g}{extra}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _calibrate(capsys, *args) -> dict:
    assert main(["calibrate", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_gaussian_spot_definitions_match_liu_and_the_fwhm_mean():
    w0 = 5.0
    r = np.linspace(0.0, 4 * w0, 4001)
    beam = MeasuredBeam(r_um=r, intensity=np.exp(-2 * r**2 / w0**2), threshold_fluence_mj_cm2=10.0)
    assert beam.fluence_area_for("peak") == pytest.approx(math.pi * w0**2 / 2, rel=1e-5)  # Liu 1982
    assert float(beam.convert_fluence(100.0, "peak", "ring-fwhm-average")) == pytest.approx(
        100.0 / (2 * math.log(2)), rel=1e-3
    )


def test_lg01_conversion_matches_the_independent_ring_mean():
    k = lg01_ring_mean()
    assert k == pytest.approx(0.8048, abs=1e-4)
    for ring in (6.0, 12.0, 30.0):  # a shape ratio: the same for every ring size
        b = Lg01Beam(ring_diameter_um=ring, threshold_fluence_mj_cm2=F_TH)
        assert float(b.convert_fluence(100.0, "peak", "ring-fwhm-average")) == pytest.approx(100.0 * k, rel=1e-5)
        assert float(b.convert_fluence(100.0 * k, "ring-fwhm-average", "peak")) == pytest.approx(100.0, rel=1e-5)
        assert b.fluence_area_for("peak") == pytest.approx(math.e * math.pi * (ring / 2) ** 2, rel=1e-12)


def test_calibrate_reads_ring_average_doses_and_reports_the_designs_definition(tmp_path, capsys):
    k = lg01_ring_mean()
    e_th = F_TH * math.e * math.pi * (RING_UM / 2) ** 2 * 1e-5  # uJ, whichever definition the doses are in
    peak = _calibrate(capsys, _matrix(tmp_path / "peak.csv", 1.0), "--ring-diameter", "12 um")
    assert peak["parameters"]["threshold_fluence_mj_cm2"]["value"] == pytest.approx(F_TH, rel=1e-4)
    assert peak["fluence_definition"]["name"] == "peak" and peak["dose_fluence_definitions"] == ["peak"]

    ring_csv = _matrix(tmp_path / "ring.csv", k)
    # The same pulses stated as ring-average fluences: by option, or by a column in the file.
    by_option = _calibrate(capsys, ring_csv, "--ring-diameter", "12 um", "--fluence-definition", "ring-fwhm-average")
    by_column = _calibrate(
        capsys, _matrix(tmp_path / "col.csv", k, definition="ring-fwhm-average"), "--ring-diameter", "12 um"
    )
    for res in (by_option, by_column):
        assert res["fluence_definition"]["name"] == "ring-fwhm-average"  # no design: the doses' own
        assert res["parameters"]["threshold_fluence_mj_cm2"]["value"] == pytest.approx(F_TH * k, rel=1e-4)
        assert res["parameters"]["incubation_exponent"]["value"] == pytest.approx(S_EXP, abs=1e-4)
        assert res["threshold_energy_uj"] == pytest.approx(e_th, rel=1e-4)
        assert "fluence_definition: ring-fwhm-average  #" in res["beam_yaml"]

    # With a design (lg01, peak): reported in the design's definition, i.e. the true peak threshold.
    to_design = _calibrate(
        capsys, ring_csv, "--ring-diameter", "12 um", "--fluence-definition", "ring-fwhm-average",
        "--design", DESIGNS / "dose_matrix.yaml",
    )
    assert to_design["fluence_definition"]["name"] == "peak"
    assert to_design["dose_fluence_definitions"] == ["ring-fwhm-average"]
    assert to_design["parameters"]["threshold_fluence_mj_cm2"]["value"] == pytest.approx(F_TH, rel=1e-4)
    assert "threshold_fluence: 40 mJ/cm^2" in to_design["beam_yaml"]
    assert "fluence_definition: peak  #" in to_design["beam_yaml"]

    # Misread as peak (the old behaviour), the same file gives a threshold 1/k = 1.24x too low in peak terms.
    wrong = _calibrate(capsys, ring_csv, "--ring-diameter", "12 um", "--design", DESIGNS / "dose_matrix.yaml")
    assert wrong["parameters"]["threshold_fluence_mj_cm2"]["value"] == pytest.approx(F_TH * k, rel=1e-4)

    assert main(["calibrate", str(ring_csv), "--ring-diameter", "12 um", "--fluence-definition", "ring-fwhm-average"]) == 0
    text = capsys.readouterr().out
    assert "dose given as fluence (ring-fwhm-average), converted to peak fluence" in text
    assert "mJ/cm^2 ring-fwhm-average fluence" in text and "fluence: ring-fwhm-average (" in text


def test_the_designs_damage_fluence_is_read_in_the_designs_definition(tmp_path, capsys):
    """A ring-average design: its damage fluence and the reported threshold are in one definition, so the
    smallest disc is the LG01 inner edge at s = F_th / F_damage (both ring-average; brentq above). The
    old calibrate compared its peak threshold (40) with the ring-average damage: s = 0.1 instead of 0.08."""
    k = lg01_ring_mean()
    design = tmp_path / "ring.yaml"
    design.write_text((DESIGNS / "dose_matrix.yaml").read_text().replace(
        "  damage_fluence: 400 mJ/cm^2\n", "  damage_fluence: 400 mJ/cm^2\n  fluence_definition: ring-fwhm-average\n"))
    csv = _matrix(tmp_path / "peak.csv", 1.0)  # measured in peak fluence, reported in the design's ring average
    assert main(["calibrate", str(csv), "--ring-diameter", "12 um", "--design", str(design)]) == 0
    text = capsys.readouterr().out
    assert f"F_th(1)         {F_TH * k:.4g} mJ/cm^2 ring-fwhm-average fluence" in text
    s_min = F_TH * k / 400.0
    x = brentq(lambda x: _lg01(x) - s_min, 0.0, 1.0)
    assert f"achievable disc diameter, N = 1: {2 * (RING_UM / 2) * math.sqrt(x):.3g} - " in text
    assert "damage_fluence: 400 mJ/cm^2" in text and "fluence_definition: ring-fwhm-average  #" in text


def test_annular_geometric_annulus_doses_are_the_pulse_energies_over_39_pi(tmp_path, capsys):
    geo = ["--beam", "annular", "--inner-diameter", "10 um", "--outer-diameter", "16 um", "--na", "0.32",
           "--incubation-exponent", "0.8"]
    beam = AnnularBeam(inner_diameter_um=10, outer_diameter_um=16, na=0.32, threshold_fluence_mj_cm2=F_TH)
    energies = np.array([0.05, 0.06, 0.08, 0.1, 0.13, 0.17, 0.22])
    diam = beam.disc_diameter_um(energies / (beam.effective_area_um2 * 1e-5))  # diameters only: any model would do
    rows = ["pulse_energy_uj,pulses,diameter_um"] + [f"{e:g},1,{d:.10g}" for e, d in zip(energies, diam, strict=True)]
    (tmp_path / "e.csv").write_text("\n".join(rows) + "\n")
    area = 39 * math.pi  # um^2, closed form
    rows = ["fluence_mj_cm2,pulses,diameter_um"] + [
        f"{e / (area * 1e-5):.10g},1,{d:.10g}" for e, d in zip(energies, diam, strict=True)
    ]
    (tmp_path / "g.csv").write_text("\n".join(rows) + "\n")
    by_energy = _calibrate(capsys, tmp_path / "e.csv", *geo)
    by_geo = _calibrate(capsys, tmp_path / "g.csv", *geo, "--fluence-definition", "geometric-annulus")
    assert by_energy["fluence_definition"]["name"] == "peak"
    assert by_geo["fluence_definition"]["name"] == "geometric-annulus"
    assert by_geo["threshold_energy_uj"] == pytest.approx(by_energy["threshold_energy_uj"], rel=1e-6)
    f_geo = by_geo["parameters"]["threshold_fluence_mj_cm2"]["value"]
    assert f_geo == pytest.approx(by_energy["threshold_energy_uj"] / (area * 1e-5), rel=1e-6)
    # ... and into the seed design (annular, peak): E_th / A_eff.
    seed = _calibrate(capsys, tmp_path / "g.csv", "--fluence-definition", "geometric-annulus", "--incubation-exponent",
                      "0.8", "--design", DESIGNS / "seed_single_disc.yaml")
    assert seed["fluence_definition"]["name"] == "peak"
    assert seed["parameters"]["threshold_fluence_mj_cm2"]["value"] == pytest.approx(
        by_energy["parameters"]["threshold_fluence_mj_cm2"]["value"], rel=1e-6
    )


@pytest.mark.parametrize(
    ("csv_text", "options", "message"),
    [
        (None, ["--fluence-definition", "average"], "--fluence-definition 'average': unknown fluence definition"),
        (None, ["--fluence-definition", "geometric-annulus"], "--fluence-definition geometric-annulus needs an annular"),
        ("fluence_mj_cm2,pulses,diameter_um,fluence_definition\n100,1,8,ring-fwhm-average\n120,1,9,average\n", [],
         "bad.csv:3: fluence_definition: unknown fluence definition 'average'"),
        ("fluence_mj_cm2,pulses,diameter_um,fluence_definition\n100,1,8,peak\n120,1,9,\n",
         ["--fluence-definition", "ring-fwhm-average"], "fluence_definition column says peak, but --fluence-definition"),
        ("peak_fluence_mj_cm2,pulses,diameter_um\n100,1,8\n120,1,9\n", ["--fluence-definition", "ring-fwhm-average"],
         "'peak_fluence_mj_cm2' column is a peak fluence, but --fluence-definition"),
        ("pulse_energy_uj,pulses,diameter_um\n0.1,1,8\n0.2,1,9\n", ["--fluence-definition", "peak"],
         "gives pulse energies (pulse_energy_uj), not fluences"),
    ],
)
def test_unknown_or_contradicting_definitions_exit_2_with_one_line(tmp_path, capsys, csv_text, options, message):
    path = tmp_path / "bad.csv"
    if csv_text is None:
        _matrix(path, 1.0)
    else:
        path.write_text(csv_text)
    assert main(["calibrate", str(path), "--ring-diameter", "12 um", *options]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_convert_fluence_docstring_example_runs():
    import doctest

    from fabplan.beam.base import BeamModel

    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    for t in finder.find(BeamModel.convert_fluence, "convert_fluence"):
        runner.run(t)
    assert runner.summarize(verbose=False).attempted == 3 and runner.summarize(verbose=False).failed == 0
