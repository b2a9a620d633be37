"""Polarization split of the 1x1k density (physics.md §6.1), number units (charge −e).

x-fields per owned x-cell, from the distribution f (n_k, n_xl, bands):

- ``n_berry``  Σ_n ∫dk/2π f Ω_kx: the Berry (Goldstone–Wilczek) bound density, −∂_x P_Berry;
- ``P_shift``  P′_N = Σ_n ∫dk/2π f A′_k (positional shift, texture and field parts as toggled);
- ``P_metric`` P⁽ᵍ⁾_N = Σ_n ∫dk/2π f A″_k, A″_k = ½(∂_x g_kk − ∂_k g_kx) (metric gradient);
- ``Q``        Q_N = Σ_n ∫dk/2π f g_kk (quadrupole);
- ``n_bound``  −∂_x(P′_N + P⁽ᵍ⁾_N) + ½ ∂_x² Q_N, the second-order bound density.

In an insulator −∂_x P⁽ᵍ⁾ + ½∂²_x Q = ½∂_x ∫_BZ ∂_k g_kx = 0: the metric-gradient polarization and
the quadrupole cancel in static densities; they do not in metals. The derivatives are the
solver's own (spectral on a periodic ring, face differences on an open x-range), so the split
adds up to the solver's second-order density. The charge fields are −e times these. Present when the corresponding terms are on: P_shift with A2_shift_texture or
A2_shift_field, P_metric and Q with A2_metric_gradient.
"""
from __future__ import annotations

import numpy as np

from kinetic.geometry import band_geometry
from kinetic.semiclassics import positional_shift


def _x_neighbours(p, values):
    """Owned x-field (n_xl,) -> (n_xl + 2,) with one neighbour value on each side (periodic
    wrap or the other ranks' cells; zero-gradient continuation at open ends). Collective."""
    m, a1 = p.mesh, p.mesh.axes[0]
    v, loc = m.xda.createGlobalVec(), m.xda.createLocalVec()
    v.getArray()[:] = values
    m.xda.globalToLocal(v, loc)
    q = loc.getArray(readonly=True).copy()
    for obj in (v, loc):
        obj.destroy()
    if not a1.periodic:
        if m.s1 == 0:
            q[0] = q[1]
        if m.e1 == a1.n:
            q[-1] = q[-2]
    return q


def _dxx(p, values):
    q = _x_neighbours(p, values)
    return (q[2:] - 2 * q[1:-1] + q[:-2]) / p.mesh.axes[0].h ** 2


def _f_neighbours(p, fvec):
    """The distribution with one neighbour x-column on each side, (n_k, n_xl + 2, nb) (walls:
    the edge column repeated). Collective."""
    m = p.mesh
    loc = m.da.createLocalVec()
    m.da.globalToLocal(fvec, loc)
    (gs1, ge1), (gs2, ge2) = m.da.getGhostRanges()
    g = loc.getArray(readonly=True).reshape(ge2 - gs2, ge1 - gs1, m.nb)
    o1, o2 = m.s1 - gs1, m.s2 - gs2
    n1l, n2 = m.local_shape
    out = g[o2:o2 + n2, o1 - 1:o1 + n1l + 1].copy()
    loc.destroy()
    a1 = m.axes[0]
    if not a1.periodic:
        if m.s1 == 0:
            out[:, 0] = out[:, 1]
        if m.e1 == a1.n:
            out[:, -1] = out[:, -2]
    return out


