"""``kinetic run``: build the problem of a run file, solve it, write the outputs.

Outputs in DIR (written under temporary names and renamed when complete):
- ``summary.json``: every observable as {"value", "unit"}; solver, iterations/steps,
  residual, wall time, ranks, kinetic version, run-file sha256;
- ``fields.npz``: x-fields with coordinates and units (1x1k), and the phase-space
  distribution ``f`` (N_k, N_x, bands); homogeneous runs store ``f`` on the k-mesh;
- ``fields.vtk``: the x-fields as a legacy-VTK rectilinear grid (ParaView), 1x1k only;
- ``timeseries.csv``: transient runs, t_fs and the totals with units in the header;
- ``diagnostics.csv``: transient runs one row per step (step, t, dt, particle number, its
  relative drift, wall time), steady runs one row per solve (iterations, residual);
- ``checkpoint.npz``: transient runs with [solver] checkpoint (``kinetic.checkpoint``).

Before building the problem, rank 0 prints a memory estimate (per rank and total) and the run
is refused if it exceeds the memory available on the node, unless forced.
"""
from __future__ import annotations

import csv
import io
import json
import resource
import time
from pathlib import Path

import numpy as np

import kinetic
from kinetic import checkpoint, units
from kinetic.errors import ConfigError, KineticError
from kinetic.fileio import atomic_write
from kinetic.models.loader import build_model
from kinetic.observables import density, energy_density, number_current, total
from kinetic.problem import Physics, Problem
from kinetic.runfile import SolverRun, load_solver_run
from kinetic.semiclassics import DEFAULT_TERMS
from kinetic.solvers import Transport


def build_problem(run: SolverRun, comm=None, model=None) -> Problem:
    """SolverRun -> Problem (layout from the model dimension and the presence of mesh.x)."""
    model = model if model is not None else build_model(run.model, run.path.parent)
    dim = model.dim
    pump = None
    if run.y_n is not None:
        raise ConfigError("mesh.y: x-y textures (the 2x2k layout) are solved by `kinetic run` "
                          "only (no sweeps or perturbative orders yet); drop mesh.y here")
    if needs_full_3d(run, model):
        raise ConfigError("physics: E_z ≠ 0 or B not along z (the full 3-D k-mesh) is solved by "
                          "`kinetic run` only (no sweeps or perturbative orders yet)")
    if any(run.magnetic_field_xy_T) and dim != 3:
        raise ConfigError(f"physics.magnetic_field = {[*run.magnetic_field_xy_T, run.magnetic_field_T]}"
                          f": a 3-vector B needs a homogeneous 3D model; {model.name!r} has dim {dim}")
    if run.x_n is not None:
        if run.pump is not None:
            raise ConfigError("[pump]: pumps are homogeneous (time-dependent parameters, uniform in "
                              "x); remove mesh.x or the [pump] section")
        if dim not in (1, 2):
            raise ConfigError(f"mesh.x: x-textures are solved for 1D (1x1k) and 2D (1x2k, texture "
                              f"along x, k_y folded) models; model {model.name!r} has dim = {dim}")
        layout = "1x1k" if dim == 1 else "1x2k"
        from kinetic.models.texture import rice_mele_ring, texture

        if run.builtin == "rice_mele_ring":
            if dim != 1:
                raise ConfigError("texture.builtin = 'rice_mele_ring' is a 1D texture")
            pm = rice_mele_ring(**{"L": run.x_length, **run.builtin_args})
        elif run.builtin == "helical":
            pm = helical_texture(run, model)
        else:
            pm = texture(model, run.texture, dim_x=1) if run.texture else texture(model, {}, 1)
        n = (run.x_n,) + tuple(run.k)
    else:
        if run.texture or run.builtin:
            raise ConfigError("[texture] needs mesh.x = { n = ..., length = ... }")
        if run.pump is not None:  # H(k, t): the Problem is built at t = 0 (kinetic.pump)
            from kinetic.pump import PumpModel

            pump = PumpModel(model, run.pump["params"], units.fs_to_internal(run.pump["period_fs"]))
            model = pump.at(0.0)
        layout = {1: "0x1k", 2: "0x2k", 3: "0x3k"}.get(dim)
        if layout is None:
            raise ConfigError(f"model {model.name!r}: dim = {dim}; the solver handles 1D, 2D and 3D "
                              "homogeneous models and x-textures of 1D and 2D models")
        pm, n = model, run.k
    if len(run.k) != dim:
        raise ConfigError(f"mesh.k = {list(run.k)}: model {model.name!r} has {dim} k-dimension(s)")
    E = run.electric_field or (0.0,) * dim
    if len(E) != dim:
        raise ConfigError(f"physics.electric_field = {list(E)}: give {dim} component(s) (V/m)")
    terms = set(run.terms if run.terms is not None else DEFAULT_TERMS)
    if run.field_time["kind"] != "static" and any(E) and terms & {"A2_shift_field", "E2_bcp"}:
        raise ConfigError("physics.terms: A2_shift_field / E2_bcp depend on the field and are "
                          "built for a static E; with field_time.kind = "
                          f"{run.field_time['kind']!r} switch them off")
    if layout == "0x3k" and E[2] != 0:
        raise ConfigError(f"physics.electric_field = {list(E)} V/m: the 0x3k layout folds k_z into "
                          "the dof and needs k_z conserved: E_z = 0 (B is along z); put the field "
                          "in the x-y plane")
    if run.magnetic_field_T and layout not in ("0x2k", "0x3k"):
        raise ConfigError("physics.magnetic_field: the explicit-B route needs a homogeneous 2D or "
                          "3D model (0x2k, 0x3k; B along z); for textures use a Landau-gauge "
                          "texture")
    mu_l = run.mu_left_eV
    ph = Physics(
        mu=run.mu_eV, kT=units.kelvin_to_ev(run.temperature_K), tau=relaxation_time(run, model),
        E=tuple(units.field_to_internal(e) for e in E), B=units.tesla_to_internal(run.magnetic_field_T),
        terms=frozenset(run.terms if run.terms is not None else DEFAULT_TERMS), bands=run.bands,
        boundary=run.boundary, mu_left=mu_l, mu_right=run.mu_right_eV,
        number_conserving=run.number_conserving, reconstruction=run.reconstruction)
    k_range = None
    if getattr(model, "reciprocal", None) is None:
        if run.kmax is None:
            raise ConfigError(f"mesh.kmax: continuum model {model.name!r} needs kmax (1/Å)")
        k_range = ((-run.kmax, run.kmax),) * dim
    x_range = ((run.x_start, run.x_start + run.x_length) if layout in ("1x1k", "1x2k")
               else None)
    problem = Problem(layout, pm, n, ph, x_range=x_range, k_range=k_range, comm=comm)
    problem.pump = pump
    return problem


