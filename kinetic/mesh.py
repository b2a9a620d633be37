"""The distributed 2-D phase-space mesh: a PETSc DMDA of cells on axes (q1, q2), dof = bands
(× k_y points for 1x2k).

Phase spaces handled here are two-dimensional, so the flow is incompressible with a stream
function (physics.md §3.2, §5.5):

====== =========== =========== ==============================================
layout  q1          q2          notes
====== =========== =========== ==============================================
1x1k    x (Å)       k (1/Å)     textures, potentials, E_x
1x2k    x (Å)       k_x (1/Å)   quasi-1D textures; k_y folded into the dof
0x1k    k (1/Å)     x (dummy)   homogeneous 1D bands (4 identical dummy x cells)
0x2k    k_x (1/Å)   k_y (1/Å)   homogeneous 2D bands in E and B_z
====== =========== =========== ==============================================

Cells are (i, j) with centres q1 = lo1 + (i + ½) h1, q2 = lo2 + (j + ½) h2 and corners at
half-integer indices. The DMDA is split along q1 only (rank r owns cells i ∈ [s1, e1) for all
j), so every rank holds whole k-columns of its x-range and x-moments need no communication;
the companion 1-D DMDA ``xda`` has the same ownership (one ghost cell, for x-derivatives). Natural ordering of a gathered field:
index = band + nb (i + N1 j), i.e. arrays of shape (N2, N1, nb) in C order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kinetic.errors import ConfigError


def gather_line(comm, F, axis: int = 0) -> np.ndarray:
    """The ranks' owned blocks of F (split along ``axis``, in rank order) joined into the whole
    line on every rank. Collective over the PETSc communicator ``comm``."""
    if comm.getSize() == 1:
        return np.asarray(F)
    return np.concatenate(comm.tompi4py().allgather(np.ascontiguousarray(F)), axis=axis)


def collective(comm, fn):
    """Run fn on every rank of the PETSc communicator ``comm``; if a user error (KineticError)
    occurs on any rank, raise it on all ranks (a rank's own error, else the first failing
    rank's), so that none waits in a collective call."""
    from kinetic.errors import KineticError

    err = None
    try:
        fn()
    except KineticError as exc:
        err = exc
    msgs = comm.tompi4py().allgather(None if err is None else (type(err), str(err)))
    first = next((m for m in msgs if m is not None), None)
    if first is not None:
        raise err if err is not None else first[0](first[1])


def gather_natural(da, vec, shape):
    """A DMDA global vector in natural ordering on rank 0, reshaped to ``shape`` (a copy; None
    on the other ranks). Collective."""
    from petsc4py import PETSc

    nat = da.createNaturalVec()
    da.globalToNatural(vec, nat)
    scatter, out = PETSc.Scatter.toZero(nat)
    scatter.scatter(nat, out, addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
    result = out.getArray().copy().reshape(shape) if da.getComm().getRank() == 0 else None
    for obj in (nat, scatter, out):
        obj.destroy()
    return result


@dataclass(frozen=True)
class Axis:
    name: str  # "x", "k", "kx", "ky"
    n: int  # cells
    lo: float
    hi: float
    periodic: bool

    @property
    def h(self) -> float:
        return (self.hi - self.lo) / self.n

    def centres(self, start: int, stop: int) -> np.ndarray:
        return self.lo + (np.arange(start, stop) + 0.5) * self.h

    def corners(self, start: int, stop: int) -> np.ndarray:
        """Corners start−½ .. stop−½ (stop − start + 1 values), unwrapped."""
        return self.lo + np.arange(start, stop + 1) * self.h


class PhaseMesh:
    """DMDA over (q1, q2) cells with ``nb`` dof; collective over ``comm``."""

    def __init__(self, layout: str, axes: tuple[Axis, Axis], nb: int, comm=None, stencil=1):
        from petsc4py import PETSc

        self.PETSc = PETSc
        self.layout, self.axes, self.nb = layout, axes, nb
        comm = comm or PETSc.COMM_WORLD
        size = comm.getSize()
        a1, a2 = axes
        if a1.n < size * stencil:
            raise ConfigError(f"mesh: {a1.name} has {a1.n} cells but the run uses {size} ranks; "
                              f"the mesh is split along {a1.name} and needs ≥ {stencil} cells per "
                              f"rank: give at least {size * stencil} cells or run on fewer ranks")
        if min(a1.n, a2.n) < 1 or a2.n < 2 * stencil:
            raise ConfigError(f"mesh: {a2.name} needs at least {2 * stencil} cells")
        bt = PETSc.DM.BoundaryType
        self.da = PETSc.DMDA().create(
            [a1.n, a2.n], dof=nb, stencil_width=stencil,
            boundary_type=[bt.PERIODIC if a.periodic else bt.GHOSTED for a in axes],
            proc_sizes=[size, 1], stencil_type=PETSc.DMDA.StencilType.STAR, comm=comm)
        self.da.setUp()
        (self.s1, self.e1), (self.s2, self.e2) = self.da.getRanges()
        self.comm = comm
        lx = self.da.getOwnershipRanges()[0]
        # companion x-DMDA: the same x-ownership, one ghost cell for x-derivatives of x-moments
        self.xda = PETSc.DMDA().create(
            [a1.n], dof=1, stencil_width=1, ownership_ranges=[lx],
            boundary_type=[bt.PERIODIC if a1.periodic else bt.GHOSTED], comm=comm)
        self.xda.setUp()
        self.ao = self.da.getAO()
        self._istarts = None  # q1 ownership starts (petsc_index_ij)

    # ------------------------------------------------------------------ local geometry
    @property
    def local_shape(self) -> tuple[int, int]:
        """(n1_local, n2) owned cells."""
        return self.e1 - self.s1, self.e2 - self.s2

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Owned cell centres as (n2, n1_local) arrays (q1, q2)."""
        a1, a2 = self.axes
        q1 = a1.centres(self.s1, self.e1)
        q2 = a2.centres(self.s2, self.e2)
        Q2, Q1 = np.meshgrid(q2, q1, indexing="ij")
        return Q1, Q2

    def corner_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Corners around the owned cells as (n2+1, n1_local+1) arrays (unwrapped coords)."""
        a1, a2 = self.axes
        q1 = a1.corners(self.s1, self.e1)
        q2 = a2.corners(self.s2, self.e2)
        Q2, Q1 = np.meshgrid(q2, q1, indexing="ij")
        return Q1, Q2

    @property
    def cell_area(self) -> float:
        return self.axes[0].h * self.axes[1].h

    def natural_index(self, i, j, band) -> np.ndarray:
        """Natural (application) index of cell (i, j), band; i, j wrapped if periodic."""
        n1, n2 = self.axes[0].n, self.axes[1].n
        return band + self.nb * (np.mod(i, n1) + n1 * np.mod(j, n2))

    def petsc_index_ij(self, i, j, band) -> np.ndarray:
        """PETSc (global vector) index of cell (i, j), band, computed from the ownership
        ranges without the AO (the same as ``petsc_index(natural_index(i, j, band))``; i, j
        wrapped). The DMDA is split along q1 only, so rank r owns the box [i_r, i_{r+1}) × all
        q2 and numbers it band fastest, then i, then j, after the rows of ranks < r:
        index = nb (N2 i_r + (i − i_r) + n1_r j) + band. i, j, band broadcast (cheap when i
        is a short 1-D array, as for one rank's columns)."""
        from petsc4py import PETSc

        n1, n2, nb = self.axes[0].n, self.axes[1].n, self.nb
        if self._istarts is None:
            lx = np.asarray(self.da.getOwnershipRanges()[0], dtype=np.int64)
            self._istarts = np.concatenate([[0], np.cumsum(lx)])
        starts = self._istarts
        i = np.mod(np.asarray(i, dtype=np.int64), n1)
        r = np.searchsorted(starts, i, side="right") - 1
        base = nb * (n2 * starts[r] + (i - starts[r]))
        stride = nb * (starts[r + 1] - starts[r])
        out = base + stride * np.mod(np.asarray(j, dtype=np.int64), n2) + band
        return out.astype(PETSc.IntType)

    def petsc_index(self, natural: np.ndarray) -> np.ndarray:
        from petsc4py import PETSc

        idx = np.ascontiguousarray(natural, dtype=PETSc.IntType).ravel()
        return np.asarray(self.ao.app2petsc(idx), dtype=PETSc.IntType).reshape(np.shape(natural))

    # ------------------------------------------------------------------ vectors and fields
    def create_vec(self):
        return self.da.createGlobalVec()

    def local_view(self, vec) -> np.ndarray:
        """Owned part of a global vector as a read-only (n2, n1_local, nb) array."""
        n1, n2 = self.local_shape
        return vec.getArray(readonly=True).reshape(n2, n1, self.nb)

    def set_local(self, vec, values: np.ndarray) -> None:
        vec.getArray()[:] = np.broadcast_to(values, (self.local_shape[1], self.local_shape[0],
                                                     self.nb)).ravel()

    def gather(self, vec) -> np.ndarray | None:
        """The whole field as (N2, N1, nb) on rank 0 (None elsewhere), natural ordering."""
        return gather_natural(self.da, vec, (self.axes[1].n, self.axes[0].n, self.nb))

    def gather_x(self, values: np.ndarray) -> np.ndarray | None:
        """Owned x-moments (n1_local, ...) -> full (N1, ...) on rank 0."""
        parts = self.comm.tompi4py().gather(np.asarray(values), root=0)
        return np.concatenate(parts, axis=0) if parts is not None else None

    def allsum(self, value):
        return self.comm.tompi4py().allreduce(value)

    def destroy(self):
        for obj in (self.da, self.xda):
            obj.destroy()
