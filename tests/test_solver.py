"""The phase-space kinetic solver against exact answers (physics.md §3, §5, V9a, V14).

Independent answers: the Esaki–Tsu current of the exact Fourier steady state, collisionless
Bloch oscillations f(k, t) = f0(k + eEt/ħ), exponential relaxation, Thomas–Fermi densities
by quadrature, the Chern number of the (x, k) torus, particle conservation, the 2D Drude
magnetoconductivity of a parabolic band, and the k-space core's Drude/AHC integrals.
First-order upwind errors are checked through their convergence order and the Richardson
extrapolate, never by a loosened tolerance.
"""
import numpy as np
import pytest
from scipy import integrate as si

from kinetic.errors import ConfigError
from kinetic.models.catalogue import get_model
from kinetic.models.texture import Sine, rice_mele_ring, texture
from kinetic.observables import density, number_current, total
from kinetic.problem import Physics, Problem
from kinetic.solvers import Transport

pytestmark = pytest.mark.usefixtures("petsc")


@pytest.fixture
def petsc():
    from petsc4py import PETSc

    return PETSc


def fourier_cos(mu, kT, t=1.0):
    """a = ∫ dk/2π cos k f0(−2t cos k)."""
    return si.quad(lambda k: np.cos(k) / (1 + np.exp((-2 * t * np.cos(k) - mu) / kT)),
                   -np.pi, np.pi, epsabs=1e-14)[0] / (2 * np.pi)


def steady_current(N, E, tau, mu=-0.5, kT=0.2, comm=None):
    ph = Physics(mu=mu, kT=kT, tau=tau, E=(E,), terms=frozenset())
    p = Problem("0x1k", get_model("cosine1d", t=1.0), (N,), ph, comm=comm)
    tr = Transport(p)
    f, info = tr.steady()
    return total(p, number_current(tr, f)), total(p, density(p, f))


@pytest.mark.parametrize("wtau", [0.1, 1.0, 10.0])
def test_esaki_tsu_steady_current(wtau):
    """j_N = −2 t a ωτ/(1 + ω²τ²) with ω = eEa/ħ (exact steady state, all Fourier modes)."""
    tau, mu, kT = 10.0, -0.5, 0.2
    E = wtau / tau
    exact = -2 * fourier_cos(mu, kT) * wtau / (1 + wtau**2)
    j1, n1 = steady_current(1024, E, tau)
    j2, n2 = steady_current(2048, E, tau)
    e1, e2 = abs(j1 - exact), abs(j2 - exact)
    # first-order upwind: the error at least halves (at ωτ = 1 the O(h) term vanishes by symmetry
    # of ωτ/(1+ω²τ²) about its maximum, and the observed order is 2)
    assert np.log2(e1 / e2) > 0.85
    assert abs((2 * j2 - j1) - exact) < 2e-5 * abs(exact)  # Richardson
    assert n2 == pytest.approx(n1, rel=1e-12)  # the field does not change the density


@pytest.mark.parametrize("ts_type", ["ssp", "arkimex"])
def test_bloch_oscillations(ts_type):
    """Collisionless: j_N(t) = −2 t a sin(eEt/ħ): period 2πħ/(eEa), amplitude 2ta."""
    mu, kT, E = -0.5, 0.2, 0.1
    a = fourier_cos(mu, kT)
    errs, drift = [], []
    for N in (512, 1024):
        p = Problem("0x1k", get_model("cosine1d"), (N,),
                    Physics(mu=mu, kT=kT, tau=1e12, E=(E,), terms=frozenset()))
        rec = []
        tr = Transport(p)

        def mon(i, t, u):
            rec.append((t, total(p, number_current(tr, u)), total(p, density(p, u))))

        tr.transient(p.field(p.f_loc), 2 * np.pi / E, ts_type=ts_type, monitor=mon)
        t, j, n = map(np.array, zip(*rec))
        errs.append(np.max(np.abs(j + 2 * a * np.sin(E * t))) / (2 * abs(a)))
        drift.append(np.ptp(n) / n[0])
    # first-order upwind diffusion |u| h/2 damps the k-harmonic over one period by ≈ π h
    assert 0.9 < np.log2(errs[0] / errs[1]) < 1.1 and errs[1] < 1.1 * np.pi * (2 * np.pi / 1024)
    assert max(drift) < 1e-12


