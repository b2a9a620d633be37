"""Homogeneous response tensors against closed forms (physics.md §6.4, V1, V3, V5–V8).

All comparisons are in internal units (eV, Å, ħ = e = k_B = 1, τ in ħ/eV) unless a test is
about the SI table. Independent answers: scipy quadrature of the 1D Drude integral, the 2D
free-electron density, Dirac AHC closed forms with an exactly integrated box tail, Chern
numbers, the Středa/Maxwell relation, and the tilted-Dirac Fermi-contour numbers of V7/V8.
"""

import numpy as np
import pytest
from scipy import integrate as si

from kinetic.kmesh import make_kmesh
from kinetic.models.catalogue import get_model
from kinetic.response import CALCULATORS
from kinetic.table import integrate_mesh

TAU = 1.0  # internal; integrate_mesh returns values without the τ^p factor


def run(model, n, quantities, mus, kT, kmax=None):
    mesh = make_kmesh(n, model.reciprocal, kmax)
    return integrate_mesh(model, mesh, quantities, np.atleast_1d(mus), kT, kT, check=False)


def fermi_prime(x, kT):
    return -0.25 / kT / np.cosh(0.5 * x / kT) ** 2


# ---------------------------------------------------------------------- V1 Drude
def test_drude_cosine_band_vs_quadrature():
    """V1: 1D cosine band, kT = 0.02 t, N_k = 2000; reference = scipy quad of the same integral."""
    model = get_model("cosine1d", t=1.0)
    kT, mus = 0.02, np.array([-1.5, -0.3, 0.7])
    val = run(model, [2000], ["drude"], mus, kT)[("drude", "xx")]
    for mu, v in zip(mus, val):
        ref = si.quad(lambda k: (2 * np.sin(k)) ** 2 * -fermi_prime(-2 * np.cos(k) - mu, kT),
                      -np.pi, np.pi, points=[np.arccos(-mu / 2), -np.arccos(-mu / 2)],
                      limit=200, epsabs=1e-13)[0] / (2 * np.pi)
        assert v == pytest.approx(ref, rel=1e-6)
        # T -> 0 limit 2t sin k_F / π (Sommerfeld correction O((kT)^2) ~ 1e-3 here)
        assert v == pytest.approx(2 * np.sin(np.arccos(-mu / 2)) / np.pi, rel=5e-3)


def test_drude_parabolic_2d_equals_n_over_m():
    """V1: σ = n e²τ/m with n the closed-form 2D density (m/2π) kT ln(1 + e^{μ/kT})."""
    model = get_model("parabolic2d", m_eff=0.5)
    m = 1.0 / (2 * 3.80998212 / 0.5)  # internal mass (ħ = 1): ħ²/2m = 3.80998/m_eff eV Å²
    kT, mu = 0.025, 0.2
    out = run(model, [600, 600], ["density", "drude"], mu, kT, kmax=0.6)
    n_exact = m / (2 * np.pi) * kT * np.log1p(np.exp(mu / kT))
    assert out[("density", "")][0] == pytest.approx(n_exact, rel=1e-6)
    assert out[("drude", "xx")][0] == pytest.approx(n_exact / m, rel=1e-6)
    assert out[("drude", "yy")][0] == pytest.approx(n_exact / m, rel=1e-6)
    assert abs(out[("drude", "xy")][0]) < 1e-12 * n_exact / m


# ---------------------------------------------------------------------- V3 Dirac AHC
def dirac_box_outside(m, v, K):
    """(1/4π²)∫_{outside [−K,K]²} Ω_z d²k for the lower band, Ω = v²m/2E³ (radial part exact)."""
    R = lambda th: K / max(abs(np.cos(th)), abs(np.sin(th)))
    return si.quad(lambda th: m / (2 * np.sqrt(v**2 * R(th) ** 2 + m**2)), 0, 2 * np.pi,
                   points=[np.pi / 4, 3 * np.pi / 4, 5 * np.pi / 4, 7 * np.pi / 4],
                   epsabs=1e-14)[0] / (4 * np.pi**2)


def test_ahc_dirac_in_gap_with_exact_box_tail():
    """V3: |μ| < |m|: σ_xy = −(e²/2h) sgn m, minus the exactly integrated outside-box tail."""
    m, v, K = 0.5, 1.0, 10.0
    model = get_model("dirac2d", v=v, m=m)
    sig = run(model, [400, 400], ["ahc"], [0.0, 0.3], 0.01, kmax=K)[("ahc", "xy")]
    expect = -(np.sign(m) / (4 * np.pi) - dirac_box_outside(m, v, K))
    # midpoint rule on a non-periodic box: Euler–Maclaurin edge error (Δk²/24)|∂Ω| ~ 1e-8 abs
    assert sig == pytest.approx([expect, expect], rel=1e-6)


