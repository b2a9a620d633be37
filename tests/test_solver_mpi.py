"""Every solver path gives the same answer on 2 ranks as on 1 (relative 1e-10).

Run by `make test-mpi` (mpirun -n 2 ... --with-mpi -m mpi). Each rank also solves the whole
problem serially on PETSc.COMM_SELF; rank 0 compares the gathered parallel field with it.
"""
import numpy as np
import pytest

from kinetic.models.catalogue import get_model
from kinetic.models.texture import rice_mele_ring
from kinetic.observables import density, number_current, total
from kinetic.problem import Physics, Problem
from kinetic.solvers import Transport


def build(layout, comm):
    from petsc4py import PETSc

    comm = PETSc.COMM_SELF if comm == "self" else PETSc.COMM_WORLD
    if layout == "1x1k":
        ph = Physics(mu=0.05, kT=0.05, tau=7.0, E=(0.01,))
        return Problem("1x1k", rice_mele_ring(24), (24, 40), ph, x_range=(0.0, 24.0), comm=comm)
    if layout == "0x2k":
        ph = Physics(mu=1.1, kT=0.15, tau=5.0, E=(0.002, -0.001), B=0.05)
        return Problem("0x2k", get_model("qwz", M=1.0), (32, 32), ph, comm=comm)
    if layout == "0x3k":
        from test_solver import layered_chern

        ph = Physics(mu=1.2, kT=0.15, tau=5.0, E=(0.002, -0.001, 0.0), B=0.05)
        return Problem("0x3k", layered_chern(), (16, 16, 6), ph, comm=comm)
    ph = Physics(mu=-0.5, kT=0.2, tau=10.0, E=(0.05,), terms=frozenset())
    return Problem("0x1k", get_model("cosine1d"), (64,), ph, comm=comm)


def compare(layout, run):
    """Solve on COMM_WORLD and on COMM_SELF; ILU (1 rank) and ASM (2 ranks) differ by the KSP
    tolerance, tightened here through the options database (which also shows that
    -steady_ksp_* options reach the solver)."""
    from petsc4py import PETSc

    opts = PETSc.Options()
    opts["steady_ksp_rtol"] = 1e-15
    opts["steady_ksp_atol"] = 1e-16
    try:
        return _compare(layout, run)
    finally:
        del opts["steady_ksp_rtol"]
        del opts["steady_ksp_atol"]


def _compare(layout, run):
    results = {}
    for comm in ("world", "self"):
        p = build(layout, comm)
        tr = Transport(p)
        f = run(tr, p)
        results[comm] = (p.mesh.gather(f), total(p, density(p, f)),
                         np.atleast_1d(total(p, number_current(tr, f))))
    par, ser = results["world"], results["self"]
    for a, b in zip(par[1:], ser[1:]):
        assert np.allclose(a, b, rtol=1e-10, atol=1e-14)
    if par[0] is not None:
        assert np.abs(par[0] - ser[0]).max() <= 1e-10 * np.abs(ser[0]).max()


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("layout", ["1x1k", "0x2k", "0x1k", "0x3k"])
def test_steady_parallel_equals_serial(layout):
    compare(layout, lambda tr, p: tr.steady()[0])


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("layout", ["0x2k", "1x1k", "0x1k"])
def test_perturbative_orders_parallel_equals_serial(layout):
    """Transport.steady_orders (one operator, orders 0-2) on 2 ranks = 1 rank: f0 + E f1 + E² f2
    at E = 0.1 (f1, f2 alone carry no density: ∫∇_k f = 0)."""
    direction = (1.0, 0.0) if layout == "0x2k" else (1.0,)

    def run(tr, p):
        f0, f1, f2 = tr.steady_orders(direction)
        f0.axpy(0.1, f1)
        f0.axpy(0.01, f2)
        return f0

    compare(layout, run)


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("ts_type", ["ssp", "arkimex"])
@pytest.mark.parametrize("layout", ["1x1k", "0x2k", "0x3k"])
def test_transient_parallel_equals_serial(layout, ts_type):
    def run(tr, p):
        f = p.field(p.f_loc)
        tr.transient(f, 3.0, ts_type=ts_type, dt=0.01)
        return f

    compare(layout, run)