def test_relaxation_is_exponential():
    """No field: n(t) − n_eq = (n(0) − n_eq) e^{−t/τ} (ARKIMEX, implicit collisions)."""
    tau = 3.0
    p = Problem("0x1k", get_model("cosine1d"), (256,),
                Physics(mu=-0.5, kT=0.2, tau=tau, E=(0.0,), terms=frozenset()))
    from kinetic.operator import fermi

    f0 = p.field(fermi((p.eps_cell - (-0.2)) / 0.2))
    n_init = total(p, density(p, f0))
    n_eq = total(p, density(p, p.field(p.f_loc)))
    rec = []
    Transport(p).transient(f0, 2 * tau, ts_type="arkimex",
                           monitor=lambda i, t, u: rec.append((t, total(p, density(p, u)))))
    t, n = map(np.array, zip(*rec))
    assert np.allclose(n - n_eq, (n_init - n_eq) * np.exp(-t / tau), rtol=1e-5, atol=0)


def ring(L, nk, mu=0.0, kT=0.01, tau=10.0, E=0.0, **kw):
    ph = Physics(mu=mu, kT=kT, tau=tau, E=(E,), **kw)
    return Problem("1x1k", rice_mele_ring(L), (L, nk), ph, x_range=(0.0, float(L)))


def test_equilibrium_is_stationary_and_currentless():
    """V14.1: f_FD(ε̃) at uniform μ, T is stationary to round-off; the steady solve returns it."""
    p = ring(48, 64, mu=-0.1, kT=0.05)
    tr = Transport(p)
    floc = p.field(p.f_loc)
    rhs = -tr.flux_divergence(floc, p.phys.E) + tr.source(p.phys.E)
    assert np.abs(rhs).max() < 1e-14
    f, info = tr.steady()
    assert np.abs(p.mesh.local_view(f) - p.f_loc).max() < 1e-12
    assert np.abs(number_current(tr, f)).max() < 1e-13


def test_goldstone_wilczek_charge_of_winding_ring():
    """V10/V9a: the filled lower band of the winding Rice–Mele ring holds N + C_xk, C_xk = −1."""
    L = 64
    p = ring(L, 128, mu=0.0, kT=0.01)
    f, _ = Transport(p).steady()
    n = density(p, f)
    charge = total(p, n - 1.0)  # Σ_x Δx (n(x) − 1)
    assert charge == pytest.approx(-1.0, abs=1e-6)


def test_thomas_fermi_density_in_a_potential():
    """Metal in V(x): steady n(x) = ∫dk/2π f_FD(ε(k) + V(x) − μ) (quadrature), j = 0."""
    L, mu, kT = 40.0, -0.4, 0.1
    pm = texture(get_model("cosine1d"), {"e0": Sine(mean=0.0, amplitude=0.3, period=L)})
    p = Problem("1x1k", pm, (40, 256), Physics(mu=mu, kT=kT, tau=5.0, E=(0.0,)),
                x_range=(0.0, L))
    tr = Transport(p)
    f, _ = tr.steady()
    x = p.mesh.axes[0].centres(p.mesh.s1, p.mesh.e1)
    V = 0.3 * np.sin(2 * np.pi * x / L)
    exact = [si.quad(lambda k: 1 / (1 + np.exp((-2 * np.cos(k) + v - mu) / kT)), -np.pi, np.pi,
                     epsabs=1e-14)[0] / (2 * np.pi) for v in V]
    assert np.allclose(density(p, f), exact, rtol=1e-10)
    assert np.abs(number_current(tr, f)).max() < 1e-13


def test_collisionless_transport_conserves_particles_and_phase_volume():
    """V14.2/3: ∫ D f and ∫ D conserved to round-off with a field on the textured ring."""
    p = ring(32, 48, mu=0.0, kT=0.05, tau=1e12, E=0.02)
    f = p.field(p.f_loc)
    n0 = total(p, density(p, f))
    rec = []
    Transport(p).transient(f, 20.0, ts_type="ssp",
                           monitor=lambda i, t, u: rec.append(total(p, density(p, u))))
    assert len(rec) > 10
    assert np.max(np.abs(np.array(rec) - n0)) < 1e-12 * n0


