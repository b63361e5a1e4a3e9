"""The shipped designs travel with the package: `fabplan designs` and a real non-editable install.

The install test builds a wheel with pip from a copy of the source tree (as `pip install .` does),
installs it into a fresh virtual environment (dependencies borrowed from the running one, so it
needs no network beyond the build backend), and runs `fabplan demo` from an unrelated folder: the
failure a new lab member hit was `.../site-packages/designs/seed_single_disc.yaml: design not found`.
It is marked `slow` (one build + one install + one demo, ~30 s): deselect with `-m "not slow"`.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fabplan import shipped
from fabplan.cli import main
from fabplan.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def test_every_shipped_design_is_listed_with_its_description(capsys):
    assert main(["designs", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = {d["name"] for d in data["designs"]}
    assert names == {p.stem for p in (ROOT / "designs").glob("*.yaml")}
    seed = next(d for d in data["designs"] if d["name"] == "seed_single_disc")
    assert "Tatarinov" in seed["about"]
    assert main(["designs"]) == 0 and "hex_sweep" in capsys.readouterr().out


def test_copy_writes_designs_and_schema_and_never_overwrites(tmp_path, capsys):
    assert main(["designs", "copy", "hex_sweep", "--to", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fabplan-design.schema.json", "hex_sweep.yaml"]
    assert filecmp.cmp(tmp_path / "hex_sweep.yaml", ROOT / "designs" / "hex_sweep.yaml", shallow=False)
    assert main(["designs", "copy", "hex_sweep", "--to", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["designs", "copy", "hex_sweep", "--to", str(tmp_path), "--force"]) == 0
    # the copied design is usable as is (its schema comment points at the copied schema)
    assert main(["validate", str(tmp_path / "hex_sweep.yaml")]) == 0


def test_unknown_name_lists_the_shipped_ones(capsys):
    assert main(["designs", "path", "hex"]) == 2
    assert "shipped: demo_array, dense_cm2, dose_matrix, hex_sweep, seed_single_disc" in capsys.readouterr().err
    assert main(["designs", "path", "hex_sweep.yaml"]) == 0
    assert capsys.readouterr().out.strip().endswith("hex_sweep.yaml")


def test_packaged_copy_wins_over_the_checkout(tmp_path, monkeypatch):
    (tmp_path / shipped.SEED).write_text("schema_version: 1\n")
    monkeypatch.setattr(shipped, "PACKAGED", tmp_path)
    assert shipped.designs_dir() == tmp_path
    monkeypatch.setattr(shipped, "PACKAGED", tmp_path / "absent")
    assert shipped.designs_dir() == ROOT / "designs"
    monkeypatch.setattr(shipped, "CHECKOUT", tmp_path / "absent")
    with pytest.raises(UserError, match="shipped designs are missing"):
        shipped.designs_dir()


def _source_copy(dest: Path) -> Path:
    """What `pip install .` sees in a clone: the packaging files and the packages, no caches."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "*.pyc")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("fabplan", "stage_drivers", "sim", "designs"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    return dest


@pytest.mark.slow
def test_non_editable_install_runs_the_demo_from_any_folder(tmp_path):
    src = _source_copy(_mkdir(tmp_path / "src"))
    wheels = _mkdir(tmp_path / "wheels")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", f"{src}{os.sep}", "-w",
                            str(wheels)], capture_output=True, text=True, cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("fabplan-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for sample in ("measured_diameters.csv", "drawn.gds"):
        assert f"fabplan/shipped_designs/samples/{sample}" in names
    for design in (ROOT / "designs").glob("*.yaml"):
        assert f"fabplan/shipped_designs/{design.name}" in names
        assert zipfile.ZipFile(wheel).read(f"fabplan/shipped_designs/{design.name}") == design.read_bytes()

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / ("python.exe" if os.name == "nt" else "python")
    venv_site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                    capture_output=True, text=True, check=True).stdout.strip())
    # dependencies from the running environment, appended after the venv's own site-packages (a path in a
    # .pth file is not itself scanned for .pth files, so the editable fabplan of this checkout stays out)
    (venv_site / "zz_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
                              str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]

    elsewhere = _mkdir(tmp_path / "elsewhere")
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": ""}
    where = subprocess.run([str(py), "-c", "import fabplan, fabplan.shipped as s; print(fabplan.__file__); "
                            "print(s.designs_dir())"], capture_output=True, text=True, cwd=elsewhere, env=env)
    module_file, folder = where.stdout.split()
    assert Path(module_file).is_relative_to(venv) and Path(folder).is_relative_to(venv), where.stdout

    demo = subprocess.run([str(bindir / "fabplan"), "demo", "--json"], capture_output=True, text=True,
                          cwd=elsewhere, env=env)
    assert demo.returncode == 0, demo.stderr[-3000:]
    summary = json.loads(demo.stdout)
    assert summary["discs_made"] >= 1 and (elsewhere / "demo-out" / "demo-summary.json").is_file()
    copied = subprocess.run([str(bindir / "fabplan"), "designs", "copy", "--to", "mine"], cwd=elsewhere,
                            env=env, capture_output=True, text=True)
    assert copied.returncode == 0, copied.stderr
    assert (elsewhere / "mine" / "dense_cm2.yaml").read_bytes() == (ROOT / "designs" / "dense_cm2.yaml").read_bytes()
    assert (elsewhere / "mine" / "samples" / "drawn.gds").read_bytes() == (
        ROOT / "designs" / "samples" / "drawn.gds").read_bytes()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path
