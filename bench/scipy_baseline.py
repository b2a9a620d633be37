"""Plain scipy baseline of `make bench`: the identical steady system solved by scipy.sparse.

    python -m bench.scipy_baseline SYSTEM.npz spsolve|gmres_spilu

SYSTEM.npz is written by ``python -m bench.solve steady --export`` on 1 rank: the PETSc matrix
as CSR (``getValuesCSR``), the right-hand side and initial guess of ``Transport.steady`` and
PETSc's solution. Prints one line ``BENCH_JSON {...}``. Run as a subprocess so the parent can
cap its time (timeout) and so ``ru_maxrss`` is this solve's peak memory. One thread
(OPENBLAS_NUM_THREADS=1 set by the parent), like one PETSc rank.

spsolve: SuperLU direct solve (``A.tocsc()`` + ``spsolve``, default COLAMD ordering).
gmres_spilu: ``spilu`` (SuperLU ILUTP, scipy's defaults drop_tol=1e-4, fill_factor=10) as
preconditioner of ``gmres`` (restart 30, rtol 1e-12, atol 1e-14, x0 = f_loc: PETSc's settings;
both are left-preconditioned, but scipy stops on the true residual ‖b − Ax‖ and PETSc on the
preconditioned one, so the true residual and the distance to PETSc's solution are reported).
"""
from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np


def vm_hwm_mb():
    """Peak RSS of this process image (VmHWM), MB. Not ru_maxrss: this process is started by
    the bench's python with vfork + exec, and ru_maxrss then includes the parent's peak."""
    from bench.solve import vm_hwm_mb as hwm

    return hwm()


def load(path):
    import scipy.sparse as sp

    d = np.load(path)
    n = d["b"].size
    A = sp.csr_matrix((d["data"], d["indices"], d["indptr"]), shape=(n, n))
    return A, d["b"], d["x0"], d["x_petsc"]


def spsolve(A, b, x0):
    """Direct SuperLU solve; returns x, {factor+solve time}."""
    import scipy.sparse.linalg as sla

    t0 = time.perf_counter()
    x = sla.spsolve(A.tocsc(), b)
    return x, {"solve_s": time.perf_counter() - t0}


def gmres_spilu(A, b, x0):
    """GMRES(30) preconditioned by spilu; returns x, {factor, iterate, total time, iterations}."""
    import scipy.sparse.linalg as sla

    t0 = time.perf_counter()
    ilu = sla.spilu(A.tocsc())
    t1 = time.perf_counter()
    M = sla.LinearOperator(A.shape, ilu.solve)
    its = [0]

    def count(_):
        its[0] += 1

    x, info = sla.gmres(A, b, x0=x0, M=M, rtol=1e-12, atol=1e-14, restart=30, maxiter=100,
                        callback=count, callback_type="pr_norm")
    t2 = time.perf_counter()
    return x, {"factor_s": t1 - t0, "gmres_s": t2 - t1, "solve_s": t2 - t0,
               "iterations": its[0], "gmres_info": int(info), "ilu_nonzeros": int(ilu.nnz)}


def main(argv=None):
    path, method = (argv or sys.argv[1:])[:2]
    A, b, x0, x_petsc = load(path)
    x, out = {"spsolve": spsolve, "gmres_spilu": gmres_spilu}[method](A, b, x0)
    out.update(method=method, unknowns=int(b.size), nonzeros=int(A.nnz),
               true_relative_residual=float(np.linalg.norm(b - A @ x) / np.linalg.norm(b)),
               max_rel_diff_to_petsc=float(np.abs(x - x_petsc).max() / np.abs(x_petsc).max()),
               peak_rss_MB=vm_hwm_mb(),
               ru_maxrss_MB=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6)
    print("BENCH_JSON " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
