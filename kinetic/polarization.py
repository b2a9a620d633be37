"""Polarization split of the 1x1k, 1x2k and 2x2k density (physics.md §6.1), number units (charge −e).

x-fields per owned x-cell, from the distribution f (n_k, n_xl, bands):

- ``n_berry``  Σ_n ∫dk/2π f Ω_kx: the Berry (Goldstone–Wilczek) bound density, −∂_x P_Berry;
- ``P_shift``  P′_N = Σ_n ∫dk/2π f A′_k (positional shift, texture and field parts as toggled);
- ``P_metric`` P⁽ᵍ⁾_N = Σ_n ∫dk/2π f A″_k, A″_k = ½(∂_x g_kk − ∂_k g_kx) (metric gradient);
- ``Q``        Q_N = Σ_n ∫dk/2π f g_kk (quadrupole);
- ``n_bound``  −∂_x(P′_N + P⁽ᵍ⁾_N) + ½ ∂_x∂_x Q_N, the second-order bound density.

In an insulator −∂_x P⁽ᵍ⁾ + ½∂²_x Q = ½∂_x ∫_BZ ∂_k g_kx = 0: the metric-gradient polarization and
the quadrupole cancel in static densities; they do not in metals. The derivatives are the
solver's first derivatives (``kinetic.derivatives`` on the whole x-line: spectral on a periodic
ring, fourth-order differences on an open x-range), so that for a filled band the split adds
up to the solver's second-order density to round-off. 1x2k and 2x2k (x-textures) runs get
the x-components (P_x, Q_xx), 2x2k as x-y fields. The charge fields are −e times these.
Present when the corresponding terms are on: P_shift with A2_shift_texture or A2_shift_field,
P_metric and Q with A2_metric_gradient.
"""
from __future__ import annotations

import numpy as np

from kinetic.derivatives import axis_derivatives, spectral_derivative
from kinetic.geometry import band_geometry
from kinetic.mesh import gather_line


def polarization_fields(p, fvec) -> dict:
    """The split of the module docstring for a 1x1k, 1x2k or 2x2k problem ``p`` and its
    distribution (Vec); {} for other layouts. Collective."""
    if p.layout == "1x2k":
        return _fields_1x2k(p, fvec)
    if p.layout == "2x2k":
        return fields_2x2k(p, fvec)
    if p.layout != "1x1k":
        return {}
    ph, m = p.phys, p.mesh
    a1, a2 = m.axes
    f = m.local_view(fvec)
    meas = p.measure()
    K, X = np.meshgrid(a2.centres(0, a2.n), a1.centres(0, a1.n), indexing="ij")
    H, dH = p.model.evaluate(X[..., None], K[..., None])
    g = band_geometry(H, dH, n_x=1)  # the whole x-line (n_k, n_x)
    dx = axis_derivatives(a1)[0]
    own = slice(m.s1, m.e1)
    shift = bool({"A2_shift_texture", "A2_shift_field"} & ph.terms)
    metric = "A2_metric_gradient" in ph.terms
    out = {"n_berry": 0.0}
    for j, b in enumerate(p.bands):
        fb = f[..., j]
        if "berry_kx" in ph.terms:
            out["n_berry"] = out["n_berry"] + (fb * g.curvature[:, own, b, 1, 0]).sum(0) * meas
        if shift:
            A = p.shift_connection(g, b)[..., 1]
            out["P_shift"] = out.get("P_shift", 0.0) + (fb * A[:, own]).sum(0) * meas
        if metric:
            gkk, gkx = g.metric[..., b, 1, 1], g.metric[..., b, 1, 0]
            A2 = 0.5 * (dx(gkk, 1) - spectral_derivative(gkx, a2.h, 0))
            out["P_metric"] = out.get("P_metric", 0.0) + (fb * A2[:, own]).sum(0) * meas
            out["Q"] = out.get("Q", 0.0) + (fb * gkk[:, own]).sum(0) * meas
    out = {key: np.broadcast_to(val, (m.e1 - m.s1,)).astype(float) for key, val in out.items()}
    if shift or metric:
        out["n_bound"] = _bound_density(p, out.get("P_shift", 0.0) + out.get("P_metric", 0.0),
                                        out.get("Q"))
    return out


def _bound_density(p, P, Q):
    """−∂_x P + ½ ∂_x∂_x Q at the owned x-cells (Q None: without the quadrupole), with the
    solver's first x-derivative on the whole x-line, applied twice for Q: then for a filled
    band −∂_x P⁽ᵍ⁾ + ½ ∂_x∂_x Q vanishes to round-off and n_bound is the solver's second-order
    density, on a ring and on an open x-range alike (there ∂_x∂_x is third order in the first
    and last two cells, fourth order inside). Collective."""
    from kinetic.observables import _line, line_dx

    m = p.mesh
    P = np.broadcast_to(P, (m.e1 - m.s1,))
    bound = -line_dx(p, _line(p, P))
    if Q is not None:
        bound = bound + 0.5 * line_dx(p, line_dx(p, _line(p, Q)))
    return bound[m.s1:m.e1]


