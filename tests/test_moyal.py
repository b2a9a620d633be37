"""The Moyal coefficient engine (physics.md §4.7) against independent answers.

First order: C⁽¹⁾_0 = Ω_kx and C⁽¹⁾_1 = Δε⁽¹⁾ of the sum-over-states geometry (physics.md §3.5,
exact pointwise). Second order: the two-band c-frame energy ε⁽²⁾_c equals the closed forms
(i)–(iv) of §4.5; for N = 2 and N = 3 the f″ and f‴ coefficients equal §4.6's
½(Δε⁽¹⁾)² + ½σ_ab∂_aε∂_bε + w₂ and w₃, and C⁽²⁾_0 equals the curvature Ω′ = ∂_kA′_x − ∂_xA′_k of
the positional shift with its three-band term — two methods that share no code beyond H.
All errors are set by the mesh (96 points per texture period, physics.md: ~1e-8).
"""
import numpy as np
import pytest

from kinetic.geometry import band_geometry
from kinetic.models.base import Model
from kinetic.models.texture import Sine, rice_mele_ring, texture
from kinetic.moyal import _dspec, moyal_coefficients
from kinetic.semiclassics import positional_shift, second_order_energy, wigner_kirkwood

L = 96  # one mesh point per Å over one texture period


class Trimer(Model):
    """A three-band chain: on-site energies (d1, d2, d3), intra-cell hoppings t12, t23, t13 and
    the inter-cell hopping t (orbital 3 -> 1 of the next cell); lattice 1 Å."""

    name, nb, dim = "trimer", 3, 1
    defaults = {"d1": -1.0, "d2": 0.2, "d3": 1.1, "t12": 0.8, "t23": 0.7, "t13": 0.3, "t": 0.6}

    @property
    def lattice(self):
        return np.eye(1)

    def _parts(self, k, p):
        k = np.asarray(k, float)[..., 0]
        P = {n: np.asarray(v, float) for n, v in p.items()}
        s = np.broadcast_shapes(k.shape, *(v.shape for v in P.values()))
        H = np.zeros(s + (3, 3), complex)
        for i, n in enumerate(("d1", "d2", "d3")):
            H[..., i, i] = P[n]
        H[..., 0, 1] = H[..., 1, 0] = P["t12"]
        H[..., 1, 2] = H[..., 2, 1] = P["t23"]
        e = np.exp(-1j * k)
        H[..., 0, 2] = P["t13"] + P["t"] * e
        H[..., 2, 0] = np.conj(H[..., 0, 2])
        return H, P["t"] * np.broadcast_to(e, s)

    def hamiltonian(self, k, p=None):
        return self._parts(k, self.p(p))[0]

    def dh_dk(self, k, p=None):
        H, te = self._parts(k, self.p(p))
        d = np.zeros(H.shape[:-2] + (1, 3, 3), complex)
        d[..., 0, 0, 2] = -1j * te
        d[..., 0, 2, 0] = np.conj(d[..., 0, 0, 2])
        return d

    def d2h_dk2(self, k, p=None):
        H, te = self._parts(k, self.p(p))
        d = np.zeros(H.shape[:-2] + (1, 1, 3, 3), complex)
        d[..., 0, 0, 0, 2] = -te
        d[..., 0, 0, 2, 0] = np.conj(d[..., 0, 0, 0, 2])
        return d


def trimer_ring(period=L):
    s = lambda a, ph=0.0: Sine(0.0, a, float(period), ph)  # noqa: E731
    return texture(Trimer(), {"d1": -1.0 + s(0.3), "t12": 0.8 + s(0.2, 1.0),
                              "t": 0.6 + s(0.15, 2.0)})


def mesh():
    x = np.arange(L, dtype=float)
    k = -np.pi + (np.arange(96) + 0.5) * 2 * np.pi / 96
    return x, k


def geometry(pm, x, k):
    X, K = np.meshgrid(x, k, indexing="ij")
    return band_geometry(*pm.evaluate(X[..., None], K[..., None], order=2), n_x=1)


@pytest.fixture(scope="module", params=["rice_mele", "trimer"])
def engine(request):
    pm = rice_mele_ring(L) if request.param == "rice_mele" else trimer_ring()
    x, k = mesh()
    return pm, geometry(pm, x, k), moyal_coefficients(pm, x, k), (x[1] - x[0], k[1] - k[0])


def test_first_order_is_the_berry_curvature_and_gradient_energy(engine):
    pm, g, mc, _ = engine
    Om = g.curvature[..., :, 1, 0]
    assert np.abs(mc.C1[0] - Om).max() < 1e-6 * np.abs(Om).max()
    assert np.abs(mc.C1[1] - g.gradient_energy).max() < 1e-6 * np.abs(g.gradient_energy).max()


