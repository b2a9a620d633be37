"""Second-order (quantum-metric) terms in the phase-space solver against exact diagonalization.

V10: the winding Rice–Mele ring. The solver's equilibrium density (well-balanced scheme, so the
steady state is exactly f_FD(ε̃)) with first-order terms misses the exact midpoint-rule lattice
density by O(L⁻²); adding the positional shift A′ (A2_shift_texture, physics.md §4.2) through
Ω′_kx in D_c leaves O(L⁻³). The exact densities come from kinetic.reference (dense ED).
"""
import numpy as np
import pytest

from kinetic.models.texture import rice_mele_ring
from kinetic.observables import density
from kinetic.problem import Physics, Problem
from kinetic.reference import ring_density
from kinetic.semiclassics import FIRST_ORDER
from kinetic.solvers import Transport

pytestmark = pytest.mark.usefixtures("petsc")


@pytest.fixture
def petsc():
    from petsc4py import PETSc

    return PETSc


def solver_density(L, terms, nk=256):
    ph = Physics(mu=0.0, kT=0.005, tau=10.0, E=(0.0,), terms=frozenset(terms), bands=(0,))
    # cell centres at the lattice sites x_R = R (physics.md §1.1, midpoint rule)
    p = Problem("1x1k", rice_mele_ring(L), (L, nk), ph, x_range=(-0.5, L - 0.5))
    f, _ = Transport(p).steady()
    return density(p, f)


@pytest.fixture(scope="module")
def residuals():
    out = {}
    for L in (64, 128, 256):
        exact = ring_density(rice_mele_ring(L), L).n
        first = solver_density(L, FIRST_ORDER)
        second = solver_density(L, FIRST_ORDER + ("A2_shift_texture", "A2_threeband"))
        out[L] = (np.abs(first - exact).max(), np.abs(second - exact).max(),
                  np.abs(second - first).max(), second)
    return out


def test_v10_solver_is_the_semiclassical_density(residuals):
    """The solver's steady density with A′ is 1 + n1 + n2 of ``kinetic.reference`` (Ω_kx and
    −∂_x∫A′_k summed over k, spectral in x: a second implementation of the same expansion) at
    L = 256: measured 6.2e-12 of max|n2|. The remaining ED residual (~0.1 max|n2|, the xfail in
    test_reference.py) is therefore the third-order term, not the solver."""
    from kinetic.reference import ring_first_order_density, ring_second_order_density

    L = 256
    pm = rice_mele_ring(L)
    n1, n2 = ring_first_order_density(pm, L, 256), ring_second_order_density(pm, L, 256)
    err = np.abs(residuals[L][3] - 1 - n1 - n2).max() / np.abs(n2).max()
    print(f"\nV10 L = 256: max|n_solver − 1 − n1 − n2| / max|n2| = {err:.2e}")
    assert err < 1e-9


def test_v10_first_order_residual_scales_as_L_minus_2(residuals):
    p = np.polyfit(np.log([64, 128, 256]), np.log([residuals[L][0] for L in (64, 128, 256)]), 1)[0]
    assert -2.2 < p < -1.8


def test_v10_positional_shift_leaves_L_minus_3(residuals):
    r = [residuals[L][1] for L in (64, 128, 256)]
    p = np.polyfit(np.log([64, 128, 256]), np.log(r), 1)[0]
    assert -3.2 < p < -2.7
    # at L = 256 the remaining third-order residual is ~0.1 max|n2| (measured: residual·L³ ≈ 280;
    # physics.md's "two orders of magnitude below max|n2|" is not what exact diagonalization gives)
    assert residuals[256][1] < 0.12 * residuals[256][2]


def test_total_charge_unchanged_by_second_order():
    """Ω′ is a curl: Σ_x n is still N + C_xk = L − 1 exactly."""
    L = 48
    n = solver_density(L, FIRST_ORDER + ("A2_shift_texture",), nk=128)
    assert n.sum() == pytest.approx(L - 1, abs=1e-9)


