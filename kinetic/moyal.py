"""The Moyal coefficient engine (physics.md §4.7): band-resolved Weyl-frame coefficients of
tr f⋆(H) to second order for any number of bands N, on a periodic 1D (x, k) mesh (pure numpy).

For a symbol H(x, k) (N × N) the ⋆-resolvent R⋆(z) = R0 + R1 + R2 + O(η³) has

    R0 = (z − H)⁻¹,
    R1 = (i/2) R0 (H_x ∂_k R0 − H_k ∂_x R0),
    R2 = R0 [(i/2)(H_x ∂_k R1 − H_k ∂_x R1) − ⅛ (H_xx ∂_k²R0 − 2 H_xk ∂_x∂_k R0 + H_kk ∂_x²R0)],

with analytic derivatives of H and spectral derivatives of R0, R1 on the mesh. Writing
tr R_r(z) = Σ_n Σ_l C⁽ʳ⁾_{l,n} l!/(z − ε_n)^{l+1}, the contour moments
M⁽ʳ⁾_p = (1/2πi)∮ u^p tr R_r dz (u = (z − c)/ρ, trapezoid rule on a circle of radius ρ around all
bands) satisfy the confluent-Vandermonde system M⁽ʳ⁾_p = Σ_{n,l} C⁽ʳ⁾_{l,n} ∂^l_ε[u(ε)^p]_{ε_n},
solved per mesh point. Then tr f⋆(H) = Σ_n [f(ε_n) + Σ_{r,l} C⁽ʳ⁾_{l,n} f^{(l)}(ε_n)] and

    C⁽¹⁾_0 = Ω_kx, C⁽¹⁾_1 = Δε⁽¹⁾ (physics.md §3.5);  D_W = 1 + C⁽¹⁾_0 + C⁽²⁾_0,
    ε⁽²⁾_W = C⁽²⁾_1 − C⁽¹⁾_0 C⁽¹⁾_1,  C⁽²⁾_{2,3}: the f″, f‴ coefficients of §4.6;

the wave-packet (c-) frame follows from §4.6: D_c = D_W − ½∂_a∂_bσ_ab and
ε⁽²⁾_c = ε⁽²⁾_W − ½σ_ab∂_a∂_bε_n − (∂_aσ_ab)∂_bε_n, σ = J g Jᵀ. Accuracy needs ≥ 96 mesh
points per texture period for ~1e-8 (physics.md §4.7). Units: eV, Å.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import factorial

import numpy as np

from kinetic.geometry import band_geometry


class ky_slice:
    """The quasi-1D slice of an x-texture of a 2D band at fixed k_y (a parameter): a 1D symbol
    H(x, k_x; k_y) with the derivatives in (x, k_x) only (physics.md §4.5, quasi-1D)."""

    dim_x, dim = 1, 1

    def __init__(self, model, ky: float):
        self.model, self.ky, self.nb = model, float(ky), model.nb

    def evaluate(self, x, k, order=1):
        k = np.asarray(k, float)
        kk = np.stack([k[..., 0], np.full(k.shape[:-1], self.ky)], -1)
        H, dH, *d2 = self.model.evaluate(x, kk, order=order)
        sub = [0, 1]
        return (H, dH[..., sub, :, :]) + tuple(d[..., sub, :, :, :][..., :, sub, :, :] for d in d2)


def _dspec(F, h: float, axis: int, order: int = 1) -> np.ndarray:
    """order-th spectral derivative along a periodic axis (Nyquist mode dropped for odd orders)."""
    n = F.shape[axis]
    w = 2 * np.pi * np.fft.fftfreq(n, d=h)
    mult = (1j * w) ** order
    if n % 2 == 0 and order % 2:
        mult[n // 2] = 0.0
    shape = [1] * F.ndim
    shape[axis] = n
    return np.fft.ifft(mult.reshape(shape) * np.fft.fft(F, axis=axis), axis=axis)


@dataclass
class MoyalCoefficients:
    """Per mesh point (n_x, n_k) and band: C1[l] (l = 0, 1), C2[l] (l = 0..3), the band
    energies, and the Weyl- and c-frame density and second-order energy."""

    energy: np.ndarray  # (n_x, n_k, N)
    C1: np.ndarray  # (2, n_x, n_k, N)
    C2: np.ndarray  # (4, n_x, n_k, N)
    D_W: np.ndarray
    eps2_W: np.ndarray
    D_c: np.ndarray
    eps2_c: np.ndarray


def _confluent_solve(eps, moments, lmax, c, rho):
    """Solve M_p = Σ_{n,l ≤ lmax} C_{l,n} ∂^l_ε[((ε − c)/ρ)^p]_{ε_n}, p < N (lmax + 1), per point.
    eps (..., N) real, moments (..., P) complex -> C (lmax + 1, ..., N) (real part)."""
    N = eps.shape[-1]
    P = N * (lmax + 1)
    u = (eps - c) / rho
    V = np.zeros(eps.shape[:-1] + (P, P))
    for l in range(lmax + 1):
        for p in range(l, P):
            coef = factorial(p) / factorial(p - l) / rho**l
            V[..., p, l * N:(l + 1) * N] = coef * u ** (p - l)
    C = np.linalg.solve(V, moments[..., None])[..., 0]
    return np.moveaxis(np.real(C).reshape(eps.shape[:-1] + (lmax + 1, N)), -2, 0)


def moyal_coefficients(model, x, k, n_phi: int = 96, margin: float = 0.5) -> MoyalCoefficients:
    """The engine on the periodic mesh x (n_x, period = n_x·h_x) × k (n_k, one Brillouin zone)
    of a 1D ``PhaseSpaceModel`` (dim_x = dim = 1); ``n_phi`` contour points, contour radius
    (band range)/2 + ``margin`` eV around the band centre. Non-degenerate bands."""
    x, k = np.asarray(x, float), np.asarray(k, float)
    hx, hk = x[1] - x[0], k[1] - k[0]
    X, K = np.meshgrid(x, k, indexing="ij")
    H, dH, d2H = model.evaluate(X[..., None], K[..., None], order=2)
    Hx, Hk = dH[..., 0, :, :], dH[..., 1, :, :]
    Hxx, Hxk, Hkk = d2H[..., 0, 0, :, :], d2H[..., 0, 1, :, :], d2H[..., 1, 1, :, :]
    g = band_geometry(H, dH, d2H, n_x=1)
    eps = g.energy  # (n_x, n_k, N)
    N = eps.shape[-1]
    c = 0.5 * (eps.max() + eps.min())
    rho = 0.5 * (eps.max() - eps.min()) + margin
    P1, P2 = 2 * N, 4 * N
    M1 = np.zeros(eps.shape[:-1] + (P1,), complex)
    M2 = np.zeros(eps.shape[:-1] + (P2,), complex)
    eye = np.eye(N)
    dx = lambda F, o=1: _dspec(F, hx, 0, o)  # noqa: E731
    dk = lambda F, o=1: _dspec(F, hk, 1, o)  # noqa: E731
    for phi in 2 * np.pi * (np.arange(n_phi) + 0.5) / n_phi:
        z = c + rho * np.exp(1j * phi)
        w = rho * np.exp(1j * phi) / n_phi  # dz/(2πi) of the trapezoid rule
        u = np.exp(1j * phi)
        R0 = np.linalg.inv(z * eye - H)
        R1 = 0.5j * R0 @ (Hx @ dk(R0) - Hk @ dx(R0))
        R2 = R0 @ (0.5j * (Hx @ dk(R1) - Hk @ dx(R1))
                   - 0.125 * (Hxx @ dk(R0, 2) - 2 * Hxk @ dk(dx(R0)) + Hkk @ dx(R0, 2)))
        t1, t2 = np.trace(R1, axis1=-2, axis2=-1), np.trace(R2, axis1=-2, axis2=-1)
        M1 += w * t1[..., None] * u ** np.arange(P1)
        M2 += w * t2[..., None] * u ** np.arange(P2)
    C1 = _confluent_solve(eps, M1, 1, c, rho)
    C2 = _confluent_solve(eps, M2, 3, c, rho)
    D_W = 1.0 + C1[0] + C2[0]
    eps2_W = C2[1] - C1[0] * C1[1]
    # c-frame (physics.md §4.6), σ = J g Jᵀ: σ_xx = g_kk, σ_kk = g_xx, σ_xk = −g_kx
    lap, shift = np.empty(eps.shape), np.empty(eps.shape)
    for n in range(N):
        gxx, gkx, gkk = (g.metric[..., n, a, b] for a, b in ((0, 0), (1, 0), (1, 1)))
        m = g.inverse_mass[..., n, :, :]
        ex, ek = g.velocity[..., 0, n], g.velocity[..., 1, n]
        lap[..., n] = np.real(dx(gkk, 2) - 2 * dx(dk(gkx)) + dk(gxx, 2))  # ∂a∂bσ_ab
        quad = gkk * m[..., 0, 0] - 2 * gkx * m[..., 0, 1] + gxx * m[..., 1, 1]  # σ_ab ∂a∂bε
        flow = np.real(dx(gkk) - dk(gkx)) * ex + np.real(dk(gxx) - dx(gkx)) * ek  # (∂aσ_ab)∂bε
        shift[..., n] = 0.5 * quad + flow
    D_c = D_W - 0.5 * lap
    eps2_c = eps2_W - shift
    return MoyalCoefficients(eps, C1, C2, D_W, eps2_W, D_c, eps2_c)