def helical_texture(run: SolverRun, model):
    """texture.builtin = "helical": the V12 texture U(x) H0 U(x)†, U = exp(−iqxΣ/2), of a model
    with a rotation generator Σ, on one periodic period of x."""
    from kinetic.models.texture import helical

    q = float(run.builtin_args["q"])
    if getattr(model, "Sigma", None) is None:
        raise ConfigError(f"texture.builtin = 'helical' needs a model with a rotation generator Σ "
                          f"(qwz_helical); {model.name!r} has none")
    period = 2 * np.pi / abs(q)
    if abs(run.x_length - period) > 1e-9 * period or run.boundary != "periodic":
        raise ConfigError(f"mesh.x: the helical texture with q = {q:g} 1/Å needs one periodic "
                          f"period, length = {period:.12g} Å")
    return helical(model, q, model.Sigma)


def needs_full_3d(run: SolverRun, model) -> bool:
    """A homogeneous 3D run with E_z ≠ 0 or B off the z axis: the full k-mesh layout
    (``kinetic.problem3k``) instead of the folded 0x3k."""
    E = tuple(run.electric_field) + (0.0,) * 3
    return (model.dim == 3 and run.x_n is None and run.pump is None
            and (E[2] != 0 or any(run.magnetic_field_xy_T)))


def equilibrium_reference(p: Problem, tr: Transport) -> Transport:
    """The transport whose E = 0 steady state is the reference of j[E] − j[0]: ``tr`` itself,
    or — when field-induced second-order terms make the fields depend on E — a problem rebuilt
    at E = 0 (else ε⁽²⁾(E) would stay in ε̃ and f_loc and cancel the τ⁰ current)."""
    if not p.field_dependent:
        return tr
    return Transport(p.with_field((0.0,) * len(np.atleast_1d(p.phys.E))))


def relaxation_time(run: SolverRun, model):
    """physics.tau -> a number (ħ/eV) or callable(ε eV, band) -> τ (ħ/eV)."""
    spec = run.tau_fs
    if isinstance(spec, tuple):
        if len(spec) != model.nb:
            raise ConfigError(f"physics.tau = {list(spec)}: give one τ per band ({model.nb} bands)")
        taus = np.array([units.fs_to_internal(t) for t in spec])
        return lambda eps, band: taus[band]
    if isinstance(spec, str):
        import importlib

        mod_name, func_name = spec.split(":")
        try:
            func = getattr(importlib.import_module(mod_name), func_name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"physics.tau = {spec!r}: cannot load ({exc})") from None
        def tau(eps, band):
            try:
                out = np.asarray(func(eps, band), float)
            except Exception as exc:  # the user's function: report, don't trace back
                raise ConfigError(f"physics.tau = {spec!r}: calling it as f(energy_eV, band) "
                                  f"failed ({type(exc).__name__}: {exc}); it must take "
                                  "(energy_eV, band) and return τ in fs") from None
            return units.fs_to_internal(out)

        return tau
    return units.fs_to_internal(spec)


def field_of_time(run: SolverRun, E):
    """E(t) (internal units, t in ħ/eV) from physics.field_time: static, step or ac."""
    ft = run.field_time
    E = tuple(E)
    zero = (0.0,) * len(E)
    if ft["kind"] == "step":
        t_on = units.fs_to_internal(ft["t_on"])
        return lambda t: E if t > t_on else zero
    if ft["kind"] == "ac":
        w = ft["omega"] * units.TIME_FS  # rad/fs -> rad per ħ/eV
        return lambda t: tuple(e * np.cos(w * t) for e in E)
    return lambda t: E


