"""``kinetic run``: build the problem of a run file, solve it, write the outputs.

Outputs in DIR (written under temporary names and renamed when complete):
- ``summary.json``: every observable as {"value", "unit"}; solver, iterations/steps,
  residual, wall time, ranks, kinetic version, run-file sha256;
- ``fields.npz``: x-fields with coordinates and units (1x1k), and the phase-space
  distribution ``f`` (N_k, N_x, bands); homogeneous runs store ``f`` on the k-mesh;
- ``fields.vtk``: the x-fields as a legacy-VTK rectilinear grid (ParaView), 1x1k only;
- ``timeseries.csv``: transient runs, t_fs and the totals with units in the header.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import kinetic
from kinetic import units
from kinetic.errors import ConfigError
from kinetic.models.loader import build_model
from kinetic.observables import density, energy_density, number_current, total
from kinetic.problem import Physics, Problem
from kinetic.runfile import SolverRun, load_solver_run
from kinetic.semiclassics import DEFAULT_TERMS
from kinetic.solvers import Transport


def build_problem(run: SolverRun, comm=None) -> Problem:
    """SolverRun -> Problem (layout from the model dimension and the presence of mesh.x)."""
    model = build_model(run.model, run.path.parent)
    dim = model.dim
    if run.x_n is not None:
        if dim not in (1, 2):
            raise ConfigError(f"mesh.x: x-textures are solved for 1D (1x1k) and 2D (1x2k, texture "
                              f"along x, k_y folded) models; model {model.name!r} has dim = {dim}")
        layout = "1x1k" if dim == 1 else "1x2k"
        from kinetic.models.texture import rice_mele_ring, texture

        if run.builtin == "rice_mele_ring":
            if dim != 1:
                raise ConfigError("texture.builtin = 'rice_mele_ring' is a 1D texture")
            pm = rice_mele_ring(**{"L": run.x_length, **run.builtin_args})
        else:
            pm = texture(model, run.texture, dim_x=1) if run.texture else texture(model, {}, 1)
        n = (run.x_n,) + tuple(run.k)
    else:
        if run.texture or run.builtin:
            raise ConfigError("[texture] needs mesh.x = { n = ..., length = ... }")
        layout = {1: "0x1k", 2: "0x2k"}.get(dim)
        if layout is None:
            raise ConfigError(f"model {model.name!r}: dim = {dim}; the solver handles 1D and 2D "
                              "homogeneous models and 1D textures (3D is not implemented yet)")
        pm, n = model, run.k
    if len(run.k) != dim:
        raise ConfigError(f"mesh.k = {list(run.k)}: model {model.name!r} has {dim} k-dimension(s)")
    E = run.electric_field or (0.0,) * dim
    if len(E) != dim:
        raise ConfigError(f"physics.electric_field = {list(E)}: give {dim} component(s) (V/m)")
    if run.magnetic_field_T and layout != "0x2k":
        raise ConfigError("physics.magnetic_field: the explicit-B route needs a 2D homogeneous "
                          "model (0x2k); for textures use a Landau-gauge texture")
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
    x_range = (0.0, run.x_length) if layout == "1x1k" else None
    return Problem(layout, pm, n, ph, x_range=x_range, k_range=k_range, comm=comm)


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
        return lambda eps, band: units.fs_to_internal(np.asarray(func(eps, band), float))
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


def observables(p: Problem, tr: Transport, f, f_eq=None) -> dict:
    """Totals (and x-fields for textures) in SI: {name: {"value", "unit"}} plus raw x-fields.

    With ``f_eq`` (the E = 0 steady state) the transport current j[E] − j[E = 0] is reported
    too, removing equilibrium magnetization currents (physics.md §6.2).
    """
    d = 1 if p.layout in ("1x1k", "0x1k") else 2
    nfac, nunit = units.density_si(d)
    ufac, uunit = units.E_CHARGE * units.ANGSTROM ** (-d), {1: "J/m", 2: "J/m^2"}[d]
    jfac = units.E2_HBAR * units.ANGSTROM ** (1 - d)  # (e · eV/ħ) per Å^(d-1)
    junit = {1: "A", 2: "A/m"}[d]
    n_loc, u_loc = density(p, f), energy_density(p, f)
    jN_loc = number_current(tr, f)
    currents = {"current": -np.asarray(jN_loc)}
    if f_eq is not None:
        zero = (0.0,) * len(np.atleast_1d(p.phys.E))
        currents["transport_current"] = currents["current"] + np.asarray(
            number_current(tr, f_eq, E=zero))
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


def _atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _vtk_unit(unit: str) -> str:
    """A unit as a VTK-safe name suffix: 1/m -> per_m, 1/m^2 -> per_m2, A/m -> A_per_m."""
    return unit.replace("1/", "per_").replace("/", "_per_").replace("^", "")


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
    _atomic(path, ("\n".join(lines) + "\n").encode())


def run(path, out=None, say=print) -> dict:
    """Execute a solver run file; returns the summary dict (on every rank)."""
    from petsc4py import PETSc

    t0 = time.perf_counter()
    cfg = load_solver_run(path)
    outdir = Path(out) if out else (cfg.output_dir or cfg.path.with_suffix(""))
    rank = PETSc.COMM_WORLD.getRank()
    if rank == 0:
        try:
            outdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--out {str(outdir)!r}: cannot create ({exc.strerror})") from None
    p = build_problem(cfg)
    tr = Transport(p)
    ndof = p.mesh.axes[0].n * p.mesh.axes[1].n * p.mesh.nb
    say(f"kinetic: {p.layout} mesh {p.mesh.axes[0].n} x {p.mesh.axes[1].n} x {p.mesh.nb} bands "
        f"= {ndof} unknowns on {PETSc.COMM_WORLD.getSize()} rank(s); built in "
        f"{time.perf_counter() - t0:.2f} s")
    series = []
    if cfg.mode == "steady":
        if cfg.field_time["kind"] != "static":
            raise ConfigError("physics.field_time: a time-dependent field needs solver.mode = \"transient\"")
        f, info = tr.steady()
        f_eq = None
        if any(np.atleast_1d(p.phys.E)):  # E = 0 reference: subtract magnetization currents
            f_eq, _ = tr.steady(E=(0.0,) * len(np.atleast_1d(p.phys.E)))
    else:
        f_eq = None
        t_end = units.fs_to_internal(cfg.t_end_fs)
        f = p.field(p.f_loc)
        last = [time.perf_counter()]

        def monitor(i, t, u):
            obs = observables(p, tr, u)
            series.append((units.internal_to_fs(t), obs))
            if time.perf_counter() - last[0] > 2.0 or t >= t_end * (1 - 1e-12):
                last[0] = time.perf_counter()
                el = last[0] - t0
                eta = el * (t_end - t) / max(t, 1e-300)
                say(f"kinetic: step {i} t = {units.internal_to_fs(t):.4g} fs / {cfg.t_end_fs:g} fs"
                    f", elapsed {el:.1f} s, ETA {eta:.1f} s")

        dt = units.fs_to_internal(cfg.dt_fs) if cfg.dt_fs else None
        f, info = tr.transient(f, t_end, field=field_of_time(cfg, p.phys.E), ts_type=cfg.ts_type,
                               monitor=monitor, dt=dt)
    obs = observables(p, tr, f, f_eq)
    fgrid = p.mesh.gather(f)
    summary = {
        "kinetic": kinetic.__version__, "run_file": str(cfg.path), "run_sha256": cfg.sha256,
        "layout": p.layout, "ranks": PETSc.COMM_WORLD.getSize(), "unknowns": ndof,
        "solver": info, "wall_time_s": time.perf_counter() - t0,
        "observables": {k: v for k, v in obs.items() if k != "x_fields"},
    }
    if rank == 0:
        _atomic(outdir / "summary.json", (json.dumps(summary, indent=2, default=float) + "\n").encode())
        a1, a2 = p.mesh.axes
        fields = {"f": fgrid, f"q2_{a2.name}": a2.centres(0, a2.n), f"q1_{a1.name}": a1.centres(0, a1.n)}
        unit_map = {"f": "occupation (N_q2, N_q1, bands)", f"q1_{a1.name}": "A" if a1.name == "x" else "1/A",
                    f"q2_{a2.name}": "A" if a2.name == "x" else "1/A"}
        if "x_fields" in obs:
            d = 1 if p.layout == "1x1k" else 2
            facs = {"n": units.density_si(d),
                    "u": (units.E_CHARGE * units.ANGSTROM ** (-d), {1: "J/m", 2: "J/m^2"}[d])}
            jf = (units.E2_HBAR * units.ANGSTROM ** (1 - d), {1: "A", 2: "A/m"}[d])
            for key, vals in obs["x_fields"].items():
                fac, unit = facs.get(key, jf)
                fields[key] = vals * fac
                unit_map[key] = unit
            write_vtk(outdir / "fields.vtk", a1.centres(0, a1.n),
                      {f"{k}_{_vtk_unit(unit_map[k])}": fields[k] for k in obs["x_fields"]})
        buf = io.BytesIO()
        np.savez(buf, units=np.array(json.dumps(unit_map)), **fields)
        _atomic(outdir / "fields.npz", buf.getvalue())
        if series:
            keys = [k for k in series[0][1] if k != "x_fields"]
            s = io.StringIO()
            w = csv.writer(s, lineterminator="\n")
            w.writerow(["t_fs"] + [f"{k}_{series[0][1][k]['unit']}" for k in keys])
            for t, o in series:
                w.writerow([f"{t:.10g}"] + [json.dumps(o[k]["value"]) for k in keys])
            _atomic(outdir / "timeseries.csv", s.getvalue().encode())
        say(f"kinetic: wrote {outdir}/summary.json, fields.npz"
            + (", fields.vtk" if "x_fields" in obs else "") + (", timeseries.csv" if series else ""))
    tr.destroy()
    return summary