def test_metric_gradient_and_quadrupole_cancel_in_insulator():
    """physics.md §6.1: in a filled band −∇·P^(g) + ½∂∂Q = 0, so switching on A″ together with
    the quadrupole density leaves the insulator density unchanged (to round-off), while Ω″ itself
    is not zero; the total charge stays N + C."""
    L = 48
    base = FIRST_ORDER + ("A2_shift_texture",)
    n_a = solver_density(L, base, nk=128)
    n_b = solver_density(L, base + ("A2_metric_gradient", "obs_quadrupole"), nk=128)
    assert np.abs(n_b - n_a).max() < 1e-12
    p = Problem("1x1k", rice_mele_ring(L), (L, 128),
                Physics(mu=0.0, kT=0.005, tau=10.0, E=(0.0,), bands=(0,),
                        terms=frozenset(base + ("A2_metric_gradient", "obs_quadrupole"))),
                x_range=(-0.5, L - 0.5))
    p0 = Problem("1x1k", rice_mele_ring(L), (L, 128),
                 Physics(mu=0.0, kT=0.005, tau=10.0, E=(0.0,), bands=(0,), terms=frozenset(base)),
                 x_range=(-0.5, L - 0.5))
    dOmega = p.D - p0.D  # the cell averages of Ω″
    assert np.abs(dOmega).max() > 1e-4
    assert abs(dOmega.sum()) < 1e-12 * np.abs(dOmega).sum()


def test_metric_gradient_in_a_metal_is_a_real_density():
    """In a metal A″ and the quadrupole do not cancel (Fermi-surface terms, physics.md §6.1); at
    fixed μ the quadrupole moves no charge (a total x-derivative) while Ω″ changes the count by
    Σ Ω″ f (its phase-space integral vanishes only against a constant f)."""
    L = 48
    base = FIRST_ORDER + ("relax_to_corrected_energy", "A2_shift_texture")
    ph = lambda terms: Physics(mu=-0.35, kT=0.05, tau=10.0, E=(0.0,), bands=(0,),  # noqa: E731
                               terms=frozenset(terms))
    n = {}
    for key, terms in (("a", base), ("b", base + ("A2_metric_gradient", "obs_quadrupole"))):
        p = Problem("1x1k", rice_mele_ring(L), (L, 256), ph(terms), x_range=(-0.5, L - 0.5))
        f, _ = Transport(p).steady()
        n[key] = density(p, f)
    diff = n["b"] - n["a"]
    assert np.abs(diff).max() > 1e-7


@pytest.mark.parametrize("terms", [("A2_metric_gradient",), ("obs_quadrupole",)])
def test_consistency_rule_enforced(terms):
    from kinetic.errors import ConfigError

    with pytest.raises(ConfigError, match="switched on together"):
        solver_density(16, FIRST_ORDER + terms, nk=32)


def test_wigner_kirkwood_single_band_chain():
    """wk_correction against exact diagonalization: a tight-binding chain in V(x) = 0.5 sin(2πx/L)
    (one band: no Berry or metric terms, so the only O(L⁻²) correction to Thomas–Fermi is the
    Wigner–Kirkwood w₂f″ + w₃f‴ of physics.md §4.6). Thomas–Fermi misses by ∝ L⁻², with WK the
    residual falls ≈ L⁻⁴ (measured max|Δn|·L⁴ ≈ 10, 8.4 at L = 128, 256)."""
    from kinetic.models.catalogue import get_model
    from kinetic.models.texture import Sine, texture

    mu, kT = -0.6, 0.08
    res = {}
    for L in (64, 128, 256):
        pm = texture(get_model("cosine1d"), {"e0": Sine(mean=0.0, amplitude=0.5, period=float(L))})
        exact = ring_density(pm, L, mu=mu, kT=kT).n
        for terms in ((), ("wk_correction",)):
            p = Problem("1x1k", pm, (L, 512), Physics(mu=mu, kT=kT, tau=10.0, E=(0.0,),
                                                      terms=frozenset(terms)),
                        x_range=(-0.5, L - 0.5))
            f, _ = Transport(p).steady()
            res[(L, terms)] = np.abs(density(p, f) - exact).max()
    tf = [res[(L, ())] for L in (64, 128, 256)]
    wk = [res[(L, ("wk_correction",))] for L in (128, 256)]
    assert -2.2 < np.polyfit(np.log([64, 128, 256]), np.log(tf), 1)[0] < -1.8
    assert np.log2(wk[0] / wk[1]) > 3.5
    assert wk[1] < 1e-3 * tf[2]


