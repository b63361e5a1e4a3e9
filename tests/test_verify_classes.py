"""Every verification class is caught, with the right disc ids; a clean design passes.

Designs are small YAML texts with explicit discs (ids E-r00c00, E-r00c01, ...). The beam is LG01
with ring diameter 12 um, F_th = 40 mJ/cm^2, S = 0.8: at 100 mJ/cm^2 and 1 pulse, s = 0.4 and
(REFERENCE 2, Lambert W) D = 2 r_p sqrt(-W0(-s/e)) = 5.03 um, trench outer 2 r_p sqrt(-W_-1(-s/e))
= 20.86 um: disc radius 2.51 um, annulus out to 10.43 um, trench 7.9 um wide.
"""

import numpy as np
import pytest

from fabplan.design import loads_design
from fabplan.geometry import keepout_hits, outside_region_mask
from fabplan.planning import build_plan
from fabplan.planning.verify import PlanViolations, neighbour_conflicts

BASE = """
schema_version: 1
name: t
sample:
  region: {{rect: [-1000, -1000, 1000, 1000]}}
  keepouts:
    - {{name: dust, circle: {{center: [500, 500], radius: 20}}}}
laser:
  repetition_rate: 1 kHz
  max_pulse_energy: {emax}
{att}
beam:
  profile: {{model: lg01, ring_diameter: 12 um}}
  threshold_fluence: 40 mJ/cm^2
  incubation_exponent: 0.8
  damage_fluence: 400 mJ/cm^2
arrays:
  - id: E
    disc: {{pulses: 1}}
    discs:
{discs}
process:
  margin: {margin}
  travel: {{x: [-900, 900], y: [-900, 900], z: [-10, 10]}}
"""


def design(discs, margin=1.0, emax="5 uJ", att=""):
    discs = [d if "fluence" in d or "diameter" in d else {**d, "fluence": "100 mJ/cm^2"} for d in discs]
    rows = "\n".join("      - {" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}" for d in discs)
    return loads_design(BASE.format(discs=rows, margin=margin, emax=emax, att=att))


def violations(d):
    with pytest.raises(PlanViolations) as exc:
        build_plan(d)
    return {v.kind: v for v in exc.value.violations}


GOOD = [{"x": 0, "y": 0}, {"x": 40, "y": 0}, {"x": 80, "y": 0}]


def test_clean_design_plans():
    plan = build_plan(design(GOOD))
    assert sorted(plan.shots.disc_id.tolist()) == ["E-r00c00", "E-r00c01", "E-r00c02"]


def test_annulus_reaching_a_neighbour_names_both_discs():
    v = violations(design(GOOD + [{"x": 10, "y": 0}]))  # c03 10 um from c00; needs 10.43 + 2.51 + 1
    assert set(v) == {"annulus_hits_disc"}
    assert v["annulus_hits_disc"].ids == ["E-r00c00", "E-r00c03"]
    assert "2 discs" in v["annulus_hits_disc"].message


def test_region_keepout_travel_each_caught():
    v = violations(
        design(GOOD + [{"x": 998, "y": 0}, {"x": 505, "y": 500}, {"x": 0, "y": -950}, {"x": 530, "y": 500}])
    )
    assert v["outside_region"].ids == ["E-r00c03"]  # radius 2.51 um crosses x = 1000
    # c04 centre inside the dust; c06 is 10 um from the dust's edge, its annulus reaches 10.43 um
    assert v["in_keepout"].ids == ["E-r00c04", "E-r00c06"]
    assert v["outside_travel"].ids == ["E-r00c03", "E-r00c05"]
    assert "dust" in v["in_keepout"].message