def polarization_fields(p, fvec) -> dict:
    """The split of the module docstring for a 1x1k Problem ``p`` and its distribution (Vec).

    P′ and P⁽ᵍ⁾ are built on the x-faces with the solver's own differences (A″_k = ½V_x of
    ``Problem._metric_curvature``, A′_k the k-average of its corner values as in the circulation
    of ``Problem._shift_curvature``, f averaged over the two cells), so that for a constant f
    the bound density −Δ_x P/h + ½Δ²_x Q/h² equals Σ∫(Ω′ + Ω″) f + ½∂²Q of the solver's density
    to round-off; the cell values reported are the averages of the two faces. Collective."""
    if p.layout == "1x2k":
        return _ring_fields_1x2k(p, fvec)
    if p.layout != "1x1k":
        return {}
    if p.mesh.axes[0].periodic:
        return _periodic_fields(p, fvec)
    ph, m = p.phys, p.mesh
    a1, a2 = m.axes
    meas = p.measure()  # Δk/2π
    shift = bool({"A2_shift_texture", "A2_shift_field"} & ph.terms)
    metric = "A2_metric_gradient" in ph.terms
    fx = _f_neighbours(p, fvec)  # (n_k, n_xl + 2, nb)
    f = fx[:, 1:-1]
    f_face = 0.5 * (fx[:, 1:] + fx[:, :-1])  # (n_k, n_xl + 1, nb)

    def geometry(x, k):
        if not a1.periodic:
            x = np.clip(x, a1.lo, a1.hi)
        K, X = np.meshgrid(k, x, indexing="ij")
        H, dH = p.model.evaluate(X[..., None], K[..., None])
        return band_geometry(H, dH, n_x=1)

    cells = geometry(a1.centres(m.s1 - 1, m.e1 + 1), a2.centres(m.s2, m.e2))  # (n_k, n_xl + 2)
    corners = (geometry(a1.corners(m.s1, m.e1), a2.corners(m.s2, m.e2))
               if shift or metric else None)  # (n_k + 1, n_xl + 1)
    out = {"n_berry": 0.0}
    P_face = 0.0
    if metric:
        out["Q"] = 0.0
    three = "A2_threeband" in ph.terms
    for j, b in enumerate(p.bands):
        if "berry_kx" in ph.terms:
            out["n_berry"] = out["n_berry"] + (f[..., j] * cells.curvature[:, 1:-1, b, 1, 0]).sum(0) * meas
        if shift:
            A = np.zeros(corners.energy.shape[:-1])
            A_tex = positional_shift(corners, b, threeband=three)[..., 1]
            if "A2_shift_texture" in ph.terms:
                A = A + A_tex
            if "A2_shift_field" in ph.terms:  # the field part: V = eE·x in every ε̄
                A = A + positional_shift(p._with_field(corners), b, threeband=three)[..., 1] - A_tex
            Ps = (f_face[..., j] * 0.5 * (A[1:] + A[:-1])).sum(0) * meas
            out["P_shift"] = out.get("P_shift", 0.0) + 0.5 * (Ps[1:] + Ps[:-1])
            P_face = P_face + Ps
        if metric:
            gkk = cells.metric[..., b, 1, 1]
            gkx = corners.metric[..., b, 1, 0]
            A2 = 0.5 * ((gkk[:, 1:] - gkk[:, :-1]) / a1.h - (gkx[1:] - gkx[:-1]) / a2.h)
            Pm = (f_face[..., j] * A2).sum(0) * meas
            out["P_metric"] = out.get("P_metric", 0.0) + 0.5 * (Pm[1:] + Pm[:-1])
            P_face = P_face + Pm
            out["Q"] = out["Q"] + (f[..., j] * gkk[:, 1:-1]).sum(0) * meas
    out = {key: np.broadcast_to(val, (m.e1 - m.s1,)).astype(float) for key, val in out.items()}
    if shift or metric:
        bound = -(P_face[1:] - P_face[:-1]) / a1.h
        out["n_bound"] = bound + (0.5 * _dxx(p, out["Q"]) if metric else 0.0)
    return out


