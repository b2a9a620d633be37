"""Second-order texture connections in the 2x2k layout for x-textures (H independent of y).

For a texture along x only, the quasi-1D theory of physics.md §4.2–4.3 and §5.2 applies with
k_y a parameter: the positional shift A′ (A2_shift_texture, A2_threeband) and the
metric-gradient connection A″ (A2_metric_gradient: A″_{k_i} = ½(∂_x g_{k_i k_x} − ∂_{k_x}
g_{k_i x}), A″_x = ½(∂_x g_{x k_x} − ∂_{k_x} g_{xx})) add Ω⁽²⁾_ab = ∂_a A⁽²⁾_b − ∂_b A⁽²⁾_a to the
symplectic form in the blocks (k_x, x), (k_y, x) and (k_x, k_y) — the same as ``Problem``'s
1x2k layout, but here E_y can be applied as well (the Onsager partner of physics.md §6.5).

``curvature(p, corner)`` gives the Ω⁽²⁾ matrix (..., nb, 4, 4) in the order (x, y, k_x, k_y)
on a staggered grid of the owned block; ``plaquette_circulation(p)`` the circulation of A⁽²⁾
around the plaquettes of the corner grid (the field fluxes).
k_x and k_y derivatives are spectral over the periodic zone (grids of centres, or of corners
with the seam point repeated); x-derivatives are taken on the whole x-line of the staggered
grid (every rank evaluates it; the fields are y-independent, one y-point broadcast by the
caller): spectral on a periodic x, fourth-order differences on an open one, ∂²_x of the metric
as one second-derivative operator (``kinetic.derivatives``).
"""
from __future__ import annotations

import numpy as np

from kinetic.derivatives import axis_derivatives, spectral_derivative
from kinetic.geometry import band_geometry
from kinetic.semiclassics import positional_shift

X_, KX, KY = 0, 2, 3


def _line(axis, corner):
    """Positions of the whole x-line: centres (n), or corners (n + 1 on an open axis; the n
    distinct ones of a periodic axis)."""
    n = axis.n + (1 if corner and not axis.periodic else 0)
    return axis.lo + (np.arange(n) + (0.0 if corner else 0.5)) * axis.h


def _owned(axis, s, e, corner):
    """Indices into ``_line`` of the owned points s .. e − 1 (+ e for corners; wrapped on a
    periodic axis, where the last corner is the first)."""
    i = np.arange(s, e + (1 if corner else 0))
    return np.mod(i, axis.n) if axis.periodic else i


def _zone(axis, corner):
    """The n points of a periodic zone: centres, or corners (the seam point once)."""
    return axis.lo + (np.arange(axis.n) + (0.0 if corner else 0.5)) * axis.h


def connection_parts(p, cx, ckx, cky) -> dict:
    """The positional-shift (``"shift"``: A2_shift_texture, A2_threeband) and metric-gradient
    (``"metric"``: A2_metric_gradient) parts of A⁽²⁾, each (5, n_x, n_kx, n_ky, nb) — A_x, A_kx,
    A_ky, ∂_x A_kx, ∂_x A_ky — on the whole x-line staggered by ``cx`` and the periodic k-zones
    (centres or corners); only the parts switched on are present."""
    ph = p.phys
    ax, _, akx, aky = p.mesh.axes
    X, KX_, KY_ = np.meshgrid(_line(ax, cx), _zone(akx, ckx), _zone(aky, cky), indexing="ij")
    H, dH = p.model.evaluate(np.stack([X, np.zeros_like(X)], -1), np.stack([KX_, KY_], -1))
    g = band_geometry(H, dH, n_x=2)
    d1, d2 = axis_derivatives(ax)
    dx = lambda F: d1(F, 0)  # noqa: E731
    dkx = lambda F: spectral_derivative(F, akx.h, 1)  # noqa: E731
    out = {}
    if "A2_shift_texture" in ph.terms:
        parts = []
        for b in p.bands:
            Ap = positional_shift(g, b, threeband="A2_threeband" in ph.terms)
            parts.append(np.stack([Ap[..., X_], Ap[..., KX], Ap[..., KY], dx(Ap[..., KX]),
                                   dx(Ap[..., KY])]))
        out["shift"] = np.stack(parts, -1)
    if "A2_metric_gradient" in ph.terms:
        parts = []
        for b in p.bands:
            G = g.metric[..., b, :, :]
            parts.append(0.5 * np.stack([dx(G[..., X_, KX]) - dkx(G[..., X_, X_]),
                                         dx(G[..., KX, KX]) - dkx(G[..., KX, X_]),
                                         dx(G[..., KY, KX]) - dkx(G[..., KY, X_]),
                                         d2(G[..., KX, KX], 0) - dx(dkx(G[..., KX, X_])),
                                         d2(G[..., KY, KX], 0) - dx(dkx(G[..., KY, X_]))]))
        out["metric"] = np.stack(parts, -1)
    return out