def test_second_order_fpp_fppp_and_positional_shift_curvature(engine):
    pm, g, mc, (hx, hk) = engine
    for n in range(g.energy.shape[-1]):
        w2, w3 = wigner_kirkwood(g, n)
        gxx, gkx, gkk = (g.metric[..., n, a, b] for a, b in ((0, 0), (1, 0), (1, 1)))
        ex, ek = g.velocity[..., 0, n], g.velocity[..., 1, n]
        fpp = 0.5 * g.gradient_energy[..., n]**2 + 0.5 * (gkk * ex * ex - 2 * gkx * ex * ek
                                                          + gxx * ek * ek) + w2
        assert np.abs(mc.C2[2][..., n] - fpp).max() < 1e-8 * np.abs(fpp).max()
        assert np.abs(mc.C2[3][..., n] - w3).max() < 1e-8 * np.abs(w3).max()
        A = positional_shift(g, n, threeband=True)
        Om1 = np.real(_dspec(A[..., 0], hk, 1) - _dspec(A[..., 1], hx, 0))
        assert np.abs(mc.C2[0][..., n] - Om1).max() < 1e-5 * np.abs(Om1).max()
        if g.energy.shape[-1] > 2:  # the three-band term of A′ is needed (measured 28–51 %)
            A2 = positional_shift(g, n, threeband=False)
            Om2 = np.real(_dspec(A2[..., 0], hk, 1) - _dspec(A2[..., 1], hx, 0))
            assert np.abs(mc.C2[0][..., n] - Om2).max() > 0.1 * np.abs(Om1).max()


def test_two_band_energy_is_the_closed_form():
    """ε⁽²⁾_c of the engine = (i) + (ii) + (iii) + (iv) of physics.md §4.5 (Rice–Mele ring)."""
    pm = rice_mele_ring(L)
    x, k = mesh()
    g, mc = geometry(pm, x, k), moyal_coefficients(pm, x, k)
    hx, hk = x[1] - x[0], k[1] - k[0]
    terms = {"E2_quadrupole", "E2_bcp", "E2_curv2", "E2_metric_laplacian"}
    for n in (0, 1):
        gxx, gkx, gkk = (g.metric[..., n, a, b] for a, b in ((0, 0), (1, 0), (1, 1)))
        lap = np.real(_dspec(gkk, hx, 0, 2) - 2 * _dspec(_dspec(gkx, hx, 0), hk, 1)
                      + _dspec(gxx, hk, 1, 2))
        closed = second_order_energy(g, n, terms, lap)
        assert np.abs(mc.eps2_c[..., n] - closed).max() < 2e-5 * np.abs(closed).max()


class Trimer2D(Trimer):
    """Stacked trimer chains coupled along y: d2 += 0.4 cos k_y and t13 += 0.25 sin k_y (so each
    k_y is a different three-band chain, eigenvectors included); lattice 1 Å × 1 Å."""

    name, dim = "trimer2d", 2

    @property
    def lattice(self):
        return np.eye(2)

    def _parts2(self, k, p):
        k = np.asarray(k, float)
        ky = k[..., 1]
        H, te = self._parts(k[..., :1], p)
        H = H + 0.0 * ky[..., None, None]
        H[..., 1, 1] += 0.4 * np.cos(ky)
        H[..., 0, 2] += 0.25 * np.sin(ky)
        H[..., 2, 0] = np.conj(H[..., 0, 2])
        return H, te, ky

    def hamiltonian(self, k, p=None):
        return self._parts2(k, self.p(p))[0]

    def dh_dk(self, k, p=None):
        H, te, ky = self._parts2(k, self.p(p))
        d = np.zeros(H.shape[:-2] + (2, 3, 3), complex)
        d[..., 0, 0, 2] = -1j * te
        d[..., 0, 2, 0] = np.conj(d[..., 0, 0, 2])
        d[..., 1, 1, 1] = -0.4 * np.sin(ky)
        d[..., 1, 0, 2] = d[..., 1, 2, 0] = 0.25 * np.cos(ky)
        return d

    def d2h_dk2(self, k, p=None):
        H, te, ky = self._parts2(k, self.p(p))
        d = np.zeros(H.shape[:-2] + (2, 2, 3, 3), complex)
        d[..., 0, 0, 0, 2] = -te
        d[..., 0, 0, 2, 0] = np.conj(d[..., 0, 0, 0, 2])
        d[..., 1, 1, 1, 1] = -0.4 * np.cos(ky)
        d[..., 1, 1, 0, 2] = d[..., 1, 1, 2, 0] = -0.25 * np.sin(ky)
        return d


def trimer2d_texture(period):
    s = lambda a, ph=0.0: Sine(0.0, a, float(period), ph)  # noqa: E731
    return texture(Trimer2D(), {"d1": -1.0 + s(0.3), "t12": 0.8 + s(0.2, 1.0),
                                "t": 0.6 + s(0.15, 2.0)})


def test_trimer2d_derivatives_are_consistent():
    """The analytic k-derivatives of the test model against central differences."""
    m, k, h = Trimer2D(), np.array([[0.3, -0.7], [1.1, 2.0]]), 1e-5
    for a in range(2):
        e = np.zeros(2)
        e[a] = h
        fd = (m.hamiltonian(k + e) - m.hamiltonian(k - e)) / (2 * h)
        assert np.abs(fd - m.dh_dk(k)[..., a, :, :]).max() < 1e-8
        fd2 = (m.dh_dk(k + e) - m.dh_dk(k - e)) / (2 * h)
        assert np.abs(fd2 - m.d2h_dk2(k)[..., a, :, :, :]).max() < 1e-8
