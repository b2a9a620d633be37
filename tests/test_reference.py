"""Tests for kinetic.reference: exact quantum references versus the semiclassical theory.

V10 (Rice–Mele ring), its d0 = 0 and potential-only variants, a quasi-1D Landau-gauge ring, and
V12 (helical texture). The measured numbers are in the docstrings. Claims of physics.md that
are *not* reproduced are kept as strict xfail tests that give the evidence (run with
``-rxX`` to see them).

Runtime: ~20 s for the default tests on 2 cores; the L = 512 studies are marked ``slow``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from kinetic.geometry import band_geometry
from kinetic.models import get_model, landau_shift, rice_mele_ring, texture
from kinetic.models.catalogue import RiceMele
from kinetic.models.texture import ParamTexture, Sine
from kinetic.semiclassics import positional_shift
from kinetic.reference import (
    fermi,
    helical_exact,
    helical_exact_slope,
    helical_hall_slope,
    periodic_derivative,
    ring_density,
    ring_first_order_density,
    ring_second_order_density,
    ring_shift_polarization,
)

NK = 256  # k points for the ring semiclassics (converged to ~1e-18, checked below)


# ----------------------------------------------------------------------------- textures
def rice_mele_variant(L, kind, delta=0.5, Delta0=0.6, phi3=0.7, theta0=1.0, V0=0.4):
    """V10 variants: "v10" (= rice_mele_ring), "d0zero" (t3 = V = 0), "potential" (θ = θ0,
    a = 1 fixed, t3 = 0.3 constant; only V = V0 cos(2πx/L + 0.3) varies)."""
    if kind == "v10":
        return rice_mele_ring(L, delta, Delta0, phi3)
    s, c = Sine(0.0, 1.0, L, 0.0), Sine(0.0, 1.0, L, np.pi / 2)
    a = 1.0 + 0.4 * s
    if kind == "d0zero":
        prof = {"t1": 1.0 + delta * a * c, "t2": 1.0 - delta * a * c, "Delta": Delta0 * a * s, "V": 0.0, "t3": 0.0}
    elif kind == "potential":
        prof = {"t1": 1 + delta * np.cos(theta0), "t2": 1 - delta * np.cos(theta0), "Delta": Delta0 * np.sin(theta0),
                "V": Sine(0.0, V0, L, 0.3 + np.pi / 2), "t3": 0.3}
    else:
        raise ValueError(kind)
    return ParamTexture(RiceMele(phi3=phi3), prof)


@lru_cache(maxsize=None)
def v10(kind, L):
    """(exact RingDensity, n1, n2) of the filled lower band."""
    pm = rice_mele_variant(L, kind)
    return ring_density(pm, L), ring_first_order_density(pm, L, NK), ring_second_order_density(pm, L, NK)


def residuals(kind, L):
    r, n1, n2 = v10(kind, L)
    return np.max(np.abs(r.n - 1 - n1)), np.max(np.abs(r.n - 1 - n1 - n2)), np.max(np.abs(n2))


def exponent(Ls, errs):
    """p of a least-squares fit err ∝ L^-p."""
    return -np.polyfit(np.log(Ls), np.log(errs), 1)[0]


# ----------------------------------------------------------------------------- helpers
def test_periodic_derivative_and_fermi():
    P = 37.0
    x = P * np.arange(64) / 64
    f = np.sin(2 * np.pi * 3 * x / P) + 0.5 * np.cos(2 * np.pi * 7 * x / P)
    df = (2 * np.pi / P) * (3 * np.cos(2 * np.pi * 3 * x / P) - 3.5 * np.sin(2 * np.pi * 7 * x / P))
    assert np.allclose(periodic_derivative(f, P), df, atol=1e-13)
    assert np.allclose(periodic_derivative(np.stack([f, 2 * f], 1), P, axis=0), np.stack([df, 2 * df], 1), atol=1e-13)
    e, h = np.linspace(-1, 1, 11), 1e-4
    assert np.allclose(fermi(e, 0.1, 0.2, 1), (fermi(e + h, 0.1, 0.2) - fermi(e - h, 0.1, 0.2)) / (2 * h), atol=1e-7)
    assert np.allclose(fermi(e, 0.1, 0.2, 2), (fermi(e + h, 0.1, 0.2, 1) - fermi(e - h, 0.1, 0.2, 1)) / (2 * h),
                       atol=1e-6)
    assert np.array_equal(fermi([-1.0, 0.0, 1.0], 0.0, None), [1.0, 0.5, 0.0])
    with pytest.raises(ValueError):
        fermi(e, 0.0, 0.0, 1)


# ----------------------------------------------------------------------------- exact rings
def test_ring_density_grand_canonical_and_filled():
    """Homogeneous chains: the cosine band at (μ, T) equals (1/L)Σ_k f(−2 cos k) per cell; the
    uniform Rice–Mele insulator has exactly 1 electron per cell (count L); and on the V10 ring
    a μ in the gap at small T reproduces the filled-set density."""
    L = 40
    tb = texture(get_model("cosine1d", t=1.0), {"e0": 0.0})
    r = ring_density(tb, L, mu=0.3, kT=0.1)
    expect = np.mean(fermi(-2 * np.cos(2 * np.pi * np.arange(L) / L), 0.3, 0.1))
    assert np.allclose(r.n, expect, atol=1e-13) and r.gap is None
    assert r.n_states == pytest.approx(L * expect, abs=1e-11)
    rm = texture(get_model("rice_mele", t1=1.0, t2=0.6, Delta=0.3, t3=0.2, phi3=0.4), {"V": 0.1})
    r = ring_density(rm, L)
    assert r.n_states == L and np.allclose(r.n, 1.0, atol=1e-13)
    ins = ring_density(rice_mele_ring(64), 64)
    mu = 0.5 * (ins.energies[63] + ins.energies[62])
    gc = ring_density(rice_mele_ring(64), 64, mu=mu, kT=0.005)
    assert np.allclose(gc.n, ins.n, atol=1e-12)
    with pytest.raises(ValueError, match="not both"):
        ring_density(rm, L, mu=0.0, filled_bands=1)
    with pytest.raises(ValueError, match="filled_bands"):
        ring_density(rm, L, filled_bands=2)


# ----------------------------------------------------------------------------- V10
def test_v10_count_and_sum_rules():
    """V10(a): L − 1 filled states (C_kθ = −1) below a gap of 0.5654; Σ(n − 1) = −1,
    Σ n1 = −1, Σ n2 = 0. The k integrals are converged (nk = 256 vs 512: < 1e-17)."""
    L = 256
    r, n1, n2 = v10("v10", L)
    assert r.n_states == L - 1
    assert r.gap == pytest.approx(0.5654, abs=2e-4)
    assert np.sum(r.n - 1) == pytest.approx(-1, abs=1e-11)
    assert np.sum(n1) == pytest.approx(-1, abs=1e-12)
    assert abs(np.sum(n2)) < 1e-14
    pm = rice_mele_ring(L)
    assert np.max(np.abs(ring_first_order_density(pm, L, 512) - n1)) < 1e-16
    assert np.max(np.abs(ring_second_order_density(pm, L, 512) - n2)) < 1e-16


def test_v10_second_order_formula():
    """n2 from positional_shift equals the §6.1 two-band closed form
    −∂x∫dk/2π [G^R_kx ∂_k d0 − G^R_kk ∂_x d0] (to 1e-12 relative), and the spectral x-derivative
    of P2 on the L cell samples is accurate to 1.3e-8 relative at L = 64."""
    L = 64
    pm = rice_mele_ring(L)
    x, k = np.arange(L, dtype=float), 2 * np.pi * np.arange(NK) / NK
    H, dH = pm.evaluate(x[:, None, None], k[None, :, None])
    g = band_geometry(H, dH, n_x=1)
    d0x = 0.5 * np.trace(dH[..., 0, :, :], axis1=-2, axis2=-1).real
    d0k = 0.5 * np.trace(dH[..., 1, :, :], axis1=-2, axis2=-1).real
    G = g.bcp_R[..., 0, :, :]
    P2 = np.mean(G[..., 1, 0] * d0k - G[..., 1, 1] * d0x, axis=1)
    assert np.allclose(ring_shift_polarization(pm, L, NK), P2, rtol=0, atol=1e-12 * np.abs(P2).max())
    n2 = ring_second_order_density(pm, L, NK)
    assert np.allclose(n2, -periodic_derivative(P2, L), rtol=0, atol=1e-12 * np.abs(n2).max())
    # the spectral ∂x on the L cell samples against a 4× finer x grid: 1.3e-8 relative at L = 64
    # (P2's Fourier coefficients in θ = 2πx/L decay only by ~1/2 per harmonic), 8e-14 at L = 128
    xf = np.arange(4 * L) / 4
    H, dH = pm.evaluate(xf[:, None, None], k[None, :, None])
    Pf = positional_shift(band_geometry(H, dH, n_x=1), 0)[..., 1].mean(1)
    err = np.max(np.abs(-periodic_derivative(Pf, L)[::4] - n2)) / np.max(np.abs(n2))
    assert err < 5e-8


def test_v10_residual_at_L256():
    """V10(b), measured: max|n2| = 1.769e-4, max|n − 1 − n1| = 1.706e-4 (= 0.964 max|n2|) and
    max|n − 1 − n1 − n2| = 1.673e-5 = 0.0946 max|n2| at L = 256. The residual is the O(L^-3)
    term (L^3 × residual = 284, 280, 275 at L = 128, 256, 512), not an error of n2. See the
    xfail test below for physics.md's stronger claim."""
    r1, r2, m2 = residuals("v10", 256)
    assert m2 == pytest.approx(1.769e-4, rel=2e-3)
    assert 0.9 < r1 / m2 < 1.0
    assert 0.085 < r2 / m2 < 0.105