def observables(p: Problem, tr: Transport, f, f_eq=None, tr_eq=None, polarization=True,
                E=None) -> dict:
    """Totals (and x-fields for textures) in SI: {name: {"value", "unit"}} plus raw x-fields
    (1x1k with ``polarization``: also the polarization split of ``kinetic.polarization``).

    With ``f_eq`` (the E = 0 steady state, of ``tr_eq`` — default ``tr``) the transport
    current j[E] − j[E = 0] is reported too, removing equilibrium magnetization currents
    (physics.md §6.2). See ``equilibrium_reference`` for which problem f_eq belongs to.
    ``E``: the field at this instant (transient runs with a step or AC field; default
    physics.E), which enters the anomalous velocity.
    """
    d = {"1x1k": 1, "0x1k": 1, "0x3k": 3}.get(p.layout, 2)
    nfac, nunit = units.density_si(d)
    ufac, uunit = units.E_CHARGE * units.ANGSTROM ** (-d), {1: "J/m", 2: "J/m^2", 3: "J/m^3"}[d]
    jfac = units.E2_HBAR * units.ANGSTROM ** (1 - d)  # (e · eV/ħ) per Å^(d-1)
    junit = {1: "A", 2: "A/m", 3: "A/m^2"}[d]
    n_loc, u_loc = density(p, f), energy_density(p, f)
    jN_loc = np.asarray(number_current(tr, f, E))
    jQ = None
    if p.layout in ("1x1k", "1x2k") and "obs_quadrupole" in p.phys.terms:
        from kinetic.observables import quadrupole_current

        jQ = quadrupole_current(tr, f, E)  # ∂_x∂_t Q: zero in steady states
        if p.layout == "1x1k":
            jN_loc = jN_loc + jQ
        else:
            jN_loc = jN_loc + np.stack([jQ, np.zeros_like(jQ)], -1)
    currents = {"current": -np.asarray(jN_loc)}
    if f_eq is not None:
        zero = (0.0,) * len(np.atleast_1d(p.phys.E))
        currents["transport_current"] = currents["current"] + np.asarray(
            number_current(tr_eq or tr, f_eq, E=zero))
    out = {}

    def value(v):
        v = np.atleast_1d(v)
        return v.tolist() if v.size > 1 else float(v[0])

    if p.layout in ("1x1k", "1x2k"):
        L = p.mesh.axes[0].hi - p.mesh.axes[0].lo
        xf = {"n": p.mesh.gather_x(n_loc), "u": p.mesh.gather_x(u_loc)}
        for name, jx in currents.items():
            key = "j" if name == "current" else "j_transport"
            if p.layout == "1x1k":
                xf[key] = p.mesh.gather_x(jx)
            else:
                xf[key], xf[key + "_y"] = p.mesh.gather_x(jx[:, 0]), p.mesh.gather_x(jx[:, 1])
            out["mean_" + name] = {"value": value(total(p, jx) / L * jfac), "unit": junit}
        if jQ is not None:
            xf["j_quadrupole"] = p.mesh.gather_x(-jQ)  # charge units, included in j
        if polarization:
            from kinetic.polarization import polarization_fields

            for key, vals in polarization_fields(p, f).items():
                xf[key] = p.mesh.gather_x(vals)
        out["x_fields"] = xf
        out["particles_per_cell_length"] = {"value": float(total(p, n_loc)), "unit": "1 (number)"}
        out["mean_density"] = {"value": float(total(p, n_loc)) / L * nfac, "unit": nunit}
        out["mean_energy_density"] = {"value": float(total(p, u_loc)) / L * ufac, "unit": uunit}
    else:
        out["density"] = {"value": float(total(p, n_loc)) * nfac, "unit": nunit}
        out["energy_density"] = {"value": float(total(p, u_loc)) * ufac, "unit": uunit}
        for name, j in currents.items():
            out[name] = {"value": value(total(p, j) * jfac), "unit": junit}
    return out


def texture_hall(p: Problem, tr: Transport, fs, f_eq, tr_eq, obs: dict) -> None:
    """Add the τ⁰ Hall conductivity of a 1x2k texture to ``obs`` (physics.md §6.5 recipe):
    σ_yx(x; τ) = (j_y[E_x] − j_y[0])/E_x with the magnetization current j_y[0] subtracted, from
    the steady states ``fs`` at τ, τ/2, τ/4, extrapolated quadratically to τ → 0
    (``kinetic.texture_hall.tau0_extrapolation``). The x-field ``sigma_yx_tau0`` (S) and its
    mean over x (S and e²/h). The Onsager partner σ_xy needs E_y, which k_y-folded 1x2k cannot
    take: σ_yx is reported as computed, not antisymmetrized (use mesh.y, 2x2k)."""
    from kinetic.texture_hall import tau0_extrapolation

    Ex = float(np.atleast_1d(p.phys.E)[0])
    j0 = np.asarray(number_current(tr_eq or tr, f_eq, E=(0.0,)))[:, 1]
    sig = [-(np.asarray(number_current(tr, g))[:, 1] - j0) / Ex for g in fs]
    s0 = tau0_extrapolation(*sig)  # e²/ħ per x-cell (sheet conductivity, e = ħ = 1)
    L = p.mesh.axes[0].hi - p.mesh.axes[0].lo
    mean = float(total(p, s0)) / L
    obs["x_fields"]["sigma_yx_tau0"] = p.mesh.gather_x(s0)
    obs["texture_hall_sigma_yx_tau0"] = {"value": mean * units.E2_HBAR, "unit": "S"}
    obs["texture_hall_sigma_yx_tau0_e2h"] = {"value": mean * 2 * np.pi, "unit": "e^2/h"}


MAX_EXACT_STATES = 4096  # dense ED of (cells × bands)² : ~1 min at 4096 on this machine