def test_fluence_classes_caught():
    v = violations(
        design(
            GOOD
            + [
                {"x": 200, "y": 0, "fluence": "30 mJ/cm^2"},  # below threshold: nothing ablates
                {"x": 300, "y": 0, "fluence": "450 mJ/cm^2"},  # above the damage limit
                {"x": 400, "y": 0, "diameter": "13 um"},  # > ring diameter: unreachable
            ]
        )
    )
    assert v["no_ablation"].ids == ["E-r00c03"]
    assert v["damage_fluence"].ids == ["E-r00c04"]
    assert v["unreachable"].ids == ["E-r00c05"]


def test_energy_and_attenuator_range():
    att = "  attenuator: {type: percent, energy_at_100: 0.3 uJ}"
    v = violations(design(GOOD + [{"x": 200, "y": 0, "fluence": "150 mJ/cm^2"}], emax="0.35 uJ", att=att))
    # LG01 effective area e pi r_p^2 = 307.4 um^2: 100 mJ/cm^2 -> 0.307 uJ (> 0.3 uJ at 100 %)
    assert set(v["attenuator_range"].ids) == {"E-r00c00", "E-r00c01", "E-r00c02", "E-r00c03"}
    assert v["max_pulse_energy"].ids == ["E-r00c03"]  # 150 mJ/cm^2 -> 0.46 uJ > 0.35 uJ


def test_trench_too_narrow_uses_the_margin():
    # a 25 um margin asks for a 25 um wide trench; the LG01 trench here is 7.9 um wide
    v = violations(design([{"x": 0, "y": 0}], margin=25))
    assert v["trench_too_narrow"].ids == ["E-r00c00"]


def test_cli_exit_code_and_message(tmp_path, capsys):
    from fabplan.cli import main

    rows = "\n".join(f"      - {{x: {x}, y: 0, fluence: 100}}" for x in (0, 10))
    f = tmp_path / "d.yaml"
    f.write_text(BASE.format(discs=rows, margin=1.0, emax="5 uJ", att=""))
    assert main(["plan", str(f), "-o", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "annulus_hits_disc" in err and "E-r00c00, E-r00c01" in err
    assert not (tmp_path / "p").exists()


def test_neighbour_conflicts_exact_arithmetic():
    x = np.array([0.0, 10.0, 30.0])
    y = np.zeros(3)
    r = np.full(3, 2.0)
    R = np.full(3, 7.0)
    pairs, short = neighbour_conflicts(x, y, r, R, 1.0)  # need 7 + 2 + 1 = 10 um: 0-1 exactly OK
    assert len(pairs) == 0
    pairs, short = neighbour_conflicts(x, y, r, R, 1.5)
    assert pairs.tolist() == [[0, 1]] and short[0] == pytest.approx(0.5)


def test_region_and_keepout_helpers_vectorised():
    import shapely

    region = shapely.box(0, 0, 100, 100)
    x = np.array([50.0, 2.0, 150.0])
    assert outside_region_mask(region, x, np.full(3, 50.0), np.full(3, 5.0)).tolist() == [False, True, True]
    hits = keepout_hits([shapely.box(40, 40, 45, 45)], x, np.full(3, 44.0), np.full(3, 6.0))
    assert hits[0].tolist() == [0]


def test_centre_ablated_with_an_annular_image():
    # the annular mask image (10/16 um, NA 0.32, 515 nm) keeps ~0.8 % of the peak at the centre
    # (coherent ringing): far above 40 / 0.0079 = 5,040 mJ/cm^2 the centre ablates too, no disc.
    text = (
        BASE.format(discs="      - {x: 0, y: 0, fluence: 7000 mJ/cm^2}", margin=1.0, emax="500 uJ", att="")
        .replace(
            "profile: {model: lg01, ring_diameter: 12 um}",
            "profile: {model: annular, inner_diameter: 10 um, outer_diameter: 16 um, na: 0.32}",
        )
        .replace("damage_fluence: 400 mJ/cm^2", "damage_fluence: 20000 mJ/cm^2")
    )
    with pytest.raises(PlanViolations) as exc:
        build_plan(loads_design(text))
    v = {x.kind: x for x in exc.value.violations}
    assert v["centre_ablated"].ids == ["E-r00c00"]