def test_homogeneous_limit_matches_kspace_tables():
    """0x2k QWZ metal, weak E_x: σ_xx = Drude table, σ_yx = −(AHC table σ_xy) (Richardson)."""
    from kinetic.kmesh import make_kmesh
    from kinetic.table import integrate_mesh

    model = get_model("qwz", M=1.0)
    mu, kT, tau, E = 1.2, 0.15, 8.0, 1e-4
    sig = []
    for N in (96, 192):
        p = Problem("0x2k", model, (N, N), Physics(mu=mu, kT=kT, tau=tau, E=(E, 0.0),
                                                   terms=frozenset(["berry_kk"])))
        tr = Transport(p)
        f, _ = tr.steady()
        j = -total(p, number_current(tr, f))  # charge current, e = 1
        sig.append(j / E)
    sig = 2 * sig[1] - sig[0]
    mesh = make_kmesh([192, 192], model.reciprocal)
    ref = integrate_mesh(model, mesh, ["drude", "ahc"], [mu], kT, 0.0, check=False)
    assert sig[0] == pytest.approx(ref[("drude", "xx")][0] * tau, rel=2e-3)
    assert sig[1] == pytest.approx(-ref[("ahc", "xy")][0], rel=2e-3)


def test_drude_magnetotransport_parabolic_band():
    """Electrons (charge −e), B ∥ +z: σ_xx = σ0/(1+(ω_cτ)²), σ_yx = +σ0 ω_cτ/(1+(ω_cτ)²), ω_c = eB/m.

    (From m v̇ = −e(E + v×B) − m v/τ with j = −n e v.) Parabolic band ε = k², box |k| ≤ 1.3
    where f_FD < e^{-20}; Richardson over N = 128, 256.
    """
    from kinetic.models.catalogue import HBAR2_2ME

    model = get_model("parabolic2d", m_eff=HBAR2_2ME)  # ε = k² (eV Å²), i.e. m = 1/2 (ħ = 1)
    m, mu, kT, tau, E = 0.5, 0.5, 0.05, 4.0, 1e-4
    K = 1.3
    out = {}
    for B in (0.0, 0.125):
        vals = []
        for N in (128, 256):
            p = Problem("0x2k", model, (N, N), Physics(mu=mu, kT=kT, tau=tau, E=(E, 0.0), B=B,
                                                       terms=frozenset()),
                        k_range=((-K, K), (-K, K)))
            tr = Transport(p)
            f, _ = tr.steady()
            vals.append(-total(p, number_current(tr, f)) / E)
        out[B] = 2 * vals[1] - vals[0]
    n = m / (2 * np.pi) * kT * np.log1p(np.exp(mu / kT))
    s0 = n * tau / m
    assert out[0.0][0] == pytest.approx(s0, rel=2e-3)
    wt = 0.125 / m * tau
    assert out[0.125][0] == pytest.approx(s0 / (1 + wt**2), rel=5e-3)
    assert out[0.125][1] == pytest.approx(s0 * wt / (1 + wt**2), rel=5e-3)


def test_number_conserving_relaxation():
    """V14.2: with μ(x, t) fixed by the local density, Σ D f is conserved to round-off while a
    fixed-μ relaxation changes it; local_equilibrium matches every column's density."""
    drift = {}
    for nc in (True, False):
        ph = Physics(mu=0.2, kT=0.1, tau=2.0, E=(0.05,), number_conserving=nc)
        p = Problem("1x1k", rice_mele_ring(24), (24, 48), ph, x_range=(0.0, 24.0))
        from kinetic.operator import fermi

        f0 = fermi((p.eps_cell - 0.35) / 0.1)  # start away from the relaxation target
        tr = Transport(p)
        n0 = total(p, density(p, p.field(f0)))
        rec = []
        f = p.field(f0)
        tr.transient(f, 4.0, ts_type="ssp",
                     monitor=lambda i, t, u: rec.append(total(p, density(p, u))))
        drift[nc] = np.max(np.abs(np.array(rec) - n0)) / n0
        if nc:
            floc = p.local_equilibrium(p.mesh.local_view(f))
            fl = p.mesh.local_view(f)
            assert np.allclose((p.D * floc).sum(axis=(0, 2)), (p.D * fl).sum(axis=(0, 2)),
                               rtol=1e-13)
    assert drift[True] < 1e-12
    assert drift[False] > 1e-4