def _ring_cells(cfg: SolverRun, p: Problem) -> tuple[int, float]:
    """(cells L, lattice constant a) of the ring for ``output.exact_reference``, or the
    ConfigError naming the mesh that is needed (checked before solving)."""
    a = float(np.asarray(p.model.lattice).ravel()[0])
    L = int(round(cfg.x_length / a))
    ax = p.mesh.axes[0]
    if cfg.x_n != L or abs(L * a - cfg.x_length) > 1e-9 * a or abs(ax.lo + a / 2) > 1e-9 * a:
        raise ConfigError(f"output.exact_reference: the lattice has {cfg.x_length / a:g} cells of "
                          f"a = {a:g} Å on the ring; set mesh.x.n = {L}, mesh.x.length = {L * a:g} "
                          f"and mesh.x.start = {-a / 2:g} (cells centred on the sites)")
    if L * p.model.nb > MAX_EXACT_STATES:
        raise ConfigError(f"output.exact_reference: {L * p.model.nb} lattice states exceed "
                          f"{MAX_EXACT_STATES} (dense diagonalization); use a shorter ring")
    return L, a


def exact_reference(cfg: SolverRun, p: Problem, obs: dict, comm) -> None:
    """Add the exact-diagonalization density of the ring (``kinetic.reference.ring_density``,
    midpoint-rule lattice, grand canonical at the run's μ, T, all bands) to ``obs``: the x-field
    ``n_exact`` and ``max_abs_density_minus_exact``. Needs one x-cell per lattice cell, centred
    on the sites x_R = R·a (mesh.x.start = −a/2)."""
    L, a = _ring_cells(cfg, p)
    resid = None
    if comm.getRank() == 0:
        from kinetic.reference import ring_density

        n_exact = ring_density(p.model, L, mu=p.phys.mu, kT=p.phys.kT, a=a).n / a  # per Å
        obs["x_fields"]["n_exact"] = n_exact
        resid = float(np.max(np.abs(obs["x_fields"]["n"] - n_exact)))
    resid = comm.tompi4py().bcast(resid, root=0)
    nfac, nunit = units.density_si(1)
    obs["max_abs_density_minus_exact"] = {"value": resid * nfac, "unit": nunit}


def pump_observables(pf, t, f, previous=None) -> dict:
    """Totals of a pump run in SI at time t (internal): density, energy density, the band and
    anomalous (−Ω_kt) parts of the current, and the electrons pumped in +x since t = 0
    (trapezoid rule over the recorded steps; ``previous`` = (t, observables) of the last step)."""
    mo = pf.moments(t, f)
    nfac, nunit = units.density_si(1)
    jfac = units.E2_HBAR * units.ANGSTROM ** 0  # e · eV/ħ -> A (1D)
    jN = mo["j_band"] + mo["j_anomalous"]
    pumped = 0.0
    if previous is not None:
        t_prev, o_prev = previous
        jN_prev = o_prev["number_current"]["value"] * units.TIME_FS  # per fs -> per ħ/eV
        pumped = o_prev["pumped_electrons"]["value"] + 0.5 * (jN + jN_prev) * (t - t_prev)
    return {
        "density": {"value": mo["n"] * nfac, "unit": nunit},
        "energy_density": {"value": mo["u"] * units.E_CHARGE / units.ANGSTROM, "unit": "J/m"},
        "current": {"value": -jN * jfac, "unit": "A"},
        "current_band": {"value": -mo["j_band"] * jfac, "unit": "A"},
        "current_anomalous": {"value": -mo["j_anomalous"] * jfac, "unit": "A"},
        "number_current": {"value": jN / units.TIME_FS, "unit": "1/fs"},
        "pumped_electrons": {"value": pumped, "unit": "electrons"},
    }


def _vtk_unit(unit: str) -> str:
    """A unit as a VTK-safe name suffix: 1/m -> per_m, 1/m^2 -> per_m2, A/m -> A_per_m."""
    return unit.replace("1/", "per_").replace("/", "_per_").replace("^", "").replace("*", "_")


def write_vtk(path: Path, x_A: np.ndarray, fields: dict) -> None:
    """Legacy-VTK rectilinear grid of 1-D x-fields (cell centres as points)."""
    lines = ["# vtk DataFile Version 3.0", "kinetic x-fields (x in Angstrom)", "ASCII",
             "DATASET RECTILINEAR_GRID", f"DIMENSIONS {len(x_A)} 1 1",
             f"X_COORDINATES {len(x_A)} double", " ".join(f"{v:.17g}" for v in x_A),
             "Y_COORDINATES 1 double", "0", "Z_COORDINATES 1 double", "0",
             f"POINT_DATA {len(x_A)}"]
    for name, vals in fields.items():
        lines += [f"SCALARS {name} double 1", "LOOKUP_TABLE default",
                  " ".join(f"{v:.17g}" for v in vals)]
    atomic_write(path, ("\n".join(lines) + "\n").encode())


