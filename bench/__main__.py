"""`make bench`: measured figures, written to bench/results.json and printed as a table.

Run from the repository root: ``python -m bench``. Each figure is measured in this run;
nothing is quoted from elsewhere. Every key carries its unit (``_s``, ``_GBps``, ``_per_s``,
``_MB``, ``_pct``, ``_x`` for ratios).

What runs where:

* in this process (numpy only): the numpy triad, band-geometry throughput, the 61-μ table;
* PETSc figures in subprocesses ``mpiexec -n R python -m bench.solve ...`` (R = 1, 2), one
  process per measurement so that ru_maxrss is that measurement's peak memory; each prints
  one JSON line from rank 0 (see ``bench/solve.py`` for what each figure counts);
* the scipy baseline in ``python -m bench.scipy_baseline`` subprocesses (time-capped);
* optional: WannierBerri's side of the issue #7 table comparison, ``bench/wannierberri.py`` run
  by $KINETIC_WANNIERBERRI_PYTHON (or this python if it imports wannierberri), recorded under
  "wannierberri" (``{"skipped": ...}`` when not installed).

Subprocesses get OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = 1 (one core per rank, and scipy on
one core like one PETSc rank). The reference problem is described in ``bench/reference.py``.

The cores may be shared (tests, builds): before each subprocess the bench waits a little for
other processes to go quiet (bounded, see QUIET_WAIT_*), and every run records the CPU share
other processes took while it ran (``other_processes_cpu_pct``); runs above 5% are listed in
the notes as distorted.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import reference

RESULTS = Path(__file__).with_name("results.json")
ROOT = Path(__file__).resolve().parent.parent
WORKER_TIMEOUT_S = 300
SPSOLVE_CAP_S = 60.0  # skip a spsolve size whose predicted time exceeds this
TS_STEPS = 100
ISSUE4_TARGET_S = 1.5  # steady solve incl. assembly, 2 ranks, 2e6 unknowns
QUIET_WAIT_PER_RUN_S = 30.0  # wait at most this long for other processes to go quiet ...
QUIET_WAIT_BUDGET_S = 150.0  # ... and at most this long in all (keeps make bench < 10 min)


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# ---------------------------------------------------------------------------- in-process figures
def numpy_triad(n=20_000_000):
    """Memory bandwidth of the numpy triad a = b + s*c on one core (best of 5, 3 × 160 MB).

    numpy makes two passes: a = s*c (read c, write a) then a += b (read a, read b, write a),
    i.e. 5 arrays × 8 B per element actually moved (write-allocate reads not counted): the
    ``5x8B`` figure is the achieved bandwidth. The ``3x8B`` figure counts the STREAM triad's
    3 arrays (what a fused triad moves), i.e. the useful rate of the operation.
    """
    b = np.random.rand(n)
    c = np.random.rand(n)
    a = np.empty_like(b)

    def triad():
        np.multiply(c, 1.5, out=a)
        np.add(a, b, out=a)

    t = best_of(triad, 5)
    return {"numpy_triad_5x8B_GBps": 5 * 8 * n / t / 1e9,
            "numpy_triad_3x8B_stream_convention_GBps": 3 * 8 * n / t / 1e9,
            "numpy_triad_elements": n}


def geometry_throughput(npts=1_000_000):
    """(points x bands)/s of band_geometry for the 2-band Haldane model."""
    from kinetic.geometry import band_geometry
    from kinetic.models.catalogue import get_model

    model = get_model("haldane", t1=1.0, t2=0.1, phi=np.pi / 2, M=0.2)
    rng = np.random.default_rng(0)
    k = rng.uniform(-4, 4, size=(npts, 2))

    def run():
        band_geometry(model.hamiltonian(k), model.dh_dk(k), None, n_x=0)

    t = best_of(run, 2)
    return {"geometry_points_bands_per_s": npts * model.nb / t, "geometry_1e6_points_s": t}


def table_time(n=600, nmu=61):
    """Wall time of a 61-mu AHC + Drude table of the Haldane model at n x n k-points."""
    from kinetic.config import ModelSpec, RunConfig
    from kinetic.models.catalogue import get_model
    from kinetic.table import compute_table

    model = get_model("haldane", t1=1.0, t2=0.1, phi=np.pi / 2, M=0.2)
    cfg = RunConfig(path=Path("bench"), sha256="", model=ModelSpec(name="haldane"), k=(n, n),
                    kmax=None, temperatures_K=(300.0,), taus_fs=(10.0,),
                    mus_eV=tuple(np.linspace(-3, 3, nmu)), quantities=("ahc", "drude"))
    t0 = time.perf_counter()
    rows = compute_table(cfg, model)
    return {"table_61mu_600x600_ahc_drude_s": time.perf_counter() - t0, "table_rows": len(rows)}


# ------------------------------------------------------------------ optional: WannierBerri
WANNIERBERRI_TIMEOUT_S = 400  # keeps `make bench` < 10 min (measured: 135 s for the step)
WANNIERBERRI_TARGET_X = 20.0  # issue #7: the table >= 20x faster than WannierBerri's
WANNIERBERRI_TABLE = dict(tb=ROOT / "runs" / "haldane_tb.dat", n=600, mus=(-3.0, 3.0, 61),
                          T_K=300.0, tau_fs=10.0)


def wannierberri_python():
    """A python with wannierberri: $KINETIC_WANNIERBERRI_PYTHON, else this one if it has it."""
    exe = os.environ.get("KINETIC_WANNIERBERRI_PYTHON")
    if exe:
        return exe
    import importlib.util

    return sys.executable if importlib.util.find_spec("wannierberri") is not None else None


def kinetic_wb_table(n, mus, T_K, tau_fs, tb, repeat=2):
    """kinetic's side of the WannierBerri comparison, in this process like table_time: reading
    the _tb.dat model + compute_table (AHC + Drude, one T), best of ``repeat``; and the rows."""
    from kinetic.config import ModelSpec, RunConfig
    from kinetic.models.loader import build_model
    from kinetic.table import compute_table

    spec = ModelSpec(tb=Path(tb), convention="II")
    cfg = RunConfig(path=Path("bench"), sha256="", model=spec, k=(n, n), kmax=None,
                    temperatures_K=(T_K,), taus_fs=(tau_fs,),
                    mus_eV=tuple(np.linspace(*mus[:2], int(mus[2]))), quantities=("ahc", "drude"))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = compute_table(cfg, build_model(spec))
        times.append(time.perf_counter() - t0)
    return times, rows


def wannierberri_comparison():
    """Issue #7, optional (WannierBerri is not a kinetic dependency; install it anywhere and
    point KINETIC_WANNIERBERRI_PYTHON at that python): the same table, AHC σ_xy + Drude/Ohmic
    of runs/haldane_tb.dat at 600 x 600 k, 61 μ in [-3, 3] eV, T = 300 K, τ = 10 fs, both
    serial. WannierBerri runs bench/wannierberri.py in a subprocess (best of 2 runs in that
    process; settings in that file's docstring), kinetic in this process (model read +
    compute_table, best of 2). Records the two times, their ratio and the largest differences
    of the two tables (AHC in e²/h; Drude xx relative, where it exceeds 1e-6 S)."""
    exe = wannierberri_python()
    if exe is None:
        return {"skipped": "wannierberri not installed"}
    t = WANNIERBERRI_TABLE
    cmd = [exe, str(ROOT / "bench" / "wannierberri.py"), "--tb", str(t["tb"]), "--nk",
           str(t["n"]), "--mu", *map(str, t["mus"]), "--temperature", str(t["T_K"]), "--tau",
           str(t["tau_fs"]), "--repeat", "2", "--values", "--bench-prefix"]
    wb = subprocess_json(cmd, WANNIERBERRI_TIMEOUT_S)
    out = {"command": " ".join(cmd), "python": exe}
    if "wall_s" not in wb:
        return {**out, **wb}
    wait_until_quiet()
    meter = CpuMeter()
    k_times, rows = kinetic_wb_table(t["n"], t["mus"], t["T_K"], t["tau_fs"], t["tb"])
    kin = {(round(r[0], 9), r[3], r[4]): r[5] for r in rows}
    mus = np.round(wb["mu_list_eV"], 9)
    from kinetic.units import E2_H

    ahc = [abs(wb["ahc_xy_S"][i] - kin[(m, "ahc", "xy")]) / E2_H for i, m in enumerate(mus)]
    drude = [abs(wb["drude_xx_S"][i] - kin[(m, "drude", "xx")]) / kin[(m, "drude", "xx")]
             for i, m in enumerate(mus) if kin[(m, "drude", "xx")] > 1e-6]
    ratio = wb["wall_s"] / min(k_times)
    return {**out, "wannierberri_s": wb["wall_s"], "kinetic_s": min(k_times), "ratio_x": ratio,
            "target_min_x": WANNIERBERRI_TARGET_X, "target_met": ratio >= WANNIERBERRI_TARGET_X,
            "wannierberri_s_runs": wb["wall_s_runs"], "kinetic_s_runs": k_times,
            "wannierberri_version": wb["wannierberri_version"], "grid": wb["grid"],
            "n_mu": wb["n_mu"], "temperature_K": t["T_K"], "tau_fs": t["tau_fs"],
            "wannierberri_efermi_points": wb["n_efermi"],
            "wannierberri_efermi_step_eV": wb["efermi_step_eV"],
            "max_ahc_diff_e2h": max(ahc), "max_drude_xx_rel_diff": max(drude),
            "other_processes_cpu_pct": {"wannierberri": wb.get("other_processes_cpu_pct"),
                                        "kinetic": meter.other_pct()}}


# ---------------------------------------------------------------------------- subprocesses
def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _mpiexec():
    local = Path(sys.executable).with_name("mpiexec")
    return str(local) if local.exists() else "mpiexec"


class CpuMeter:
    """CPU time used by *other* processes on this machine over an interval: busy time of all
    CPUs (/proc/stat: user+nice+system+irq+softirq) minus this process's and its waited-for
    descendants' CPU time (os.times), in % of the interval's wall time × cores. Figures measured
    while it is high are contaminated by other work (tests, builds) sharing the cores."""

    def __init__(self):
        self.t0, self.busy0, self.own0 = time.perf_counter(), self._busy(), self._own()

    @staticmethod
    def _busy():
        try:
            with open("/proc/stat") as fh:
                f = [int(v) for v in fh.readline().split()[1:]]
        except OSError:
            return None
        return (f[0] + f[1] + f[2] + f[5] + f[6]) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own():
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def other_pct(self):
        busy = self._busy()
        if busy is None or self.busy0 is None:
            return None
        wall = time.perf_counter() - self.t0
        other = (busy - self.busy0) - (self._own() - self.own0)
        return max(0.0, 100 * other / (wall * (os.cpu_count() or 1)))


_quiet_budget = [QUIET_WAIT_BUDGET_S]


def wait_until_quiet(max_s=QUIET_WAIT_PER_RUN_S, threshold_pct=10.0):
    """Before a measurement, wait (1-s samples, at most max_s and what is left of the bench's
    QUIET_WAIT_BUDGET_S) until other processes use < threshold_pct of the CPUs. Returns the
    seconds waited; the measurement still records the share it actually saw."""
    waited = 0.0
    while waited < min(max_s, _quiet_budget[0]):
        meter = CpuMeter()
        time.sleep(1.0)
        waited += 1.0
        if (meter.other_pct() or 0.0) < threshold_pct:
            break
    _quiet_budget[0] -= waited
    return waited


def subprocess_json(cmd, timeout=WORKER_TIMEOUT_S) -> dict:
    """Run cmd, return the dict printed as ``BENCH_JSON {...}`` (or {"error": ...}), with the
    CPU share other processes took meanwhile (``other_processes_cpu_pct``)."""
    waited = wait_until_quiet()
    meter = CpuMeter()
    try:
        r = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s", "timed_out": True}
    out = None
    for line in r.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            out = json.loads(line[len("BENCH_JSON "):])
    if out is None:
        tail = (r.stderr or r.stdout).strip().splitlines()[-6:]
        out = {"error": f"exit {r.returncode}: " + " | ".join(tail)}
    out["other_processes_cpu_pct"] = meter.other_pct()
    out["waited_for_quiet_s"] = waited
    return out


def petsc(nranks, *args, timeout=WORKER_TIMEOUT_S) -> dict:
    cmd = [_mpiexec(), "-n", str(nranks), sys.executable, "-m", "bench.solve", *map(str, args)]
    out = subprocess_json(cmd, timeout)
    out["command"] = f"mpiexec -n {nranks} python -m bench.solve " + " ".join(map(str, args))
    return out


def _log(msg):
    print(f"[bench {time.strftime('%T')}] {msg}", flush=True)


# ---------------------------------------------------------------------------- PETSc figures
def petsc_bandwidth(runs):
    """PETSc VecWAXPY w = a·x + y (3 × 8 B per element, 2e7 elements in all) on 1 and 2 ranks,
    measured right before and after the 2e6 MatMult in the same worker: the roofline for MatMult
    (aggregate over ranks; the mean of the two, their spread shows the drift)."""
    out = {}
    for r in (1, 2):
        ws = runs.get(f"steady_np{r}_2M_default", {}).get("waxpy_around_matmult")
        if ws:
            g = [w["GBps"] for w in ws]
            out[f"petsc_vecwaxpy_{r}rank_GBps"] = float(np.mean(g))
            out[f"petsc_vecwaxpy_{r}rank_before_after_matmult_GBps"] = g
    return out


def steady_runs(runs, export_dir):
    """All steady solves: the default solver on 1 and 2 ranks at the three sizes (the 250k and
    2M runs also time assembly and MatMult, the 1-rank runs export the system for scipy), the
    weak-scaling partner (2 ranks at twice the 1M problem), the previous default (BiCGStab +
    ILU(1)) at 2M on 1 and 2 ranks, LU at 250k, and the 1x2k variant at 2M on 1 and 2 ranks."""
    for np_ in (1, 2):
        for label, n in reference.SIZES.items():
            args = ["steady", "--n", n]
            if label in ("250k", "2M"):  # MatMult in L3 (21 MB) and from memory (176 MB)
                args.append("--matmult")
            if label == "2M":
                args.append("--log-view")
            if np_ == 1:
                args += ["--export", Path(export_dir) / f"system_{label}.npz"]
            _log(f"steady {label} on {np_} rank(s)")
            runs[f"steady_np{np_}_{label}_default"] = petsc(np_, *args)
    for np_ in (1, 2):  # the targets' figures: best of this and the first run (noise)
        _log(f"steady 2M on {np_} rank(s), repeat")
        runs[f"steady_np{np_}_2M_default_repeat"] = petsc(np_, "steady", "--n",
                                                          reference.SIZES["2M"])
    _log("steady 2M (weak-scaling partner of 1M) on 2 ranks")
    runs["steady_np2_2Mweak_default"] = petsc(2, "steady", "--n", reference.WEAK_2RANK_N)
    n_small, n_large = reference.SIZES["250k"], reference.SIZES["2M"]
    for np_ in (1, 2):
        _log(f"steady 2M on {np_} rank(s), previous default (BiCGStab + ILU(1))")
        runs[f"steady_np{np_}_2M_ilu1"] = petsc(np_, "steady", "--n", n_large, "--variant",
                                                "ilu1")
    _log("steady 250k on 1 rank, LU")
    runs["steady_np1_250k_lu"] = petsc(1, "steady", "--n", n_small, "--variant", "lu")
    L, n = reference.SIZES_1X2K["2M"]
    for np_ in (1, 2):
        _log(f"steady 1x2k 2M on {np_} rank(s)")
        runs[f"steady_np{np_}_1x2k2M_default"] = petsc(np_, "steady", "--n", n, "--nx", L)


def _peak(r):
    """Peak RSS per rank over the Problem build and the steady solve (MB, max over ranks)."""
    s = r.get("steady", r)
    return max(max(r["peak_rss_MB_per_rank_build"]), max(s.get("peak_rss_MB_per_rank", [0])))


def steady_figures(runs):
    """Wall time (incl. assembly), linear-solve time, iterations, peak memory per rank (ru_maxrss)
    against the estimate `kinetic run` prints, time breakdown, strong scaling 1 -> 2 ranks
    (efficiency = T1 / (2 T2)), weak scaling (1 rank at N, 2 ranks at 2N), the previous default."""
    out, scaling = {}, {}
    for key, r in runs.items():
        if not key.startswith("steady_") or "steady" not in r or key.endswith("_repeat"):
            continue
        s = r["steady"]
        est = r.get("memory_estimate_per_rank_MB")
        out[key[len("steady_"):]] = {
            "layout": r.get("layout"), "unknowns": r["unknowns"], "solver": s["solver"],
            "iterations": s["iterations"],
            "incl_assembly_s": s["incl_assembly_s"], "linear_solve_s": s["linear_solve_s"],
            "pc_setup_s": s["pc_setup_s"], "ksp_iterations_s": s["ksp_iterations_s"],
            "assembly_and_rhs_s": s["assembly_and_rhs_s"],
            "problem_build_s": r["problem_build_s"],
            "build_plus_steady_s": r["problem_build_s"] + s["incl_assembly_s"],
            # ru_maxrss: of the solve phase (peak mark reset after the build; the resident
            # problem data are included), and of the Problem build
            "peak_rss_MB_per_rank": s["peak_rss_MB_per_rank"],
            "peak_rss_reset_before_solve": r["peak_rss_reset_before_solve"],
            "rss_MB_per_rank_before_solve": r["rss_MB_per_rank_after_build"],
            "peak_rss_MB_per_rank_build": r["peak_rss_MB_per_rank_build"],
            "memory_estimate_per_rank_MB": est,
            "peak_over_estimate": _peak(r) / est if est else None,
            "breakdown_pct_of_incl_assembly": breakdown(s),
            "current_jx_jy": s["current_jx_jy"],
            "other_processes_cpu_pct": r.get("other_processes_cpu_pct")}
        rep = runs.get(key + "_repeat", {}).get("steady")
        if rep:  # best of two processes (incl. assembly and linear solve separately)
            v = out[key[len("steady_"):]]
            v["incl_assembly_s_runs"] = [s["incl_assembly_s"], rep["incl_assembly_s"]]
            v["linear_solve_s_runs"] = [s["linear_solve_s"], rep["linear_solve_s"]]
            v["incl_assembly_s"] = min(v["incl_assembly_s_runs"])
            v["linear_solve_s"] = min(v["linear_solve_s_runs"])
            v["other_processes_cpu_pct_runs"] = [r.get("other_processes_cpu_pct"),
                                                 runs[key + "_repeat"].get(
                                                     "other_processes_cpu_pct")]
    for label in [*reference.SIZES, "1x2k2M"]:
        one, two = out.get(f"np1_{label}_default"), out.get(f"np2_{label}_default")
        if one and two:
            scaling[label] = {
                "speedup_incl_assembly_x": one["incl_assembly_s"] / two["incl_assembly_s"],
                "efficiency_incl_assembly_pct":
                    100 * one["incl_assembly_s"] / (2 * two["incl_assembly_s"]),
                "efficiency_linear_solve_pct":
                    100 * one["linear_solve_s"] / (2 * two["linear_solve_s"]),
                "efficiency_per_iteration_pct":
                    100 * (one["ksp_iterations_s"] / max(one["iterations"], 1))
                    / (2 * two["ksp_iterations_s"] / max(two["iterations"], 1)),
                "iterations_1rank_2rank": [one["iterations"], two["iterations"]],
                "current_rel_diff_1rank_2rank": float(
                    np.max(np.abs(np.subtract(one["current_jx_jy"], two["current_jx_jy"])))
                    / np.max(np.abs(one["current_jx_jy"])))}
    weak = {}
    one, two = out.get("np1_1M_default"), out.get("np2_2Mweak_default")
    if one and two:
        ratio = two["unknowns"] / one["unknowns"]
        weak = {"unknowns_1rank_2rank": [one["unknowns"], two["unknowns"]],
                "incl_assembly_s_1rank_2rank": [one["incl_assembly_s"], two["incl_assembly_s"]],
                "iterations_1rank_2rank": [one["iterations"], two["iterations"]],
                # unknowns per rank per second, 2 ranks over 1 rank (100% = perfect weak scaling)
                "efficiency_incl_assembly_pct":
                    100 * ratio / 2 * one["incl_assembly_s"] / two["incl_assembly_s"],
                "efficiency_linear_solve_pct":
                    100 * ratio / 2 * one["linear_solve_s"] / two["linear_solve_s"]}
    previous = {}
    for r in (1, 2):
        new, old = out.get(f"np{r}_2M_default"), out.get(f"np{r}_2M_ilu1")
        if new and old:
            previous[f"{r}rank_2M"] = {
                "previous_solver": old["solver"], "previous_iterations": old["iterations"],
                "previous_incl_assembly_s": old["incl_assembly_s"],
                "default_iterations": new["iterations"],
                "default_incl_assembly_s": new["incl_assembly_s"],
                "speedup_x": old["incl_assembly_s"] / new["incl_assembly_s"],
                "current_rel_diff": float(
                    np.max(np.abs(np.subtract(old["current_jx_jy"], new["current_jx_jy"])))
                    / np.max(np.abs(new["current_jx_jy"])))}
    target = out.get("np2_2M_default", {}).get("incl_assembly_s")
    extra = {}
    if target is not None:
        extra = {"issue4_target_2rank_2M_incl_assembly_s": ISSUE4_TARGET_S,
                 "issue4_reached_2rank_2M_incl_assembly_s": target,
                 "issue4_target_met": target <= ISSUE4_TARGET_S}
    return {"runs": out, "strong_scaling_1to2_ranks": scaling, "weak_scaling_1M_1rank_2M_2rank":
            weak, "default_vs_previous_default": previous, **extra}


def breakdown(s):
    """Where the steady wall time goes, % (PETSc events, slowest rank; the parts add up to 100):
    assembly + rhs (numpy, matrix creation), PC set-up (the q2-reversed copy / factorisations,
    Krylov work vectors), PC apply (sweeps or triangular solves, and the sweep preconditioner's
    own MatMult), the rest of the Krylov iterations (the Krylov MatMults, orthogonalisation,
    vector updates). MatMult and MatSOR give their totals (inside and outside the PC) apart."""
    ev = {k: v["time_s"] for k, v in s["events"].items()}
    t = s["incl_assembly_s"]
    parts = {"assembly_and_rhs": s["assembly_and_rhs_s"], "pc_setup": s["pc_setup_s"],
             "pc_apply": ev.get("PCApply", 0.0)}
    parts["krylov_rest"] = s["ksp_iterations_s"] - parts["pc_apply"]
    out = {k: 100 * v / t for k, v in parts.items()}
    out.update({f"{k}_total": 100 * ev[k] / t for k in ("MatMult", "MatSOR", "MatSolve",
                                                         "KSPOrthogonalize") if k in ev})
    return out


def in_solve_bandwidth(s, nnz, nrows):
    """Bandwidth the solve's kernels reach (GB/s, from the event times of the whole solve):
    MatMult and MatSolve (ILU(0) factors hold the same nonzeros as A: counted like MatMult,
    12 B/nonzero + 24 B/row), MatSOR (a symmetric sweep with zero guess: two passes, counted as
    two MatMults); GMRES orthogonalisation VecMDot + VecMAXPY at 4 B per flop (one 8-B
    basis-vector element read per multiply-add = 2 flops)."""
    ev = s["events"]
    per_call = 12 * nnz + 24 * nrows
    out = {}
    for name, passes in (("MatMult", 1), ("MatSolve", 1), ("MatSOR", 2)):
        if name in ev:
            out[f"{name}_GBps"] = passes * per_call * ev[name]["count"] / ev[name]["time_s"] / 1e9
    orth = [ev[k] for k in ("VecMDot", "VecMAXPY") if k in ev]
    if orth:
        out["orthogonalization_GBps"] = (4 * sum(e["flops"] for e in orth)
                                         / sum(e["time_s"] for e in orth) / 1e9)
    return out


def matmult_assembly_figures(runs, bandwidth):
    """MatMult rows/s, GB/s and % of the VecWAXPY roofline with the same number of ranks;
    assembly (first / re-assembly) and Problem build per 1e6 unknowns, at 2e6 unknowns."""
    mm, asm = {}, {}
    for r in (1, 2):
        small = runs.get(f"steady_np{r}_250k_default", {})
        if "matmult" in small:
            m = small["matmult"]
            mm[f"{r}rank_250k_in_cache"] = {
                "rows": m["rows"], "bytes_per_call": m["bytes_per_call"],
                "rows_per_s": m["rows_per_s"], "GBps": m["GBps"]}
        run = runs.get(f"steady_np{r}_2M_default", {})
        if "matmult" not in run:
            continue
        m, a = run["matmult"], run["assembly"]
        roof = bandwidth.get(f"petsc_vecwaxpy_{r}rank_GBps")
        mm[f"{r}rank"] = {
            "rows": m["rows"], "nonzeros": m["nonzeros"], "bytes_per_call": m["bytes_per_call"],
            "time_per_call_s": m["best_s"], "rows_per_s": m["rows_per_s"], "GBps": m["GBps"],
            "roofline_vecwaxpy_GBps": roof,
            "roofline_pct": 100 * m["GBps"] / roof if roof else None,
            "in_steady_solve_kernels": in_solve_bandwidth(run["steady"], m["nonzeros"],
                                                          m["rows"]),
            "other_processes_cpu_pct": run.get("other_processes_cpu_pct")}
        mil = run["unknowns"] / 1e6
        asm[f"{r}rank"] = {
            "first_incl_pattern_s_per_1e6_unknowns": a["first_s_per_1e6_unknowns"],
            "reassembly_in_place_s_per_1e6_unknowns": a["again_s_per_1e6_unknowns"],
            "problem_build_s": run["problem_build_s"],
            "problem_build_s_per_1e6_unknowns": run["problem_build_s"] / mil}
    if "1rank" in mm and "2rank" in mm:
        mm["strong_scaling_efficiency_pct"] = 100 * mm["2rank"]["rows_per_s"] / (
            2 * mm["1rank"]["rows_per_s"])
        if bandwidth.get("petsc_vecwaxpy_1rank_GBps"):
            mm["vecwaxpy_bandwidth_gain_1to2_ranks_x"] = (
                bandwidth["petsc_vecwaxpy_2rank_GBps"] / bandwidth["petsc_vecwaxpy_1rank_GBps"])
    return mm, asm


def ts_figures(runs):
    """TS throughput at ~2.5e5 unknowns, TS_STEPS fixed steps of 0.9 × CFL dt, 1 rank."""
    out = {}
    n = reference.SIZES["250k"]
    for ts_type in ("ssp", "arkimex"):
        _log(f"TS {ts_type}")
        r = runs[f"ts_{ts_type}"] = petsc(1, "ts", "--n", n, "--type", ts_type,
                                          "--steps", TS_STEPS)
        if "cell_updates_per_s" in r:
            out[ts_type] = {"unknowns": r["unknowns"], "steps": r["steps"], "dt": r["dt"],
                            "wall_s": r["wall_s"], "function_evals": r["function_evals"],
                            "cell_updates_per_s": r["cell_updates_per_s"],
                            "cell_function_evals_per_s": r["cell_function_evals_per_s"]}
    return out


# ---------------------------------------------------------------------------- scipy baseline
def scipy_run(export_dir, label, method, timeout):
    cmd = [sys.executable, "-m", "bench.scipy_baseline",
           str(Path(export_dir) / f"system_{label}.npz"), method]
    return subprocess_json(cmd, timeout)


def scipy_figures(runs, export_dir, steady):
    """scipy spsolve (ascending sizes while the time predicted from the measured scaling stays
    under SPSOLVE_CAP_S) and gmres + spilu at the largest size; speed ratios scipy/PETSc on
    the same system (PETSc: linear_solve_s = KSP/PC set-up + KSPSolve, excluding assembly;
    scipy: factorisation + solve)."""
    out = {"spsolve": {}, "spsolve_cap_s": SPSOLVE_CAP_S}
    sizes = list(reference.SIZES.items())
    prev, exponent = None, 1.5  # a-priori time ∝ n^1.5 (2-D fill) until two sizes are measured
    for label, n in sizes:
        nu = reference.unknowns(n)
        if prev is not None:
            predicted = prev[1] * (nu / prev[0]) ** exponent
            if predicted > SPSOLVE_CAP_S:
                out["spsolve"][label] = {"skipped": True, "predicted_s": predicted,
                                         "predicted_from_exponent": exponent}
                break
        _log(f"scipy spsolve {label}")
        r = runs[f"scipy_spsolve_{label}"] = scipy_run(export_dir, label, "spsolve",
                                                       3 * SPSOLVE_CAP_S)
        if "solve_s" not in r:
            out["spsolve"][label] = r
            break
        out["spsolve"][label] = r
        if prev is not None:
            exponent = float(np.log(r["solve_s"] / prev[1]) / np.log(nu / prev[0]))
        prev = (nu, r["solve_s"])
    _log("scipy gmres + spilu 2M")
    g = runs["scipy_gmres_spilu_2M"] = scipy_run(export_dir, "2M", "gmres_spilu",
                                                 WORKER_TIMEOUT_S)
    out["gmres_spilu_2M"] = g
    ratios = {}
    st = steady["runs"]
    if "solve_s" in g:
        for r in (1, 2):
            run = st.get(f"np{r}_2M_default")
            if run:
                ratios[f"gmres_spilu_over_petsc_{r}rank_2M_x"] = g["solve_s"] / run[
                    "linear_solve_s"]
                ratios[f"gmres_spilu_over_petsc_incl_assembly_{r}rank_2M_x"] = (
                    g["solve_s"] / run["incl_assembly_s"])
    measured = [k for k, v in out["spsolve"].items() if "solve_s" in v]
    if measured:
        big = measured[-1]
        if f"np1_{big}_default" in st:
            ratios[f"spsolve_over_petsc_1rank_{big}_x"] = (
                out["spsolve"][big]["solve_s"] / st[f"np1_{big}_default"]["linear_solve_s"])
        if "250k" in measured and "np1_250k_lu" in st:
            ratios["spsolve_over_petsc_lu_1rank_250k_x"] = (
                out["spsolve"]["250k"]["solve_s"] / st["np1_250k_lu"]["linear_solve_s"])
    out["ratios_scipy_time_over_petsc_time"] = ratios
    return out


# ---------------------------------------------------------------------------- issue #7 targets
ISSUE7 = {"steady_2rank_2M_incl_assembly_s_max": ISSUE4_TARGET_S,
          "strong_scaling_2M_incl_assembly_pct_min": 85.0,
          "faster_than_best_scipy_x_min": 8.0, "matmult_roofline_pct_min": 75.0}


def issue7_targets(res):
    """The issue #7 targets, each with the figure reached and met / not met: steady solve incl.
    assembly on 2 ranks at 2e6 unknowns; its 1 -> 2 rank strong-scaling efficiency; the best
    scipy baseline (factor + solve of the same system, 1 core) over PETSc's steady solve incl.
    assembly on 1 rank (the like-for-like, strictest form; the linear-solve-only and 2-rank
    ratios are in scipy.ratios_scipy_time_over_petsc_time); MatMult over the VecWAXPY roofline
    on 1 and 2 ranks."""
    st, mm, sp = res["steady"], res.get("matmult", {}), res.get("scipy", {})
    runs = st["runs"]
    out = {}
    t2 = runs.get("np2_2M_default", {}).get("incl_assembly_s")
    if t2 is not None:
        out["steady_2rank_2M_incl_assembly_s"] = {
            "reached": t2, "target_max": ISSUE7["steady_2rank_2M_incl_assembly_s_max"],
            "met": t2 <= ISSUE7["steady_2rank_2M_incl_assembly_s_max"]}
    eff = st["strong_scaling_1to2_ranks"].get("2M", {}).get("efficiency_incl_assembly_pct")
    if eff is not None:
        out["strong_scaling_2M_incl_assembly_pct"] = {
            "reached": eff, "target_min": ISSUE7["strong_scaling_2M_incl_assembly_pct_min"],
            "met": eff >= ISSUE7["strong_scaling_2M_incl_assembly_pct_min"]}
    scipy_times = [v["solve_s"] for v in [sp.get("gmres_spilu_2M", {}),
                                          sp.get("spsolve", {}).get("2M", {})] if "solve_s" in v]
    t1 = runs.get("np1_2M_default", {}).get("incl_assembly_s")
    if scipy_times and t1:
        best = min(scipy_times)
        out["faster_than_best_scipy_x"] = {
            "best_scipy_s": best, "petsc_1rank_incl_assembly_s": t1, "reached": best / t1,
            "target_min": ISSUE7["faster_than_best_scipy_x_min"],
            "met": best / t1 >= ISSUE7["faster_than_best_scipy_x_min"]}
    for r in (1, 2):
        pct = mm.get(f"{r}rank", {}).get("roofline_pct")
        if pct is not None:
            out[f"matmult_roofline_{r}rank_pct"] = {
                "reached": pct, "target_min": ISSUE7["matmult_roofline_pct_min"],
                "met": pct >= ISSUE7["matmult_roofline_pct_min"]}
    return out


# ---------------------------------------------------------------------------- report
def git_state():
    def git(*a):
        r = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True)
        return r.stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "uncommitted_kinetic_files": git("status", "--porcelain", "kinetic").splitlines()}


def _f(v, spec=".3g"):
    return "-" if v is None else format(v, spec)


def report_lines(res):
    """The printed summary (everything, with more detail, is in results.json)."""
    L = []
    bw, mm, st = res["bandwidth"], res.get("matmult", {}), res["steady"]
    L.append(f"bandwidth GB/s: numpy triad {_f(bw.get('numpy_triad_5x8B_GBps'))} (5 arrays "
             f"moved by its 2 passes; {_f(bw.get('numpy_triad_3x8B_stream_convention_GBps'))} "
             "counting STREAM's 3) | PETSc VecWAXPY (3 arrays) "
             f"1 rank {_f(bw.get('petsc_vecwaxpy_1rank_GBps'))}, "
             f"2 ranks {_f(bw.get('petsc_vecwaxpy_2rank_GBps'))}  <- roofline (measured "
             "around the MatMult)")
    for r in (1, 2):
        m, c = mm.get(f"{r}rank"), mm.get(f"{r}rank_250k_in_cache")
        if m:
            k = m["in_steady_solve_kernels"]
            L.append(f"MatMult {r} rank(s), {m['rows']:.3g} rows: {m['rows_per_s'] / 1e6:.0f} "
                     f"Mrows/s = {m['GBps']:.1f} GB/s = {_f(m['roofline_pct'], '.0f')}% of "
                     f"roofline (in L3 at 250k: {_f(c and c['GBps'], '.1f')} GB/s); in the "
                     f"solve: MatMult {_f(k.get('MatMult_GBps'), '.1f')}, sweeps (MatSOR) "
                     f"{_f(k.get('MatSOR_GBps'), '.1f')}, GMRES orthog. "
                     f"{_f(k.get('orthogonalization_GBps'), '.1f')} GB/s")
    for r in (1, 2):
        a = res.get("assembly", {}).get(f"{r}rank")
        if a:
            L.append(f"per 1e6 unknowns, {r} rank(s): assembly first (incl. CSR pattern) "
                     f"{a['first_incl_pattern_s_per_1e6_unknowns']:.3f} s, re-assembly "
                     f"{a['reassembly_in_place_s_per_1e6_unknowns']:.4f} s, Problem build "
                     f"(geometry) {a['problem_build_s_per_1e6_unknowns']:.2f} s")
    L.append("steady solve             unknowns  solver                    it  incl.asm s  "
             "linear s  build s  peak MB/rank: solve (build) / estimate  other-CPU%")
    for key, v in st["runs"].items():
        L.append(f"  {key:<22} {v['unknowns']:>9}  {v['solver']:<24} {v['iterations']:>3}  "
                 f"{v['incl_assembly_s']:>10.3f}  {v['linear_solve_s']:>8.3f}  "
                 f"{v['problem_build_s']:>7.2f}  {max(v['peak_rss_MB_per_rank']):>12.0f} "
                 f"({max(v['peak_rss_MB_per_rank_build']):>5.0f}) / "
                 f"{_f(v['memory_estimate_per_rank_MB'], '.0f')}   "
                 f"{_f(v['other_processes_cpu_pct'], '>8.0f')}")
    for key in ("np1_2M_default", "np2_2M_default"):
        b = st["runs"].get(key, {}).get("breakdown_pct_of_incl_assembly")
        if b:
            L.append(f"  {key} time %: " + ", ".join(f"{k} {v:.0f}" for k, v in b.items()))
    sc = st["strong_scaling_1to2_ranks"]
    if sc:
        L.append("strong scaling 1->2 ranks, efficiency % (incl. assembly / linear solve): "
                 + "; ".join(f"{k} {v['efficiency_incl_assembly_pct']:.0f} / "
                             f"{v['efficiency_linear_solve_pct']:.0f}" for k, v in sc.items()))
    w = st.get("weak_scaling_1M_1rank_2M_2rank")
    if w:
        L.append(f"weak scaling (1 rank {w['unknowns_1rank_2rank'][0]:.3g} unknowns, 2 ranks "
                 f"{w['unknowns_1rank_2rank'][1]:.3g}): {w['incl_assembly_s_1rank_2rank'][0]:.3f}"
                 f" s -> {w['incl_assembly_s_1rank_2rank'][1]:.3f} s, iterations "
                 f"{w['iterations_1rank_2rank']}, efficiency {w['efficiency_incl_assembly_pct']:.0f}"
                 f"% (linear solve {w['efficiency_linear_solve_pct']:.0f}%)")
    for key, v in st.get("default_vs_previous_default", {}).items():
        L.append(f"default vs previous default ({v['previous_solver']}), {key}: "
                 f"{v['previous_incl_assembly_s']:.2f} s / {v['previous_iterations']} it -> "
                 f"{v['default_incl_assembly_s']:.2f} s / {v['default_iterations']} it "
                 f"({v['speedup_x']:.1f}x; currents agree to {v['current_rel_diff']:.0e})")
    est = [v["peak_over_estimate"] for v in st["runs"].values() if v["peak_over_estimate"]]
    if est:
        L.append(f"peak RSS per rank / `kinetic run` memory estimate: {min(est):.2f} - "
                 f"{max(est):.2f} over {len(est)} steady runs")
    sp = res.get("scipy", {})
    parts = []
    for label, v in sp.get("spsolve", {}).items():
        if "solve_s" in v:
            parts.append(f"{label} {v['solve_s']:.2f} s ({v['peak_rss_MB']:.0f} MB)")
        elif v.get("skipped"):
            parts.append(f"{label} not run: predicted {v['predicted_s']:.0f} s > cap "
                         f"{SPSOLVE_CAP_S:.0f} s (time ~ n^{v['predicted_from_exponent']:.2f})")
    if parts:
        L.append("scipy spsolve: " + "; ".join(parts))
    g = sp.get("gmres_spilu_2M", {})
    if "solve_s" in g:
        L.append(f"scipy gmres+spilu 2M: {g['solve_s']:.2f} s (spilu {g['factor_s']:.2f} s, "
                 f"{g['iterations']} it), true rel. residual {g['true_relative_residual']:.1e}, "
                 f"max rel. diff to PETSc {g['max_rel_diff_to_petsc']:.1e}")
    rat = sp.get("ratios_scipy_time_over_petsc_time", {})
    if rat:
        L.append("scipy time / PETSc time (linear solve unless incl_assembly): "
                 + "; ".join(f"{k[:-2]} {v:.1f}x" for k, v in rat.items()))
    for k, v in res.get("issue7_targets", {}).items():
        bound = (f"<= {v['target_max']}" if "target_max" in v else f">= {v['target_min']}")
        L.append(f"issue #7 target {k}: {v['reached']:.3g} ({bound}) "
                 f"{'met' if v['met'] else 'NOT met'}")
    ts = res.get("ts", {})
    if ts:
        L.append("TS 250k, fixed dt = 0.9 CFL: " + "; ".join(
            f"{k} {v['cell_updates_per_s'] / 1e6:.1f} Mcell-updates/s ({v['steps']} steps, "
            f"{v['function_evals']} function evals, {v['wall_s']:.2f} s)" for k, v in ts.items()))
    geo, tab = res["geometry"], res["table"]
    L.append(f"geometry {geo['geometry_points_bands_per_s']:.3g} points*bands/s; table 61 mu "
             f"600x600 {tab['table_61mu_600x600_ahc_drude_s']:.2f} s")
    L.append(wannierberri_line(res.get("wannierberri", {})))
    return L


def wannierberri_line(w):
    if "ratio_x" in w:
        return (f"WannierBerri {w['wannierberri_version']} same table (Haldane _tb.dat, "
                f"{w['grid'][0]}x{w['grid'][1]} k, {w['n_mu']} mu, {w['temperature_K']:g} K, "
                f"AHC + Ohmic, serial): {w['wannierberri_s']:.1f} s vs kinetic "
                f"{w['kinetic_s']:.2f} s = {w['ratio_x']:.0f}x (target >= "
                f"{w['target_min_x']:g}x {'met' if w['target_met'] else 'NOT met'}); tables "
                f"agree: AHC to {w['max_ahc_diff_e2h']:.1e} e^2/h, Drude xx to "
                f"{w['max_drude_xx_rel_diff']:.1e} rel.")
    return f"WannierBerri comparison: {w.get('skipped') or w.get('error', 'not run')}"


def main():
    t_start, meter = time.perf_counter(), CpuMeter()
    res = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
           "date": time.strftime("%F %T"), **git_state(),
           "loadavg_1min_at_start": os.getloadavg()[0], "notes": list(reference.NOTES)}
    if res["loadavg_1min_at_start"] > 0.5:
        _log(f"warning: load average {res['loadavg_1min_at_start']:.2f} at start: other "
             "processes share the cores and will distort the figures")
    runs = {}
    _log("numpy triad, geometry, table")
    res["bandwidth"] = numpy_triad()
    res["geometry"] = geometry_throughput()
    res["table"] = table_time()
    with tempfile.TemporaryDirectory(prefix="kinetic-bench-") as export_dir:
        steady_runs(runs, export_dir)
        res["bandwidth"].update(petsc_bandwidth(runs))
        res["steady"] = steady_figures(runs)
        res["matmult"], res["assembly"] = matmult_assembly_figures(runs, res["bandwidth"])
        res["ts"] = ts_figures(runs)
        res["scipy"] = scipy_figures(runs, export_dir, res["steady"])
    _log("optional: the same table with WannierBerri")
    res["wannierberri"] = wannierberri_comparison()
    res["issue7_targets"] = issue7_targets(res)
    res["notes"] += [
        "MatMult bytes/call = 12 B per nonzero (8 B value + 4 B column index) + 3 x 8 B per row "
        "(x read, y write, y write-allocate); roofline = PETSc VecWAXPY with the same ranks",
        "steady incl. assembly = wall time of Transport.steady() (CSR pattern, matrix values and "
        "creation, right-hand side, KSP set-up and solve); problem build (band geometry at "
        "cells and corners) is reported separately",
        "peak memory per rank = ru_maxrss; the mark is reset (/proc/self/clear_refs) after the "
        "Problem build, so 'solve' is the peak of Transport.steady with the problem's data "
        "resident, 'build' the peak of the band-geometry set-up; 'estimate' is what `kinetic "
        "run` prints (kinetic.run.memory_estimate, computed in the worker before the build); "
        "peak_over_estimate uses the larger of the two peaks",
        "default steady solver: GMRES preconditioned by four-direction sweeps "
        "(kinetic.operator.SweepPC: symmetric Gauss-Seidel on each rank's block in the mesh "
        "ordering and in the q2-reversed ordering, applied multiplicatively); 'ilu1' runs are "
        "the previous default, BiCGStab + ILU(1) (block Jacobi with ILU(1) blocks on 2 ranks)",
        "linear solve = KSPSetUp + PCSetUp + PCSetUpOnBlocks + KSPSolve events (PETSc 3.26 logs "
        "the set-up outside KSPSolve); scipy/PETSc ratios compare it with scipy's factor + solve",
        "the direct solve is -steady_ksp_type preonly -steady_pc_type lu (Transport.steady drops "
        "its nonzero initial guess for preonly)",
        "2M default runs (1 and 2 ranks): incl_assembly_s and linear_solve_s are the best of "
        "two worker processes (incl_assembly_s_runs, linear_solve_s_runs); the breakdown, "
        "events and memory are the first run's",
        "weak scaling: 1 rank at 1 002 528 unknowns, 2 ranks at 2 004 002 (N = 1001); efficiency "
        "= unknowns per rank per second on 2 ranks over 1 rank",
        "1x2k variant: QWZ mass texture M(x) = 1 + 0.4 sin(2 pi x / L), L = 64 x-cells, 128 x "
        "128 k-points (k_y in the dof), same mu, T, tau, E_x, B = 0",
    ]
    res["other_processes_cpu_pct"] = meter.other_pct()
    noisy = sorted(k for k, v in runs.items() if (v.get("other_processes_cpu_pct") or 0) > 5)
    res["runs_with_other_processes_over_5pct_cpu"] = noisy
    if noisy:
        res["notes"].append(f"other processes used > 5% of the CPU during {len(noisy)} runs "
                            f"({', '.join(noisy)}): those figures are distorted; rerun on a "
                            "quiet machine")
    failed = sorted(k for k, v in runs.items() if "error" in v)
    res["failed_runs"] = {k: runs[k]["error"] for k in failed}
    res["raw_runs"] = runs
    res["bench_wall_s"] = time.perf_counter() - t_start
    RESULTS.write_text(json.dumps(res, indent=2) + "\n")

    print()
    for line in report_lines(res):
        print(line)
    for note in res["notes"]:
        print(f"note: {note}")
    for k in failed:
        print(f"FAILED {k}: {runs[k]['error']}")
    print(f"other processes' CPU share during the bench: {res['other_processes_cpu_pct']:.1f}%")
    print(f"bench wall time {res['bench_wall_s']:.0f} s; written: {RESULTS}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