ALL_SECOND = ("relax_to_corrected_energy", "A2_shift_texture", "A2_threeband", "A2_metric_gradient",
              "obs_quadrupole", "E2_quadrupole", "E2_bcp", "E2_curv2", "E2_metric_laplacian",
              "wk_correction")


def metal_residuals(L, nk=256):
    """V11: max|n_solver − n_exact| for the Rice–Mele ring metal (μ = −0.9, k_BT = 0.08), first
    order vs the complete two-band second-order c-frame theory (+ Wigner–Kirkwood)."""
    mu, kT = -0.9, 0.08
    exact = ring_density(rice_mele_ring(L), L, mu=mu, kT=kT).n
    out = []
    for terms in (FIRST_ORDER + ("relax_to_corrected_energy",), FIRST_ORDER + ALL_SECOND):
        p = Problem("1x1k", rice_mele_ring(L), (L, nk),
                    Physics(mu=mu, kT=kT, tau=10.0, E=(0.0,), terms=frozenset(terms)),
                    x_range=(-0.5, L - 0.5))
        f, _ = Transport(p).steady()
        out.append(np.abs(density(p, f) - exact).max())
    return out


@pytest.mark.slow
def test_v11_metal_residual_scaling():
    """Measured max|Δn|·L²: first order 30.2, 39.7, 43.8 (→ L⁻²); all second-order terms 26.4,
    18.2, 8.8 for L = 64, 128, 256 (→ L⁻³; physics.md V11 quotes 31.5, 23.2, 11.7)."""
    r = {L: metal_residuals(L) for L in (64, 128, 256)}
    assert 1.8 < np.log2(r[128][0] / r[256][0]) < 2.2
    assert np.log2(r[128][1] / r[256][1]) > 2.8


def test_field_part_of_positional_shift_equals_potential_in_H():
    """A2_shift_field: A′ with the transport field E (kept out of H in the solver) equals A′ of the
    texture with V = E·x put into H — both components, incl. the mixed-BCP A′_x = G^GYN_xk E."""
    from kinetic.models.texture import Linear, ParamTexture

    L, E = 32, 0.01
    ring = rice_mele_ring(L)
    terms = frozenset(FIRST_ORDER + ("A2_shift_texture", "A2_shift_field"))
    p1 = Problem("1x1k", ring, (L, 64), Physics(mu=0.0, kT=0.05, tau=5.0, E=(E,), terms=terms),
                 x_range=(-0.5, L - 0.5))
    prof = dict(ring.profiles)
    prof["V"] = prof["V"] + Linear(value=0.0, slope=E)
    with_V = ParamTexture(ring.model, prof, dim_x=1)
    p2 = Problem("1x1k", with_V, (L, 64),
                 Physics(mu=0.0, kT=0.05, tau=5.0, E=(0.0,),
                         terms=frozenset(FIRST_ORDER + ("A2_shift_texture",))),
                 x_range=(-0.5, L - 0.5))
    p0 = Problem("1x1k", ring, (L, 64),
                 Physics(mu=0.0, kT=0.05, tau=5.0, E=(E,),
                         terms=frozenset(FIRST_ORDER + ("A2_shift_texture",))),
                 x_range=(-0.5, L - 0.5))
    assert np.abs(p1.D - p0.D).max() > 1e-6  # the field part is not negligible
    assert np.allclose(p1.D, p2.D, rtol=0, atol=1e-12)


def test_v11_metal_second_order_converges_faster():
    """Between L = 64 and 128 the full second-order residual falls faster than L⁻² (measured
    exponent 2.5) while first order falls as ≈ L⁻¹·⁶ there (pre-asymptotic L⁻²)."""
    r64, r128 = metal_residuals(64), metal_residuals(128)
    assert np.log2(r64[1] / r128[1]) > 2.3


