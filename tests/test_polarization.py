"""The polarization split of the 1x1k density (physics.md §6.1) against the solver's density.

Checks: the split adds up to the solver's second-order density (D_c = 1 + Ω_kx + Ω′ + Ω″ and the
quadrupole term, themselves checked against exact diagonalization in test_second_order), and
the §6.1 statement that P⁽ᵍ⁾ and the quadrupole cancel in insulators but not in metals.
"""
import numpy as np
import pytest

from kinetic.models.texture import rice_mele_ring
from kinetic.observables import density
from kinetic.polarization import polarization_fields
from kinetic.problem import Physics, Problem
from kinetic.semiclassics import FIRST_ORDER
from kinetic.solvers import Transport

SECOND = FIRST_ORDER + ("A2_shift_texture", "A2_threeband", "A2_metric_gradient",
                        "obs_quadrupole")


@pytest.fixture
def petsc():
    from petsc4py import PETSc

    return PETSc


def ring(L, terms, mu=0.0, kT=0.005, nk=128):
    ph = Physics(mu=mu, kT=kT, tau=10.0, E=(0.0,), terms=frozenset(terms), bands=(0,))
    p = Problem("1x1k", rice_mele_ring(L), (L, nk), ph, x_range=(-0.5, L - 0.5))
    f, _ = Transport(p).steady()
    return density(p, f), polarization_fields(p, f)


METRIC = FIRST_ORDER + ("A2_metric_gradient", "obs_quadrupole")


@pytest.mark.usefixtures("petsc")
def test_bound_density_is_the_second_order_density_of_an_insulator():
    """The split adds up: −∂_x(P′ + P⁽ᵍ⁾) + ½∂²Q equals the solver's second-order density
    (D_c and the quadrupole term) to round-off in the insulator; the Berry part is the
    first-order density minus the band's uniform 1/a."""
    for L in (48, 96):
        n1, _ = ring(L, FIRST_ORDER)
        n2, P = ring(L, SECOND)
        assert set(P) == {"n_berry", "P_shift", "P_metric", "Q", "n_bound"}
        assert np.abs(n2 - n1 - P["n_bound"]).max() < 1e-12 * np.abs(n2 - n1).max() * L
        assert np.abs(P["n_berry"] - (n1 - 1.0)).max() < 2e-3 * np.abs(P["n_berry"]).max()


@pytest.mark.usefixtures("petsc")
def test_metric_polarization_cancels_the_quadrupole_only_in_insulators():
    """physics.md §6.1: −∂_x P⁽ᵍ⁾ + ½∂²_x Q = ½∂_x ∫_BZ ∂_k g_kx = 0 for a filled band (to
    round-off here), while each part is O(L⁻²); in a metal they do not cancel."""
    n1, _ = ring(48, FIRST_ORDER)
    n, P = ring(48, METRIC)
    dP = np.abs(np.diff(P["P_metric"])).max()
    assert dP > 1e-4 and np.abs(P["n_bound"]).max() < 1e-12
    assert np.abs(n - n1).max() < 1e-12
    _, P = ring(48, METRIC, mu=-0.35, kT=0.05, nk=256)
    assert np.abs(P["n_bound"]).max() > 0.3 * np.abs(np.diff(P["P_metric"])).max()


@pytest.mark.usefixtures("petsc")
def test_only_switched_on_parts_are_reported():
    _, P = ring(24, FIRST_ORDER, nk=32)
    assert set(P) == {"n_berry"}
    _, P = ring(24, FIRST_ORDER + ("A2_shift_texture",), nk=32)
    assert set(P) == {"n_berry", "P_shift", "n_bound"}


