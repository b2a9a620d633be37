"""Moments of the distribution: density and current (internal units; charge −e).

Number density n = Σ_n ∫[dk] D f and number current j_N = Σ_n ∫[dk] D ẋ f (physics.md §6);
the charge current is −e j_N. For ``1x1k`` both are x-fields (per Å, and per ħ/eV), D ẋ being
the x-face flux of the stream function averaged over the cell's two x-faces; for the
homogeneous layouts they are totals (per Å^d).
"""
from __future__ import annotations

import numpy as np


def density(problem, fvec) -> np.ndarray:
    """1x1k: n(x) for owned x-cells (n1l,); homogeneous: the local part of the total (scalar)."""
    f = problem.mesh.local_view(fvec)
    w = problem.D * f * problem.measure()
    if problem.layout == "1x1k":
        return w.sum(axis=(0, 2))
    return w.sum()


def number_current(transport, fvec, E=None) -> np.ndarray:
    """Number current ∫[dk] D ẋ f: 1x1k (n1l,) x-field; 0x1k scalar; 0x2k (2,) vector (local part).

    In 1x1k and 0x1k it is the scheme's own x-face flux (averaged over a cell's two x-faces), so
    the discrete continuity equation ∂t n + ∂x j = 0 holds exactly.
    """
    p = transport.p
    E = p.phys.E if E is None else E
    f = p.mesh.local_view(fvec)
    a1, a2 = p.mesh.axes
    if p.layout in ("1x1k", "0x1k"):
        P1, P2 = transport.face_fluxes(fvec, E)
        if p.layout == "1x1k":  # per unit k-length: ∫dk/2π D ẋ f = Σ_j face flux / 2π
            return (0.5 * (P1[:, 1:] + P1[:, :-1])).sum(axis=(0, 2)) / (2 * np.pi)
        return (0.5 * (P2[1:] + P2[:-1])).sum() / (2 * np.pi) / a2.n
    # 0x2k: D ẋ = ∇_k ε̃ + E × Ω ẑ (in plane), ∇_k ε̃ from corner differences
    e = p.eps_corner
    gx = 0.5 * ((e[1:, 1:] - e[1:, :-1]) + (e[:-1, 1:] - e[:-1, :-1])) / a1.h
    gy = 0.5 * ((e[1:, 1:] - e[:-1, 1:]) + (e[1:, :-1] - e[:-1, :-1])) / a2.h
    Ex, Ey = (tuple(np.atleast_1d(E)) + (0.0, 0.0))[:2]
    jx = ((gx + Ey * p.curv_z) * f).sum() * p.measure()
    jy = ((gy - Ex * p.curv_z) * f).sum() * p.measure()
    return np.array([jx, jy])


def total(problem, local_value):
    """Sum a local total over ranks (homogeneous layouts) or an x-field over x (1x1k, × h_x)."""
    if problem.layout == "1x1k":
        return problem.mesh.allsum(float(np.sum(local_value)) * problem.mesh.axes[0].h)
    return problem.mesh.allsum(np.asarray(local_value))