# ---------------------------------------------------------------------------- memory estimate
# Peak memory model, calibrated on this machine (2 cores, PETSc 3.26, numpy 2.4, glibc): `kinetic
# run` in fresh processes, peak RSS (resource.getrusage ru_maxrss) minus the RSS after imports,
# for 0x1k cosine (nb = 1), 0x2k QWZ, 1x1k Rice–Mele rings and a 1x2k QWZ texture (nb = 2),
# 2e4–1.6e6 unknowns, steady and transient: measured/estimated peak 0.70–1.06 (increments over
# the import RSS 0.68–1.06); tests/test_run.py::test_memory_estimate_within_factor_two.
# Recalibrated for nb = 2 after band_geometry's closed-form two-band path (2026-11-24): 0x2k QWZ
# steady/arkimex, 1x1k ring, 1x2k QWZ texture, 0x2k cosine (nb = 1), 1.6e5–3.6e5 unknowns:
# measured/estimated 0.64–1.20 (increments 0.52–1.23).
# - The peak is reached while the Problem is built: band_geometry at cell centres and corners
#   (both alive) holds per point H, eigenvectors, ∂H, <m|∂H|n>, A (nb² complex; n coordinates
#   for the last three) and Q, g, Ω, G (nb n² each) = _geometry_bytes, × 2.8 for the two point
#   sets and the model's temporaries; the retained fields (ε̃, D, f_loc, fluxes) fit inside it.
# - The solver adds per unknown: steady GMRES(30) basis + AIJ matrix (5 nonzeros per row ×
#   (8 + 4) B + row pointers) + its ILU factor + vectors ≈ 480 B; arkimex stage vectors and the
#   diagonal Jacobian ≈ 320 B; explicit TS (ssp, rk, euler) ≈ 120 B.
GEOMETRY_FACTOR = 2.8
GEOMETRY_FACTOR_2BAND = 1.2  # nb = 2: the closed-form path of band_geometry keeps no temporaries
SOLVER_BYTES = {"steady": 480, "arkimex": 320}
EXPLICIT_TS_BYTES = 120


def _geometry_bytes(nb: int, n: int) -> int:
    """Bytes per phase-space point of one band_geometry evaluation (nb bands, n coordinates)."""
    return 16 * nb * nb * (2 + 3 * n) + 48 * nb * n * n + 64 * nb


def _rss() -> int:
    """This process's resident set size (bytes; its peak so far where /proc is missing)."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(ln.split()[1]) * 1024 for ln in fh if ln.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def available_memory() -> int | None:
    """MemAvailable of this node (bytes) from /proc/meminfo; None where it cannot be read."""
    try:
        with open("/proc/meminfo") as fh:
            return next(int(ln.split()[1]) * 1024 for ln in fh if ln.startswith("MemAvailable:"))
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def memory_estimate(cfg: SolverRun, model, ranks: int) -> dict | None:
    """Estimated peak bytes of the most loaded rank (the mesh is split along q1): its RSS now
    plus the Problem's geometry and the solver; None if the mesh does not fit the model
    (build_problem then says why)."""
    dim, k = model.dim, tuple(cfg.k)
    if cfg.y_n is not None or needs_full_3d(cfg, model):
        return _memory_estimate_assembled(cfg, model, ranks)
    if len(k) != dim or dim not in (1, 2, 3) or (dim == 3 and cfg.x_n is not None):
        return None
    nfold = k[1] if cfg.x_n is not None and dim == 2 else (k[2] if dim == 3 else 1)
    if cfg.x_n is not None:
        n1, n2, ncoord = cfg.x_n, k[0], 1 + dim
    else:
        n1, n2, ncoord = k[0], (4 if dim == 1 else k[1]), dim
    nbands = len(cfg.bands) if cfg.bands else model.nb
    points = -(-n1 // ranks) * n2 * nfold
    solver = SOLVER_BYTES.get("steady" if cfg.mode == "steady" else cfg.ts_type, EXPLICIT_TS_BYTES)
    base = _rss()
    factor = GEOMETRY_FACTOR_2BAND if model.nb == 2 else GEOMETRY_FACTOR
    per_point = factor * _geometry_bytes(model.nb, ncoord) + nbands * solver
    per_rank = base + points * per_point
    return {"per_rank_B": int(per_rank), "total_B": int(per_rank) * ranks, "base_B": base,
            "unknowns": n1 * n2 * nfold * nbands}


#: 2x2k (kinetic.problem4): per phase-space point and band the retained fields (ε̃, κ on six
#: codimension-2 grids, plaquette fluxes, D, f_loc: ~35 doubles), the COO pattern and values (9
#: entries × 24 B), the AIJ matrix, its ASM/ILU factor and the GMRES basis (~700 B); the geometry
#: is evaluated in batches of 32768 points (bounded); the eigenvectors of the corner grid add
#: 32 nb_model² B per point.
BYTES_2X2K_PER_UNKNOWN = 2000  # measured/estimated 0.98-1.03 (6.6e5 unknowns, 1-2 ranks)
#: the full 3-D k-mesh keeps fewer staggered fields (three edge grids, no Ψ pairs):
#: parabolic3d at 64³, measured/estimated 0.58 with the 2x2k figure -> 1000
BYTES_3K_PER_UNKNOWN = 1000


def _memory_estimate_assembled(cfg, model, ranks):
    """2x2k (mesh.y) and the full 3-D k-mesh: split along the first axis."""
    k = tuple(cfg.k)
    if cfg.y_n is not None:
        if len(k) != 2:
            return None
        n = (cfg.x_n, cfg.y_n) + k
    elif len(k) != 3:
        return None
    else:
        n = k
    points = -(-n[0] // ranks) * int(np.prod(n[1:]))
    nbands = len(cfg.bands) if cfg.bands else model.nb
    base = _rss()
    per = BYTES_2X2K_PER_UNKNOWN if cfg.y_n is not None else BYTES_3K_PER_UNKNOWN
    per_rank = base + points * (nbands * per + 32 * model.nb**2)
    return {"per_rank_B": int(per_rank), "total_B": int(per_rank) * ranks, "base_B": base,
            "unknowns": int(np.prod(n)) * nbands}


def _size(b) -> str:
    return f"{b / 2**30:.2f} GiB" if b >= 2**30 else f"{b / 2**20:.0f} MiB"


def check_memory(est: dict, mpi, say, force: bool) -> None:
    """Print the estimate (rank 0) and refuse, on every rank, a run whose ranks on rank 0's node
    need more than that node's MemAvailable, unless ``force``."""
    from mpi4py import MPI

    node = mpi.Split_type(MPI.COMM_TYPE_SHARED)
    on_node = node.Get_size()
    node.Free()
    msg = err = None
    if mpi.Get_rank() == 0:
        per, need, avail = est["per_rank_B"], est["per_rank_B"] * on_node, available_memory()
        msg = (f"kinetic: memory estimate {_size(per)} per rank, {_size(est['total_B'])} total "
               f"({est['unknowns']} unknowns, {mpi.Get_size()} rank(s))")
        if avail is not None:
            msg += f"; {_size(avail)} available on this node"
            if need > avail and force:
                msg += "; exceeds it, running anyway (force)"
            elif need > avail:
                err = (f"memory: the run needs an estimated {_size(need)} on this node "
                       f"({_size(per)} per rank × {on_node} rank(s), {est['unknowns']} unknowns) "
                       f"but {_size(avail)} is available (MemAvailable); use a coarser mesh.k / "
                       "mesh.x.n, fewer physics.bands or more nodes, or --force "
                       "(solver.force = true) to run anyway")
    msg, err = mpi.bcast((msg, err), root=0)
    say(msg)
    if err is not None:
        raise ConfigError(err)