def _periodic_fields(p, fvec) -> dict:
    """The split on a periodic ring with the solver's spectral derivatives
    (``Problem._periodic_curvatures``, ``observables.quadrupole_density``): A′_k and
    A″_k = ½(∂_x g_kk − ∂_k g_kx) at the cells, n_bound = −∂_x(P′ + P⁽ᵍ⁾) + ½ ∂_x ∂_x Q."""
    from kinetic.observables import _ring, _ring_dx
    from kinetic.problem import spectral_derivative

    ph, m = p.phys, p.mesh
    a1, a2 = m.axes
    f = m.local_view(fvec)
    meas = p.measure()
    K, X = np.meshgrid(a2.centres(0, a2.n), a1.centres(0, a1.n), indexing="ij")
    H, dH = p.model.evaluate(X[..., None], K[..., None])
    g = band_geometry(H, dH, n_x=1)  # the whole ring (n_k, n_x)
    own = slice(m.s1, m.e1)
    shift = bool({"A2_shift_texture", "A2_shift_field"} & ph.terms)
    metric = "A2_metric_gradient" in ph.terms
    three = "A2_threeband" in ph.terms
    out = {"n_berry": 0.0}
    for j, b in enumerate(p.bands):
        fb = f[..., j]
        if "berry_kx" in ph.terms:
            out["n_berry"] = out["n_berry"] + (fb * g.curvature[:, own, b, 1, 0]).sum(0) * meas
        if shift:
            A_tex = positional_shift(g, b, threeband=three)[..., 1]
            A = A_tex if "A2_shift_texture" in ph.terms else np.zeros(A_tex.shape)
            if "A2_shift_field" in ph.terms:
                A = A + positional_shift(p._with_field(g), b, threeband=three)[..., 1] - A_tex
            out["P_shift"] = out.get("P_shift", 0.0) + (fb * A[:, own]).sum(0) * meas
        if metric:
            gkk, gkx = g.metric[..., b, 1, 1], g.metric[..., b, 1, 0]
            A2 = 0.5 * (spectral_derivative(gkk, a1.h, 1) - spectral_derivative(gkx, a2.h, 0))
            out["P_metric"] = out.get("P_metric", 0.0) + (fb * A2[:, own]).sum(0) * meas
            out["Q"] = out.get("Q", 0.0) + (fb * gkk[:, own]).sum(0) * meas
    out = {key: np.broadcast_to(val, (m.e1 - m.s1,)).astype(float) for key, val in out.items()}
    if shift or metric:
        P = _ring(p, out.get("P_shift", 0.0) + out.get("P_metric", 0.0))
        bound = -_ring_dx(p, P)
        if metric:
            bound = bound + 0.5 * _ring_dx(p, _ring_dx(p, _ring(p, out["Q"])))
        out["n_bound"] = bound[own]
    return out


def _ring_fields_1x2k(p, fvec) -> dict:
    """1x2k on a periodic ring: the x-components P′_x = Σ∫[dk] f A′_kx, P⁽ᵍ⁾_x = Σ∫[dk] f A″_kx
    (the connections of ``Problem._texture_curvatures_1x2k``), Q_xx = Σ∫[dk] f g_kxkx and
    n_bound = −∂_x(P′_x + P⁽ᵍ⁾_x) + ½ ∂_x ∂_x Q_xx (spectral), which add up to the solver's
    second-order density; {} without texture connections or on an open x-range."""
    from kinetic.observables import _ring, _ring_dx

    m, ph = p.mesh, p.phys
    conn = getattr(p, "ring_connection", None)
    if conn is None or not m.axes[0].periodic:
        return {}
    n2, n1l = m.local_shape[1], m.local_shape[0]
    nb = len(p.bands)
    f = m.local_view(fvec).reshape(n2, n1l, p.nfold, nb)
    own = slice(m.s1, m.e1)
    meas = p.measure()
    out = {}
    P = 0.0
    for key, term in (("P_shift", "A2_shift_texture"), ("P_metric", "A2_metric_gradient")):
        if term in ph.terms:
            A = np.stack(conn[key], -1)[:, own]  # (n2, n1l, nky, nb)
            out[key] = (f * A).sum(axis=(0, 2, 3)) * meas
            P = P + out[key]
    if not out:
        return {}
    bound = -_ring_dx(p, _ring(p, P))
    if "obs_quadrupole" in ph.terms:
        out["Q"] = (p.g_kk * m.local_view(fvec)).sum(axis=(0, 2)) * meas
        bound = bound + 0.5 * _ring_dx(p, _ring_dx(p, _ring(p, out["Q"])))
    out["n_bound"] = bound[own]
    return out