def _fields_1x2k(p, fvec) -> dict:
    """1x2k: the x-components P′_x = Σ∫[dk] f A′_kx, P⁽ᵍ⁾_x = Σ∫[dk] f A″_kx (the connections
    of ``Problem._texture_curvatures_1x2k``), Q_xx = Σ∫[dk] f g_kxkx and
    n_bound = −∂_x(P′_x + P⁽ᵍ⁾_x) + ½ ∂²_x Q_xx; {} without texture connections."""
    m, ph = p.mesh, p.phys
    conn = getattr(p, "line_connection", None)
    if conn is None:
        return {}
    n2, n1l = m.local_shape[1], m.local_shape[0]
    nb = len(p.bands)
    f = m.local_view(fvec).reshape(n2, n1l, p.nfold, nb)
    own = slice(m.s1, m.e1)
    meas = p.measure()
    out = {}
    P = 0.0
    for key, terms in (("P_shift", {"A2_shift_texture", "A2_shift_field"}),
                       ("P_metric", {"A2_metric_gradient"})):
        if terms & ph.terms:
            A = np.stack(conn[key], -1)[:, own]  # (n2, n1l, nky, nb)
            out[key] = (f * A).sum(axis=(0, 2, 3)) * meas
            P = P + out[key]
    if not out:
        return {}
    Q = None
    if "obs_quadrupole" in ph.terms:
        Q = out["Q"] = (p.g_kk * m.local_view(fvec)).sum(axis=(0, 2)) * meas
    out["n_bound"] = _bound_density(p, P, Q)
    return out


def si_units(d: int) -> dict:
    """(factor, unit) from internal units (e = 1, Å) to SI of the split's fields in d dimensions:
    densities, polarization (dipole per length^(d−1)) and quadrupole of physics.md §6.1."""
    from kinetic import units

    nd = units.density_si(d)
    return {"n_berry": nd, "n_bound": nd,
            "P_shift": (-units.E_CHARGE * units.ANGSTROM ** (1 - d), {1: "C", 2: "C/m"}[d]),
            "P_metric": (-units.E_CHARGE * units.ANGSTROM ** (1 - d), {1: "C", 2: "C/m"}[d]),
            "Q": (-units.E_CHARGE * units.ANGSTROM ** (2 - d), {1: "C*m", 2: "C"}[d])}


def fields_2x2k(p, fvec) -> dict:
    """2x2k, x-textures: the x-components of the split as x-y fields (n_xl, n_y) —
    P′_x = Σ∫[dk] f A′_kx, P⁽ᵍ⁾_x = Σ∫[dk] f A″_kx (the connections of ``kinetic.texture2x2k``),
    Q_xx = Σ∫[dk] f g_kxkx and n_bound = −∂_x(P′_x + P⁽ᵍ⁾_x) + ½ ∂_x∂_x Q_xx (the solver's first
    x-derivative on the whole x-line); {} without texture connections. Collective."""
    from kinetic.texture2x2k import connection_parts

    if not getattr(p, "texture_terms", False):
        return {}
    m = p.mesh
    f = m.from_vec(fvec)  # (n_xl, n_y, n_kx, n_ky, nb)
    own = slice(m.s, m.e)
    meas = p.measure()
    conn = getattr(p, "_x_connections", None)  # A_kx at the owned cells (n_xl, n_kx, n_ky, nb)
    if conn is None:
        names = {"shift": "P_shift", "metric": "P_metric"}
        conn = p._x_connections = {names[k]: v[1][own] for k, v in
                                   connection_parts(p, False, False, False).items()}
    out, P = {}, 0.0
    for key, A in conn.items():
        out[key] = (f * A[:, None]).sum(axis=(2, 3, 4)) * meas
        P = P + out[key]
    dx = axis_derivatives(m.axes[0])[0]

    def line(F):  # owned x-rows (n_xl, n_y) -> the whole x-line (n_x, n_y) on every rank
        return gather_line(m.comm, F)

    bound = -dx(line(P), 0)
    if "obs_quadrupole" in p.phys.terms:
        out["Q"] = (p.g_kxkx * f).sum(axis=(2, 3, 4)) * meas
        bound = bound + 0.5 * dx(dx(line(out["Q"]), 0), 0)
    out["n_bound"] = bound[own]
    return out
