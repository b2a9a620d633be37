"""`kinetic sweep` over a `kinetic run` file: the Esaki–Tsu curve against its exact form,
agreement with single runs, resume, MPI groups, bad input."""
import csv
from pathlib import Path

import numpy as np
import pytest

from kinetic import units
from kinetic.cli import main
from kinetic.run import run
from kinetic.solver_sweep import run_solver_sweep

RUNS = Path(__file__).resolve().parents[1] / "runs"
QUIET = dict(quiet=True, say=lambda m: None)


def rows(path):
    lines = [ln for ln in Path(path).read_text().splitlines() if not ln.startswith("#")]
    return list(csv.DictReader(lines))


def esaki_tsu_file(tmp_path, nk):
    text = (RUNS / "esaki_tsu_steady.toml").read_text().replace("k = [1024]", f"k = [{nk}]")
    p = tmp_path / f"et{nk}.toml"
    p.write_text(text)
    return p


def esaki_tsu_exact(E_vm, nk, mu=-1.0, T_K=1160.0, tau_fs=10.0, t=1.0):
    """Charge current (A) of a cosine band ε = −2t cos k (a = 1 Å) with RTA: from the Fourier
    modes f_n = f0_n/(1 − inωτ), j = 2t f0_1 ωτ/(1 + (ωτ)²)·e·(eV/ħ), ω = eEa/ħ."""
    k = -np.pi + (np.arange(nk) + 0.5) * 2 * np.pi / nk
    f0 = 1.0 / (1.0 + np.exp((-2 * t * np.cos(k) - mu) / units.kelvin_to_ev(T_K)))
    c = np.mean(f0 * np.cos(k))  # f0_1 on the same k-cells
    wt = E_vm * 1e-10 * units.fs_to_internal(tau_fs)
    return 2 * t * c * wt / (1 + wt * wt) * units.E2_HBAR


def test_esaki_tsu_curve_converges_first_order(tmp_path):
    """Upwind steady states over ωτ = 0.15, 1.5, 15: the error against the exact curve falls
    4× per 4× k-cells (first order) and is < 1.2 % at 4096 cells."""
    E = [1e8, 1e9, 1e10]
    err = {}
    for nk in (1024, 4096):
        out = tmp_path / f"et{nk}.csv"
        run_solver_sweep(esaki_tsu_file(tmp_path, nk), ["E=1e8,1e9,1e10"], out=out, **QUIET)
        j = np.array([float(r["value"]) for r in rows(out) if r["quantity"] == "current"])
        exact = np.array([esaki_tsu_exact(e, nk) for e in E])
        err[nk] = np.abs(j / exact - 1)
    ratio = err[1024] / err[4096]
    assert np.all((ratio > 3.5) & (ratio < 4.5)), ratio
    assert np.max(err[4096]) < 1.2e-2
    # negative differential conductance beyond ωτ = 1 (ωτ = 1.5 → 15: the current drops)
    assert j[2] < j[1]


def test_sweep_equals_single_runs(tmp_path):
    """μ points share one operator (multi-RHS KSP), E points rebuild it: both equal `kinetic run`."""
    p = esaki_tsu_file(tmp_path, 256)
    out = tmp_path / "s.csv"
    res = run_solver_sweep(p, ["mu=-1.0,0.5", "E=1e8,2e9"], out=out, **QUIET)
    assert res["points"] == 4 and res["computed"] == 4
    table = rows(out)
    assert list(table[0]) == ["E_V_per_m", "mu_eV", "quantity", "component", "value", "unit"]
    for E in (1e8, 2e9):
        for mu in (-1.0, 0.5):
            text = p.read_text().replace("mu = -1.0", f"mu = {mu}").replace(
                "electric_field = [1.0e9]", f"electric_field = [{E}]")
            q = tmp_path / "one.toml"
            q.write_text(text)
            obs = run(q, out=tmp_path / "one", **QUIET)["observables"]
            for name in ("current", "density", "transport_current"):
                (r,) = [r for r in table if float(r["E_V_per_m"]) == E
                        and float(r["mu_eV"]) == mu and r["quantity"] == name]
                assert float(r["value"]) == pytest.approx(obs[name]["value"], rel=1e-9)
                assert r["unit"] == obs[name]["unit"]