@pytest.mark.parametrize("M,C", [(1.0, -1), (3.0, 0)])
def test_streda_both_B_routes(M, C):
    """V6 + V13 in the solver: ∂n/∂B = C/2π (e/h) for the QWZ insulator, from the explicit route
    (0x2k: D = 1 + BΩ_z, ε̃ = ε − m_zB) and the Landau-gauge texture route (1x2k:
    H0(k_x, k_y + Bx) on a ring with one flux quantum, BL = 2π); both agree pointwise in n."""
    from kinetic.models.texture import landau_shift

    model = get_model("qwz", M=M)
    L, N = 16, 32
    B = 2 * np.pi / L
    ph = dict(mu=0.0, kT=0.02, tau=10.0, bands=(0,))
    n = {}
    for b in (0.0, B):
        p = Problem("0x2k", model, (N, N), Physics(E=(0.0, 0.0), B=b, **ph))
        f, _ = Transport(p).steady()
        n[("explicit", b)] = total(p, density(p, f))
    p = Problem("1x2k", landau_shift(model, B), (L, N, N), Physics(E=(0.0,), **ph),
                x_range=(0.0, float(L)))
    f, _ = Transport(p).steady()
    nx = density(p, f)
    n[("texture", B)] = total(p, nx) / L
    slope = (n[("explicit", B)] - n[("explicit", 0.0)]) / B
    assert slope == pytest.approx(C / (2 * np.pi), abs=1e-8)
    assert n[("texture", B)] == pytest.approx(n[("explicit", B)], rel=1e-10)
    assert np.allclose(nx, n[("explicit", B)], rtol=1e-10)  # uniform in x


def test_reservoirs_ballistic_landauer_current():
    """Reservoir contacts, no collisions: j_N = (1/2π)∫dε [f_L(ε) − f_R(ε)] (one channel)."""
    kT, muL, muR = 0.1, 0.15, -0.15
    ph = Physics(mu=0.0, kT=kT, tau=1e14, E=(0.0,), terms=frozenset(), boundary="reservoir",
                 mu_left=muL, mu_right=muR)
    pm = texture(get_model("cosine1d"), {})
    fd = lambda e, mu: 1 / (1 + np.exp((e - mu) / kT))  # noqa: E731
    exact = si.quad(lambda e: fd(e, muL) - fd(e, muR), -2, 2, epsabs=1e-14)[0] / (2 * np.pi)
    err = []
    for nk in (200, 400):
        p = Problem("1x1k", pm, (20, nk), ph, x_range=(0.0, 20.0))
        tr = Transport(p)
        f, _ = tr.steady()
        j = number_current(tr, f)
        assert np.ptp(j) < 1e-12 * abs(exact)  # divergence-free current, boundary cells included
        err.append(abs(j[0] - exact))
    # Σ_j Δε_j f(ε(k_j)): midpoint rule in k mapped to ε, O(h²)
    assert 1.8 < np.log2(err[0] / err[1]) < 2.2 and err[1] < 2e-5 * exact


def test_ac_drude_response():
    """E(t) = E0 cos ωt on a cosine band: j(t) → Re[σ(ω) E0 e^{−iωt}], σ = σ0/(1 − iωτ) (RTA)."""
    mu, kT, tau, E0 = -0.5, 0.2, 5.0, 1e-4
    w = 1.0 / tau
    p = Problem("0x1k", get_model("cosine1d"), (512,),
                Physics(mu=mu, kT=kT, tau=tau, E=(E0,), terms=frozenset()))
    tr = Transport(p)
    rec = []
    t_end = 12 * tau + 2 * np.pi / w
    tr.transient(p.field(p.f_loc), t_end, field=lambda t: (E0 * np.cos(w * t),), ts_type="ssp",
                 monitor=lambda i, t, u: rec.append((t, -total(p, number_current(tr, u)))))
    t, j = map(np.array, zip(*rec))
    last = t > t_end - 2 * np.pi / w
    s0 = tau * si.quad(lambda k: (2 * np.sin(k)) ** 2 * 0.25 / kT
                       / np.cosh((-2 * np.cos(k) - mu) / (2 * kT)) ** 2, -np.pi, np.pi,
                       epsabs=1e-14)[0] / (2 * np.pi)
    sig = s0 / (1 - 1j * w * tau)
    exact = np.real(sig * E0 * np.exp(-1j * w * t[last]))
    assert np.max(np.abs(j[last] - exact)) < 2e-3 * abs(sig) * E0