# ---------------------------------------------------------------------------- the run
def _particles_key(obs: dict) -> str:
    return "particles_per_cell_length" if "particles_per_cell_length" in obs else "density"


def _transient(cfg, p, tr, outdir, restart, say, quiet, t0):
    """Integrate to t_end (from a checkpoint if ``restart``), recording the time series and the
    per-step diagnostics and writing checkpoints; returns (f, info, series, diagnostics)."""
    from petsc4py import PETSc

    t_end = units.fs_to_internal(cfg.t_end_fs)
    parts = checkpoint.inputs(cfg, p)
    if restart is not None:
        f, st = checkpoint.load(restart, p.mesh, parts)
        old = "" if st.get("kinetic") == kinetic.__version__ else f" (kinetic {st.get('kinetic')})"
        say(f"kinetic: restarting from {st['path']}{old} at step {st['step']}, "
            f"t = {st['t_fs']:.6g} fs")
    else:
        f = p.field(p.f_loc)
        st = {"step": 0, "t_internal": 0.0, "dt_internal": None, "wall_s": 0.0, "series": [],
              "diagnostics": []}
    _output_dir(outdir, p.mesh.comm.tompi4py(), create=True)  # the checkpoint goes there
    step0, t_start = st["step"], st["t_internal"]
    series = [tuple(row) for row in st["series"]]  # (t_fs, {name: {"value", "unit"}})
    diag = st["diagnostics"]  # [step, t_fs, dt_fs, particles, drift, wall_s]
    writer = checkpoint.Writer(cfg, p, outdir, parts)
    clock = {"said": time.perf_counter(), "t": t_start, "start": time.perf_counter()}
    field = field_of_time(cfg, p.phys.E)
    pf = None
    if getattr(p, "pump", None) is not None:
        from kinetic.pump import PumpFields

        pf = PumpFields(p, p.pump)

    def monitor(i, t, u):
        i += step0
        if step0 and i == step0:
            return  # the checkpointed state, already recorded
        if pf is not None:
            prev = (units.fs_to_internal(series[-1][0]), series[-1][1]) if series else None
            obs = pump_observables(pf, t, u, prev)
        else:
            obs = {k: v for k, v in observables(p, tr, u, polarization=False,
                                                E=field(t)).items() if k != "x_fields"}
        t_fs, dt = units.internal_to_fs(t), t - clock["t"]
        series.append((t_fs, obs))
        n = obs[_particles_key(obs)]["value"]
        n0 = diag[0][3] if diag else n
        now = time.perf_counter()
        diag.append([i, t_fs, units.internal_to_fs(dt), n, (n - n0) / n0 if n0 else 0.0,
                     st["wall_s"] + now - t0])  # wall_s adds up across restarts
        clock["t"] = t
        final = t >= t_end * (1 - 1e-12)
        if i > 0 and not final:
            writer(i, u, t, dt, diag[-1][5], series, diag)
        if not quiet and (now - clock["said"] > 2.0 or final):
            clock["said"] = now
            eta = (now - clock["start"]) * (t_end - t) / max(t - t_start, 1e-300)
            say(f"kinetic: step {i} t = {t_fs:.4g} fs / {cfg.t_end_fs:g} fs"
                f", elapsed {now - t0:.1f} s, ETA {eta:.1f} s")

    dt = units.fs_to_internal(cfg.dt_fs) if cfg.dt_fs else st["dt_internal"]
    extra = {}
    if pf is not None:  # fixed steps, a whole number per period, within the CFL limit
        period = units.fs_to_internal(cfg.pump["period_fs"])
        steps = max(cfg.pump["steps_per_cycle"],
                    int(np.ceil(period / (0.9 * tr.cfl_dt(p.phys.E)))))
        dt = dt or period / steps
        extra = {"equilibrium": pf.equilibrium, "adapt": False}
    try:
        f, info = tr.transient(f, t_end, field=field, ts_type=cfg.ts_type,
                               monitor=monitor, dt=dt, t0=t_start if step0 else 0.0, **extra)
    except PETSc.Error as exc:  # an error in the monitor (e.g. a checkpoint write) is its cause
        if isinstance(exc.__cause__, KineticError):
            raise exc.__cause__ from None
        raise
    info["steps"] += step0
    if step0:
        info["restarted_from"] = {"checkpoint": st["path"], "step": step0, "t_fs": st["t_fs"]}
    return f, info, series, diag