def build_more(kind, comm):
    from petsc4py import PETSc

    from kinetic.models.texture import landau_shift

    comm = PETSc.COMM_SELF if comm == "self" else PETSc.COMM_WORLD
    if kind == "1x2k":
        ph = Physics(mu=0.3, kT=0.1, tau=6.0, E=(0.01,))
        pm = landau_shift(get_model("qwz", M=1.0), 2 * np.pi / 8)
        return Problem("1x2k", pm, (8, 16, 12), ph, x_range=(0.0, 8.0), comm=comm)
    if kind in ("1x2k_second", "1x2k_second_wall"):  # x-derivatives of A′, g cross the ranks
        from kinetic.models.texture import Sine, texture
        from kinetic.semiclassics import FIRST_ORDER

        wall = kind.endswith("wall")  # + the field part of A′ (A2_shift_field)
        ph = Physics(mu=0.3, kT=0.1, tau=6.0, E=(0.01,), boundary="wall" if wall else "periodic",
                     terms=frozenset(FIRST_ORDER + ("A2_shift_texture", "A2_threeband",
                                                    "A2_metric_gradient", "obs_quadrupole")
                                     + (("A2_shift_field",) if wall else ())))
        pm = texture(get_model("qwz", M=1.0), {"M": Sine(mean=1.0, amplitude=0.3, period=16.0)})
        return Problem("1x2k", pm, (16, 16, 12), ph, x_range=(0.0, 16.0), comm=comm)
    if kind in ("moyal_1x1k", "e2_1x2k"):  # ε⁽²⁾: Moyal engine (N = 3) / quasi-1D closed forms
        from test_moyal import trimer_ring
        from kinetic.semiclassics import FIRST_ORDER

        terms = frozenset(FIRST_ORDER + ("E2_quadrupole", "E2_bcp", "E2_curv2",
                                         "E2_metric_laplacian", "A2_shift_texture", "A2_threeband"))
        if kind == "moyal_1x1k":
            return Problem("1x1k", trimer_ring(16), (16, 32),
                           Physics(mu=0.2, kT=0.08, tau=5.0, E=(0.0,), terms=terms),
                           x_range=(-0.5, 15.5), comm=comm)
        from kinetic.models.texture import Sine, texture

        pm = texture(get_model("qwz", M=1.0), {"M": Sine(mean=1.0, amplitude=0.3, period=16.0)})
        return Problem("1x2k", pm, (16, 16, 6), Physics(mu=-1.0, kT=0.1, tau=5.0, E=(0.01,),
                                                        terms=terms), x_range=(0.0, 16.0),
                       comm=comm)
    if kind == "0x3k_second":  # field terms at B = 0: Ω′_x, Ω′_y, ∂_kz ε⁽²⁾ from corner values
        from test_nonlinear_solver import FIELD_TERMS, _layered_tilted
        from kinetic.semiclassics import FIRST_ORDER

        ph = Physics(mu=0.3, kT=0.15, tau=2.0, E=(0.01, 0.004, 0.0),
                     terms=frozenset(FIRST_ORDER + FIELD_TERMS + ("relax_to_corrected_energy",)))
        return Problem("0x3k", _layered_tilted(), (16, 16, 6), ph, comm=comm)
    if kind in ("A2_shift", "A2_shift_wall"):  # walls: fourth-order x-differences
        from kinetic.semiclassics import FIRST_ORDER

        ph = Physics(mu=0.1, kT=0.05, tau=5.0, E=(0.01,),
                     boundary="wall" if kind.endswith("wall") else "periodic",
                     terms=frozenset(FIRST_ORDER + ("A2_shift_texture", "A2_shift_field",
                                                    "A2_metric_gradient", "obs_quadrupole",
                                                    "E2_quadrupole", "E2_bcp", "E2_curv2",
                                                    "E2_metric_laplacian", "wk_correction")))
        return Problem("1x1k", rice_mele_ring(32), (40, 32), ph, x_range=(0.0, 32.0), comm=comm)
    ph = Physics(mu=0.2, kT=0.1, tau=2.0, E=(0.05,), number_conserving=True)
    return Problem("1x1k", rice_mele_ring(16), (16, 32), ph, x_range=(0.0, 16.0), comm=comm)