def test_muscl_second_order_advection():
    """MUSCL (van Leer) on a smooth profile advected once around the zone (collisionless, the
    exact solution is the initial one): L1 order ≥ 1.8; first-order upwind is far less accurate."""
    err = {}
    for recon in ("muscl", "upwind"):
        for N in (512, 1024):
            ph = Physics(mu=-0.5, kT=0.3, tau=1e12, E=(0.1,), terms=frozenset(),
                         reconstruction=recon, well_balanced=False)
            p = Problem("0x1k", get_model("cosine1d"), (N,), ph)
            tr = Transport(p)
            f = p.field(p.f_loc)
            tr.transient(f, 2 * np.pi / 0.1, ts_type="ssp", dt=0.5 * tr.cfl_dt(ph.E))
            err[(recon, N)] = np.mean(np.abs(p.mesh.local_view(f) - p.f_loc))
    assert np.log2(err[("muscl", 512)] / err[("muscl", 1024)]) > 1.8
    assert err[("muscl", 1024)] < 0.01 * err[("upwind", 1024)]


def test_muscl_steady_esaki_tsu_second_order():
    """Steady MUSCL (damped defect correction): second-order convergence to the exact current."""
    tau, mu, kT, E = 10.0, -0.5, 0.2, 0.01
    exact = -2 * fourier_cos(mu, kT) * (E * tau) / (1 + (E * tau) ** 2)
    errs = []
    for N in (512, 1024):
        ph = Physics(mu=mu, kT=kT, tau=tau, E=(E,), terms=frozenset(), reconstruction="muscl")
        p = Problem("0x1k", get_model("cosine1d"), (N,), ph)
        tr = Transport(p)
        f, info = tr.steady()
        assert info["converged_reason"] > 0 and "defect correction" in info["solver"]
        errs.append(abs(total(p, number_current(tr, f)) - exact) / abs(exact))
    assert np.log2(errs[0] / errs[1]) > 1.8 and errs[1] < 1e-5


def test_muscl_keeps_equilibrium_exact():
    p = ring(24, 48, mu=-0.1, kT=0.05, reconstruction="muscl")
    tr = Transport(p)
    rhs = -tr.flux_divergence(p.field(p.f_loc), p.phys.E)
    assert np.abs(rhs).max() < 1e-14


def test_energy_dependent_relaxation_time():
    """τ(ε): weak-field steady current of a cosine band = ∫dk/2π v² τ(ε) (−f0') E (quadrature)."""
    mu, kT, E = -0.3, 0.15, 1e-5
    tau_of = lambda eps, band: 4.0 + 2.0 * np.tanh(eps)  # noqa: E731
    p = Problem("0x1k", get_model("cosine1d"), (2048,),
                Physics(mu=mu, kT=kT, tau=tau_of, E=(E,), terms=frozenset()))
    tr = Transport(p)
    f, _ = tr.steady()
    sigma = -total(p, number_current(tr, f)) / E
    fp = lambda e: 0.25 / kT / np.cosh((e - mu) / (2 * kT)) ** 2  # noqa: E731
    exact = si.quad(lambda k: (2 * np.sin(k)) ** 2 * tau_of(-2 * np.cos(k), 0) * fp(-2 * np.cos(k)),
                    -np.pi, np.pi, epsabs=1e-14)[0] / (2 * np.pi)
    assert sigma == pytest.approx(exact, rel=1e-4)


def test_texture_hall_current_and_magnetization_subtraction():
    """1x2k QWZ mass texture, insulator (C = −1): the equilibrium j_y(x) is a magnetization
    current (nonzero, zero mean); the transport current j[E] − j[0] has the topological mean
    j_y = σ_yx E_x = (C/2π) E_x (charge −e, e = ħ = 1)."""
    L, N, E = 24, 48, 1e-3
    pm = texture(get_model("qwz", M=1.0), {"M": Sine(mean=1.0, amplitude=0.4, period=L)})
    ph = Physics(mu=0.0, kT=0.02, tau=10.0, E=(E,), bands=(0,))
    p = Problem("1x2k", pm, (L, N, N), ph, x_range=(0.0, float(L)))
    tr = Transport(p)
    f, _ = tr.steady()
    f0, _ = tr.steady(E=(0.0,))
    j_eq = -number_current(tr, f0, E=(0.0,))[:, 1]
    j_tr = -number_current(tr, f)[:, 1] - j_eq
    assert np.abs(j_eq).max() > 1e-4 and abs(np.mean(j_eq)) < 1e-12
    assert np.mean(j_tr) == pytest.approx(-E / (2 * np.pi), rel=1e-6)