@pytest.mark.usefixtures("petsc")
def test_quadrupole_current_is_the_time_derivative_of_the_quadrupole():
    """j_Q = −½ ∂_x ∂_t Q_N (physics.md §6.2) from the instantaneous ∂_t f equals the same
    combination of the recorded Q_N(x, t) differenced in time (central, fixed steps: O(dt²)),
    during a transient of the metal ring out of equilibrium in a field. Measured: 1.9e-6
    relative at dt = 0.002, 7.4e-6 at 0.004 (second order)."""
    from kinetic.observables import quadrupole_current

    L = 32
    ph = Physics(mu=-0.35, kT=0.05, tau=2.0, E=(0.02,), terms=frozenset(SECOND))
    p = Problem("1x1k", rice_mele_ring(L), (L, 64), ph, x_range=(-0.5, L - 0.5))
    tr = Transport(p)
    f = p.field(p.f_loc * 0.95)
    Q, jQ = [], []

    def monitor(i, t, u):
        Q.append((p.g_kk * p.mesh.local_view(u)).sum(axis=(0, 2)) * p.measure())
        jQ.append(quadrupole_current(tr, u))

    dt = 0.002
    tr.transient(f, 10 * dt, ts_type="rk", dt=dt, adapt=False, monitor=monitor)
    Qdot = (np.array(Q[2:]) - np.array(Q[:-2])) / (2 * dt)  # steps 1 .. n−1
    from kinetic.problem import spectral_derivative

    fd = -0.5 * spectral_derivative(Qdot, 1.0, 1)  # the ring's spectral ∂_x (h = 1 Å)
    inst = np.array(jQ[1:-1])
    assert np.abs(inst).max() > 1e-6
    assert np.abs(fd - inst).max() < 1e-5 * np.abs(inst).max()


@pytest.mark.usefixtures("petsc")
def test_quasi1d_split_adds_up_in_1x2k():
    """1x2k, filled lowest band of the stacked trimer texture (test_moyal.Trimer2D, three bands,
    no particle-hole symmetry, so the insulator has a second-order density):
    −∂_x(P′_x + P⁽ᵍ⁾_x) + ½∂²_x Q_xx equals the solver's second-order density to round-off, and
    the P⁽ᵍ⁾/Q parts cancel."""
    from test_moyal import trimer2d_texture

    L = 24
    pm = trimer2d_texture(L)
    n = {}
    for key, terms in (("first", FIRST_ORDER), ("second", SECOND), ("metric", METRIC)):
        p = Problem("1x2k", pm, (L, 32, 8),
                    Physics(mu=-0.7, kT=0.02, tau=10.0, E=(0.0,), bands=(0,),
                            terms=frozenset(terms)), x_range=(0.0, float(L)))
        f, _ = Transport(p).steady()
        n[key] = (density(p, f), polarization_fields(p, f))
    d2 = n["second"][0] - n["first"][0]
    assert set(n["second"][1]) == {"P_shift", "P_metric", "Q", "n_bound"}
    assert np.abs(d2).max() > 1e-5
    assert np.abs(d2 - n["second"][1]["n_bound"]).max() < 1e-10 * np.abs(d2).max()
    assert np.abs(n["metric"][1]["n_bound"]).max() < 1e-12  # round-off (measured 8.7e-14)
    assert np.abs(n["metric"][1]["P_metric"]).max() > 1e-4


@pytest.mark.usefixtures("petsc")
@pytest.mark.parametrize("layout", ["1x1k", "1x2k"])
def test_split_adds_up_on_an_open_x_range(layout):
    """Walls (fourth-order x-differences): for a filled band (f = 1 given directly — with
    zero-flux walls the E = 0 steady state of a band with velocity at the wall is not the
    equilibrium) −∂_x(P′ + P⁽ᵍ⁾) + ½∂_x∂_x Q equals the solver's second-order density
    Σ∫(D_c − D) + ½∂²_x Q to round-off, and the P⁽ᵍ⁾/Q parts cancel."""
    from kinetic.observables import quadrupole_density

    def build(terms):
        ph = Physics(mu=0.0, kT=0.01, tau=10.0, E=(0.0,), terms=frozenset(terms), bands=(0,),
                     boundary="wall")
        if layout == "1x1k":
            return Problem("1x1k", rice_mele_ring(48), (48, 128), ph, x_range=(-0.5, 47.5))
        from test_moyal import trimer2d_texture  # three bands, no particle-hole symmetry

        return Problem("1x2k", trimer2d_texture(24), (24, 32, 8), ph, x_range=(0.0, 24.0))

    p1, p2, pm = build(FIRST_ORDER), build(SECOND), build(METRIC)
    f = np.ones(p2.D.shape)
    second = (((p2.D - p1.D) * f).sum(axis=(0, 2)) * p2.measure() + quadrupole_density(p2, f))
    P = polarization_fields(p2, p2.field(f))
    assert set(P) >= {"P_shift", "P_metric", "Q", "n_bound"}
    assert np.abs(second).max() > 1e-5
    assert np.abs(second - P["n_bound"]).max() < 1e-11 * np.abs(second).max()
    Pm = polarization_fields(pm, pm.field(f))
    assert np.abs(Pm["P_metric"]).max() > 1e-5 and np.abs(Pm["n_bound"]).max() < 1e-13


