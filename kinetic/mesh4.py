"""The distributed 4-D phase-space mesh of the 2x2k layout: (x, y, k_x, k_y), k_y folded into
the dof (also the 3-D k-mesh of the general 0x3k layout: (k_x, k_y, k_z) and a folded axis of
one point).

A PETSc DMDA of cells over (x, y, k_x) with dof = n_ky × bands (design.md: 4-D folds the
last k axis into the dof). The DMDA only distributes and numbers the unknowns; the operator is
assembled by COO (``kinetic.problem4``), never by ``DMCreateMatrix`` (which would preallocate
dense dof × dof blocks). The DMDA is split along x only, so every rank holds whole
(y, k_x, k_y) slabs of its x-range and x-y moments need no communication.

Arrays here are in the *logical* order (x, y, k_x, k_y, band) — shape (nxl, ny, nkx, nky, nb)
for the owned cells; a PETSc vector stores them as (k_x, y, x, k_y, band) (x fastest among the
DMDA axes): ``to_vec``/``from_vec`` convert. Cell centres q = lo + (i + ½) h, corners q = lo + i h.
"""
from __future__ import annotations

import numpy as np

from kinetic.errors import ConfigError
from kinetic.mesh import Axis, gather_natural

_VEC_ORDER = (2, 1, 0, 3, 4)  # logical (x, y, kx, ky, b) -> vector (kx, y, x, ky, b)
_LOGICAL = (2, 1, 0, 3, 4)  # the permutation is its own inverse