def test_goldstone_wilczek_dirac_continuum():
    """V9a: a 2π rotation of the Dirac mass binds −1 electron: Σ_x Δx (n − n_bg) =
    −(1/2π)∫dx θ' ∫_{−K}^{K} dk v m²/2E³ = −vK/√(v²K² + m²) in a k-box |k| < K."""
    from kinetic.models.texture import Linear, dirac1d_texture

    L, K, m, v = 40.0, 12.0, 0.5, 1.0
    pm = dirac1d_texture(m, Linear(value=0.0, slope=2 * np.pi / L), v=v)
    p = Problem("1x1k", pm, (40, 960), Physics(mu=0.0, kT=0.01, tau=10.0, E=(0.0,), bands=(0,)),
                x_range=(0.0, L), k_range=((-K, K),))
    f, _ = Transport(p).steady()
    charge = total(p, density(p, f) - K / np.pi)
    assert charge == pytest.approx(-v * K / np.sqrt(v**2 * K**2 + m**2), abs=1e-6)


def test_toggles_off_remove_the_anomalous_velocity():
    """V14.5 in the solver: with every geometric term off, the 0x2k current of the QWZ band at
    f = f_loc has no Hall component (the anomalous velocity E×Ω is gone)."""
    ph = lambda terms: Physics(mu=1.1, kT=0.15, tau=5.0, E=(1e-3, 0.0),  # noqa: E731
                               terms=frozenset(terms))
    out = {}
    for key, terms in (("off", ()), ("on", ("berry_kk",))):
        p = Problem("0x2k", get_model("qwz", M=1.0), (32, 32), ph(terms))
        tr = Transport(p)
        out[key] = total(p, number_current(tr, p.field(p.f_loc)))
    assert abs(out["off"][1]) < 1e-15 and abs(out["on"][1]) > 1e-6


def test_steady_sweep_reuses_one_operator():
    """Perturbative/sweep mode: many (μ, T) right-hand sides with one operator and one KSP
    set-up give the same steady states as separate solves (0x2k QWZ in E and B)."""
    from kinetic.operator import fermi

    model = get_model("qwz", M=1.0)
    base = dict(tau=5.0, E=(2e-3, -1e-3), B=0.05)
    points = [(0.9, 0.1), (1.2, 0.1), (1.2, 0.2)]
    p = Problem("0x2k", model, (40, 40), Physics(mu=1.0, kT=0.1, **base))
    tr = Transport(p)
    many = tr.steady_sweep(points)
    assert p.phys.mu == 1.0 and p.phys.kT == 0.1  # restored
    for (mu, kT), f in zip(points, many):
        q = Problem("0x2k", model, (40, 40), Physics(mu=mu, kT=kT, **base))
        f1, _ = Transport(q).steady()
        a, b = p.mesh.local_view(f), q.mesh.local_view(f1)
        assert np.abs(a - b).max() < 1e-10
        assert not np.allclose(a, fermi((p.eps_cell - mu) / kT))  # a real non-equilibrium state


def layered_chern():
    """A 3D two-band model: QWZ layers (M = 1) coupled along z (0.3 cos k_z σ_z) plus a sheared
    hopping 0.4 cos(k_x + k_z) σ_0 (so that E_x drives j_z). Gapped (no Weyl points)."""
    from kinetic.models.catalogue import MatrixTightBinding

    s0, sz = np.eye(2), np.diag([1.0, -1.0])
    sx, sy = np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]])
    return MatrixTightBinding(sz, {(1, 0, 0): (sz + 1j * sx) / 2, (0, 1, 0): (sz + 1j * sy) / 2,
                                   (0, 0, 1): 0.15 * sz, (1, 0, 1): 0.2 * s0}, name="layered")


