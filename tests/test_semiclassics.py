"""Semiclassical band fields: V15 (Gao–Yang–Niu limit), V13 (two B routes), Pfaffian density."""
import numpy as np
import pytest

from kinetic.geometry import band_geometry
from kinetic.models.catalogue import get_model
from kinetic.models.texture import homogeneous, landau_shift
from kinetic.semiclassics import (DEFAULT_TERMS, TERMS, check_terms, corrected_energy,
                                  curvature_blocks, field_bcp_energy, field_shift, pfaffian,
                                  phase_space_density, positional_shift)
from kinetic.errors import ConfigError

rng = np.random.default_rng(7)


def random_3band(k):
    """A generic 3-band H(k1, k2) with analytic dH/dk (independent of the catalogue)."""
    A = [rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3)) for _ in range(4)]
    A = [a + a.conj().T for a in A]
    r = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -2.0]])

    def H(k):
        ph = k @ r.T
        h = sum(np.cos(ph[..., j])[..., None, None] * A[j] for j in range(4))
        h = h + np.diag([0.0, 3.0, 6.0])
        dh = np.stack([sum(-r[j, i] * np.sin(ph[..., j])[..., None, None] * A[j] for j in range(4))
                       for i in range(2)], axis=-3)
        return h, dh

    return H(k)


@pytest.mark.parametrize("which", ["haldane", "random3"])
def test_v15_gao_yang_niu_limit(which):
    """H(k) + E·x: A′_k = G^GYN E, ε⁽²⁾ = −½ E·A′, and every texture block vanishes."""
    k = rng.uniform(-3, 3, size=(200, 2))
    E = np.array([0.013, -0.007])
    if which == "haldane":
        m = get_model("haldane", t1=1.0, t2=0.12, phi=0.9, M=0.3)
        H, dHk = m.hamiltonian(k), m.dh_dk(k)
    else:
        H, dHk = random_3band(k)
    nb = H.shape[-1]
    dHx = E[None, :, None, None] * np.eye(nb)  # ∂_x (E·x 1) = E_i 1
    dH = np.concatenate([np.broadcast_to(dHx, (len(k), 2, nb, nb)), dHk], axis=-3)
    g = band_geometry(H, dH, n_x=2)
    for band in range(nb):
        assert np.abs(g.bcp_R[:, band, :2, :]).max() < 1e-14  # G^R_{x·} = 0
        assert np.abs(g.metric[:, band, :2, :]).max() < 1e-14
        assert np.abs(g.gradient_energy[:, band]).max() < 1e-14
        Ap = positional_shift(g, band)
        assert np.allclose(Ap[:, 2:], field_shift(g, band, E), rtol=1e-11, atol=1e-15)
        assert np.abs(Ap[:, :2]).max() < 1e-14
        eps2 = field_bcp_energy(g, band, E)
        assert np.allclose(eps2, -0.5 * np.einsum("pi,i->p", Ap[:, 2:], E), rtol=1e-11, atol=1e-16)


def test_positional_shift_two_band_equals_GR_flow():
    """Two bands: A′_a = Σ_b G^R_ab Φ_b[ε̄] on a generic texture with d0 ≠ 0 (physics.md §4.2)."""
    from kinetic.models.texture import Sine, texture

    pm = texture(get_model("rice_mele", t3=0.3, phi3=0.7),
                 {"Delta": Sine(mean=0.4, amplitude=0.2, period=30.0),
                  "V": Sine(mean=0.0, amplitude=0.3, period=40.0, phase=0.3)}, dim_x=1)
    x = rng.uniform(0, 60, size=(300, 1))
    k = rng.uniform(-np.pi, np.pi, size=(300, 1))
    H, dH = pm.evaluate(x, k)
    g = band_geometry(H, dH, n_x=1)
    J = np.array([[0.0, 1.0], [-1.0, 0.0]])
    gbar = 0.5 * (g.velocity[..., 0] + g.velocity[..., 1])  # ∇ε̄ (P, 2)
    for band in (0, 1):
        expect = np.einsum("pab,pb->pa", g.bcp_R[:, band], gbar @ J.T)
        assert np.allclose(positional_shift(g, band), expect, rtol=1e-10, atol=1e-14)