@pytest.mark.xfail(strict=True, reason="physics.md V10 says the residual after n1 + n2 at L = 256 is two orders of "
                   "magnitude below max|n2|; we measure 0.0946·max|n2| (r2·L³ ≈ 280, a genuine third-order term)")
def test_v10_residual_two_orders_below_n2_claim():
    r1, r2, m2 = residuals("v10", 256)
    assert r2 < 1e-2 * m2


def _half_cell_shift(f, L):
    """Samples of the periodic f at x_R + 1/2 (spectral interpolation)."""
    w = 2 * np.pi * np.fft.fftfreq(L)
    return np.fft.ifft(np.fft.fft(f) * np.exp(0.5j * w)).real


def test_v10_scaling():
    """V10(c): fits over L = 64, 128, 256 give max|n−1−n1| ∝ L^-1.89 (→ 2, pre-asymptotic)
    and max|n−1−n1−n2| ∝ L^-2.96 (→ 3). Convention guard: evaluating the semiclassical fields
    half a cell off (x_R + a/2) spoils the cancellation (exponent 2, residual ×5 at L = 256)."""
    Ls = np.array([64, 128, 256])
    r = np.array([residuals("v10", L) for L in Ls])
    p1, p2 = exponent(Ls, r[:, 0]), exponent(Ls, r[:, 1])
    print(f"\nV10 exponents (L = 64..256): n-1-n1 ~ L^-{p1:.3f}, n-1-n1-n2 ~ L^-{p2:.3f}")
    assert 1.8 < p1 < 2.1
    assert 2.85 < p2 < 3.1
    shifted = []
    for L in Ls:
        ex, n1, n2 = v10("v10", L)
        shifted.append(np.max(np.abs(ex.n - 1 - _half_cell_shift(n1 + n2, L))))
    ps = exponent(Ls, shifted)
    assert 1.9 < ps < 2.2 and shifted[-1] > 4 * r[-1, 1]