def test_0x3k_matches_kspace_tables():
    """0x3k (k_z folded into the dof), weak E_x: σ_xx and σ_zx = Drude table, σ_yx = −(AHC
    table σ_xy), 3D S/m (Richardson over the in-plane mesh; k_z by the same 24 midpoints).
    Measured: 7e-4, 1.3e-5, 1e-6 relative."""
    from kinetic.kmesh import make_kmesh
    from kinetic.table import integrate_mesh

    model = layered_chern()
    mu, kT, tau, E = 1.2, 0.15, 8.0, 1e-4
    sig = []
    for N in (64, 128):
        p = Problem("0x3k", model, (N, N, 24), Physics(mu=mu, kT=kT, tau=tau, E=(E, 0.0, 0.0),
                                                       terms=frozenset(["berry_kk"])))
        tr = Transport(p)
        f, _ = tr.steady()
        sig.append(-total(p, number_current(tr, f)) / E)  # charge current, e = 1
    sig = 2 * sig[1] - sig[0]
    ref = integrate_mesh(model, make_kmesh([256, 256, 24], model.reciprocal), ["drude", "ahc"],
                         [mu], kT, 0.0, check=False)
    assert sig[0] == pytest.approx(ref[("drude", "xx")][0] * tau, rel=2e-3)
    assert sig[2] == pytest.approx(ref[("drude", "zx")][0] * tau, rel=2e-4)
    assert sig[1] == pytest.approx(-ref[("ahc", "xy")][0], rel=2e-4)


def test_0x3k_magnetotransport_parabolic_band():
    """3D parabolic band ε = k², B ∥ z: σ_xx = σ0/(1 + (ω_cτ)²), σ_yx = σ0 ω_cτ/(1 + (ω_cτ)²)
    with σ0 = nτ/m, n = ∫d³k/(2π)³ f (the k_z slices do not mix: k_z is conserved)."""
    from scipy.integrate import quad

    from kinetic.models.catalogue import HBAR2_2ME

    model = get_model("parabolic3d", m_eff=HBAR2_2ME)  # m = 1/2
    m, mu, kT, tau, E, B, K = 0.5, 0.5, 0.05, 4.0, 1e-4, 0.125, 1.3
    vals = []
    for N in (96, 192):
        p = Problem("0x3k", model, (N, N, 48), Physics(mu=mu, kT=kT, tau=tau, E=(E, 0.0, 0.0),
                                                       B=B, terms=frozenset()),
                    k_range=((-K, K),) * 3)
        tr = Transport(p)
        f, _ = tr.steady()
        j = -total(p, number_current(tr, f)) / E
        assert j.shape == (2,)  # j_z is not reported with B ≠ 0
        vals.append(j)
    sxx, syx = 2 * vals[1] - vals[0]
    # n on the same k_z midpoints (the folded axis is a midpoint rule, exact enough here)
    n = quad(lambda k: k * k / (2 * np.pi**2) / (1 + np.exp((k * k - mu) / kT)), 0, K)[0]
    s0, wt = n * tau / m, B / m * tau
    assert sxx == pytest.approx(s0 / (1 + wt**2), rel=5e-3)
    assert syx == pytest.approx(s0 * wt / (1 + wt**2), rel=5e-3)


def test_0x3k_refuses_ez_and_second_order_with_b():
    model = layered_chern()
    with pytest.raises(ConfigError, match="E_z = 0"):
        Problem("0x3k", model, (8, 8, 4), Physics(mu=1.0, kT=0.1, tau=5.0, E=(0.0, 0.0, 1e-3)))
    with pytest.raises(ConfigError, match="magnetic_field"):
        Problem("0x3k", model, (8, 8, 4), Physics(mu=1.0, kT=0.1, tau=5.0, E=(1e-3, 0.0, 0.0),
                                                  B=0.05, terms=frozenset(["berry_kk", "E2_bcp"])))
    with pytest.raises(ConfigError, match="wk_correction"):
        Problem("0x3k", model, (8, 8, 4), Physics(mu=1.0, kT=0.1, tau=5.0, E=(1e-3, 0.0, 0.0),
                                                  terms=frozenset(["berry_kk", "wk_correction"])))


def _orders(p, direction):
    """(σ-like, χ-like) charge-current coefficients from Transport.steady_orders: j = j1 E + j2 E²."""
    tr = Transport(p)
    f0, f1, f2 = tr.steady_orders(direction)
    zero = (0.0,) * len(direction)

    def J(f, E):
        return np.asarray(total(p, number_current(tr, f, E=E)))

    j1 = J(f1, zero) + J(f0, direction) - J(f0, zero)
    j2 = J(f2, zero) + J(f1, direction) - J(f1, zero)
    return -j1, -j2