# ------------------------------------------------------------------ V12: helical Hall slope (1x2k)
def helical_sigma_yx(mu, q, tau, terms, kT=0.1, nx=8, nk=64, E=1e-4):
    """σ_yx (e²/ħ) of the helical texture from 1x2k steady states: (j_y[E] − j_y[0])/E_x."""
    from kinetic.models.catalogue import get_model
    from kinetic.models.texture import helical
    from kinetic.observables import number_current, total

    H0 = get_model("qwz_helical", q=0.0)
    L = 2 * np.pi / abs(q)  # one texture period: U(x + L) = −U(x) leaves H periodic
    p = Problem("1x2k", helical(H0, q, H0.Sigma), (nx, nk, nk),
                Physics(mu=mu, kT=kT, tau=tau, E=(E,), terms=frozenset(terms)),
                x_range=(0.0, L))
    tr = Transport(p)
    j = [-np.asarray(total(p, number_current(tr, tr.steady(E=(e,))[0], E=(e,)))) / L
         for e in (E, 0.0)]
    return (j[0][1] - j[1][1]) / E


def helical_solver_slope(mu, terms, qs=(0.1, 0.05), taus=(2.5, 5.0)):
    """τ⁰ part (linear in τ: 2σ(τ1) − σ(τ2), τ2 = 2τ1) of dσ_yx/dq by symmetric differences at
    q and q/2, Richardson-extrapolated in q² to q → 0."""
    D = {}
    for q in qs:
        s = [(helical_sigma_yx(mu, q, t, terms) - helical_sigma_yx(mu, -q, t, terms)) / (2 * q)
             for t in taus]
        D[q] = 2 * s[0] - s[1]
    return (4 * D[qs[1]] - D[qs[0]]) / 3


@pytest.mark.parametrize("mu", [-1.25, 1.0])
def test_v12_solver_hall_slope_needs_the_mixed_metric(mu):
    """V12 through the phase-space solver (1x2k, k_y folded): the τ⁰ Hall slope dσ_yx/dq of
    the helical texture equals the exact slope of the gauge-equivalent homogeneous model
    (σ_yx = −σ_xy) only with the second-order connections A′ (positional shift) and A″
    (metric gradient); the first-order theory misses it by 7–35 % (here 10.2 % and 7.3 %) and
    reproduces its own k-space value −A = ∫f′Δε⁽¹⁾Ω_z. Measured (μ = −1.25, 1.0): second order
    3.5e-7, 5.4e-6 relative to exact; first order 4.4e-6, 2.1e-6 relative to −A."""
    from kinetic.reference import helical_exact_slope, helical_hall_slope

    kT = 0.1
    exact = -helical_exact_slope(mu, kT, 160)  # σ_yx slope
    parts = helical_hall_slope(mu, kT, 160)
    base = FIRST_ORDER + ("relax_to_corrected_energy",)
    second = helical_solver_slope(mu, base + ("A2_shift_texture", "A2_threeband",
                                              "A2_metric_gradient", "obs_quadrupole"))
    first = helical_solver_slope(mu, base)
    assert second == pytest.approx(exact, rel=1e-4)  # issue #5 asks 1e-3
    assert first == pytest.approx(-parts.A, rel=1e-4)
    miss = abs(first / exact - 1)
    assert 0.07 < miss < 0.35, miss


@pytest.mark.slow
def test_v12_slope_unchanged_by_the_quasi1d_energy_terms():
    """The quasi-1D ε⁽²⁾ (E2_*, per k_y) of the helical texture is O(q²): with it on, the τ⁰ Hall
    slope still equals the exact one (measured 3.9e-6 relative at μ = −1.25 eV, 3.5e-7 without)."""
    from kinetic.reference import helical_exact_slope

    base = FIRST_ORDER + ("relax_to_corrected_energy", "A2_shift_texture", "A2_threeband",
                          "A2_metric_gradient", "obs_quadrupole")
    s = helical_solver_slope(-1.25, base + ("E2_quadrupole", "E2_bcp", "E2_curv2",
                                            "E2_metric_laplacian"))
    assert s == pytest.approx(-helical_exact_slope(-1.25, 0.1, 160), rel=1e-4)


