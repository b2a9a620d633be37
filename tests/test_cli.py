"""`kinetic table` / `kinetic geometry` end to end: SI table format, Wannier90 twin, bad input."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kinetic import units
from kinetic.cli import main
from kinetic.models.catalogue import get_model
from kinetic.models.wannier90 import write_hr, write_tb

HALDANE = 'name = "haldane"\nparams = { t1 = 1.0, t2 = 0.15, phi = 1.2, M = 0.2 }\n'


def run_file(tmp_path, model=HALDANE, mesh="k = [100, 100]", physics=None, response=None,
             name="run.toml"):
    physics = physics or "temperature = 300.0\ntau = [10.0, 20.0]\nmu = { start = -1.0, stop = 1.0, num = 5 }"
    response = response or 'quantities = ["density", "drude", "ahc"]'
    p = tmp_path / name
    p.write_text(f"[model]\n{model}\n[mesh]\n{mesh}\n[physics]\n{physics}\n[response]\n{response}\n")
    return p


def read_table(path):
    lines = Path(path).read_text().splitlines()
    meta = [ln for ln in lines if ln.startswith("#")]
    rows = list(csv.DictReader([ln for ln in lines if not ln.startswith("#")]))
    return meta, rows


def test_table_format_and_units(tmp_path):
    out = tmp_path / "t.csv"
    assert main(["table", str(run_file(tmp_path)), "--out", str(out)]) == 0
    meta, rows = read_table(out)
    assert any("kinetic" in m for m in meta) and any("model_sha256" in m for m in meta)
    assert list(rows[0]) == ["mu_eV", "T_K", "tau_fs", "quantity", "component", "value", "unit",
                             "error"]
    # 5 μ × 2 τ × (density 1 + drude 4 + ahc 1) rows
    assert len(rows) == 5 * 2 * 6
    units_by_q = {r["quantity"]: r["unit"] for r in rows}
    assert units_by_q == {"density": "1/m^2", "drude": "S", "ahc": "S"}
    # Drude scales with τ, AHC does not
    d = {(r["tau_fs"], r["mu_eV"], r["quantity"], r["component"]): float(r["value"]) for r in rows}
    assert d[("20", "0", "drude", "xx")] == pytest.approx(2 * d[("10", "0", "drude", "xx")], rel=1e-12)
    assert d[("20", "0", "ahc", "xy")] == pytest.approx(d[("10", "0", "ahc", "xy")], rel=1e-12)
    assert all(float(r["error"]) >= 0 for r in rows)


def test_qwz_insulator_table_is_e2_over_h(tmp_path):
    """QWZ M = 1 (C = −1): the SI table value is +e²/h = 3.874046e-5 S; worked README example."""
    p = run_file(tmp_path, model='name = "qwz"\nparams = { M = 1.0 }', mesh="k = [80, 80]",
                 physics="temperature = 100.0\nmu = 0.0", response='quantities = ["ahc"]')
    out = tmp_path / "q.csv"
    assert main(["table", str(p), "--out", str(out)]) == 0
    _, rows = read_table(out)
    (row,) = rows
    assert float(row["value"]) / units.E2_H == pytest.approx(1.0, abs=1e-9)
    assert float(row["value"]) == pytest.approx(3.874046e-5, rel=1e-6)
    assert float(row["error"]) < 1e-12


def test_wannier90_twin_gives_same_table(tmp_path):
    model = get_model("haldane", t1=1.0, t2=0.15, phi=1.2, M=0.2)
    write_hr(model, tmp_path / "hal_hr.dat")
    write_tb(model, tmp_path / "hal_tb.dat")
    quantities = 'quantities = ["density", "drude", "ahc", "bcd", "intrinsic_nonlinear"]'
    cat = run_file(tmp_path, response=quantities, name="cat.toml")
    w90 = run_file(tmp_path, model='tb = "hal_tb.dat"', response=quantities, name="w90.toml")
    assert main(["table", str(cat), "--out", str(tmp_path / "cat.csv")]) == 0
    assert main(["table", str(w90), "--out", str(tmp_path / "w90.csv")]) == 0
    _, a = read_table(tmp_path / "cat.csv")
    _, b = read_table(tmp_path / "w90.csv")
    assert len(a) == len(b)
    scale = {}
    for r in a:  # round-off floor: relative to the largest value of each quantity
        scale[r["quantity"]] = max(scale.get(r["quantity"], 0.0), abs(float(r["value"])))
    for ra, rb in zip(a, b):
        assert (ra["quantity"], ra["component"], ra["mu_eV"]) == (rb["quantity"], rb["component"], rb["mu_eV"])
        va, vb, err = float(ra["value"]), float(rb["value"]), float(ra["error"])
        assert abs(va - vb) <= max(err, 1e-11 * scale[ra["quantity"]])


def test_geometry_npz(tmp_path):
    out = tmp_path / "g.npz"
    assert main(["geometry", str(run_file(tmp_path, mesh="k = [12, 10]")), "--out", str(out)]) == 0
    z = np.load(out)
    assert z["k"].shape == (12, 10, 2)
    assert z["energy"].shape == (12, 10, 2)
    assert z["curvature"].shape == (12, 10, 2, 2, 2)
    assert z["metric"].shape == (12, 10, 2, 2, 2)
    assert set(json.loads(str(z["units"]))) >= {"energy", "curvature", "metric", "velocity"}
    # the two bands' curvatures cancel pointwise
    assert np.allclose(z["curvature"].sum(axis=2), 0, atol=1e-12)


BAD = [
    ("unknown model", dict(model='name = "haldan"'), "did you mean 'haldane'"),
    ("unknown quantity", dict(response='quantities = ["ahcc"]'), "did you mean 'ahc'"),
    ("negative T", dict(physics="temperature = -3.0\nmu = 0.0"), "physics.temperature"),
    ("negative tau", dict(physics="temperature = 30.0\ntau = -1.0\nmu = 0.0"), "physics.tau"),
    ("nan mu", dict(physics="temperature = 30.0\nmu = nan"), "physics.mu"),
    ("wrong mesh shape", dict(mesh="k = [40, 40, 40]"), "give 2 numbers"),
    ("mesh type", dict(mesh='k = "fine"'), "mesh.k"),
    ("too coarse", dict(mesh="k = [8, 8]", physics="temperature = 10.0\nmu = 0.3"), "too coarse"),
    ("unknown key", dict(physics="temprature = 10.0\nmu = 0.0"), "did you mean 'temperature'"),
    ("missing hr", dict(model='wannier90 = "nothere_hr.dat"'), "file not found"),
    ("ahc in 1D", dict(model='name = "cosine1d"', mesh="k = [100]", response='quantities = ["ahc"]'), "dimension"),
    ("unknown param", dict(model='name = "qwz"\nparams = { Q = 1.0 }'), "unknown parameter 'Q'"),
]


@pytest.mark.parametrize("label,kw,msg", BAD, ids=[b[0] for b in BAD])
def test_bad_input_one_line_exit_2_no_table(tmp_path, capsys, label, kw, msg):
    out = tmp_path / "never.csv"
    assert main(["table", str(run_file(tmp_path, **kw)), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kinetic: error:") and msg in err[0], err
    assert not out.exists() and not list(tmp_path.glob(".never.csv*"))


def test_corrupt_hr_file_via_subprocess(tmp_path):
    (tmp_path / "bad_hr.dat").write_text("header\n2\n3\n1 1 1\n0 0 0 1 1 0.5\n")
    p = run_file(tmp_path, model='wannier90 = "bad_hr.dat"')
    res = subprocess.run([sys.executable, "-m", "kinetic", "table", str(p), "--out",
                          str(tmp_path / "x.csv")], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "bad_hr.dat" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "x.csv").exists()


def test_malformed_toml(tmp_path, capsys):
    p = tmp_path / "r.toml"
    p.write_text("[model\nname = 'qwz'\n")
    assert main(["table", str(p)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