def test_perturbative_orders_match_kspace_tables():
    """f = f0 + E f1 + E² f2 from ONE operator (Transport.steady_orders): σ_xx = Drude·τ and
    σ_yx = −σ_xy(AHC) of the QWZ metal, and χ_xxx = nonlinear Drude·τ² of the tilted Dirac
    band; central differences, so the error falls 4× per mesh doubling (measured 1.8e-3 →
    4.6e-4 for σ_xx, 6.1e-4 → 1.6e-4 for χ_xxx)."""
    from kinetic.kmesh import make_kmesh
    from kinetic.table import integrate_mesh

    model = get_model("qwz", M=1.0)
    mu, kT, tau = 1.2, 0.15, 8.0
    ref = integrate_mesh(model, make_kmesh([192, 192], model.reciprocal), ["drude", "ahc"], [mu],
                         kT, 0.0, check=False)
    err = []
    for N in (96, 192):
        p = Problem("0x2k", model, (N, N), Physics(mu=mu, kT=kT, tau=tau, E=(0.0, 0.0),
                                                   terms=frozenset(["berry_kk"])))
        sig, _ = _orders(p, (1.0, 0.0))
        err.append(abs(sig[0] / (ref[("drude", "xx")][0] * tau) - 1))
        assert sig[1] == pytest.approx(-ref[("ahc", "xy")][0], rel=1e-9)
    assert 3.5 < err[0] / err[1] < 4.5 and err[1] < 1e-3

    model = get_model("dirac2d", v=1.0, m=0.5, tilt=0.1)
    mu, kT, tau, K = 1.0, 0.05, 4.0, 2.0
    ref = integrate_mesh(model, make_kmesh([512, 512], None, K), ["nonlinear_drude"], [mu], kT,
                         0.0, check=False)
    chi = ref[("nonlinear_drude", "xxx")][0] * tau**2
    err = []
    for N in (128, 256):
        p = Problem("0x2k", model, (N, N), Physics(mu=mu, kT=kT, tau=tau, E=(0.0, 0.0),
                                                   terms=frozenset(), bands=(1,)),
                    k_range=((-K, K), (-K, K)))
        err.append(abs(_orders(p, (1.0, 0.0))[1][0] / chi - 1))
    assert 3.0 < err[0] / err[1] < 5.0 and err[1] < 5e-4


def test_perturbative_orders_refuse_field_dependent_problems():
    p = Problem("0x2k", get_model("qwz", M=1.0), (16, 16),
                Physics(mu=1.0, kT=0.1, tau=5.0, E=(1e-3, 0.0),
                        terms=frozenset(["berry_kk", "E2_bcp"])))
    with pytest.raises(ConfigError, match="perturbative orders"):
        Transport(p).steady_orders((1.0, 0.0))


def test_number_conserving_steady_state_by_snes():
    """The number-conserving collision makes the steady problem nonlinear: SNES (Anderson on the
    Picard map) keeps the particle number of f_FD(ε̃ − μ) and gives the state the transient
    run relaxes to (independent method): max|Δf| 9.2e-7 at t = 20 ħ/eV, 1.9e-9 at t = 40
    (the TS tolerance floor; measured). Metal in a potential texture, E = 0.02 V/Å."""
    L = 12.0
    pm = texture(get_model("cosine1d"), {"e0": Sine(mean=0.0, amplitude=0.3, period=L)})
    ph = Physics(mu=-0.4, kT=0.1, tau=2.0, E=(0.02,), number_conserving=True)
    p = Problem("1x1k", pm, (12, 32), ph, x_range=(0.0, L))
    tr = Transport(p)
    f, info = tr.steady()
    assert info["converged_reason"] > 0 and info["solver"].startswith("SNES")
    n0 = total(p, density(p, p.field(p.f_loc)))
    assert total(p, density(p, f)) == pytest.approx(n0, rel=1e-11)
    diff = []
    for t_end in (20.0, 40.0):
        g = p.field(p.f_loc)
        tr.transient(g, t_end, ts_type="arkimex")
        diff.append(np.abs(p.mesh.local_view(f) - p.mesh.local_view(g)).max())
    assert diff[1] < 1e-8 and diff[1] < diff[0] / 100
