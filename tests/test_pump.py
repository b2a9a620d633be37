"""Adiabatic pumps (physics.md §3.4, V9b, V10 pump) through `kinetic run`, checked against the
V9b closed form, the (k, t) Chern number (FHS, a second method) and exact time-dependent
quantum mechanics of the same chain (kinetic.reference.pump_exact)."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from kinetic import units
from kinetic.cli import main
from kinetic.geometry import chern_fhs
from kinetic.models.catalogue import get_model
from kinetic.pump import PumpModel
from kinetic.reference import pump_exact
from kinetic.run import run

RUNS = Path(__file__).resolve().parents[1] / "runs"
RM_PUMP = {"t1": {"mean": 1.0, "amplitude": 0.5, "phase": np.pi / 2},
           "t2": {"mean": 1.0, "amplitude": 0.5, "phase": -np.pi / 2},
           "Delta": {"mean": 0.0, "amplitude": 0.6}}

DIRAC = """
[model]
name = "dirac1d"
params = {{ v = 1.0, m = 0.5 }}
[mesh]
k = [{nk}]
kmax = {kmax}
[physics]
temperature = 116.0
mu = 0.0
bands = [0]
[pump]
period = {period}
cycles = 1
steps_per_cycle = 40
params = {{ theta = {{ winding = 1, offset = 0.3 }} }}
"""


def series(outdir):
    rows = list(csv.DictReader(open(outdir / "timeseries.csv")))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def test_dirac_pump_current_is_theta_dot_over_2pi(tmp_path):
    """V9b: uniform θ(t) in H = vkσz + m(cos θ σx + sin θ σy): j_N = +θ̇/2π at every t. With
    |k| < K the closed form is θ̇/2π · vK/√(v²K² + m²) (∫Ω_kθ over the window)."""
    period, K = 10.0, 20.0
    p = tmp_path / "d.toml"
    p.write_text(DIRAC.format(nk=2048, kmax=K, period=period))
    assert main(["run", str(p), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    s = series(tmp_path / "o")
    exact = 1.0 / period * K / np.sqrt(K**2 + 0.25)  # electrons per fs: θ̇/2π = 1/T
    assert len(s["t_fs"]) == 41
    np.testing.assert_allclose(s["number_current_1/fs"], exact, rtol=1e-9)
    assert np.max(np.abs(s["current_band_A"])) < 1e-12 * np.max(np.abs(s["current_A"]))
    # the charge current is −e j_N (electrons move in +x, the current points to −x)
    np.testing.assert_allclose(s["current_A"], -exact * 1e15 * units.E_CHARGE, rtol=1e-9)
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["observables"]["pumped_electrons_per_cycle"]["value"] == pytest.approx(
        K / np.sqrt(K**2 + 0.25), rel=1e-9)


def test_rice_mele_pump_is_minus_the_kt_chern_number(tmp_path):
    """The shipped run file: one electron per cycle, = −C of the (k, t) torus by FHS."""
    text = (RUNS / "thouless_pump.toml").read_text().replace("steps_per_cycle = 200",
                                                            "steps_per_cycle = 60")
    p = tmp_path / "pump.toml"
    p.write_text(text)
    s = run(p, out=tmp_path / "o", say=lambda m: None, quiet=True)
    obs = s["observables"]
    assert obs["pumped_electrons"]["value"] == pytest.approx(2.0, abs=1e-10)
    assert obs["pumped_electrons_per_cycle"]["unit"] == "electrons"
    T = units.fs_to_internal(50.0)
    pump = PumpModel(get_model("rice_mele", t3=0.0), RM_PUMP, T)

    def h(ks):  # (k, s) with s = 2π t/T on the torus [0, 2π)²
        return pump.texture.hamiltonian(ks[..., 1:2] * T / (2 * np.pi), ks[..., 0:1])

    C = chern_fhs(h, np.diag([2 * np.pi, 2 * np.pi]), (48, 48), [0])
    assert C == pytest.approx(-1.0, abs=1e-9)
    assert obs["pumped_electrons_per_cycle"]["value"] == pytest.approx(-C, abs=1e-10)


@pytest.mark.parametrize("period_fs, tol", [(25.0, 2e-3), (50.0, 1e-3)])
def test_pump_matches_exact_time_evolution(period_fs, tol):
    """Exact Schrödinger evolution of every Bloch state of the pumped chain: the charge pumped
    in one cycle approaches the adiabatic (semiclassical) 1 as the pump slows down
    (measured: |Q − 1| = 9e-3, 8e-4, 3e-4, 1e-4 at T = 12.5, 25, 50, 100 fs)."""
    nk = 64
    k = -np.pi + (np.arange(nk) + 0.5) * 2 * np.pi / nk
    pump = PumpModel(get_model("rice_mele", t3=0.0), RM_PUMP, units.fs_to_internal(period_fs))
    steps = int(np.ceil(pump.period / 0.04))
    t, j, Q = pump_exact(pump, k, steps_per_cycle=steps)
    jsc = np.array([-pump.geometry(ti, k)[2][:, 0].sum() / nk for ti in t])  # −∫Ω_kt f, f = 1
    Q_sc = np.sum(0.5 * (jsc[1:] + jsc[:-1]) * np.diff(t))
    assert Q_sc == pytest.approx(1.0, abs=1e-12)
    assert abs(Q[-1] - Q_sc) < tol


def test_pump_schedules():
    pump = PumpModel(get_model("dirac1d"), {"theta": {"winding": 2, "offset": 0.1},
                                           "m": {"mean": 0.5, "amplitude": 0.1, "phase": 0.2},
                                           "V": 0.05}, period=7.0)
    snap = pump.at(1.3)
    p = get_model("dirac1d", theta=0.1 + 2 * 2 * np.pi * 1.3 / 7.0,
                  m=0.5 + 0.1 * np.sin(2 * np.pi * 1.3 / 7.0 + 0.2), V=0.05)
    k = np.linspace(-2, 2, 5)[:, None]
    np.testing.assert_allclose(snap.hamiltonian(k), p.hamiltonian(k), atol=1e-14)
    np.testing.assert_allclose(snap.dh_dk(k), p.dh_dk(k), atol=1e-14)


BAD = [
    ("[pump]\nperiod = 10.0\nparams = { theta = { winding = 1 } }\n[mesh]\nk = [64]\n"
     "kmax = 5.0\nx = { n = 8, length = 8.0 }", "pumps are homogeneous"),
    ("[pump]\nperiod = 10.0\nparams = { thet = { winding = 1 } }\n[mesh]\nk = [64]\nkmax = 5.0",
     "pump.params.thet"),
    ("[pump]\nperiod = 10.0\nparams = { theta = { winding = 1, mean = 0.2 } }\n[mesh]\nk = [64]\n"
     "kmax = 5.0", "pump.params.theta: keys"),
    ("[pump]\nperiod = -1.0\nparams = { theta = 0.5 }\n[mesh]\nk = [64]\nkmax = 5.0",
     "pump.period"),
    ("[pump]\nperiod = 10.0\ncycles = 0\nparams = { theta = 0.5 }\n[mesh]\nk = [64]\nkmax = 5.0",
     "pump.cycles = 0"),
    ("[pump]\nperiod = 10.0\nparams = { theta = 0.5 }\n[solver]\nmode = \"steady\"\n[mesh]\n"
     "k = [64]\nkmax = 5.0", "solver.mode = 'steady'"),
    ("[pump]\nperiod = 10.0\nperoid = 3\nparams = { theta = 0.5 }\n[mesh]\nk = [64]\nkmax = 5.0",
     "peroid"),
]


@pytest.mark.parametrize("section, needle", BAD)
def test_pump_bad_input(tmp_path, capsys, section, needle):
    p = tmp_path / "bad.toml"
    p.write_text("[model]\nname = \"dirac1d\"\n[physics]\nmu = 0.0\n" + section + "\n")
    assert main(["run", str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


@pytest.mark.mpi(min_size=2)
def test_pump_parallel_equals_serial(tmp_path):
    from mpi4py import MPI
    from petsc4py import PETSc

    text = (RUNS / "thouless_pump.toml").read_text().replace("steps_per_cycle = 200",
                                                            "steps_per_cycle = 40")
    world = MPI.COMM_WORLD
    path = Path(world.bcast(str(tmp_path), root=0)) / "pump.toml"
    if world.rank == 0:
        path.write_text(text)
    world.Barrier()
    quiet = dict(say=lambda m: None, quiet=True)
    par = run(path, out=path.parent / "par", comm=PETSc.COMM_WORLD, **quiet)
    ser = run(path, out=tmp_path / f"ser{world.rank}", comm=PETSc.COMM_SELF, **quiet)
    assert par["ranks"] == 2 and ser["ranks"] == 1
    for key in ("current", "pumped_electrons", "density"):
        a, b = par["observables"][key]["value"], ser["observables"][key]["value"]
        assert a == pytest.approx(b, rel=1e-10, abs=1e-25)