def _output_dir(outdir: Path, mpi, create: bool) -> None:
    """Rank 0 checks that ``outdir`` can be made (its first existing ancestor is a writable
    directory) or, with ``create``, makes it — only once the run has inputs that work, so a
    refused run leaves no empty directory. ConfigError on every rank otherwise."""
    import os

    err = None
    if mpi.Get_rank() == 0:
        if create:
            try:
                outdir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                err = f"--out {str(outdir)!r}: cannot create ({exc.strerror})"
        else:
            anc = outdir
            while not anc.exists() and anc != anc.parent:
                anc = anc.parent
            if not anc.is_dir():
                err = (f"--out {str(outdir)!r}: {str(anc)!r} is a file, not a directory; give a "
                       "directory path")
            elif not os.access(anc, os.W_OK | os.X_OK):
                err = f"--out {str(outdir)!r}: {str(anc)!r} is not writable"
    err = mpi.bcast(err, root=0)
    if err is not None:
        raise ConfigError(err)


def _csv(header, rows) -> bytes:
    s = io.StringIO()
    w = csv.writer(s, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow([v if isinstance(v, (int, str)) else json.dumps(v) for v in row])
    return s.getvalue().encode()


def _rank0_print(msg):
    from petsc4py import PETSc

    PETSc.Sys.Print(msg)


def run(path, out=None, say=_rank0_print, restart=None, *, force=False, quiet=False, comm=None) -> dict:
    """Execute a solver run file; returns the summary dict (on every rank).

    ``restart``: the output directory (or checkpoint.npz) of an interrupted transient run with
    the same inputs; ``force``: run even if the memory estimate exceeds the available memory;
    ``quiet``: no progress lines; ``comm``: a PETSc communicator (default COMM_WORLD). ``say``
    is called on every rank and should print on rank 0 only (PETSc.Sys.Print)."""
    from mpi4py import MPI
    from petsc4py import PETSc

    t0 = time.perf_counter()
    comm = comm or PETSc.COMM_WORLD
    mpi, rank = comm.tompi4py(), comm.getRank()
    cfg = load_solver_run(path)
    if restart is not None and cfg.mode != "transient":
        raise ConfigError(f"--restart {str(restart)!r}: solver.mode = {cfg.mode!r}; only "
                          "transient runs write checkpoints and restart")
    outdir = Path(out) if out else (cfg.output_dir or cfg.path.with_suffix(""))
    model = build_model(cfg.model, cfg.path.parent)
    mem = memory_estimate(cfg, model, comm.getSize())
    if mem is not None:
        check_memory(mem, mpi, say, force or cfg.force)
    _output_dir(outdir, mpi, create=False)  # refuse an impossible --out before any work
    if cfg.mode == "transient":
        from kinetic.solvers import check_ts_type

        check_ts_type(cfg.ts_type)
    if cfg.y_n is not None or needs_full_3d(cfg, model):
        if restart is not None:
            raise ConfigError("--restart: the 2x2k and full 3-D k-mesh layouts write no checkpoints")
        from kinetic.run4 import run_assembled

        return run_assembled(cfg, model, comm, outdir, say, quiet, t0, mem)
    p = build_problem(cfg, comm=comm, model=model)
    if cfg.exact_reference:
        _ring_cells(cfg, p)  # refuse a mesh the reference cannot be compared on, before solving
    tr = Transport(p)
    ndof = p.mesh.axes[0].n * p.mesh.axes[1].n * p.mesh.nb
    folded = {"1x2k": "k_y", "0x3k": "k_z"}.get(p.layout)
    dof = (f"({p.nfold} {folded} x {len(p.bands)} bands)" if folded else f"{p.mesh.nb} bands")
    say(f"kinetic: {p.layout} mesh {p.mesh.axes[0].n} x {p.mesh.axes[1].n} x {dof} "
        f"= {ndof} unknowns on {comm.getSize()} rank(s); built in "
        f"{time.perf_counter() - t0:.2f} s")
    series, f_eq, tr_eq = [], None, None
    if cfg.mode == "steady":
        f, info = tr.steady()
        rows = [["field", info["iterations"], info["residual"], info["converged_reason"],
                 time.perf_counter() - t0]]
        if any(np.atleast_1d(p.phys.E)):  # E = 0 reference: subtract magnetization currents
            tr_eq = equilibrium_reference(p, tr)
            f_eq, ref = tr_eq.steady(E=(0.0,) * len(np.atleast_1d(p.phys.E)))
            rows.append(["reference_E0", ref["iterations"], ref["residual"],
                         ref["converged_reason"], time.perf_counter() - t0])
        if cfg.texture_hall:
            if p.layout != "1x2k":
                raise ConfigError("output.texture_hall = true: the τ⁰ Hall conductivity is "
                                  "computed for x-textures of 2D models (1x2k)")
            from kinetic.texture_hall import TAU_FRACTIONS

            tau, hall_states = p.tau, []  # steady states at τ/2, τ/4 for the τ⁰ part
            for frac, name in zip(TAU_FRACTIONS[1:], ("half", "quarter")):
                p.tau = tau * frac
                g, info_g = tr.steady()
                hall_states.append(g)
                rows.append([f"texture_hall_tau_{name}", info_g["iterations"], info_g["residual"],
                             info_g["converged_reason"], time.perf_counter() - t0])
            p.tau = tau
        diag = _csv(["solve", "iterations", "residual", "converged_reason", "wall_s"], rows)
    else:
        f, info, series, rows = _transient(cfg, p, tr, outdir, restart, say, quiet, t0)
        unit = series[0][1][_particles_key(series[0][1])]["unit"].split(" ")[0]
        diag = _csv(["step", "t_fs", "dt_fs", f"particles_{unit}", "drift_rel", "wall_s"], rows)
    if getattr(p, "pump", None) is not None:  # the last recorded step is t_end
        obs = dict(series[-1][1])
        obs["pumped_electrons_per_cycle"] = {
            "value": obs["pumped_electrons"]["value"] * cfg.pump["period_fs"] / cfg.t_end_fs,
            "unit": "electrons"}
    else:
        E_end = (None if cfg.mode == "steady"
                 else field_of_time(cfg, p.phys.E)(units.fs_to_internal(cfg.t_end_fs)))
        obs = observables(p, tr, f, f_eq, tr_eq, E=E_end)
    if cfg.mode == "steady" and cfg.texture_hall:
        texture_hall(p, tr, [f] + hall_states, f_eq, tr_eq, obs)
        for g in hall_states:
            g.destroy()
    if tr_eq is not None and tr_eq is not tr:
        tr_eq.destroy()
    if cfg.exact_reference:
        exact_reference(cfg, p, obs, comm)
    fgrid = p.mesh.gather(f)
    summary = {
        "kinetic": kinetic.__version__, "run_file": str(cfg.path), "run_sha256": cfg.sha256,
        "layout": p.layout, "ranks": comm.getSize(), "unknowns": ndof,
        "solver": info, "wall_time_s": time.perf_counter() - t0,
        "memory": {**(mem or {}), "peak_rss_B": mpi.allreduce(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, op=MPI.MAX)},
        "observables": {k: v for k, v in obs.items() if k != "x_fields"},
    }
    _output_dir(outdir, mpi, create=True)
    if rank == 0:
        _write_outputs(outdir, p, obs, fgrid, summary, series, diag, say)
    tr.destroy()
    return summary


def write_series(outdir, series, diag) -> None:
    """timeseries.csv (transient runs: t_fs and every total with its unit) and diagnostics.csv."""
    if series:
        keys = list(series[0][1])
        atomic_write(outdir / "timeseries.csv", _csv(
            ["t_fs"] + [f"{k}_{series[0][1][k]['unit']}" for k in keys],
            [[f"{t:.10g}"] + [o[k]["value"] for k in keys] for t, o in series]))
    atomic_write(outdir / "diagnostics.csv", diag)


def _write_outputs(outdir, p, obs, fgrid, summary, series, diag, say) -> None:
    """Rank 0: summary.json, fields.npz (+ fields.vtk), timeseries.csv, diagnostics.csv."""
    atomic_write(outdir / "summary.json", (json.dumps(summary, indent=2, default=float) + "\n").encode())
    a1, a2 = p.mesh.axes
    fields = {"f": fgrid, f"q2_{a2.name}": a2.centres(0, a2.n), f"q1_{a1.name}": a1.centres(0, a1.n)}
    unit_map = {"f": "occupation (N_q2, N_q1, bands)", f"q1_{a1.name}": "A" if a1.name == "x" else "1/A",
                f"q2_{a2.name}": "A" if a2.name == "x" else "1/A"}
    if "x_fields" in obs:
        d = 1 if p.layout == "1x1k" else 2
        nd = units.density_si(d)
        from kinetic.polarization import si_units

        facs = {"n": nd, "n_exact": nd, **si_units(d),  # + the polarization split (§6.1)
                "u": (units.E_CHARGE * units.ANGSTROM ** (-d), {1: "J/m", 2: "J/m^2"}[d])}
        jf = (units.E2_HBAR * units.ANGSTROM ** (1 - d), {1: "A", 2: "A/m"}[d])
        facs["sigma_yx_tau0"] = (units.E2_HBAR, "S")
        for key, vals in obs["x_fields"].items():
            fac, unit = facs.get(key, jf)
            fields[key] = vals * fac
            unit_map[key] = unit
        write_vtk(outdir / "fields.vtk", a1.centres(0, a1.n),
                  {f"{k}_{_vtk_unit(unit_map[k])}": fields[k] for k in obs["x_fields"]})
    buf = io.BytesIO()
    np.savez(buf, units=np.array(json.dumps(unit_map)), **fields)
    atomic_write(outdir / "fields.npz", buf.getvalue())
    write_series(outdir, series, diag)
    say(f"kinetic: wrote {outdir}/summary.json, fields.npz"
        + (", fields.vtk" if "x_fields" in obs else "") + (", timeseries.csv" if series else "")
        + ", diagnostics.csv")
