"""Derivatives of smooth geometric fields sampled on a mesh axis (physics.md §2.6 rule 3).

Spectral along periodic axes; fourth-order finite differences along open ones — central
five-point stencils inside, one-sided stencils of the same order at the first and last two
points (first derivative: five points; second derivative: six), so every point, the ends
included, is O(h⁴) and nothing outside the axis is evaluated. The second derivative on an open
axis is its own stencil (exact for polynomials of degree ≤ 5), not the first one applied twice,
whose end rows would be third order; on a periodic axis it is the spectral first derivative
applied twice (as the Ω″ and quadrupole terms have always used there).

``axis_derivatives(axis)`` returns the pair (d1, d2) for a ``kinetic.mesh.Axis``; each takes an
array and the array axis along which the samples run (spacing ``axis.h``, any leading/trailing
shape).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

#: points an open axis needs for the fourth-order stencils (the six-point second-derivative end rows)
MIN_OPEN_POINTS = 6


def spectral_derivative(F, h: float, axis: int) -> np.ndarray:
    """∂F along a periodic axis of cell values spaced h (FFT; the Nyquist mode of an even
    length is dropped, its derivative not being real-representable)."""
    n = F.shape[axis]
    w = 2 * np.pi * np.fft.fftfreq(n, d=h)
    if n % 2 == 0:
        w[n // 2] = 0.0
    shape = [1] * F.ndim
    shape[axis] = n
    return np.real(np.fft.ifft(1j * w.reshape(shape) * np.fft.fft(F, axis=axis), axis=axis))


@lru_cache(maxsize=None)
def _weights(order: int, offsets: tuple) -> np.ndarray:
    """Finite-difference weights w with Σ_j w_j F(x + s_j h) = h^order F^(order)(x) + O(h^len)
    for the integer offsets s_j (Taylor/Vandermonde solve; exact for polynomials of degree
    < len(offsets))."""
    s = np.asarray(offsets, float)
    V = np.vander(s, increasing=True).T  # V[p, j] = s_j^p
    rhs = np.zeros(len(s))
    rhs[order] = float(np.prod(np.arange(1, order + 1)))
    w = np.linalg.solve(V, rhs)
    exact = np.round(12 * w) / 12  # every stencil used here has the denominator 12
    assert np.allclose(w, exact, rtol=0, atol=1e-9)
    return exact


# (row, offsets) of the fourth-order stencils: interior, then the first two rows
_STENCILS = {
    1: ((-2, -1, 0, 1, 2), ((0, 1, 2, 3, 4), (-1, 0, 1, 2, 3))),
    2: ((-2, -1, 0, 1, 2), ((0, 1, 2, 3, 4, 5), (-1, 0, 1, 2, 3, 4))),
}


def fd4_derivative(F, h: float, axis: int, order: int = 1) -> np.ndarray:
    """The first (order = 1) or second (order = 2) derivative of samples F spaced h along
    ``axis`` of an open (non-periodic) axis, fourth-order accurate at every point: central
    five-point stencils inside, one-sided ones at the first and last two points. Needs at least
    MIN_OPEN_POINTS samples along ``axis``."""
    F = np.moveaxis(np.asarray(F, float), axis, 0)
    n = F.shape[0]
    if n < MIN_OPEN_POINTS:
        raise ValueError(f"fd4_derivative: {n} points along the axis, at least {MIN_OPEN_POINTS} needed")
    inner, ends = _STENCILS[order]
    out = np.empty_like(F)
    w = _weights(order, inner)
    out[2:n - 2] = sum(wj * F[2 + s:n - 2 + s] for wj, s in zip(w, inner))
    sign = (-1) ** order  # mirrored stencils at the right end: F(x − s h)
    for row, offs in enumerate(ends):
        w = _weights(order, offs)
        out[row] = sum(wj * F[row + s] for wj, s in zip(w, offs))
        out[n - 1 - row] = sign * sum(wj * F[n - 1 - row - s] for wj, s in zip(w, offs))
    return np.moveaxis(out / h**order, 0, axis)


def axis_derivatives(axis):
    """(d1, d2): first and second derivative along a ``kinetic.mesh.Axis`` of samples spaced
    axis.h — spectral (d2 = d1 ∘ d1) if the axis is periodic, else fourth-order differences.
    Each is called as d(F, array_axis)."""
    h = axis.h
    if axis.periodic:
        def d1(F, a):
            return spectral_derivative(F, h, a)

        def d2(F, a):
            return spectral_derivative(spectral_derivative(F, h, a), h, a)
    else:
        def d1(F, a):
            return fd4_derivative(F, h, a, 1)

        def d2(F, a):
            return fd4_derivative(F, h, a, 2)
    return d1, d2