@pytest.mark.slow
def test_v10_scaling_to_512():
    """V10(c) with L = 64..512: p(n−1−n1) = 1.92 (last pair 1.97), p(n−1−n1−n2) = 2.98 (last
    pair 3.03); d0 = 0: p = 2.84 (last pair 2.96); potential only: residual ∝ L^-3.00 (relative
    to max|n2| ∝ L^-1). ~40–80 s (three 1024 × 1024 diagonalizations)."""
    Ls = np.array([64, 128, 256, 512])
    r = np.array([residuals("v10", L) for L in Ls])
    p1, p2 = exponent(Ls, r[:, 0]), exponent(Ls, r[:, 1])
    last1, last2 = np.log2(r[-2] / r[-1])[:2]
    print(f"\nV10 exponents (L = 64..512): {p1:.3f}, {p2:.3f}; last pair {last1:.3f}, {last2:.3f}")
    assert 1.85 < p1 < 2.05 and 1.93 < last1 < 2.03
    assert 2.9 < p2 < 3.1 and 2.95 < last2 < 3.1
    rz = np.array([residuals("d0zero", L)[0] for L in Ls])
    assert 2.9 < np.log2(rz[-2] / rz[-1]) < 3.05
    rp = np.array([residuals("potential", L) for L in Ls])
    assert 0.95 < np.log2((rp[-2, 1] / rp[-2, 2]) / (rp[-1, 1] / rp[-1, 2])) < 1.05


