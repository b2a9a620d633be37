"""``kinetic sweep`` over a *solver* run file (``kinetic run`` format): a grid of steady states.

``kinetic sweep RUN.toml --param E=1e8:1e10:21 [--param mu=...] [--ranks-per-point N]``

* ``--param`` names: ``mu`` (eV), ``T``/``temperature`` (K), ``tau`` (fs), ``E``/``E_x`` and
  ``E_y`` (V/m, the field components), ``B`` (T). Specs as for table sweeps (``a:b:n`` or a
  comma list). Every other input comes from the run file.
* Points are grouped in *blocks* that share everything but (μ, T): a block is one operator,
  assembled once; with the first-order upwind scheme, a fixed-μ collision and a constant τ its
  points are solved as right-hand sides of ONE KSP (``Transport.steady_sweep``), otherwise one
  steady solve each. Blocks go round-robin to groups of ``ranks_per_point`` ranks
  (``comm.Split``); each group solves its blocks on its sub-communicator.
* Rows: ``<param columns>, quantity, component, value, unit`` for every total observable of
  ``kinetic run`` (density, energy density, current and, with a field, the transport current
  j[E] − j[0]; textures: the x-means). One merged tidy CSV at the end, metadata lines first
  (``# `` prefixed), rows sorted by the grid; identical on 1 and N ranks but for its command.
* Each group leader writes its finished rows to ``OUT.part<g>`` after every block; ``--resume``
  takes the points found in ``OUT`` and in the part files of a sweep of the same run file
  (sha256) and solves only the rest. Outputs are written under temporary names and renamed.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import time
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np

import kinetic
from kinetic import units
from kinetic.errors import ConfigError, KineticError
from kinetic.fileio import atomic_write

NAMES = {"mu": "mu", "T": "T", "temperature": "T", "tau": "tau", "E": "E", "E_x": "E",
         "E_y": "E_y", "B": "B"}
UNITS = {"mu": "eV", "T": "K", "tau": "fs", "E": "V/m", "E_y": "V/m", "B": "T"}
ORDER = ("tau", "E", "E_y", "B", "T", "mu")  # block axes first, then the right-hand-side axes
FORM = ("NAME=start:stop:num or NAME=v1,v2,... with NAME one of mu (eV), T (K), tau (fs), "
        "E or E_x, E_y (V/m), B (T)")


def is_solver_run(path) -> bool:
    """True for a ``kinetic run`` file (no [response] section; [solver], [pump] or mesh.x)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False  # the table loader reports the problem
    mesh = data.get("mesh", {})
    return "response" not in data and (
        "solver" in data or "pump" in data or "texture" in data
        or (isinstance(mesh, dict) and "x" in mesh))


def _grid(cfg, params):
    """{axis: values} with the run file's value for every axis not swept."""
    from kinetic.sweep import _unique_sorted, parse_param

    base = {"mu": (cfg.mu_eV,), "T": (cfg.temperature_K,), "tau": (cfg.tau_fs,),
            "E": ((cfg.electric_field or (0.0,))[0],),
            "E_y": ((cfg.electric_field + (0.0, 0.0))[1],), "B": (cfg.magnetic_field_T,)}
    swept = {}
    for text in params:
        axis, values, _ = parse_param(text, aliases=NAMES, units=UNITS, form=FORM,
                                      positive=("T", "tau"))
        if axis in swept:
            raise ConfigError(f"--param {text!r}: {axis} is given twice")
        swept[axis] = _unique_sorted(values)
    if "tau" in swept and not isinstance(cfg.tau_fs, (int, float)):
        raise ConfigError(f"--param tau: physics.tau = {cfg.tau_fs!r} in the run file is not a "
                          "number; a τ sweep replaces a constant τ only")
    return {**base, **swept}, [a for a in ORDER if a in swept]


def _point_config(cfg, point: dict, dim: int):
    """The run configuration at one grid point (the field padded to the model's dim)."""
    E = list(cfg.electric_field)
    if E or point["E"] or point["E_y"]:
        E = (E + [0.0] * dim)[:max(dim, len(E))]
        E[0] = point["E"]
        if point["E_y"]:
            if dim < 2:
                raise ConfigError(f"--param E_y: model has dim = {dim}; E_y needs a 2D or 3D model")
            E[1] = point["E_y"]
    return replace(cfg, mu_eV=point["mu"], temperature_K=point["T"], tau_fs=point["tau"],
                   electric_field=tuple(E), magnetic_field_T=point["B"])