ALL_TEXTURE_SECOND = ("relax_to_corrected_energy", "A2_shift_texture", "A2_threeband",
                      "A2_metric_gradient", "obs_quadrupole", "E2_quadrupole", "E2_bcp", "E2_curv2",
                      "E2_metric_laplacian")


def _v14_problem(layout, E=0.0, tau=10.0):
    from kinetic.models.catalogue import get_model
    from kinetic.models.texture import Sine, texture

    if layout == "1x1k":
        terms = FIRST_ORDER + ALL_TEXTURE_SECOND
        ph = Physics(mu=-0.1, kT=0.05, tau=tau, E=(E,), terms=frozenset(terms))
        return Problem("1x1k", rice_mele_ring(40), (40, 64), ph, x_range=(0.0, 40.0))
    ph = Physics(mu=0.3, kT=0.1, tau=tau, E=(E,), terms=frozenset(FIRST_ORDER + ALL_TEXTURE_SECOND))
    pm = texture(get_model("qwz", M=1.0), {"M": Sine(mean=1.0, amplitude=0.3, period=24.0)})
    return Problem("1x2k", pm, (24, 24, 16), ph, x_range=(0.0, 24.0))


@pytest.mark.parametrize("layout", ["1x1k", "1x2k"])
def test_v14_with_second_order_terms(layout):
    """V14 with every second-order term the layout implements: f_FD(ε̃_c) at uniform μ, T is
    stationary to round-off (well-balanced scheme) with zero x-current; collisionless transport
    in a field conserves the particle number Σ D_c f and the phase volume Σ D_c to 1e-12; D_c > 0."""
    from kinetic.observables import number_current, total

    p = _v14_problem(layout)
    tr = Transport(p)
    floc = p.field(p.f_loc)
    rhs = -tr.flux_divergence(floc, p.phys.E) + tr.source(p.phys.E)
    assert np.abs(rhs).max() < 1e-13
    f, _ = tr.steady()
    assert np.abs(p.mesh.local_view(f) - p.f_loc).max() < 1e-11
    jx = np.asarray(number_current(tr, floc))  # the equilibrium carries no x-current
    # measured 1.5e-16 / 9.8e-17 (with ∂a∂bσ_ab of E2_metric_laplacian differentiated on the
    # mesh; its former δ = 2e-3 point differences left ε·g/δ² ≈ 3e-12)
    assert np.abs(jx if layout == "1x1k" else jx[:, 0]).max() < 1e-14
    q = _v14_problem(layout, E=0.02, tau=1e12)
    g = q.field(q.f_loc)
    n0, vol0 = total(q, density(q, g)), float(np.sum(q.D))
    rec = []
    Transport(q).transient(g, 5.0, ts_type="ssp",
                           monitor=lambda i, t, u: rec.append(total(q, density(q, u))))
    assert len(rec) > 5 and np.max(np.abs(np.array(rec) - n0)) < 1e-12 * abs(n0)
    assert float(np.sum(q.D)) == vol0 and np.all(q.D > 0)


def test_too_coarse_x_mesh_is_refused_for_second_order_terms():
    """The second-order texture terms take x-derivatives on the mesh: a ring of 12 cells per
    period (≈ 7.2 cells per 2πℓ of its harmonics) is refused with the n needed; 24 is accepted."""
    from kinetic.errors import ConfigError

    terms = frozenset(FIRST_ORDER + ("A2_shift_texture",))
    ph = Physics(mu=0.0, kT=0.01, tau=10.0, E=(0.0,), terms=terms)
    with pytest.raises(ConfigError, match=r"mesh.x.n = 12 is too coarse.*ring needs at least 8: "
                       r"use mesh.x.n ≥ 14"):
        Problem("1x1k", rice_mele_ring(12), (12, 32), ph, x_range=(0.0, 12.0))
    Problem("1x1k", rice_mele_ring(24), (24, 32), ph, x_range=(0.0, 24.0))
    # first-order terms only take no x-derivatives on the mesh: no check
    Problem("1x1k", rice_mele_ring(16), (16, 32),
            Physics(mu=0.0, kT=0.01, tau=10.0, E=(0.0,), terms=frozenset(FIRST_ORDER)),
            x_range=(0.0, 16.0))