@pytest.mark.parametrize("mu", [1.0, 2.0, -1.5])
def test_ahc_dirac_metal(mu):
    """V3: σ(μ) − σ(gap) = −(e²/2h)(m/|μ| − sgn m); box tail cancels in the difference."""
    m, v = 0.5, 1.0
    model = get_model("dirac2d", v=v, m=m)
    K = abs(mu) + 0.5
    kT = 0.004
    n = int(2 * K / (1.5 * kT)) // 2 * 2
    sig = run(model, [n, n], ["ahc"], [0.0, mu], kT, kmax=K)[("ahc", "xy")]
    closed = {1.0: -0.0397887, 2.0: -0.0198944, -1.5: -0.0265258}[mu]  # physics.md V3
    gap = -0.0795775
    assert sig[1] - sig[0] == pytest.approx(closed - gap, rel=2e-4)


# ---------------------------------------------------------------------- V5/V6 Chern, Středa
@pytest.mark.parametrize("M,C", [(1.0, -1), (-1.0, 1), (3.0, 0)])
def test_ahc_qwz_quantized(M, C):
    """V5: insulating QWZ: σ_xy = −(e²/h) C = −C/2π (e²/ħ)."""
    model = get_model("qwz", M=M)
    sig = run(model, [120, 120], ["ahc"], [0.0], 0.02)[("ahc", "xy")][0]
    assert sig == pytest.approx(-C / (2 * np.pi), abs=1e-9)


@pytest.mark.parametrize("M,slope", [(1.0, -0.159155), (-1.0, 0.159155), (3.0, 0.0)])
def test_streda_insulator(M, slope):
    """V6: ∂M/∂μ in the gap = ∂n/∂B = (e/h) C (finite difference of the orbital magnetization)."""
    model = get_model("qwz", M=M)
    d = 0.05  # μ = ±d: inside the gap around 0 for M = ±1, 3
    Mz = run(model, [120, 120], ["orbital_magnetization"], [-d, d], 0.02)
    dM = np.diff(Mz[("orbital_magnetization", "z")])[0] / (2 * d)
    assert dM == pytest.approx(slope, abs=2e-6)


def test_streda_metal_maxwell_relation():
    """V6 in a metal: ∂M/∂μ = ∫[Ω f0 − m f0'] (the DOS + Fermi-surface terms of ∂n/∂B)."""
    model = get_model("haldane", t1=1.0, t2=0.15, phi=1.1, M=0.3)
    kT, mu, d = 0.08, 0.4, 1e-3
    out = run(model, [160, 160], ["orbital_magnetization"], [mu - d, mu + d], kT)
    dM = np.diff(out[("orbital_magnetization", "z")])[0] / (2 * d)
    # ∂n/∂B from the explicit-B density D = 1 + BΩ and ε̃ = ε − m B, evaluated independently
    from kinetic.geometry import band_geometry

    mesh = make_kmesh([160, 160], model.reciprocal)
    k = mesh.k.reshape(-1, 2)
    g = band_geometry(model.hamiltonian(k), model.dh_dk(k))
    x = g.energy - mu
    f = 0.5 * (1 - np.tanh(0.5 * x / kT))
    dndB = mesh.measure * np.mean(np.sum(g.curvature[..., 0, 1] * f
                                         - g.orbital_moment[..., 2] * fermi_prime(x, kT), axis=1))
    assert dM == pytest.approx(dndB, rel=1e-5)


# ---------------------------------------------------------------------- V7/V8 tilted Dirac
@pytest.fixture(scope="module")
def tilted():
    """Tilted Dirac (t, v, m, μ) = (0.02, 1, 0.5, 1) at kT = 0.004 on a box resolving the FS."""
    model = get_model("dirac2d", v=1.0, m=0.5, tilt=0.02)
    K, kT = 1.6, 0.004
    n = 800
    qs = ["drude", "bcd", "bcd_hall", "nonlinear_drude", "intrinsic_nonlinear",
          "intrinsic_nonlinear_noiad"]
    return run(model, [n, n], qs, [1.0], kT, kmax=K)


def test_bcd_tilted_dirac(tilted):
    """V7: D_x = −8.951e-4 (Fermi contour, t = 0.02), D_y = 0."""
    assert tilted[("bcd", "xz")][0] == pytest.approx(-8.951e-4, rel=2e-4)
    assert abs(tilted[("bcd", "yz")][0]) < 1e-9
    # 2D BCD Hall current: j = τ (D·E)(E_y, −E_x)  =>  χ_xxy(sym) = D_x/2, χ_yxx = −D_x
    D = tilted[("bcd", "xz")][0]
    assert tilted[("bcd_hall", "yxx")][0] == pytest.approx(-D, rel=1e-12)
    assert tilted[("bcd_hall", "xxy")][0] == pytest.approx(D / 2, rel=1e-12)
    assert abs(tilted[("bcd_hall", "xxx")][0]) < 1e-15