class PhaseMesh4:
    """DMDA over (x, y, k_x) cells with dof = n_ky·nb; collective over ``comm``."""

    def __init__(self, axes: tuple, nb: int, comm=None):
        from petsc4py import PETSc

        self.axes, self.nb = tuple(axes), int(nb)
        ax, ay, akx, aky = self.axes
        comm = comm or PETSc.COMM_WORLD
        size = comm.getSize()
        if ax.n < size:
            raise ConfigError(f"mesh: {ax.name} has {ax.n} cells; the mesh is split along "
                              f"{ax.name} and needs at least one cell per rank ({size} ranks)")
        for a in (ay, akx):
            if a.n < 2:
                raise ConfigError(f"mesh: {a.name} needs at least 2 cells; got {a.n}")
        bt = PETSc.DM.BoundaryType
        self.dof = aky.n * self.nb
        self.da = PETSc.DMDA().create(
            [ax.n, ay.n, akx.n], dof=self.dof, stencil_width=1,
            boundary_type=[bt.PERIODIC if a.periodic else bt.GHOSTED for a in (ax, ay, akx)],
            proc_sizes=[size, 1, 1], stencil_type=PETSc.DMDA.StencilType.STAR, comm=comm)
        self.da.setUp()
        (self.s, self.e), _, _ = self.da.getRanges()
        self.comm = comm
        lx = np.asarray(self.da.getOwnershipRanges()[0], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(lx)])

    # ------------------------------------------------------------------ local geometry
    @property
    def shape(self) -> tuple:
        """Owned cells (nxl, ny, nkx, nky)."""
        return (self.e - self.s,) + tuple(a.n for a in self.axes[1:])

    @property
    def h(self) -> tuple:
        return tuple(a.h for a in self.axes)

    def coordinates(self, corner=(False,) * 4) -> list:
        """Coordinates of the owned cells' centres (or corners along the axes flagged in
        ``corner``: n + 1 points) as four broadcastable arrays (x, y, k_x, k_y). Corners of a
        periodic axis are wrapped into [lo, hi) (the last corner is the first), so a face on the
        periodic seam gets one value wherever it is computed."""
        out = []
        for a, (axis, c) in enumerate(zip(self.axes, corner)):
            lo, hi = (self.s, self.e) if a == 0 else (0, axis.n)
            if c:
                i = np.arange(lo, hi + 1)
                q = axis.lo + (np.mod(i, axis.n) if axis.periodic else i) * axis.h
            else:
                q = axis.centres(lo, hi)
            shape = [1] * 4
            shape[a] = q.size
            out.append(q.reshape(shape))
        return out

    @property
    def left_edge(self) -> bool:
        return not self.axes[0].periodic and self.s == 0

    @property
    def right_edge(self) -> bool:
        return not self.axes[0].periodic and self.e == self.axes[0].n

    def petsc_index(self, i, j, l, m, band) -> np.ndarray:
        """PETSc index of cell (x i, y j, k_x l, k_y m), band; j, l, m (and i if periodic)
        wrapped. Rank r owns x ∈ [i_r, i_{r+1}) for all (j, l) and numbers its block dof
        fastest, then x, then y, then k_x."""
        from petsc4py import PETSc

        nx, ny, nkx, nky = (a.n for a in self.axes)
        st = self._starts
        i = np.mod(np.asarray(i, dtype=np.int64), nx)
        r = np.searchsorted(st, i, side="right") - 1
        nloc = st[r + 1] - st[r]
        cell = (i - st[r]) + nloc * (np.mod(j, ny) + ny * np.mod(l, nkx))
        out = self.dof * (ny * nkx * st[r] + cell) + self.nb * np.mod(m, nky) + band
        return out.astype(PETSc.IntType)

    # ------------------------------------------------------------------ vectors
    def create_vec(self):
        return self.da.createGlobalVec()

    def from_vec(self, vec) -> np.ndarray:
        """Owned values of a global vector in logical order (nxl, ny, nkx, nky, nb) (a copy)."""
        nxl, ny, nkx, nky = self.shape
        a = vec.getArray(readonly=True).reshape(nkx, ny, nxl, nky, self.nb)
        return a.transpose(_LOGICAL).copy()

    def to_vec(self, values, vec=None):
        """A global vector (new unless given) holding logical-order values."""
        vec = vec or self.create_vec()
        full = np.broadcast_to(values, self.shape + (self.nb,))
        vec.getArray()[:] = full.transpose(_VEC_ORDER).ravel()
        return vec

    def ghosted(self, vec) -> np.ndarray:
        """Owned values plus one ghost x-column on each side, logical order
        (nxl + 2, ny, nkx, nky, nb); at x walls the ghost repeats the edge column."""
        loc = self.da.createLocalVec()
        self.da.globalToLocal(vec, loc)
        (gs, ge), (ys, ye), (ks, ke) = self.da.getGhostRanges()
        nky = self.axes[3].n
        a = loc.getArray(readonly=True).reshape(ke - ks, ye - ys, ge - gs, nky, self.nb)
        ny, nkx = self.axes[1].n, self.axes[2].n
        g = a[-ks:nkx - ks, -ys:ny - ys].transpose(_LOGICAL).copy()  # x ghosts kept
        loc.destroy()
        if self.s - gs != 1 or ge - self.e != 1:
            raise AssertionError("PhaseMesh4.ghosted: expected one ghost x-column per side")
        if self.left_edge:  # wall: the ghost repeats the edge column
            g[0] = g[1]
        if self.right_edge:
            g[-1] = g[-2]
        return g

    def allsum(self, value):
        return self.comm.tompi4py().allreduce(value)

    def gather(self, vec) -> np.ndarray | None:
        """The whole field in logical order (nx, ny, nkx, nky, nb) on rank 0 (None elsewhere)."""
        nx, ny, nkx, nky = (a.n for a in self.axes)
        out = gather_natural(self.da, vec, (nkx, ny, nx, nky, self.nb))
        return None if out is None else out.transpose(_LOGICAL).copy()

    def gather_xy(self, values) -> np.ndarray | None:
        """Owned x-y fields (nxl, ny, ...) -> (nx, ny, ...) on rank 0 (None elsewhere)."""
        parts = self.comm.tompi4py().gather(np.asarray(values), root=0)
        return np.concatenate(parts, axis=0) if parts is not None else None

    def destroy(self):
        self.da.destroy()


def axes_2x2k(model, n, x_range, y_range, x_boundary="periodic"):
    """The four axes (x, y, k_x, k_y) for n = (nx, ny, nkx, nky) over the model's Brillouin zone
    (an orthogonal lattice) and the x, y ranges (Å); y is periodic."""
    rec = getattr(model, "model", model).reciprocal
    if rec is None:
        raise ConfigError("mesh: the 2x2k layout needs a lattice model (a Brillouin zone)")
    if not np.allclose(rec, np.diag(np.diag(rec))):
        raise ConfigError("mesh: the phase-space solver needs an orthogonal lattice (reciprocal "
                          f"vectors along the axes); this model's are {np.round(rec, 6).tolist()}")
    if x_boundary not in ("periodic", "wall"):
        raise ConfigError(f"mesh.x.boundary = {x_boundary!r}: the 2x2k layout allows periodic, wall")
    g = np.diag(rec)
    return (Axis("x", int(n[0]), *x_range, x_boundary == "periodic"),
            Axis("y", int(n[1]), *y_range, True),
            Axis("kx", int(n[2]), -g[0] / 2, g[0] / 2, True),
            Axis("ky", int(n[3]), -g[1] / 2, g[1] / 2, True))