# ------------------------------------------------------------------ quasi-1D (1x2k) second order
def quasi1d_residuals(L, nky=6, mu=-1.0, kT=0.1):
    """max|n_solver − n_exact| for a QWZ mass texture M(x) in 1x2k: each k_y is a 1D ring of the
    midpoint-rule lattice (``ring_density(..., k_perp=(k_y,))``, the solver's k_y points),
    first order vs every second-order term incl. the quasi-1D ε⁽²⁾ and Wigner–Kirkwood per k_y
    (physics.md §4.5: "quasi-1D, each transverse momentum treated as a parameter [V]")."""
    from kinetic.models.catalogue import get_model
    from kinetic.models.texture import Sine, texture

    pm = texture(get_model("qwz", M=1.0), {"M": Sine(mean=1.0, amplitude=0.4, period=float(L))})
    out, exact = [], None
    for terms in (FIRST_ORDER + ("relax_to_corrected_energy",), FIRST_ORDER + ALL_SECOND):
        p = Problem("1x2k", pm, (L, 128, nky),
                    Physics(mu=mu, kT=kT, tau=10.0, E=(0.0,), terms=frozenset(terms)),
                    x_range=(-0.5, L - 0.5))
        f, _ = Transport(p).steady()
        if exact is None:
            exact = sum(ring_density(pm, L, mu=mu, kT=kT, k_perp=(ky,)).n
                        for ky in p.ky) * p._ky_axis.h / (2 * np.pi)
        out.append(np.abs(density(p, f) - exact).max())
    return out


def test_quasi1d_metal_second_order_converges_faster():
    """1x2k metal: residual·L² = 0.67, 1.01 (first order, → L⁻²) and 0.53, 0.19 (all second-order
    terms) at L = 32, 64; 1.09 and 0.057 at L = 128 (slow test): the second-order residual falls
    as ≈ L⁻³·⁵."""
    r32, r64 = quasi1d_residuals(32), quasi1d_residuals(64)
    assert np.log2(r32[1] / r64[1]) > 3.0
    assert np.log2(r32[0] / r64[0]) < 2.0
    assert r64[1] < 0.25 * r64[0]


@pytest.mark.slow
def test_quasi1d_metal_residual_scaling():
    r64, r128 = quasi1d_residuals(64), quasi1d_residuals(128)
    assert 1.7 < np.log2(r64[0] / r128[0]) < 2.3  # measured 1.89
    assert np.log2(r64[1] / r128[1]) > 3.0


HELICAL_RUN = '''
[model]
name = "qwz_helical"
params = {{ q = 0.0 }}
[texture]
builtin = "helical"
args = {{ q = {q} }}
[mesh]
k = [64, 64]
x = {{ n = 8, length = {length} }}
[physics]
temperature = 1160.4518            # K: k_BT = 0.1 eV
tau = 3.2910597845                 # fs: 5 ħ/eV
mu = -1.25
electric_field = [1.0e6, 0.0]
terms = ["berry_kk", "berry_kx", "berry_xx", "E1_gradient", "relax_to_corrected_energy",
         "A2_shift_texture", "A2_threeband", "A2_metric_gradient", "obs_quadrupole"]
[output]
texture_hall = true
'''