def build_muscl(layout, comm):
    from petsc4py import PETSc

    comm = PETSc.COMM_SELF if comm == "self" else PETSc.COMM_WORLD
    if layout == "1x1k":
        ph = Physics(mu=0.05, kT=0.05, tau=7.0, E=(0.01,), reconstruction="muscl")
        return Problem("1x1k", rice_mele_ring(24), (24, 40), ph, x_range=(0.0, 24.0), comm=comm)
    ph = Physics(mu=1.1, kT=0.15, tau=5.0, E=(0.002, -0.001), B=0.05, reconstruction="muscl")
    return Problem("0x2k", get_model("qwz", M=1.0), (32, 32), ph, comm=comm)


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("mode", ["steady", "ssp"])
@pytest.mark.parametrize("layout", ["1x1k", "0x2k"])
def test_muscl_parallel_equals_serial(layout, mode, monkeypatch):
    import test_solver_mpi as mod

    from petsc4py import PETSc

    monkeypatch.setattr(mod, "build", build_muscl)
    opts = PETSc.Options()
    opts["steady_snes_rtol"] = 1e-13  # converge the defect correction below the comparison
    try:
        def run(tr, p):
            if mode == "steady":
                return tr.steady()[0]
            f = p.field(p.f_loc)
            tr.transient(f, 2.0, ts_type="ssp", dt=0.01)
            return f

        compare(layout, run)
    finally:
        del opts["steady_snes_rtol"]


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("kind", ["1x2k", "number_conserving", "A2_shift", "A2_shift_wall",
                                  "1x2k_second", "1x2k_second_wall", "number_conserving_steady",
                                  "moyal_1x1k", "e2_1x2k", "0x3k_second"])
def test_more_paths_parallel_equals_serial(kind, monkeypatch):
    import test_solver_mpi as mod

    monkeypatch.setattr(mod, "build", lambda layout, comm: build_more(kind, comm))

    def run(tr, p):
        if kind in ("1x2k", "A2_shift", "A2_shift_wall", "1x2k_second", "1x2k_second_wall",
                    "number_conserving_steady", "moyal_1x1k", "e2_1x2k", "0x3k_second"):
            return tr.steady()[0]
        f = p.field(p.f_loc * 0.9)
        tr.transient(f, 2.0, ts_type="ssp", dt=0.01)
        return f

    compare(kind, run)


@pytest.mark.mpi(min_size=2)
def test_steady_sweep_parallel_equals_serial():
    """One operator, many (μ, T) right-hand sides: 2 ranks = 1 rank for every point."""
    from petsc4py import PETSc

    points = [(0.9, 0.1), (1.2, 0.15)]
    res = {}
    opts = PETSc.Options()
    opts["steady_ksp_rtol"] = 1e-15
    opts["steady_ksp_atol"] = 1e-16
    try:
        for name, comm in (("world", PETSc.COMM_WORLD), ("self", PETSc.COMM_SELF)):
            p = Problem("0x2k", get_model("qwz", M=1.0), (32, 32),
                        Physics(mu=1.0, kT=0.1, tau=5.0, E=(2e-3, -1e-3), B=0.05), comm=comm)
            res[name] = [p.mesh.gather(f) for f in Transport(p).steady_sweep(points)]
    finally:
        del opts["steady_ksp_rtol"]
        del opts["steady_ksp_atol"]
    if PETSc.COMM_WORLD.getRank() == 0:
        for a, b in zip(res["world"], res["self"]):
            assert np.abs(a - b).max() <= 1e-10 * np.abs(b).max()