def test_drude_and_nonlinear_drude_tilted_dirac(tilted):
    """V8: σ_xx/τ = 0.059693 and χ^D_xxx/τ² = −1.5667e-3 at t = 0.02."""
    assert tilted[("drude", "xx")][0] == pytest.approx(0.059693, rel=1e-4)
    assert tilted[("nonlinear_drude", "xxx")][0] == pytest.approx(-1.5667e-3, rel=2e-4)


def test_intrinsic_nonlinear_tilted_dirac(tilted):
    """V8: IAD χ_xyy = −5.968e-4, χ_xxx = 0 and purely Hall; no-IAD χ_xyy, χ_xxx."""
    iad = {c: tilted[("intrinsic_nonlinear", c)][0] for c in ("xyy", "xxx", "yyy", "yxx", "yxy")}
    assert iad["xyy"] == pytest.approx(-5.968e-4, rel=2e-4)
    for c in ("xxx", "yyy", "yxx"):
        assert abs(iad[c]) < 1e-8
    assert iad["yxy"] == pytest.approx(-iad["xyy"] / 2, rel=1e-9)  # j ⟂ E: χ_yxy(sym) = −χ_xyy/2
    noiad = tilted
    assert noiad[("intrinsic_nonlinear_noiad", "xyy")][0] == pytest.approx(-2.891e-4, rel=5e-4)
    assert noiad[("intrinsic_nonlinear_noiad", "xxx")][0] == pytest.approx(3.264e-4, rel=5e-4)


def test_intrinsic_hall_is_dissipationless_any_direction():
    """IAD current is ⟂ E for every field direction (Haldane metal): E_a χ_abc E_b E_c = 0."""
    model = get_model("haldane", t1=1.0, t2=0.2, phi=0.7, M=0.25)
    out = run(model, [96, 96], ["intrinsic_nonlinear", "intrinsic_nonlinear_noiad"], [0.5], 0.1)
    worst = {}
    for q in ("intrinsic_nonlinear", "intrinsic_nonlinear_noiad"):
        chi = np.array([[[out[(q, "xyz"[a] + "xyz"[b] + "xyz"[c])][0] for c in range(2)]
                         for b in range(2)] for a in range(2)])
        powers = [np.einsum("a,abc,b,c", E, chi, E, E)
                  for E in (np.array([np.cos(t), np.sin(t)]) for t in np.linspace(0, np.pi, 7))]
        worst[q] = np.max(np.abs(powers)) / np.abs(chi).max()
    assert worst["intrinsic_nonlinear"] < 1e-10
    assert worst["intrinsic_nonlinear_noiad"] > 1e-2  # without IAD there is a longitudinal part


def test_registry_documents_every_calculator():
    for name, calc in CALCULATORS.items():
        assert calc.doc and ("Reference" in calc.doc or "physics.md" in calc.doc), name
        for dim in range(calc.min_dim, 4):
            factor, unit = calc.unit(dim)
            assert factor > 0 and unit


def test_texture_hall_table_rows(tmp_path):
    """quantity = "texture_hall" (V12): the semiclassical slope with the mixed-metric terms equals
    the exact slope of the gauge-equivalent model; the first-order theory alone misses it."""
    from kinetic.table import run_table

    p = tmp_path / "h.toml"
    p.write_text('[model]\nname = "qwz_helical"\n[mesh]\nk = [60, 60]\n[physics]\n'
                 'temperature = 1160.0\nmu = [-1.25, 1.0]\n[response]\n'
                 'quantities = ["texture_hall", "ahc"]\n')
    out = run_table(p, out=tmp_path / "h.csv")
    rows = [r.split(",") for r in out.read_text().splitlines() if r and not r.startswith("#")][1:]
    val = {(float(r[0]), r[4]): float(r[5]) for r in rows if r[3] == "texture_hall"}
    assert {r[6] for r in rows if r[3] == "texture_hall"} == {"S*m"}
    for mu in (-1.25, 1.0):
        exact = val[(mu, "exact")]
        assert val[(mu, "semiclassical")] == pytest.approx(exact, rel=1e-6)
        parts = val[(mu, "first_order")] + val[(mu, "shift")] + val[(mu, "metric")]
        assert parts == pytest.approx(val[(mu, "semiclassical")], rel=1e-12)
        assert abs(val[(mu, "first_order")] / exact - 1) > 0.05
    assert any(r[3] == "ahc" for r in rows)


def test_texture_hall_needs_the_helical_model(tmp_path, capsys):
    from kinetic.cli import main

    p = tmp_path / "h.toml"
    p.write_text('[model]\nname = "qwz"\n[mesh]\nk = [20, 20]\n[physics]\nmu = 0.5\ntemperature = 300.0\n'
                 '[response]\nquantities = ["texture_hall"]\n')
    assert main(["table", str(p), "--out", str(tmp_path / "h.csv")]) == 2
    assert "model.name = \"qwz_helical\"" in capsys.readouterr().err
    assert not (tmp_path / "h.csv").exists()
