"""`kinetic run` end to end: run files -> summary.json, fields.npz, VTK, timeseries; bad input."""
import json
from pathlib import Path

import numpy as np
import pytest

from kinetic.cli import main

RUNS = Path(__file__).resolve().parents[1] / "runs"

RING = """
[model]
name = "rice_mele"
[texture]
builtin = "rice_mele_ring"
[mesh]
k = [64]
x = { n = 32, length = 32.0 }
[physics]
temperature = 116.0
mu = 0.0
bands = [0]
"""


def test_ring_run_outputs(tmp_path):
    p = tmp_path / "ring.toml"
    p.write_text(RING)
    assert main(["run", str(p), "--out", str(tmp_path / "o")]) == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    # Goldstone–Wilczek: N + C_xk = 32 − 1 electrons in the filled lower band (V10)
    assert s["observables"]["particles_per_cell_length"]["value"] == pytest.approx(31.0, abs=1e-6)
    assert s["observables"]["mean_current"]["unit"] == "A"
    z = np.load(tmp_path / "o" / "fields.npz")
    assert z["f"].shape == (64, 32, 1) and z["n"].shape == (32,)
    assert json.loads(str(z["units"]))["n"] == "1/m"
    vtk = (tmp_path / "o" / "fields.vtk").read_text()
    assert "RECTILINEAR_GRID" in vtk and "SCALARS n_per_m" in vtk


def test_transient_run_timeseries(tmp_path):
    text = (RUNS / "esaki_tsu_bloch.toml").read_text().replace("t_end = 20.0", "t_end = 2.0")
    text = text.replace("k = [1024]", "k = [256]")
    p = tmp_path / "b.toml"
    p.write_text(text)
    assert main(["run", str(p), "--out", str(tmp_path / "b"), "-ts_max_steps", "100000"]) == 0
    lines = (tmp_path / "b" / "timeseries.csv").read_text().splitlines()
    assert lines[0] == "t_fs,density_1/m,energy_density_J/m,current_A"
    t = np.array([float(r.split(",")[0]) for r in lines[1:]])
    assert t[0] == 0 and t[-1] == pytest.approx(2.0)
    n = np.array([float(r.split(",")[1]) for r in lines[1:]])
    # advection conserves n and f_loc = f_FD(μ) has the initial density: n(t) = n(0) exactly
    assert np.ptp(n) <= 1e-12 * n[0]


@pytest.mark.parametrize("edit,msg", [
    (("bands = [0]", "bands = [5]"), "band 5 does not exist"),
    (('mu = 0.0', 'mu = "zero"'), "physics.mu"),
    (("x = { n = 32, length = 32.0 }", "x = { n = 32 }"), "missing length"),
    (('builtin = "rice_mele_ring"', 'builtin = "ring"'), "texture.builtin"),
    (("[mesh]", "[mesh]\nkk = 3"), "did you mean 'k'"),
])
def test_bad_run_files(tmp_path, capsys, edit, msg):
    p = tmp_path / "r.toml"
    p.write_text(RING.replace(*edit))
    assert main(["run", str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and msg in err[0], err
    assert not (tmp_path / "o" / "summary.json").exists()


@pytest.mark.mpi(min_size=2)
def test_run_on_two_ranks_equals_one(tmp_path_factory):
    from petsc4py import PETSc

    from kinetic.observables import density, total
    from kinetic.run import build_problem, run
    from kinetic.runfile import load_solver_run
    from kinetic.solvers import Transport

    comm = PETSc.COMM_WORLD.tompi4py()
    d = Path(comm.bcast(str(tmp_path_factory.mktemp("mpirun")) if comm.rank == 0 else None))
    if comm.rank == 0:
        (d / "ring.toml").write_text(RING.replace("mu = 0.0", "mu = 0.0\nelectric_field = [1e8]"))
    comm.Barrier()
    s = run(d / "ring.toml", out=d / "o", say=lambda m: None)
    p = build_problem(load_solver_run(d / "ring.toml"), comm=PETSc.COMM_SELF)
    f, _ = Transport(p).steady()
    serial = total(p, density(p, f))
    assert s["ranks"] == 2
    assert s["observables"]["particles_per_cell_length"]["value"] == pytest.approx(serial, rel=1e-10)