def test_v12_through_kinetic_run_texture_hall(tmp_path):
    """`[output] texture_hall = true`: the τ⁰ σ_yx (quadratic in τ over τ, τ/2, τ/4,
    magnetization current subtracted) of `kinetic run` for the helical builtin at q = ±0.1, ±0.05; the symmetric
    differences, Richardson-extrapolated in q², give the exact V12 slope (S, via e²/ħ).
    Measured: the q = 0.05 difference alone is 1.1e-3 low (its q² error)."""
    from kinetic import units
    from kinetic.reference import helical_exact_slope
    from kinetic.run import run

    sig = {}
    for q in (0.1, -0.1, 0.05, -0.05):
        p = tmp_path / f"h{q}.toml"
        p.write_text(HELICAL_RUN.format(q=q, length=repr(2 * np.pi / abs(q))))
        s = run(p, out=tmp_path / f"o{q}", say=lambda m: None)
        o = s["observables"]
        assert o["texture_hall_sigma_yx_tau0"]["unit"] == "S"
        assert o["texture_hall_sigma_yx_tau0_e2h"]["value"] == pytest.approx(
            o["texture_hall_sigma_yx_tau0"]["value"] / (units.E2_HBAR / (2 * np.pi)), rel=1e-12)
        sig[q] = o["texture_hall_sigma_yx_tau0"]["value"] / units.E2_HBAR
    D = {q: (sig[q] - sig[-q]) / (2 * q) for q in (0.1, 0.05)}
    slope = (4 * D[0.05] - D[0.1]) / 3
    assert slope == pytest.approx(-helical_exact_slope(-1.25, 0.1, 160), rel=1e-4)
    z = np.load(tmp_path / "o0.05" / "fields.npz")
    assert z["sigma_yx_tau0"].shape == (8,) and "S" in str(z["units"])


