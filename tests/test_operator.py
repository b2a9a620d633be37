"""The assembled transport operator (zero-copy CSR, ``StreamOperator.matrix``) against an
independent plain COO assembly of the same upwind matrix (periodic, wall and reservoir meshes,
meshes so small that neighbours coincide, 1–3 bands, re-assembly in place), the reversed block
used by the sweep preconditioner against MatPermute, and the steady default (GMRES + SweepPC)
against LU / block Jacobi on the bench problem — serially and on 2 ranks."""
import numpy as np
import pytest


def coo_reference(op, E, coll):
    """The upwind matrix by COO, row by row (diagonal + four neighbour slots), via the AO."""
    from petsc4py import PETSc

    m = op.mesh
    n1l, n2, nb = op.n1l, op.n2, op.nb
    b, a, n = np.meshgrid(np.arange(n2), np.arange(n1l), np.arange(nb), indexing="ij")
    i, j = a + m.s1, b + m.s2
    row = m.natural_index(i, j, n)
    cols = [m.natural_index(i + 1, j, n), m.natural_index(i - 1, j, n),
            m.natural_index(i, j + 1, n), m.natural_index(i, j - 1, n)]
    inside = [np.ones_like(row, bool)] * 4
    if not m.axes[0].periodic:
        inside[0], inside[1] = (i + 1) < m.axes[0].n, (i - 1) >= 0
    R = m.petsc_index(row).ravel()
    C = [m.petsc_index(np.where(ins, c, row)).ravel() for c, ins in zip(cols, inside)]
    outs = [o.ravel() for o in op.outflows(E)]
    diag = coll.ravel() + sum(np.maximum(o, 0.0) for o in outs)
    offd = [np.where(ins.ravel(), np.minimum(o, 0.0), 0.0) for o, ins in zip(outs, inside)]
    mat = PETSc.Mat().createAIJ(((R.size, None), (R.size, None)), comm=m.comm)
    mat.setPreallocationCOO(np.concatenate([R] * 5), np.concatenate([R] + C))
    mat.setValuesCOO(np.concatenate([diag] + offd), addv=PETSc.InsertMode.INSERT_VALUES)
    mat.assemble()
    return mat


def rel_diff(A, B):
    D = A.duplicate(copy=True)
    D.axpy(-1.0, B)
    return D.norm() / max(B.norm(), 1e-300)



def operator_differences():
    """Largest relative differences {matrix, reassembly, reversed} over the mesh cases."""
    from petsc4py import PETSc

    from kinetic.mesh import Axis, PhaseMesh
    from kinetic.operator import StreamOperator

    comm, size = PETSc.COMM_WORLD, PETSc.COMM_WORLD.getSize()
    worst = {"matrix": 0.0, "reassembly": 0.0, "reversed": 0.0}
    for periodic in (True, False):
        for nx, nk in ((9, 6), (4, 5), (3, 2), (2, 2), (1, 3)):
            if nx < size:
                continue
            for nb in (1, 2, 3):
                for boundary in ("wall", "reservoir"):
                    m = PhaseMesh("1x1k", (Axis("x", nx, 0.0, 1.0, periodic),
                                           Axis("k", nk, 0.0, 1.0, True)), nb, comm)
                    n1l, n2 = m.local_shape
                    rng = np.random.default_rng(5)
                    ec = rng.normal(size=(n2 + 1, nx + 1, nb))[:, m.s1:m.e1 + 1]
                    coll = rng.random((n2, nx, nb))[:, m.s1:m.e1]
                    op = StreamOperator(m, ec, np.zeros((n2, n1l, nb)), np.ones((n2, n1l, nb)),
                                        1.0, lambda Q1, Q2, E: E[0] * Q1, boundary)
                    A = op.matrix((0.3,), coll)
                    worst["matrix"] = max(worst["matrix"],
                                          rel_diff(A, coo_reference(op, (0.3,), coll)))
                    op.matrix((-0.1,), 2 * coll, mat=A)
                    worst["reassembly"] = max(worst["reassembly"], rel_diff(
                        A, coo_reference(op, (-0.1,), 2 * coll)))
                    local = A.getDiagonalBlock() if size > 1 else A
                    nloc = local.getSize()[0]
                    flip = np.arange(nloc, dtype=PETSc.IntType).reshape(n2, -1)[::-1].ravel()
                    isf = PETSc.IS().createGeneral(flip, comm=PETSc.COMM_SELF)
                    worst["reversed"] = max(worst["reversed"], rel_diff(
                        op.reversed_block(A), local.permute(isf, isf)))
                    A.destroy()
                    m.destroy()
    return worst


def default_solve_vs_direct():
    """(relative current difference, default-solver info) of the 0x2k bench problem at 64²."""
    from petsc4py import PETSc

    from kinetic.models.catalogue import get_model
    from kinetic.observables import number_current, total
    from kinetic.problem import Physics, Problem
    from kinetic.solvers import Transport

    # the bench problem (bench/reference.py): QWZ metal in E and B, closed cyclotron orbits
    p = Problem("0x2k", get_model("qwz", M=1.0), (64, 64),
                Physics(mu=1.1, kT=0.1, tau=10.0, E=(1e-3, 0.0), B=0.05), comm=PETSc.COMM_WORLD)
    tr = Transport(p)
    f, info = tr.steady()
    opts = PETSc.Options()
    opts["steady_pc_type"] = "lu" if PETSc.COMM_WORLD.getSize() == 1 else "bjacobi"
    try:
        g, _ = tr.steady()
    finally:
        del opts["steady_pc_type"]
    j, jr = (np.asarray(total(p, number_current(tr, v))) for v in (f, g))
    return float(np.max(np.abs(j - jr) / np.abs(jr))), info


def check():
    worst = operator_differences()
    assert all(v < 1e-14 for v in worst.values()), worst
    dj, info = default_solve_vs_direct()
    assert info["converged_reason"] > 0 and "sweeps" in info["solver"]
    assert dj < 1e-8, dj


def test_operator_and_sweeps_serial():
    check()


@pytest.mark.mpi(min_size=2)
def test_operator_and_sweeps_parallel():
    check()
