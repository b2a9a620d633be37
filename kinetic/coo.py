"""Upwind finite-volume matrices on a ``PhaseMesh4`` assembled by COO (PETSc
``setPreallocationCOO`` once, ``setValuesCOO`` per field): the 2x2k and general 0x3k layouts.

Per owned cell and dof: the diagonal and the two neighbours along each flux axis a (−a, +a);
rows sum the outflows, an off-diagonal entry is minus the inflow from that neighbour, so every
column sums to the collision term (particle conservation). A wall's missing neighbour is the
cell itself, with a zero entry.
"""
from __future__ import annotations

import numpy as np


def coo_indices(mesh, naxes: int):
    """(rows, cols) of the pattern for fluxes along the first ``naxes`` logical axes."""
    nxl, ny, nkx, nky = mesh.shape
    i, j, l, q, b = np.ix_(np.arange(mesh.s, mesh.e), np.arange(ny), np.arange(nkx),
                           np.arange(nky), np.arange(mesh.nb))
    rows = mesh.petsc_index(i, j, l, q, b)
    full = rows.shape
    cols = [rows]
    for a in range(naxes):
        for d in (-1, 1):
            idx = [i, j, l, q]
            idx[a] = idx[a] + d
            c = mesh.petsc_index(*idx, b)
            if a == 0 and not mesh.axes[0].periodic:
                out = (idx[0] < 0) | (idx[0] >= mesh.axes[0].n)
                c = np.where(out, rows, c)
            cols.append(np.broadcast_to(c, full))
    cols = np.stack(cols, -1)
    rows = np.broadcast_to(rows[..., None], cols.shape)
    return rows.ravel(), cols.ravel()


def upwind_matrix(mesh, fluxes, collision_diag, mat=None):
    """Upwind flux matrix + diag(collision_diag) for face fluxes Φ_a (n_a + 1 along axis a,
    positive towards +a); collision_diag broadcasts to the owned cells (nxl, ny, nkx, nky, nb).
    ``mat``: a matrix made here before for the same mesh, re-filled in place."""
    from petsc4py import PETSc

    shape = mesh.shape + (mesh.nb,)
    vals = [np.broadcast_to(collision_diag, shape).copy()]
    for a, F in enumerate(fluxes):
        lo = np.take(F, range(shape[a]), axis=a)  # face −a of each cell
        hi = np.take(F, range(1, shape[a] + 1), axis=a)  # face +a
        vals[0] += np.maximum(hi, 0.0) - np.minimum(lo, 0.0)
        vals += [-np.maximum(lo, 0.0), np.minimum(hi, 0.0)]
    vals = np.stack([np.broadcast_to(v, shape) for v in vals], -1).ravel()
    if mat is None:
        rows, cols = coo_indices(mesh, len(fluxes))
        n = int(np.prod(shape))
        mat = PETSc.Mat().create(comm=mesh.comm)
        mat.setSizes(((n, None), (n, None)))
        mat.setType(PETSc.Mat.Type.AIJ)
        mat.setOptionsPrefix("kinetic_")
        mat.setFromOptions()
        mat.setPreallocationCOO(rows, cols)
    mat.setValuesCOO(vals, addv=PETSc.InsertMode.INSERT_VALUES)
    mat.assemble()
    return mat