def test_resume_computes_only_new_points(tmp_path):
    p = esaki_tsu_file(tmp_path, 128)
    out = tmp_path / "r.csv"
    run_solver_sweep(p, ["E=1e8,1e9"], out=out, **QUIET)
    res = run_solver_sweep(p, ["E=1e8,1e9,1e10"], out=out, resume=True, **QUIET)
    assert res["computed"] == 1 and res["points"] == 3
    fresh = tmp_path / "f.csv"
    run_solver_sweep(p, ["E=1e8,1e9,1e10"], out=fresh, **QUIET)
    assert rows(out) == rows(fresh)
    assert not list(tmp_path.glob("*.part*"))
    other = esaki_tsu_file(tmp_path, 64)  # another run file: refused, table untouched
    before = out.read_text()
    with pytest.raises(Exception, match="run_sha256 differs"):
        run_solver_sweep(other, ["E=1e8"], out=out, resume=True, **QUIET)
    assert out.read_text() == before


@pytest.mark.parametrize("argv, needle", [
    (["--param", "Ex=1e8"], "unknown parameter 'Ex'"),
    (["--param", "tau=-1,2"], "tau must be > 0"),
    (["--param", "E=1e8", "--param", "E_x=1e9"], "E is given twice"),
])
def test_solver_sweep_bad_input(tmp_path, capsys, argv, needle):
    p = esaki_tsu_file(tmp_path, 64)
    assert main(["sweep", str(p), "--out", str(tmp_path / "x.csv")] + argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()


def test_transient_run_file_is_refused(tmp_path, capsys):
    assert main(["sweep", str(RUNS / "esaki_tsu_bloch.toml"), "--param", "E=1e8",
                 "--out", str(tmp_path / "x.csv")]) == 2
    assert "solver sweeps compute steady states" in capsys.readouterr().err


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("ranks_per_point", [1, 2])
def test_solver_sweep_parallel_equals_serial(tmp_path, ranks_per_point):
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    base = Path(world.bcast(str(tmp_path), root=0))
    p = base / "et.toml"
    if world.rank == 0:
        p.write_text((RUNS / "esaki_tsu_steady.toml").read_text().replace("k = [1024]",
                                                                          "k = [256]"))
    world.Barrier()
    params = ["E=1e8,1e9,5e9", "mu=-1.0,0.0"]
    par = run_solver_sweep(p, params, out=base / "par.csv", comm=world,
                           ranks_per_point=ranks_per_point, **QUIET)
    assert par["computed"] == 6
    if world.rank == 0:
        ser = run_solver_sweep(p, params, out=base / "ser.csv", comm=MPI.COMM_SELF, **QUIET)
        assert ser["rows"] == par["rows"]
        a, b = rows(base / "par.csv"), rows(base / "ser.csv")
        for ra, rb in zip(a, b):
            assert {k: v for k, v in ra.items() if k != "value"} == \
                {k: v for k, v in rb.items() if k != "value"}
            assert float(ra["value"]) == pytest.approx(float(rb["value"]), rel=1e-10, abs=1e-30)
    world.Barrier()


def test_sweep_over_B_and_E_y_of_a_2d_run(tmp_path):
    """A B × E_y grid of the magnetotransport run (field along y, padded to 2 components):
    j_x/j_y = −ω_cτ for E ∥ y, linear in B (ω_cτ = 0.9233 at 100 T, README)."""
    text = (RUNS / "magnetotransport.toml").read_text().replace("k = [256, 256]", "k = [96, 96]")
    text = text.replace("electric_field = [1.0e5, 0.0]       # V/m (linear response)\n", "")
    p = tmp_path / "mt.toml"
    p.write_text(text)
    out = tmp_path / "mt.csv"
    run_solver_sweep(p, ["B=50,100", "E_y=1e5"], out=out, **QUIET)
    table = rows(out)
    assert list(table[0])[:3] == ["E_y_V_per_m", "B_T", "quantity"]
    ratio = {}
    for B in (50.0, 100.0):
        j = [float(r["value"]) for r in table if float(r["B_T"]) == B
             and r["quantity"] == "transport_current"]
        ratio[B] = j[0] / j[1]
    assert ratio[100.0] == pytest.approx(2 * ratio[50.0], rel=1e-3)  # measured 2.0005
    assert ratio[100.0] == pytest.approx(-0.9233, rel=1e-3)  # measured −0.92347 at 96²