@pytest.mark.usefixtures("petsc")
@pytest.mark.parametrize("boundary", ["periodic", "wall"])
def test_split_adds_up_in_2x2k_and_equals_1x2k(boundary):
    """2x2k, an x-texture (the stacked trimer, three bands, no particle-hole symmetry), filled
    lowest band (f = 1): −∂_x(P′_x + P⁽ᵍ⁾_x) + ½∂_x∂_x Q_xx is the 2x2k solver's second-order
    density (Transport4.density with and without the terms) to round-off, the P⁽ᵍ⁾/Q parts
    cancel, and every field equals the 1x2k split of the same texture at each y."""
    from test_moyal import trimer2d_texture

    from kinetic.models.texture import along_x
    from kinetic.problem4 import Problem4
    from kinetic.transport4 import Transport4

    L = 24
    pm = trimer2d_texture(L)

    def build4(terms):
        ph = Physics(mu=-0.7, kT=0.02, tau=10.0, E=(0.0, 0.0), terms=frozenset(terms), bands=(0,),
                     boundary=boundary)
        return Problem4(along_x(pm), (L, 2, 16, 8), ph, x_range=(0.0, float(L)), y_range=(0.0, 2.0))

    p1, p2, pm4 = build4(FIRST_ORDER), build4(SECOND), build4(METRIC)
    ones = np.ones(p2.f_loc.shape)
    n = {k: Transport4(q).density(q.mesh.to_vec(ones)) for k, q in (("1", p1), ("2", p2))}
    P = polarization_fields(p2, p2.mesh.to_vec(ones))
    assert set(P) == {"P_shift", "P_metric", "Q", "n_bound"} and P["n_bound"].shape == (L, 2)
    second = n["2"] - n["1"]
    assert np.abs(second).max() > 1e-5
    assert np.abs(second - P["n_bound"]).max() < 1e-10 * np.abs(second).max()
    Pm = polarization_fields(pm4, pm4.mesh.to_vec(ones))
    assert np.abs(Pm["P_metric"]).max() > 1e-5 and np.abs(Pm["n_bound"]).max() < 1e-13
    q = Problem("1x2k", pm, (L, 16, 8), Physics(mu=-0.7, kT=0.02, tau=10.0, E=(0.0,), bands=(0,),
                                               terms=frozenset(SECOND), boundary=boundary),
                x_range=(0.0, float(L)))
    P1 = polarization_fields(q, q.field(np.ones(q.D.shape)))
    for key in P:
        assert np.abs(P[key] - P1[key][:, None]).max() < 1e-12 * np.abs(P1[key]).max(), key


@pytest.mark.mpi(min_size=2)
def test_2x2k_split_parallel_equals_serial():
    """The 2x2k split (x-derivatives on the whole x-line, gathered across ranks) of a steady
    state in a field on 2 ranks equals the serial one."""
    from petsc4py import PETSc

    from kinetic.models import get_model, texture
    from kinetic.models.texture import Sine, along_x
    from kinetic.problem4 import Problem4
    from kinetic.transport4 import Transport4

    pm = along_x(texture(get_model("qwz", M=1.0), {"M": Sine(mean=1.0, amplitude=0.3, period=12.0)}))
    out = {}
    for name, comm in (("world", PETSc.COMM_WORLD), ("self", PETSc.COMM_SELF)):
        p = Problem4(pm, (16, 2, 10, 10), Physics(mu=-1.0, kT=0.1, tau=5.0, E=(1e-3, 2e-3),
                                                  terms=frozenset(SECOND), boundary="wall"),
                     x_range=(0.0, 12.0), y_range=(0.0, 2.0), comm=comm)
        f, _ = Transport4(p).steady()
        out[name] = {k: p.mesh.gather_xy(v) for k, v in polarization_fields(p, f).items()}
    if PETSc.COMM_WORLD.getRank() == 0:
        for k, v in out["self"].items():
            assert np.abs(out["world"][k] - v).max() <= 1e-10 * np.abs(v).max(), k
