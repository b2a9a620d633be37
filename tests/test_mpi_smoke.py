"""Toolchain smoke tests: periodic DMDA, a global reduction and a tiny KSP solve.

Independent answers: the closed-form sum of the field, periodic ghost values, and the exact
solution of a periodic 1D Helmholtz-type system for a Fourier-mode right-hand side.
"""
import numpy as np
import pytest

N = 64  # global points
SIGMA = 0.3


@pytest.fixture
def petsc():
    from petsc4py import PETSc

    return PETSc


def periodic_solve(PETSc, comm):
    """Solve (2 + σ) x_i − x_{i−1} − x_{i+1} = sin(2π i m/N) on a periodic DMDA."""
    da = PETSc.DMDA().create([N], dof=1, stencil_width=1,
                             boundary_type=[PETSc.DM.BoundaryType.PERIODIC], comm=comm)
    da.setUp()
    (i0, i1), = da.getRanges()
    rows = np.arange(i0, i1)
    A = PETSc.Mat().createAIJ(((i1 - i0, N), (i1 - i0, N)), comm=comm)
    coo_i = np.repeat(rows, 3).astype(PETSc.IntType)
    coo_j = np.stack([rows, (rows - 1) % N, (rows + 1) % N], axis=1).ravel().astype(PETSc.IntType)
    A.setPreallocationCOO(coo_i, coo_j)
    A.setValuesCOO(np.tile([2 + SIGMA, -1.0, -1.0], i1 - i0))
    A.assemble()
    b = da.createGlobalVec()
    x = da.createGlobalVec()
    m = 3
    b.array[:] = np.sin(2 * np.pi * m * rows / N)
    ksp = PETSc.KSP().create(comm=comm)
    ksp.setOptionsPrefix("smoke_")
    ksp.setOperators(A)
    ksp.setType("gmres")
    ksp.getPC().setType("bjacobi" if comm.getSize() > 1 else "ilu")
    ksp.setTolerances(rtol=1e-13, atol=1e-15)
    ksp.setFromOptions()
    ksp.solve(b, x)
    exact = np.sin(2 * np.pi * m * rows / N) / (SIGMA + 2 - 2 * np.cos(2 * np.pi * m / N))
    err = np.max(np.abs(x.array - exact))
    full = np.concatenate(comm.tompi4py().allgather(x.array.copy()))
    for obj in (ksp, A, b, x, da):
        obj.destroy()
    return full, err


def test_periodic_solve_serial(petsc):
    full, err = periodic_solve(petsc, petsc.COMM_SELF)
    assert err < 1e-11


@pytest.mark.mpi(min_size=2)
def test_dmda_reduction_and_ghosts(petsc):
    PETSc = petsc
    comm = PETSc.COMM_WORLD
    da = PETSc.DMDA().create([N], dof=1, stencil_width=1,
                             boundary_type=[PETSc.DM.BoundaryType.PERIODIC], comm=comm)
    da.setUp()
    (i0, i1), = da.getRanges()
    assert comm.getSize() == 2 and 0 < i1 - i0 < N
    g = da.createGlobalVec()
    g.array[:] = np.arange(i0, i1, dtype=float)
    assert g.sum() == pytest.approx(N * (N - 1) / 2, abs=0)  # closed form
    loc = da.createLocalVec()
    da.globalToLocal(g, loc)
    assert loc.array[0] == (i0 - 1) % N and loc.array[-1] == i1 % N  # periodic ghosts
    total = comm.tompi4py().allreduce(i1 - i0)
    assert total == N
    for obj in (g, loc, da):
        obj.destroy()


@pytest.mark.mpi(min_size=2)
def test_parallel_solve_equals_serial(petsc):
    par, err = periodic_solve(petsc, petsc.COMM_WORLD)
    ser, _ = periodic_solve(petsc, petsc.COMM_SELF)  # every rank solves the whole system
    assert err < 1e-11
    assert np.max(np.abs(par - ser)) <= 1e-10 * np.max(np.abs(ser))