def _rows(point, obs, columns):
    rows = []
    for name, o in obs.items():
        if name == "x_fields":
            continue
        vals = np.atleast_1d(o["value"])
        comps = [""] if vals.size == 1 else ["x", "y", "z"][:vals.size]
        for c, v in zip(comps, vals):
            rows.append([point[a] for a in columns] + [name, c, float(v), o["unit"]])
    return rows


def solve_block(cfg, points, model, comm):
    """Rows for the points of one block (same operator), solved on ``comm``."""
    from kinetic.run import build_problem, equilibrium_reference, observables
    from kinetic.solvers import Transport

    first = _point_config(cfg, points[0], model.dim)
    p = build_problem(first, comm=comm, model=model)
    tr = Transport(p)
    ph = p.phys
    rhs_only = (cfg.mode == "steady" and ph.reconstruction == "upwind"
                and not ph.number_conserving and not callable(ph.tau) and len(points) > 1)
    zero = (0.0,) * len(np.atleast_1d(ph.E))
    with_field = any(np.atleast_1d(ph.E))
    out = []
    try:
        if rhs_only:
            mt = [(pt["mu"], units.kelvin_to_ev(pt["T"])) for pt in points]
            fs = tr.steady_sweep(mt)
            tr_eq = equilibrium_reference(p, tr) if with_field else None
            feqs = tr_eq.steady_sweep(mt, E=zero) if with_field else [None] * len(fs)
            for pt, (mu, kT), f, feq in zip(points, mt, fs, feqs):
                ph.mu, ph.kT = mu, kT
                out.append(observables(p, tr, f, feq, tr_eq))
                f.destroy()
                if feq is not None:
                    feq.destroy()
            if tr_eq is not None and tr_eq is not tr:
                tr_eq.destroy()
        else:
            for pt in points:
                if pt is not points[0]:
                    tr.destroy()
                    p = build_problem(_point_config(cfg, pt, model.dim), comm=comm, model=model)
                    tr = Transport(p)
                f, _ = tr.steady()
                tr_eq = equilibrium_reference(p, tr) if with_field else None
                feq = tr_eq.steady(E=zero)[0] if with_field else None
                out.append(observables(p, tr, f, feq, tr_eq))
                if tr_eq is not None and tr_eq is not tr:
                    tr_eq.destroy()
    finally:
        tr.destroy()
    return out


def _read_rows(path: Path, sha: str, ncols: int):
    """Rows of an earlier sweep of the same run file (sha256), or None if none/another."""
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    if f"# run_sha256: {sha}" not in text:
        raise ConfigError(f"--resume: {str(path)!r} is not a sweep of this run file (its "
                          "run_sha256 differs); give another --out or drop --resume")
    body = [ln for ln in text.splitlines() if ln and not ln.startswith("#")][1:]
    rows = []
    for r in csv.reader(body):
        rows.append([float(v) for v in r[:ncols]] + [r[ncols], r[ncols + 1],
                                                     float(r[ncols + 2]), r[ncols + 3]])
    return rows


