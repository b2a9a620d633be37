"""Checkpoints of transient ``kinetic run``s: ``checkpoint.npz`` in the output directory.

Written by rank 0 under a temporary name, fsynced and renamed (a kill while writing leaves the
previous checkpoint intact). Arrays, all readable with ``numpy.load(allow_pickle=False)``:

- ``f``: the distribution gathered in natural ordering, shape (N_q2, N_q1, dof) (as fields.npz);
- ``state``: JSON {kinetic (version), stamp, inputs (the hashed parts), step, t_fs, t_internal
  (ħ/eV, exact), dt_internal, wall_s, ranks (informational), layout, shape, run_file};
- ``series``: JSON [[t_fs, {observable: {"value", "unit"}}], ...], the timeseries.csv rows so far;
- ``diagnostics``: JSON list of the diagnostics.csv rows so far.

The stamp is a sha256 over the sha256s of the run-file bytes, of the model files (Wannier90
``_hr.dat`` / ``_tb.dat``) and of the mesh and physics the Problem was built with (layout, axes,
dof, bands, physics parameters; so a changed mesh preset is caught too). The number of ranks is
not part of it: ``f`` is stored in natural ordering and scattered back with DMDA natural ->
global, so a checkpoint restarts on any rank count. ``--restart`` refuses a checkpoint whose
stamp differs, naming both stamps and the changed parts.
"""
from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np

import kinetic
from kinetic import units
from kinetic.errors import ConfigError, KineticError
from kinetic.fileio import atomic_write

NAME = "checkpoint.npz"


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def inputs(cfg, problem) -> dict:
    """What a transient state depends on, hashed: the run file, the model files, the mesh and
    physics as built (not the number of ranks)."""
    m, ph = problem.mesh, problem.phys
    parts = {"run_file": cfg.sha256}
    for key in ("wannier90", "tb"):
        path = getattr(cfg.model, key, None)
        parts[f"model_{key}"] = _file_sha256(path) if path is not None else None
    tau = ph.tau
    parts["mesh_physics"] = hashlib.sha256(json.dumps({
        "layout": problem.layout, "dof": m.nb, "bands": list(problem.bands), "nfold": problem.nfold,
        "axes": [[a.name, a.n, a.lo, a.hi, a.periodic] for a in m.axes],
        "mu": ph.mu, "kT": ph.kT, "E": [float(e) for e in np.atleast_1d(ph.E)], "B": ph.B,
        "terms": sorted(ph.terms), "boundary": ph.boundary, "mu_left": ph.mu_left,
        "mu_right": ph.mu_right, "number_conserving": ph.number_conserving,
        "reconstruction": ph.reconstruction, "tau": "callable" if callable(tau) else float(tau),
    }, sort_keys=True).encode()).hexdigest()
    return parts