def _connection(p, cx, ckx, cky):
    """A⁽²⁾ = (A_x, A_kx, A_ky) and (∂_x A_kx, ∂_x A_ky), each (n_x, n_kx, n_ky, nb), on the
    whole x-line staggered by ``cx`` and the periodic k-zones (centres or corners)."""
    return sum(connection_parts(p, cx, ckx, cky).values())


def _seam(F, axes):
    """Append the first point along each of ``axes`` (a corner grid of a periodic zone)."""
    for a in axes:
        F = np.concatenate([F, np.take(F, [0], axis=a)], axis=a)
    return F


def curvature(p, corner):
    """Ω⁽²⁾ (n_x', 1, n_kx', n_ky', nb, 4, 4) on the owned grid staggered by ``corner`` (4 flags;
    y ignored): Ω_{k_x x} = ∂_kx A_x − ∂_x A_kx, Ω_{k_y x} = ∂_ky A_x − ∂_x A_ky,
    Ω_{k_x k_y} = ∂_kx A_ky − ∂_ky A_kx, antisymmetric in the order (x, y, k_x, k_y)."""
    m = p.mesh
    ax, _, akx, aky = m.axes
    cx, _, ckx, cky = corner
    own = _owned(ax, m.s, m.e, cx)
    Ax, Akx, Aky, dxAkx, dxAky = _connection(p, cx, ckx, cky)[:, own]
    dkx = lambda F: spectral_derivative(F, akx.h, 1)  # noqa: E731
    dky = lambda F: spectral_derivative(F, aky.h, 2)  # noqa: E731
    O = np.zeros(Ax.shape + (4, 4))
    for (a, b), val in (((KX, X_), dkx(Ax) - dxAkx), ((KY, X_), dky(Ax) - dxAky),
                        ((KX, KY), dkx(Aky) - dky(Akx))):
        O[..., a, b], O[..., b, a] = val, -val
    O = _seam(O, [a for a, c in ((1, ckx), (2, cky)) if c])
    return O[:, None]


def plaquette_circulation(p):
    """∮ A⁽²⁾ (trapezoid edges) around every elementary plaquette of the owned corner grid: the
    second-order part of the plaquette fluxes Π_cd, closed around every cube by construction.
    Keys (c, d) in (x, k_x), (x, k_y), (k_x, k_y); arrays (n_x+1 or n_x, 1, ..., nb) shaped like
    ``Problem4._plaquette_fluxes`` (planes containing y carry none)."""
    m = p.mesh
    ax = m.axes[0]
    h = m.h
    A = _connection(p, True, True, True)[:3, _owned(ax, m.s, m.e, True)]
    A = _seam(A, (2, 3))  # (3, n_xl+1, n_kx+1, n_ky+1, nb)
    comp, axis = {0: A[0], 2: A[1], 3: A[2]}, {0: 0, 2: 1, 3: 2}
    first = lambda F, a: np.take(F, range(F.shape[a] - 1), axis=a)  # noqa: E731
    last = lambda F, a: np.take(F, range(1, F.shape[a]), axis=a)  # noqa: E731
    out = {}
    for c, d in ((0, 2), (0, 3), (2, 3)):
        ac, ad = axis[c], axis[d]
        ec = 0.5 * (first(comp[c], ac) + last(comp[c], ac)) * h[c]  # edges along c
        ed = 0.5 * (first(comp[d], ad) + last(comp[d], ad)) * h[d]  # edges along d
        out[(c, d)] = (first(ec, ad) + last(ed, ac) - last(ec, ad) - first(ed, ac))[:, None]
    return out
