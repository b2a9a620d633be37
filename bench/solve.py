"""PETSc worker of `make bench`: one measurement per process, run under mpiexec.

    mpiexec -n R python -m bench.solve waxpy  [--global-size 20000000]
    mpiexec -n R python -m bench.solve steady --n N [--nx L] [--variant default|ilu1|lu]
                                                    [--matmult] [--log-view] [--export FILE.npz]
                                                    [--opt KEY=VALUE ...]
    mpiexec -n R python -m bench.solve ts     --n N --type ssp|arkimex [--steps 40]

Rank 0 prints one line ``BENCH_JSON {...}``; no other rank prints. Times are wall-clock
(perf_counter between barriers, the slowest rank's); PETSc's own event log (``PETSc.Log``) gives
the breakdown of a phase (difference of the cumulative event counters around it, the slowest
rank's time). The bench's argv never reaches PETSc: options are set in the options database.
One process per measurement keeps ``ru_maxrss`` (peak resident memory) specific to it.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np

from bench import reference

# events whose time is reported as the breakdown of a phase (PETSc 3.26 names)
EVENTS = ("KSPSolve", "KSPSetUp", "PCSetUp", "PCSetUpOnBlocks", "MatIncreaseOvrlp",
          "MatCreateSubMats", "PCApply", "MatMult", "MatSolve", "KSPOrthogonalize", "VecMDot",
          "VecMAXPY", "VecNorm", "VecScatterBegin", "VecScatterEnd", "MatLUFactorSym",
          "MatLUFactorNum", "MatILUFactorSym", "MatSetPreallCOO", "MatSetValuesCOO",
          "MatAssemblyEnd", "TSStep", "TSFunctionEval", "SNESSolve", "VecWAXPY", "MatGetOrdering",
          "MatSOR")


def init_petsc():
    import mpi4py.MPI  # noqa: F401  (loads MPI before PETSc)
    import petsc4py

    petsc4py.init([sys.argv[0]])
    from petsc4py import PETSc

    PETSc.Log.begin()
    return PETSc


class Clock:
    """Wall time of a collective phase (barrier, run, barrier; max over ranks) plus the PETSc
    event-log difference over the phase."""

    def __init__(self, PETSc, comm):
        self.PETSc, self.comm, self.mpi = PETSc, comm, comm.tompi4py()

    def _snapshot(self):
        return {name: self.PETSc.Log.Event(name).getPerfInfo() for name in EVENTS}

    def __call__(self, fn):
        before = self._snapshot()
        self.mpi.Barrier()
        t0 = time.perf_counter()
        out = fn()
        self.mpi.Barrier()
        wall = self.mpi.allreduce(time.perf_counter() - t0, op=_max())
        after = self._snapshot()
        events = {}
        for name in EVENTS:
            count = after[name]["count"] - before[name]["count"]
            if count:
                dt = self.mpi.allreduce(after[name]["time"] - before[name]["time"], op=_max())
                flops = self.mpi.allreduce(after[name]["flops"] - before[name]["flops"])
                events[name] = {"count": int(count), "time_s": dt, "flops": flops}
        return out, wall, events


def _max():
    from mpi4py import MPI

    return MPI.MAX


def _status_mb(field) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return None


def vm_hwm_mb() -> float | None:
    """VmHWM of /proc/self/status (peak RSS of this process image), MB.

    ru_maxrss is max(that, the peak of the image before execve): a process that the bench's
    python starts directly (vfork + exec) reports the parent's peak (the scipy baseline uses
    this instead). Ranks started by mpiexec (forked by the hydra proxy) are not affected.
    """
    return _status_mb("VmHWM")


def reset_peak_rss() -> bool:
    """Reset this process's peak-RSS mark (Linux ≥ 4.0: write 5 to /proc/self/clear_refs), so
    that ru_maxrss afterwards is the peak of the phase that follows (resident data included)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb(comm) -> list[float]:
    """ru_maxrss (peak resident set, KiB on Linux) of every rank, in MB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
    return comm.tompi4py().allgather(rss)


# ---------------------------------------------------------------------------------- figures
def waxpy(PETSc, comm, global_size, repeat=10):
    """PETSc VecWAXPY w = a·x + y on a Vec of ``global_size`` doubles (split over the ranks).

    Counted traffic: 3 vectors × 8 B per element (read x, read y, write w; the write-allocate
    read of w is not counted, as in STREAM). Best of ``repeat`` timed calls (after a warm-up),
    aggregate over all ranks. The PETSc event log's mean time per call is reported too.
    """
    x = PETSc.Vec().createMPI((None, global_size), comm=comm)
    x.setRandom()
    y, w = x.duplicate(), x.duplicate()
    y.set(1.0)
    w.waxpy(1.5, x, y)  # warm-up: first touch of w
    clock = Clock(PETSc, comm)
    times, log_t, log_n = [], 0.0, 0
    for _ in range(repeat):
        _, t, ev = clock(lambda: w.waxpy(1.5, x, y))
        times.append(t)
        log_t += ev["VecWAXPY"]["time_s"]
        log_n += ev["VecWAXPY"]["count"]
    nbytes = 3 * 8 * global_size
    for v in (x, y, w):
        v.destroy()
    return {"ranks": comm.getSize(), "global_size": global_size, "bytes_per_call": nbytes,
            "best_s": min(times), "median_s": float(np.median(times)),
            "GBps": nbytes / min(times) / 1e9, "GBps_log_mean": nbytes / (log_t / log_n) / 1e9}


def build_problem(PETSc, comm, n, nx=None):
    """Problem (DMDA, band geometry at cell centres and corners, operator) + Transport: the 0x2k
    reference problem on n × n k-points, or (nx given) the 1x2k variant on nx x-cells."""
    from kinetic.solvers import Transport

    clock = Clock(PETSc, comm)
    make = (lambda: reference.build(n, comm)) if nx is None else (
        lambda: reference.build_1x2k(nx, n, comm))
    (p, tr), t, _ = clock(lambda: (lambda p: (p, Transport(p)))(make()))
    return p, tr, t


def unknowns(p) -> int:
    """Global number of unknowns of a Problem (cells × dof)."""
    return int(np.prod(p.mesh.da.getSizes())) * p.mesh.nb


# PETSc 3.26 logs the KSP/PC set-up outside the KSPSolve event (KSPSolve_Private calls
# KSPSetUp and KSPSetUpOnBlocks before PetscLogEventBegin(KSP_Solve)): the linear solve is the sum
SOLVE_EVENTS = ("KSPSetUp", "PCSetUp", "PCSetUpOnBlocks", "KSPSolve")


def steady_solve(PETSc, comm, p, tr):
    """Transport.steady(): assembly (CSR pattern, values, matrix creation), right-hand side,
    KSP set-up (ILU/ASM/LU factorisation) and solve, as a user's first call does.

    linear_solve_s = KSPSetUp + PCSetUp + PCSetUpOnBlocks + KSPSolve events (set-up and
    iterations, i.e. what the scipy baseline's factor + solve does); assembly_and_rhs_s is the
    rest of the wall time (matrix, right-hand side and well-balanced source in numpy, Vecs).
    """
    from kinetic.observables import number_current, total

    stage = PETSc.Log.Stage("steady_solve")  # its own section in -log_view (log_view_stage)
    stage.push()
    try:
        (f, info), t, events = Clock(PETSc, comm)(tr.steady)
    finally:
        stage.pop()
    ev = {name: events.get(name, {}).get("time_s", 0.0) for name in SOLVE_EVENTS}
    linear = sum(ev.values())
    out = {"incl_assembly_s": t, "linear_solve_s": linear, "assembly_and_rhs_s": t - linear,
           "pc_setup_s": linear - ev["KSPSolve"], "ksp_iterations_s": ev["KSPSolve"],
           "iterations": info["iterations"], "solver": info["solver"],
           "converged_reason": info["converged_reason"], "residual_norm": info["residual"],
           "events": events, "peak_rss_MB_per_rank": peak_rss_mb(comm),
           "current_jx_jy": [float(v) for v in total(p, number_current(tr, f))]}
    return f, out


def log_view_stage(PETSc, comm, stage="steady_solve") -> list[str] | None:
    """PETSc's -log_view text (PETSc.Log.view) of one log stage: the event table header and the
    events that ran in it (rank 0; None elsewhere)."""
    import os
    import tempfile

    path = None
    if comm.getRank() == 0:
        fd, path = tempfile.mkstemp(prefix="kinetic-bench-logview-", suffix=".txt")
        os.close(fd)
    path = comm.tompi4py().bcast(path)
    viewer = PETSc.Viewer().createASCII(path, comm=comm)
    PETSc.Log.view(viewer)
    viewer.destroy()
    if comm.getRank() != 0:
        return None
    with open(path) as fh:
        text = fh.read().splitlines()
    os.unlink(path)
    header = [ln for ln in text if ln.startswith(("Event  ", "                   Max Ratio"))][:2]
    out, inside = [], False
    for ln in text:
        if ln.startswith("--- Event Stage"):
            inside = ln.rstrip().endswith(f": {stage}")
            continue
        parts = ln.split()
        if inside and len(parts) > 10 and parts[1].isdigit() and int(parts[1]) > 0:
            out.append(ln.rstrip())
    return header + out


def assembly(PETSc, comm, p, tr):
    """Assembly of the transport matrix M = upwind flux matrix + diag(A D/τ) (AIJ from CSR
    arrays PETSc keeps without copying).

    first: the CSR pattern (neighbour indices from the ownership ranges, edge rows sorted) +
    the values + MatCreate*WithArrays, i.e. ``op.matrix(E, coll)`` on a fresh operator (the
    operator's cached pattern is dropped first); again: ``op.matrix(E, coll, mat=A)``, i.e. the
    face fluxes in numpy written into A's value arrays + assemble.
    """
    E, coll = p.phys.E, tr.AD / p.phys.tau
    p.op._pattern = None  # the steady solve above cached it; time a cold first assembly
    clock = Clock(PETSc, comm)
    A, t_first, ev_first = clock(lambda: p.op.matrix(E, coll))
    _, t_again, ev_again = clock(lambda: p.op.matrix(E, coll, mat=A))
    mil = unknowns(p) / 1e6
    return A, {"first_s": t_first, "again_s": t_again, "first_s_per_1e6_unknowns": t_first / mil,
               "again_s_per_1e6_unknowns": t_again / mil, "events_first": ev_first,
               "events_again": ev_again}


def matmult(PETSc, comm, A, repeat=40):
    """y = A x with the assembled AIJ matrix: best and median of ``repeat`` timed calls.

    Counted traffic per call: 12 B per nonzero (8 B value + 4 B column index, 32-bit PetscInt)
    + 3 × 8 B per row (read x, write y, write-allocate read of y). Row pointers (4 B/row) and
    the ghost exchange (2 rows of cells per rank boundary) are not counted.
    """
    nrows = A.getSize()[0]
    nnz = int(A.getInfo(PETSc.Mat.InfoType.GLOBAL_SUM)["nz_used"])
    x, y = A.createVecs()
    x.setRandom()
    for _ in range(3):
        A.mult(x, y)
    clock = Clock(PETSc, comm)
    times, log_t = [], 0.0
    for _ in range(repeat):
        _, t, ev = clock(lambda: A.mult(x, y))
        times.append(t)
        log_t += ev["MatMult"]["time_s"]
    x.destroy()
    y.destroy()
    nbytes = 12 * nnz + 24 * nrows
    best = min(times)
    return {"ranks": comm.getSize(), "rows": nrows, "nonzeros": nnz, "bytes_per_call": nbytes,
            "best_s": best, "median_s": float(np.median(times)), "rows_per_s": nrows / best,
            "GBps": nbytes / best / 1e9, "GBps_log_mean": nbytes / (log_t / repeat) / 1e9}


def export_csr(p, tr, A, f, path):
    """Write the 1-rank matrix (CSR), right-hand side, initial guess and PETSc's solution, so the
    scipy baseline solves the identical system (b as in Transport.steady)."""
    E, ph = p.phys.E, p.phys
    coll = tr.AD / ph.tau
    b = (coll * p.f_loc + tr.source(E) + tr.wb_source(E)).ravel()
    indptr, indices, data = A.getValuesCSR()
    np.savez(path, indptr=indptr, indices=indices, data=data, b=b, x0=p.f_loc.ravel(),
             x_petsc=f.getArray(readonly=True).copy())


def transient(PETSc, comm, p, tr, ts_type, steps):
    """TS throughput: ``steps`` fixed steps of dt = 0.9 × cfl_dt(E) (t_end = (steps + ½)·dt and
    -ts_max_steps = steps; -ts_adapt_type none so the adaptive ARKIMEX keeps dt fixed).

    Counted: cell updates = unknowns × steps; the function evaluations (RHS + implicit) are the
    PETSc TSFunctionEval event count.
    """
    E = p.phys.E
    dt = 0.9 * tr.cfl_dt(E)
    opts = PETSc.Options()
    opts["ts_max_steps"] = steps
    opts["ts_adapt_type"] = "none"
    f = p.field(p.f_loc)
    try:
        (_, info), t, events = Clock(PETSc, comm)(
            lambda: tr.transient(f, (steps + 0.5) * dt, ts_type=ts_type, dt=dt))
    finally:
        del opts["ts_max_steps"]
        del opts["ts_adapt_type"]
    n = unknowns(p)
    nfev = events.get("TSFunctionEval", {}).get("count", 0)
    return {"ts_type": ts_type, "unknowns": n, "dt": dt, "steps": info["steps"], "wall_s": t,
            "function_evals": nfev, "cell_updates_per_s": n * info["steps"] / t,
            "cell_function_evals_per_s": n * nfev / t, "converged_reason": info["converged_reason"],
            "events": events}


WAXPY_SIZE = 20_000_000  # doubles: 3 vectors × 160 MB, far beyond the 32 MB L3

VARIANTS = {
    "default": {},
    # the previous default (until the four-direction sweeps): BiCGStab + ILU(1), block Jacobi
    # with ILU(1) blocks on several ranks
    "ilu1": {"steady_ksp_type": "bcgs", "steady_pc_type": "ilu", "steady_pc_factor_levels": 1},
    "ilu1_parallel": {"steady_ksp_type": "bcgs", "steady_pc_type": "bjacobi",
                      "steady_sub_pc_factor_levels": 1},
    "lu": {"steady_ksp_type": "preonly", "steady_pc_type": "lu"},  # steady() drops the guess
}


# ---------------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.solve")
    sub = ap.add_subparsers(dest="task", required=True)
    w = sub.add_parser("waxpy")
    w.add_argument("--global-size", type=int, default=WAXPY_SIZE)
    s = sub.add_parser("steady")
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--variant", choices=("default", "ilu1", "lu"), default="default",
                   help="default: the steady defaults; ilu1: the previous default (BiCGStab + "
                        "ILU(1), block Jacobi + ILU(1) on several ranks); lu: direct")
    s.add_argument("--nx", type=int, default=None,
                   help="the 1x2k variant on NX x-cells (k-mesh N × N) instead of 0x2k")
    s.add_argument("--matmult", action="store_true", help="also time assembly and MatMult")
    s.add_argument("--export", help="write the 1-rank system to this .npz (scipy baseline)")
    s.add_argument("--log-view", action="store_true",
                   help="include PETSc's -log_view event table of the steady solve")
    s.add_argument("--opt", action="append", default=[], metavar="KEY[=VALUE]",
                   help="a PETSc option for this solve, without the dash (repeatable), e.g. "
                        "--opt steady_ksp_rtol=1e-8 --opt steady_pc_type=sor")
    t = sub.add_parser("ts")
    t.add_argument("--n", type=int, required=True)
    t.add_argument("--type", choices=("ssp", "arkimex"), required=True)
    t.add_argument("--steps", type=int, default=40)
    args = ap.parse_args(argv)

    PETSc = init_petsc()
    comm = PETSc.COMM_WORLD
    out = {"task": args.task, "ranks": comm.getSize()}
    if args.task == "waxpy":
        out.update(waxpy(PETSc, comm, args.global_size))
    else:
        mpi = comm.tompi4py()
        # the estimate `kinetic run` prints before it builds the problem (same point in time)
        est = reference.memory_estimate(args.n, comm.getSize(), L=getattr(args, "nx", None),
                                        ts_type=args.type if args.task == "ts" else None)
        p, tr, t_build = build_problem(PETSc, comm, args.n, getattr(args, "nx", None))
        out.update(n=args.n, nx=getattr(args, "nx", None), layout=p.layout, unknowns=unknowns(p),
                   problem_build_s=t_build, memory_estimate_per_rank_MB=est["per_rank_B"] / 1e6,
                   memory_estimate_base_MB=est["base_B"] / 1e6,
                   peak_rss_MB_per_rank_build=peak_rss_mb(comm),
                   rss_MB_per_rank_after_build=mpi.allgather(_status_mb("VmRSS")),
                   peak_rss_reset_before_solve=all(mpi.allgather(reset_peak_rss())))
        if args.task == "ts":
            out.update(transient(PETSc, comm, p, tr, args.type, args.steps))
        else:
            opts = PETSc.Options()
            variant = args.variant + ("_parallel" if args.variant == "ilu1"
                                      and comm.getSize() > 1 else "")
            extra = dict(VARIANTS[variant])
            for item in args.opt:
                key, _, val = item.lstrip("-").partition("=")
                extra[key] = val
            for key, val in extra.items():
                opts[key] = val
            try:
                f, out["steady"] = steady_solve(PETSc, comm, p, tr)
            finally:
                for key in extra:
                    del opts[key]
            out["variant"] = args.variant
            if args.opt:
                out["options"] = args.opt
            if args.log_view:
                out["steady"]["log_view"] = log_view_stage(PETSc, comm)
            A = None
            if args.matmult:
                A, out["assembly"] = assembly(PETSc, comm, p, tr)
                # the roofline measured right before and after MatMult, in the same process: the
                # VM's memory bandwidth drifts between runs (other tenants of the host)
                before = waxpy(PETSc, comm, WAXPY_SIZE)
                out["matmult"] = matmult(PETSc, comm, A)
                after = waxpy(PETSc, comm, WAXPY_SIZE)
                out["waxpy_around_matmult"] = [before, after]
            if args.export:
                if comm.getSize() != 1:
                    raise SystemExit("--export needs 1 rank")
                if A is None:
                    A = p.op.matrix(p.phys.E, tr.AD / p.phys.tau)
                export_csr(p, tr, A, f, args.export)
    if comm.getRank() == 0:
        print("BENCH_JSON " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