@pytest.mark.slow
def test_v10_second_order_coefficient_extrapolated():
    """n2 is the exact O(L^-2) term: fitting L²(n − 1 − n1) = a2 + a3/L + a4/L² + a5/L³ at fixed
    x/L over L = 64..512 gives max|a2 − L²n2| = 1.8e-2 (1.5e-3 of max|L²n2| = 11.54, limited by
    the unresolved a4, a5) for V10 and 1.4e-6 (1.7e-6 relative) for the potential-only variant."""
    Ls = np.array([64, 128, 256, 512])
    for kind, tol in (("v10", 3e-3), ("potential", 5e-6)):
        Y, ref = [], None
        for L in Ls:
            ex, n1, n2 = v10(kind, int(L))
            Y.append(((ex.n - 1 - n1) * L**2)[:: L // 64])
            ref = (n2 * L**2)[:: L // 64]
        A = np.stack([Ls.astype(float) ** -j for j in range(4)], 1)
        a2 = np.linalg.solve(A, np.array(Y))[0]
        assert np.max(np.abs(a2 - ref)) < tol * np.max(np.abs(ref))


def test_v10_d0_zero_variant():
    """V10(d), V9d: with t3 = V = 0 (d0 ≡ 0), n2 vanishes to machine precision (< 1e-17) and the
    exact n − 1 − n1 is already third order: 8.35e-4, 1.31e-4, 1.80e-5 at L = 64, 128, 256
    (exponent 2.77 over this range, 2.96 for the last pair 256 → 512)."""
    Ls = np.array([64, 128, 256])
    r = np.array([residuals("d0zero", L) for L in Ls])
    assert np.all(r[:, 2] < 1e-17)
    assert v10("d0zero", 256)[0].n_states == 255
    p = exponent(Ls, r[:, 0])
    assert 2.6 < p < 3.1
    assert r[-1, 0] < 0.15 * residuals("v10", 256)[0]


def test_v10_potential_only_variant():
    """V10(d): θ fixed, only V(x) = 0.4 cos(2πx/L + 0.3). Then n1 ≡ 0 and n2 = −∂xP2 = χ V''
    with χ = ∫dk/2π G^R_kk (identity to 1e-12). Against the exact density the relative residual
    max|n − 1 − n2|/max|n2| is 2.9e-2, 1.45e-2, 7.2e-3 at L = 64, 128, 256 (∝ L^-1, i.e. an
    O(L^-3) residual, from terms nonlinear in V; at V0 = 0.01 it is 3.4e-4 at L = 256)."""
    Ls = np.array([64, 128, 256])
    rel = []
    for L in Ls:
        ex, n1, n2 = v10("potential", L)
        assert np.max(np.abs(n1)) < 1e-17 and ex.n_states == L
        rel.append(np.max(np.abs(ex.n - 1 - n2)) / np.max(np.abs(n2)))
    rel = np.array(rel)
    assert rel[-1] == pytest.approx(7.2e-3, rel=0.03)
    assert 0.95 < exponent(Ls, rel) < 1.05
    # closed form: n2 = χ V'' (t1, t2, Δ constant, so χ is x-independent)
    L = 128
    pm = rice_mele_variant(L, "potential")
    k = 2 * np.pi * np.arange(NK) / NK
    H, dH = pm.evaluate(np.zeros((NK, 1)), k[:, None])
    chi = np.mean(band_geometry(H, dH, n_x=1).bcp_R[:, 0, 1, 1])
    x = np.arange(L)
    Vpp = -0.4 * (2 * np.pi / L) ** 2 * np.cos(2 * np.pi * x / L + 0.3)
    n2 = v10("potential", L)[2]
    assert np.allclose(n2, chi * Vpp, rtol=0, atol=1e-12 * np.abs(n2).max())


@pytest.mark.xfail(strict=True, reason="physics.md V10 says that with a potential only, n2 = −∂xP2 reproduces "
                   "the exact result to 1e-12 relative; we measure 7.2e-3 at L = 256 (residual ∝ L^-3), 3.4e-4 at V0 = 0.01")
def test_v10_potential_only_1e12_claim():
    ex, n1, n2 = v10("potential", 256)
    assert np.max(np.abs(ex.n - 1 - n2)) < 1e-12 * np.max(np.abs(n2))


def test_quasi_1d_landau_ring():
    """Quasi-1D path (k_perp): H0(k_x, k_y + Bx) with B = 2π/L (Landau gauge, one flux quantum
    through the ring, V13) at k_y = 0.3. Count L − 1, Σ n1 = −1 (C = −1 of QWZ, M = 1). Plain QWZ
    (d0 = 0): n2 ≡ 0 and max|n − 1 − n1| = 1.72e-5, 2.15e-6 at L = 128, 256 (∝ L^-3). The V12
    model (d0 ≠ 0): max|n − 1 − n1 − n2| = 1.27e-5, 1.57e-6 (∝ L^-3), 0.083 max|n2| at L = 256."""
    out = {}
    for name, kw in (("qwz", {"M": 1.0}), ("qwz_helical", {})):
        for L in (128, 256):
            pm = landau_shift(get_model(name, **kw), 2 * np.pi / L)
            ex = ring_density(pm, L, k_perp=[0.3])
            n1 = ring_first_order_density(pm, L, 128, k_perp=[0.3])
            n2 = ring_second_order_density(pm, L, 128, k_perp=[0.3])
            assert ex.n_states == L - 1 and np.sum(n1) == pytest.approx(-1, abs=1e-12)
            out[name, L] = np.max(np.abs(ex.n - 1 - n1 - n2)), np.max(np.abs(n2))
    assert out["qwz", 256][1] < 1e-17
    for name in ("qwz", "qwz_helical"):
        assert 2.9 < np.log2(out[name, 128][0] / out[name, 256][0]) < 3.1
    assert out["qwz_helical", 256][0] < 0.1 * out["qwz_helical", 256][1]


# ----------------------------------------------------------------------------- V12
def test_helical_exact_gap_and_mesh():
    """Exact helical observables: μ = −0.3 in the global gap [−0.870, 0.270] gives σ_xy = +1/2π
    (lower-band C = −1, σ = −C/2π) and n = 1 for any q; at T = 0.1 the nk = 200 mesh agrees with
    nk = 256 to 1e-15."""
    for q in (0.0, 0.1):
        r = helical_exact(-0.3, 0.01, q, 120)
        assert r.sigma_xy == pytest.approx(1 / (2 * np.pi), abs=1e-12) and r.n == pytest.approx(1, abs=1e-12)
    a, b = helical_exact(0.8, 0.1, 0.05, 200), helical_exact(0.8, 0.1, 0.05, 256)
    assert abs(a.sigma_xy - b.sigma_xy) < 1e-15 and abs(a.n - b.n) < 1e-14


# μ: (A, B′, B″, exact slope) per unit q [e²/ħ·Å], T = 0.1, nk = 200
V12_NUMBERS = {
    -0.9: (-9.4452143e-3, 6.625004e-4, 5.93933e-7, -8.7821200e-3),
    0.8: (2.0264135e-2, -4.5051093e-3, 1.9901772e-3, 1.7749203e-2),
    1.3: (7.0519601e-3, -2.8066023e-3, 6.3492637e-3, 1.0594622e-2),
}


@pytest.mark.parametrize("mu", sorted(V12_NUMBERS))
def test_v12_hall_slope(mu):
    """V12 at T = 0.1: A + B′ + B″ equals the exact slope to ≤ 6.3e-9 relative (Richardson of
    central differences at ±0.02, ±0.01). The plain central difference at ±0.02 differs from it by
    ≤ 1.6e-4 (physics.md's "1e-4, set by the q difference"), at ±0.1 by ≤ 3.5e-3. First order only
    (A) misses by 7.6 %, 14.2 %, 33.4 % at μ = −0.9, 0.8, 1.3 (physics.md: 7–35 %). Integration
    by parts and spectral k-derivatives give the same B′, B″ (1e-15)."""
    A, Bs, Bm, ex = V12_NUMBERS[mu]
    s = helical_hall_slope(mu, 0.1, 200)
    exact = helical_exact_slope(mu, 0.1, 200)
    central = helical_exact_slope(mu, 0.1, 200, dq=0.02, richardson=False)
    assert (s.A, s.B_shift, s.B_metric) == pytest.approx((A, Bs, Bm), rel=1e-6)
    assert exact == pytest.approx(ex, rel=1e-6)
    assert abs(s.total - exact) < 1e-8 * abs(exact)
    assert abs(central - s.total) < 2e-4 * abs(exact)
    assert 0.07 < abs(s.A - exact) / abs(exact) < 0.35
    sp = helical_hall_slope(mu, 0.1, 200, derivatives="spectral")
    assert abs(sp.B_shift - s.B_shift) < 1e-15 and abs(sp.B_metric - s.B_metric) < 1e-15


def test_v12_density_slope_first_order():
    """O(q) density of the helical texture: the first-order theory Σ∫[dk](Ω_{k_x x} f + f′Δε⁽¹⁾)
    equals the exact dn/dq at q = 0 (Richardson, ±0.02/±0.01) to < 1e-8 relative (T = 0.1;
    dn/dq = −0.0281301, −0.0354497, −0.0259465 at μ = −0.9, 0.8, 1.3)."""
    for mu, ref in ((-0.9, -0.0281301), (0.8, -0.0354497), (1.3, -0.0259465)):
        def D(h):
            return (helical_exact(mu, 0.1, h, 200).n - helical_exact(mu, 0.1, -h, 200).n) / (2 * h)

        exact = (4 * D(0.01) - D(0.02)) / 3
        s = helical_hall_slope(mu, 0.1, 200)
        assert exact == pytest.approx(ref, rel=1e-5)
        assert abs(s.dn_dq - exact) < 1e-8 * abs(exact)


@pytest.mark.slow
@pytest.mark.parametrize("kT", [0.05, 0.2])
def test_v12_other_temperatures(kT):
    """V12 at T = 0.05 and 0.2 (nk = 300): A + B′ + B″ matches the Richardson slope to < 1e-7."""
    for mu in (-0.9, 0.8, 1.3):
        s = helical_hall_slope(mu, kT, 300)
        exact = helical_exact_slope(mu, kT, 300)
        assert abs(s.total - exact) < 1e-7 * abs(exact)