def test_density_pfaffian_formulas():
    """D = Pf ω/Pf ω⁰ equals the explicit 1D and 2D expressions of physics.md §3.2."""
    n = 50
    kk2 = rng.normal(size=(n, 2, 2)) * 0.3
    kk2 = kk2 - np.swapaxes(kk2, 1, 2)
    kx2 = rng.normal(size=(n, 2, 2)) * 0.3
    xx2 = rng.normal(size=(n, 2, 2)) * 0.3
    xx2 = xx2 - np.swapaxes(xx2, 1, 2)
    B = 0.37
    D = phase_space_density(kk2, kx2, xx2, B)
    expect = ((1 + kx2[:, 0, 0]) * (1 + kx2[:, 1, 1]) - kx2[:, 1, 0] * kx2[:, 0, 1]
              - (xx2[:, 0, 1] - B) * kk2[:, 0, 1])
    assert np.allclose(D, expect, rtol=1e-13)
    kx1 = rng.normal(size=(n, 1, 1))
    z = np.zeros((n, 1, 1))
    assert np.allclose(phase_space_density(z, kx1, z), 1 + kx1[:, 0, 0], rtol=1e-14)
    # 6x6 Pfaffian: Pf² = det
    A = rng.normal(size=(n, 6, 6))
    A = A - np.swapaxes(A, 1, 2)
    assert np.allclose(pfaffian(A) ** 2, np.linalg.det(A), rtol=1e-10)


@pytest.mark.parametrize("B", [0.05, -0.11])
def test_v13_landau_texture_equals_explicit_B(B):
    """V13: texture route H0(k_x, k_y + Bx) and explicit route give the same D and ε̃ (1e-10)."""
    model = get_model("qwz", M=1.3)
    x = rng.uniform(-2, 2, size=(300, 1))
    k = rng.uniform(-np.pi, np.pi, size=(300, 2))
    H, dH = landau_shift(model, B).evaluate(x, k)
    gt = band_geometry(H, dH, n_x=1)
    kshift = k + np.stack([np.zeros(300), B * x[:, 0]], axis=-1)
    Hh, dHh = homogeneous(model).evaluate(np.zeros((300, 0)), kshift)
    gh = band_geometry(Hh, dHh, n_x=0)
    terms = check_terms(DEFAULT_TERMS)
    for band in (0, 1):
        Dt = phase_space_density(*curvature_blocks(gt, band, terms))
        Dh = phase_space_density(*curvature_blocks(gh, band, terms), B=B)
        assert np.allclose(Dt, Dh, rtol=0, atol=1e-10)
        et = corrected_energy(gt, band, terms)
        eh = corrected_energy(gh, band, terms, B=B)
        assert np.allclose(et, eh, rtol=0, atol=1e-10)


def test_toggles_off_reproduce_classical():
    """V14.5: every geometric toggle off → D = 1 and ε̃ = ε."""
    pm = landau_shift(get_model("haldane", M=0.2), 0.07)
    x = rng.uniform(-2, 2, size=(50, 1))
    k = rng.uniform(-3, 3, size=(50, 2))
    g = band_geometry(*pm.evaluate(x, k), n_x=1)
    D = phase_space_density(*curvature_blocks(g, 0, frozenset()), B=0.0)
    assert np.allclose(D, 1.0)
    assert np.array_equal(corrected_energy(g, 0, frozenset()), g.energy[:, 0])


def test_unknown_term_is_named():
    with pytest.raises(ConfigError, match="did you mean .E1_gradient."):
        check_terms(["E1_gradeint"])
    assert set(DEFAULT_TERMS) <= set(TERMS)


def test_scalar_B_is_Bz_in_3d():
    from kinetic.semiclassics import levi_civita_B

    np.testing.assert_array_equal(levi_civita_B(0.7, 3), levi_civita_B((0.0, 0.0, 0.7), 3))
    assert levi_civita_B(0.7, 3)[0, 1] == 0.7 and levi_civita_B(0.7, 3)[1, 2] == 0.0
