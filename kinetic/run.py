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
    terms = set(run.terms if run.terms is not None else DEFAULT_TERMS)
    if run.field_time["kind"] != "static" and any(E) and terms & {"A2_shift_field", "E2_bcp"}:
        raise ConfigError("physics.terms: A2_shift_field / E2_bcp depend on the field and are "
                          "built for a static E; with field_time.kind = "
                          f"{run.field_time['kind']!r} switch them off")
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
    x_range = (0.0, run.x_length) if layout in ("1x1k", "1x2k") else None
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
    atomic_write(path, ("\n".join(lines) + "\n").encode())


# ---------------------------------------------------------------------------- memory estimate
# Peak memory model, calibrated on this machine (2 cores, PETSc 3.26, numpy 2.4, glibc): `kinetic
# run` in fresh processes, peak RSS (resource.getrusage ru_maxrss) minus the RSS after imports,
# for 0x1k cosine (nb = 1), 0x2k QWZ, 1x1k Rice–Mele rings and a 1x2k QWZ texture (nb = 2),
# 2e4–1.6e6 unknowns, steady and transient: measured/estimated peak 0.70–1.06 (increments over
# the import RSS 0.68–1.06); tests/test_run.py::test_memory_estimate_within_factor_two.
# - The peak is reached while the Problem is built: band_geometry at cell centres and corners
#   (both alive) holds per point H, eigenvectors, ∂H, <m|∂H|n>, A (nb² complex; n coordinates
#   for the last three) and Q, g, Ω, G (nb n² each) = _geometry_bytes, × 2.8 for the two point
#   sets and the model's temporaries; the retained fields (ε̃, D, f_loc, fluxes) fit inside it.
# - The solver adds per unknown: steady GMRES(30) basis + AIJ matrix (5 nonzeros per row ×
#   (8 + 4) B + row pointers) + its ILU factor + vectors ≈ 480 B; arkimex stage vectors and the
#   diagonal Jacobian ≈ 320 B; explicit TS (ssp, rk, euler) ≈ 120 B.
GEOMETRY_FACTOR = 2.8
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
    if len(k) != dim or dim not in (1, 2):
        return None
    nfold = k[1] if cfg.x_n is not None and dim == 2 else 1
    if cfg.x_n is not None:
        n1, n2, ncoord = cfg.x_n, k[0], 1 + dim
    else:
        n1, n2, ncoord = k[0], (4 if dim == 1 else k[1]), dim
    nbands = len(cfg.bands) if cfg.bands else model.nb
    points = -(-n1 // ranks) * n2 * nfold
    solver = SOLVER_BYTES.get("steady" if cfg.mode == "steady" else cfg.ts_type, EXPLICIT_TS_BYTES)
    base = _rss()
    per_point = GEOMETRY_FACTOR * _geometry_bytes(model.nb, ncoord) + nbands * solver
    per_rank = base + points * per_point
    return {"per_rank_B": int(per_rank), "total_B": int(per_rank) * ranks, "base_B": base,
            "unknowns": n1 * n2 * nfold * nbands}


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
    step0, t_start = st["step"], st["t_internal"]
    series = [tuple(row) for row in st["series"]]  # (t_fs, {name: {"value", "unit"}})
    diag = st["diagnostics"]  # [step, t_fs, dt_fs, particles, drift, wall_s]
    writer = checkpoint.Writer(cfg, p, outdir, parts)
    clock = {"said": time.perf_counter(), "t": t_start, "start": time.perf_counter()}

    def monitor(i, t, u):
        i += step0
        if step0 and i == step0:
            return  # the checkpointed state, already recorded
        obs = {k: v for k, v in observables(p, tr, u).items() if k != "x_fields"}
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
    try:
        f, info = tr.transient(f, t_end, field=field_of_time(cfg, p.phys.E), ts_type=cfg.ts_type,
                               monitor=monitor, dt=dt, t0=t_start if step0 else 0.0)
    except PETSc.Error as exc:  # an error in the monitor (e.g. a checkpoint write) is its cause
        if isinstance(exc.__cause__, KineticError):
            raise exc.__cause__ from None
        raise
    info["steps"] += step0
    if step0:
        info["restarted_from"] = {"checkpoint": st["path"], "step": step0, "t_fs": st["t_fs"]}
    return f, info, series, diag


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
    err = None
    if rank == 0:
        try:
            outdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            err = f"--out {str(outdir)!r}: cannot create ({exc.strerror})"
    err = mpi.bcast(err, root=0)
    if err is not None:
        raise ConfigError(err)
    p = build_problem(cfg, comm=comm, model=model)
    tr = Transport(p)
    ndof = p.mesh.axes[0].n * p.mesh.axes[1].n * p.mesh.nb
    say(f"kinetic: {p.layout} mesh {p.mesh.axes[0].n} x {p.mesh.axes[1].n} x {p.mesh.nb} bands "
        f"= {ndof} unknowns on {comm.getSize()} rank(s); built in "
        f"{time.perf_counter() - t0:.2f} s")
    series, f_eq = [], None
    if cfg.mode == "steady":
        if cfg.field_time["kind"] != "static":
            raise ConfigError("physics.field_time: a time-dependent field needs solver.mode = \"transient\"")
        f, info = tr.steady()
        rows = [["field", info["iterations"], info["residual"], info["converged_reason"],
                 time.perf_counter() - t0]]
        if any(np.atleast_1d(p.phys.E)):  # E = 0 reference: subtract magnetization currents
            f_eq, ref = tr.steady(E=(0.0,) * len(np.atleast_1d(p.phys.E)))
            rows.append(["reference_E0", ref["iterations"], ref["residual"],
                         ref["converged_reason"], time.perf_counter() - t0])
        diag = _csv(["solve", "iterations", "residual", "converged_reason", "wall_s"], rows)
    else:
        f, info, series, rows = _transient(cfg, p, tr, outdir, restart, say, quiet, t0)
        unit = series[0][1][_particles_key(series[0][1])]["unit"].split(" ")[0]
        diag = _csv(["step", "t_fs", "dt_fs", f"particles_{unit}", "drift_rel", "wall_s"], rows)
    obs = observables(p, tr, f, f_eq)
    fgrid = p.mesh.gather(f)
    summary = {
        "kinetic": kinetic.__version__, "run_file": str(cfg.path), "run_sha256": cfg.sha256,
        "layout": p.layout, "ranks": comm.getSize(), "unknowns": ndof,
        "solver": info, "wall_time_s": time.perf_counter() - t0,
        "memory": {**(mem or {}), "peak_rss_B": mpi.allreduce(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, op=MPI.MAX)},
        "observables": {k: v for k, v in obs.items() if k != "x_fields"},
    }
    if rank == 0:
        _write_outputs(outdir, p, obs, fgrid, summary, series, diag, say)
    tr.destroy()
    return summary


def _write_outputs(outdir, p, obs, fgrid, summary, series, diag, say) -> None:
    """Rank 0: summary.json, fields.npz (+ fields.vtk), timeseries.csv, diagnostics.csv."""
    atomic_write(outdir / "summary.json", (json.dumps(summary, indent=2, default=float) + "\n").encode())
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
    atomic_write(outdir / "fields.npz", buf.getvalue())
    if series:
        keys = list(series[0][1])
        atomic_write(outdir / "timeseries.csv", _csv(
            ["t_fs"] + [f"{k}_{series[0][1][k]['unit']}" for k in keys],
            [[f"{t:.10g}"] + [o[k]["value"] for k in keys] for t, o in series]))
    atomic_write(outdir / "diagnostics.csv", diag)
    say(f"kinetic: wrote {outdir}/summary.json, fields.npz"
        + (", fields.vtk" if "x_fields" in obs else "") + (", timeseries.csv" if series else "")
        + ", diagnostics.csv")