@pytest.mark.parametrize("edit,msg", [
    (("length = 62.83185307179586", "length = 60.0"), "one periodic period"),
    (('name = "qwz_helical"', 'name = "qwz"'), "rotation generator"),
    (("args = { q = 0.1 }", "args = { }"), "texture.args.q"),
    (("electric_field = [1.0e6, 0.0]", "electric_field = [0.0, 0.0]"), "output.texture_hall"),
    (("[output]", '[solver]\nmode = "transient"\nt_end = 1.0\n[output]'), "output.texture_hall"),
])
def test_bad_texture_hall_run_files(tmp_path, capsys, edit, msg):
    from kinetic.cli import main

    text = HELICAL_RUN.format(q=0.1, length=repr(2 * np.pi / 0.1)).replace("k = [64, 64]",
                                                                             "k = [8, 8]")
    assert edit[0] in text
    p = tmp_path / "h.toml"
    p.write_text(text.replace(*edit).replace('name = "qwz"\nparams = { q = 0.0 }',
                                             'name = "qwz"'))
    assert main(["run", str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and msg in err[0], err
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ N > 2 bands: Moyal engine
def trimer_residuals(L, mu=0.2, kT=0.08):
    """max|n_solver − n_exact| for a three-band textured chain (test_moyal.Trimer) with μ in the
    middle band: first order; every second-order term (ε⁽²⁾ from the Moyal engine); and every
    term but the energy."""
    from test_moyal import trimer_ring

    pm = trimer_ring(L)
    exact = ring_density(pm, L, mu=mu, kT=kT).n
    no_energy = tuple(t for t in ALL_SECOND if not t.startswith("E2_"))
    out = []
    for terms in (("relax_to_corrected_energy",), ALL_SECOND, no_energy):
        p = Problem("1x1k", pm, (L, 128),
                    Physics(mu=mu, kT=kT, tau=10.0, E=(0.0,), terms=frozenset(FIRST_ORDER + terms)),
                    x_range=(-0.5, L - 0.5))
        f, _ = Transport(p).steady()
        out.append(np.abs(density(p, f) - exact).max())
    return out


def test_three_band_metal_needs_the_moyal_energy():
    """N = 3 (no closed forms): residual·L² 1.01, 1.03 at first order, 0.38, 0.32 with A′
    (three-band term), A″, quadrupole and WK but no ε⁽²⁾ — still L⁻² — and 0.09, 0.04 with the
    engine's ε⁽²⁾_c for L = 32, 64 (1.02, 0.30, 0.02 at L = 128, slow test): only the complete
    second-order theory converges as ≈ L⁻³."""
    r32, r64 = trimer_residuals(32), trimer_residuals(64)
    assert np.log2(r32[1] / r64[1]) > 2.8  # measured 3.37
    assert np.log2(r32[0] / r64[0]) < 2.2 and np.log2(r32[2] / r64[2]) < 2.5
    assert r64[1] < 0.2 * r64[2] < 0.2 * r64[0]


@pytest.mark.slow
def test_three_band_metal_residual_scaling():
    r64, r128 = trimer_residuals(64), trimer_residuals(128)
    assert 1.8 < np.log2(r64[0] / r128[0]) < 2.2  # measured 2.01
    assert np.log2(r64[1] / r128[1]) > 2.8  # measured 3.00


@pytest.mark.parametrize("edit,msg", [
    ({"E": (0.01,)}, "electric_field ≠ 0"),
    ({"terms_drop": "E2_curv2"}, "one piece"),
    ({"boundary": "wall"}, "periodic 1x1k and 1x2k rings"),
])
def test_three_band_energy_refusals(edit, msg):
    from test_moyal import trimer_ring

    from kinetic.errors import ConfigError

    terms = set(FIRST_ORDER + ALL_SECOND) - {edit.get("terms_drop")}
    ph = Physics(mu=0.2, kT=0.08, tau=10.0, E=edit.get("E", (0.0,)), terms=frozenset(terms),
                 boundary=edit.get("boundary", "periodic"))
    with pytest.raises(ConfigError, match=msg):
        Problem("1x1k", trimer_ring(32), (32, 32), ph, x_range=(-0.5, 31.5))


def test_quasi1d_three_band_energy_is_the_engine_per_ky():
    """1x2k, N = 3: the cell energies with the E2 terms on minus those without are the engine's
    ε⁽²⁾_c of each k_y slice at the cell centres, in the k_y-major dof order."""
    from test_moyal import trimer2d_texture

    from kinetic.moyal import ky_slice, moyal_coefficients

    L, nk, nky = 16, 32, 2
    pm = trimer2d_texture(L)
    energy = ("E2_quadrupole", "E2_bcp", "E2_curv2", "E2_metric_laplacian")
    p = {}
    for key, terms in (("with", FIRST_ORDER + energy), ("without", FIRST_ORDER)):
        p[key] = Problem("1x2k", pm, (L, nk, nky),
                         Physics(mu=0.2, kT=0.08, tau=10.0, E=(0.0,), terms=frozenset(terms)),
                         x_range=(-0.5, L - 0.5))
    d = (p["with"].eps_cell - p["without"].eps_cell).reshape(nk, L, nky, 3)
    a1, a2 = p["with"].mesh.axes
    for j, ky in enumerate(p["with"].ky):
        e2 = moyal_coefficients(ky_slice(pm, ky), a1.centres(0, L), a2.centres(0, nk)).eps2_c
        assert np.abs(d[:, :, j] - e2.transpose(1, 0, 2)).max() < 1e-12
    assert np.abs(d).max() > 1e-4


def quasi1d_trimer_residuals(L, mu=0.2, kT=0.08, nky=4):
    from test_moyal import trimer2d_texture

    pm = trimer2d_texture(L)
    out, exact = [], None
    no_energy = tuple(t for t in ALL_SECOND if not t.startswith("E2_"))
    for terms in (("relax_to_corrected_energy",), ALL_SECOND, no_energy):
        p = Problem("1x2k", pm, (L, 128, nky),
                    Physics(mu=mu, kT=kT, tau=10.0, E=(0.0,), terms=frozenset(FIRST_ORDER + terms)),
                    x_range=(-0.5, L - 0.5))
        if exact is None:
            exact = sum(ring_density(pm, L, mu=mu, kT=kT, k_perp=(ky,)).n
                        for ky in p.ky) * p._ky_axis.h / (2 * np.pi)
        f, _ = Transport(p).steady()
        out.append(np.abs(density(p, f) - exact).max())
    return out


@pytest.mark.slow
def test_quasi1d_three_band_metal_needs_the_moyal_energy():
    """1x2k, three bands (Trimer2D texture), each k_y ring against exact diagonalization:
    residual·L² 0.57, 0.57 (first order), 0.21, 0.19 (no ε⁽²⁾), 0.05, 0.02 (every term, the
    engine's ε⁽²⁾ per k_y) for L = 32, 64."""
    r32, r64 = quasi1d_trimer_residuals(32), quasi1d_trimer_residuals(64)
    assert np.log2(r32[1] / r64[1]) > 2.8  # measured 3.20
    assert np.log2(r32[0] / r64[0]) < 2.2 and np.log2(r32[2] / r64[2]) < 2.5