def stamp_of(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _write_npz(path: Path, arrays: dict) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(path, buf.getvalue(), fsync=True)


def save(outdir: Path, mesh, fvec, state: dict, series: list, diagnostics: list) -> Path:
    """Collective: gather f to rank 0 and write ``outdir/checkpoint.npz`` atomically.

    A write error (disk full, permissions) is raised on every rank."""
    fgrid = mesh.gather(fvec)
    comm = mesh.comm.tompi4py()
    path = Path(outdir) / NAME
    err = None
    if comm.Get_rank() == 0:
        full = {"kinetic": kinetic.__version__, "shape": list(fgrid.shape), **state}
        try:
            _write_npz(path, {"f": fgrid, "state": np.array(json.dumps(full, default=float)),
                              "series": np.array(json.dumps(series, default=float)),
                              "diagnostics": np.array(json.dumps(diagnostics, default=float))})
        except (OSError, KineticError) as exc:
            err = f"checkpoint {str(path)!r}: cannot write ({exc.strerror or exc})"
    err = comm.bcast(err, root=0)
    if err is not None:
        raise KineticError(err)
    return path


def _read(where: Path):
    """Rank 0: (message or None, state dict with series/diagnostics, f array)."""
    path = where / NAME if where.is_dir() else where
    hint = ("checkpoints are written to the output directory by a transient run with "
            "[solver] checkpoint = { every_steps = N, every_minutes = M }")
    if not path.is_file():
        return f"--restart {str(where)!r}: no {NAME} found there; {hint}", None, None
    try:
        with np.load(path, allow_pickle=False) as z:
            state = json.loads(str(z["state"]))
            state["series"] = json.loads(str(z["series"]))
            state["diagnostics"] = json.loads(str(z["diagnostics"]))
            f = np.asarray(z["f"], dtype=float)
        if list(f.shape) != list(state["shape"]):
            raise ValueError(f"f has shape {f.shape}, state says {state['shape']}")
        state["path"] = str(path)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        msg = f"--restart {str(path)!r}: not a readable kinetic checkpoint ({exc}); {hint}"
        return msg, None, None
    return None, state, f


def load(where, mesh, parts: dict):
    """Collective: read a checkpoint on rank 0, check its stamp, scatter f to this mesh.

    Returns (f Vec, state dict). Raises ConfigError on every rank for a missing or corrupt
    checkpoint, or one written for other inputs (different stamp) or another mesh."""
    from petsc4py import PETSc

    comm = mesh.comm.tompi4py()
    msg = state = fgrid = None
    if comm.Get_rank() == 0:
        msg, state, fgrid = _read(Path(where))
    msg, state = comm.bcast((msg, state), root=0)
    if msg is not None:
        raise ConfigError(msg)
    stamp = stamp_of(parts)
    if state.get("stamp") != stamp:
        theirs = state.get("inputs", {})
        changed = ", ".join(k for k in parts if theirs.get(k) != parts[k]) or "unknown"
        raise ConfigError(
            f"--restart {state['path']!r}: the checkpoint was written for inputs with stamp "
            f"sha256 {state.get('stamp')} but the current run file, model files and mesh hash to "
            f"{stamp} (changed: {changed}); a restart needs unchanged inputs (or run without "
            "--restart)")
    shape = [mesh.axes[1].n, mesh.axes[0].n, mesh.nb]
    if list(state["shape"]) != shape:  # the stamp covers the mesh; this guards a forged stamp
        raise ConfigError(f"--restart {state['path']!r}: checkpoint mesh {state['shape']}, "
                          f"this run's mesh {shape}")
    nat = mesh.da.createNaturalVec()
    scatter, seq = PETSc.Scatter.toZero(nat)
    if comm.Get_rank() == 0:
        seq.getArray()[:] = fgrid.ravel()
    scatter.scatter(seq, nat, addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.REVERSE)
    f = mesh.create_vec()
    mesh.da.naturalToGlobal(nat, f)
    for obj in (nat, scatter, seq):
        obj.destroy()
    return f, state


class Writer:
    """Writes checkpoints on a cadence: every ``every_steps`` steps and/or ``every_minutes`` of
    wall time (rank 0's clock decides and is broadcast, so all ranks join the collective write).
    ``writer(step, u, t, dt, wall_s, series, diagnostics)`` at every step except the first and
    the last; returns whether it wrote."""

    def __init__(self, cfg, problem, outdir, parts: dict):
        self.steps, self.minutes = cfg.checkpoint_steps, cfg.checkpoint_minutes
        self.outdir, self.mesh, self.last = Path(outdir), problem.mesh, time.perf_counter()
        self.fixed = {"stamp": stamp_of(parts), "inputs": parts, "layout": problem.layout,
                      "ranks": problem.mesh.comm.getSize(), "run_file": str(cfg.path)}

    def __call__(self, step, u, t, dt, wall_s, series, diagnostics) -> bool:
        if self.steps is None and self.minutes is None:
            return False
        due = bool(self.steps) and step % self.steps == 0
        if self.minutes is not None:
            late = time.perf_counter() - self.last >= 60 * self.minutes
            due = self.mesh.comm.tompi4py().bcast(due or late, root=0)
        if due:
            state = {**self.fixed, "step": step, "t_fs": units.internal_to_fs(t), "t_internal": t,
                     "dt_internal": dt, "wall_s": wall_s}
            save(self.outdir, self.mesh, u, state, series, diagnostics)
            self.last = time.perf_counter()
        return due
