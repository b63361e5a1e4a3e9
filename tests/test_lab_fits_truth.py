"""One truth per disc: `lab fit`, `lab list` and `lab export` report the same threshold, and a disc
without a threshold has no number anywhere (issue 18: export gave numbers to discs fit called dead)."""

import json
import math

from fabplan.cli import main


def _run(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr().out
    assert rc == 0, out
    return out


def test_fit_list_export_agree(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FABPLAN_DB", str(tmp_path / "lab.sqlite"))
    ids = ",".join(f"A-r00c{i:02d}" for i in range(6))
    _run(capsys, "lab", "simulate", "--out", str(tmp_path / "s"), "--ids", ids, "--points", "12",
         "--seed", "5", "--dead-fraction", "0.5")
    _run(capsys, "lab", "import", str(tmp_path / "s" / "manifest.csv"), "--allow-unknown", "--json")
    fits = {f["disc_id"]: f for f in json.loads(_run(capsys, "lab", "fit", "--json"))}
    listed = {d["disc_id"]: d for d in json.loads(_run(capsys, "lab", "list", "--json"))}
    exported = {d["disc_id"]: d for d in json.loads(_run(capsys, "lab", "export", "--format", "json"))}
    truth = json.loads((tmp_path / "s" / "truth.json").read_text())
    kinds = set()
    for disc, f in fits.items():
        e = exported[disc]
        kinds.add(f["has_threshold"])
        assert listed[disc]["status"] == e["status"] == f["status"]
        if f["has_threshold"]:
            assert math.isclose(e["threshold_uj_cm2"], f["threshold_uj_cm2"], rel_tol=1e-9)
            assert e["threshold_lo"] <= e["threshold_uj_cm2"] <= e["threshold_hi"]
            assert abs(f["threshold_uj_cm2"] / truth[disc]["threshold_uj_cm2"] - 1) < 0.1
        else:
            assert e["threshold_uj_cm2"] is None and e["threshold_scurve_uj_cm2"] is None, e
            assert f["status"] != "lasing"
    assert kinds == {True, False}  # the seed gives both kinds