def _csv_text(meta, header, rows) -> str:
    s = io.StringIO()
    for m in meta:
        s.write(f"# {m}\n")
    w = csv.writer(s, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([f"{v:.10g}" if isinstance(v, float) else v for v in r[:-4]]
                   + [r[-4], r[-3], repr(float(r[-2])), r[-1]])
    return s.getvalue()


def run_solver_sweep(path, params=(), out=None, *, resume=False, quiet=False, comm=None,
                     ranks_per_point: int = 1, command="kinetic sweep", say=None) -> dict:
    """Collective over ``comm`` (mpi4py, default COMM_WORLD). Returns {"path", "rows",
    "points", "computed"} on every rank, or raises the same error on every rank."""
    from mpi4py import MPI
    from petsc4py import PETSc

    from kinetic.models.loader import build_model
    from kinetic.runfile import load_solver_run

    world = comm or MPI.COMM_WORLD
    say = say or (lambda m: PETSc.Sys.Print(m))
    cfg = load_solver_run(path)
    if cfg.mode != "steady" or cfg.pump is not None:
        raise ConfigError(f"solver.mode = {cfg.mode!r}: solver sweeps compute steady states; "
                          "allowed: \"steady\" (run a transient or pump run with kinetic run)")
    if not (isinstance(ranks_per_point, int) and ranks_per_point >= 1):
        raise ConfigError(f"--ranks-per-point = {ranks_per_point!r}: expected an integer ≥ 1")
    grid, swept = _grid(cfg, params)
    columns = swept or ["mu"]
    header = [f"{a}_{UNITS[a].replace('/', '_per_')}" for a in columns] + [
        "quantity", "component", "value", "unit"]
    out = Path(out) if out else cfg.path.with_suffix(".csv")
    from kinetic.table import check_output

    check_output(out, "--out", ".csv")
    model = build_model(cfg.model, cfg.path.parent)
    axes = [a for a in ORDER if a not in ("T", "mu")]
    blocks = []
    for outer in itertools.product(*(grid[a] for a in axes)):
        pts = [dict(zip(axes, outer), T=T, mu=mu) for T in grid["T"] for mu in grid["mu"]]
        blocks.append(pts)
    ngroups = max(1, world.size // ranks_per_point)
    color = min(world.rank // ranks_per_point, ngroups - 1)
    parts = [out.with_name(f"{out.name}.part{g}") for g in range(ngroups)]

    done, err = {}, None
    if resume and world.rank == 0:
        try:
            for f in [out] + sorted(out.parent.glob(out.name + ".part*")):
                for r in _read_rows(f, cfg.sha256, len(columns)) or []:
                    done.setdefault(tuple(r[:len(columns)]), []).append(r)
        except (ConfigError, ValueError, IndexError) as exc:
            err = str(exc) if isinstance(exc, ConfigError) else (
                f"--resume: {str(out)!r} is not a readable sweep table ({exc})")
    err, done = world.bcast((err, done), root=0)
    if err:
        raise ConfigError(err)
    key = lambda pt: tuple(float(f"{pt[a]:.10g}") for a in columns)  # noqa: E731
    todo = [[pt for pt in b if key(pt) not in done] for b in blocks]
    todo = [b for b in todo if b]
    group = world.Split(color, world.rank)
    mine = todo[color::ngroups]
    rows, err, t0 = [], None, time.perf_counter()
    meta = [f"kinetic {kinetic.__version__}", f"command: {command}", f"run_file: {cfg.path}",
            f"run_sha256: {cfg.sha256}",
            f"grid: {json.dumps({a: list(grid[a]) for a in columns})}",
            "observables: totals of kinetic run (SI); transport_current = j[E] - j[E=0]"]
    pcomm = PETSc.Comm(group)
    try:
        for i, b in enumerate(mine):
            for pt, obs in zip(b, solve_block(cfg, b, model, pcomm)):
                rows += _rows(pt, obs, columns)
            if group.rank == 0:
                atomic_write(parts[color], _csv_text(meta, header, rows))
            if not quiet and world.rank == 0:
                el = time.perf_counter() - t0
                say(f"kinetic: sweep block {i + 1}/{len(mine)} of group 0 ({len(b)} points), "
                    f"elapsed {el:.1f} s, ETA {el / (i + 1) * (len(mine) - i - 1):.1f} s")
    except KineticError as exc:
        err = f"{type(exc).__name__}\0{exc}"
    finally:
        group.Free()
    errs = [e for e in world.allgather(err) if e]
    if errs:
        raise ConfigError(errs[0].split("\0", 1)[1])
    gathered = world.gather(rows if world.rank // ranks_per_point < ngroups and
                            world.rank % ranks_per_point == 0 else [], root=0)
    result = None
    if world.rank == 0:
        allrows = [r for rs in done.values() for r in rs] + [r for g in gathered for r in g]
        qorder = {}
        for r in allrows:
            qorder.setdefault((r[-4], r[-3]), len(qorder))
        allrows.sort(key=lambda r: (tuple(r[:len(columns)]), qorder[(r[-4], r[-3])]))
        atomic_write(out, _csv_text(meta, header, allrows))
        for part in out.parent.glob(out.name + ".part*"):
            part.unlink(missing_ok=True)
        result = {"path": str(out), "rows": len(allrows),
                  "points": sum(len(b) for b in blocks), "computed": sum(len(b) for b in todo)}
        if not quiet:
            say(f"kinetic: wrote {out} ({result['rows']} rows, {result['computed']} of "
                f"{result['points']} points computed, {time.perf_counter() - t0:.1f} s)")
    return world.bcast(result, root=0)
