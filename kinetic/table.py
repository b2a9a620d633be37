"""``kinetic table`` and ``kinetic geometry``: homogeneous response tables and k-space fields.

Table format (CSV): leading ``#`` metadata lines, then the header
``mu_eV,T_K,tau_fs,quantity,component,value,unit,error`` and one row per
(μ, T, τ, quantity, component). ``value`` and ``error`` are in the SI ``unit`` of the row;
``error`` = |value(mesh) − value(mesh with every other k-point)|, a conservative estimate of the
k-discretization error. Files are written to a temporary name and renamed when complete.
"""
from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

import kinetic
from kinetic import units
from kinetic.config import RunConfig, load_run
from kinetic.errors import ConfigError, DegeneracyError
from kinetic.fileio import atomic_write
from kinetic.geometry import band_geometry
from kinetic.kmesh import KMesh, make_kmesh
from kinetic.models.loader import build_model
from kinetic.response import CALCULATORS, SPECIAL, check_quantities, integrate

HEADER = ["mu_eV", "T_K", "tau_fs", "quantity", "component", "value", "unit", "error"]
CHUNK_POINTS = 1 << 16  # k-points per geometry batch (bounds memory for many-band models)
MAX_STEP_KT = 4.0  # refuse meshes where ε changes by more than this many k_BT per k-step


def _progress(msg: str) -> None:
    print(f"kinetic: {msg}", file=sys.stderr, flush=True)


def mesh_geometry(model, k: np.ndarray, needs: set, mesh_n=None):
    """Band geometry of a homogeneous model at k-points (P, d); ``mesh_n`` (the mesh.k of the
    run file) names the mesh in the error if the k-points hit a band touching."""
    H = model.hamiltonian(k)
    dH = model.dh_dk(k)
    d2H = model.d2h_dk2(k) if "inverse_mass" in needs else None
    try:
        return band_geometry(H, dH, d2H, n_x=0)
    except DegeneracyError as exc:
        if mesh_n is None:
            raise
        raise DegeneracyError(
            f"mesh.k = {list(mesh_n)}: k-points of this mesh hit a band touching of model "
            f"{getattr(model, 'name', '')!r}, where band geometry diverges; use another mesh.k "
            f"(points at the touching must be avoided) or model parameters that open a gap "
            f"({exc})") from None


def check_thermal_resolution(geom, mesh: KMesh, mus, kT: float, T_K: float) -> None:
    """ConfigError if ε changes by > MAX_STEP_KT·k_BT between neighbouring points near μ."""
    e = geom.energy  # (P, nb)
    mus = np.sort(np.asarray(mus))
    idx = np.clip(np.searchsorted(mus, e), 1, len(mus) - 1) if len(mus) > 1 else np.zeros(e.shape, int)
    dist = np.minimum(np.abs(e - mus[idx - (len(mus) > 1)]), np.abs(e - mus[idx]))
    # energy change per mesh step along axis i: |v · s_i|; a point is near the Fermi level if
    # μ lies within 10 k_BT of the energies it spans to its neighbours
    step = np.abs(np.einsum("pan,ia->pin", geom.velocity, mesh.steps))  # (P, d, nb)
    window = dist < 10 * kT + step.max(axis=1)  # (P, nb)
    if not window.any():
        return
    worst = np.where(window[:, None, :], step, 0.0).max(axis=(0, 2)) / kT  # (d,)
    if worst.max() > MAX_STEP_KT:
        need = [max(n, int(math.ceil(n * w / 2.0))) for n, w in zip(mesh.n, worst)]
        raise ConfigError(
            f"mesh.k = {list(mesh.n)} is too coarse to resolve T = {T_K:g} K: near the Fermi level "
            f"the band energy changes by up to {worst.max():.3g} k_BT between neighbouring k-points "
            f"(allowed ≤ {MAX_STEP_KT:g}); use mesh.k ≥ {need} (≈ 2 k_BT per step) or a higher T")


def integrate_mesh(model, mesh: KMesh, quantities, mus, kT, T_K, check=True) -> dict:
    """All quantities on one mesh at one temperature, chunked over k-points."""
    needs = set().union(*(CALCULATORS[q].needs for q in quantities))
    k = mesh.k.reshape(-1, mesh.k.shape[-1])
    total = {}
    for s in range(0, len(k), CHUNK_POINTS):
        geom = mesh_geometry(model, k[s:s + CHUNK_POINTS], needs, mesh.n)
        if check:
            check_thermal_resolution(geom, mesh, mus, kT, T_K)
        part = integrate(geom, model.dim, quantities, mus, kT,
                         measure=mesh.measure * geom.energy.shape[0] / len(k),
                         spin=model.spin_degeneracy)
        for key, val in part.items():
            total[key] = total.get(key, 0.0) + val
    return total


def check_mesh(cfg: RunConfig, model) -> None:
    """ConfigError unless mesh.k has the model's dimension and a continuum model has kmax."""
    if len(cfg.k) != model.dim:
        raise ConfigError(f"mesh.k = {list(cfg.k)}: model {getattr(model, 'name', '')!r} has "
                          f"{model.dim} k-dimensions, so give {model.dim} numbers")
    if model.reciprocal is None and cfg.kmax is None:
        raise ConfigError("mesh.kmax: continuum model "
                          f"{getattr(model, 'name', '')!r} needs kmax (1/Å), the half-width of the k-box")


def compute_table(cfg: RunConfig, model) -> list[list]:
    """Rows of the table (values in SI), ordered by T, τ, μ, quantity, component."""
    check_quantities(cfg.quantities, model.dim)
    check_mesh(cfg, model)
    fine = make_kmesh(cfg.k, model.reciprocal, cfg.kmax)
    coarse = fine.coarse() or make_kmesh([max(2, n // 2) for n in cfg.k], model.reciprocal, cfg.kmax)
    mus = np.array(cfg.mus_eV)
    regular = [q for q in cfg.quantities if q not in SPECIAL]
    if "texture_hall" in cfg.quantities:
        from kinetic import texture_hall

        nk = texture_hall.check_model(model, cfg.k)
    rows = []
    for T_K in cfg.temperatures_K:
        kT = units.kelvin_to_ev(T_K)
        t0 = time.perf_counter()
        vf = integrate_mesh(model, fine, regular, mus, kT, T_K) if regular else {}
        vc = integrate_mesh(model, coarse, regular, mus, kT, T_K, check=False) if regular else {}
        if "texture_hall" in cfg.quantities:  # error column: the slope on the n/2 mesh
            for (store, n) in ((vf, nk), (vc, max(2, nk // 2))):
                store.update({("texture_hall", c): v for c, v in
                              texture_hall.slopes(model, n, mus, kT).items()})
        _progress(f"T = {T_K:g} K: {fine.npoints} k-points x {len(mus)} mu in "
                  f"{time.perf_counter() - t0:.2f} s")
        for tau_fs in cfg.taus_fs:
            tau = units.fs_to_internal(tau_fs)
            for i, mu in enumerate(mus):
                for q in cfg.quantities:
                    if q == "texture_hall":
                        (factor, unit), scale = texture_hall.UNIT, texture_hall.UNIT[0]
                    else:
                        calc = CALCULATORS[q]
                        factor, unit = calc.unit(model.dim)
                        scale = factor * tau ** calc.tau_power
                    for (qq, comp), val in vf.items():
                        if qq != q:
                            continue
                        value = val[i] * scale
                        err = abs(val[i] - vc[(qq, comp)][i]) * abs(scale)
                        rows.append([mu, T_K, tau_fs, q, comp, value, unit, err])
    return rows


def metadata(cfg: RunConfig, model, command: str) -> list[str]:
    spec = cfg.model
    if spec.name:
        source = f"catalogue:{spec.name} params={json.dumps(model.params, sort_keys=True)}"
        sha = f"run file {cfg.sha256}"
    else:
        files = [p for p in (spec.wannier90, spec.tb) if p]
        source = "wannier90:" + ",".join(str(p) for p in files) + f" convention={spec.convention}"
        import hashlib

        sha = " ".join(f"{p.name}={hashlib.sha256(p.read_bytes()).hexdigest()}" for p in files)
    lat = model.lattice
    return [
        f"kinetic {kinetic.__version__}",
        f"command: {command}",
        f"run_file: {cfg.path}",
        f"model: {source}",
        f"model_sha256: {sha}",
        f"dimension: {model.dim}; bands: {model.nb}; spin_degeneracy: {model.spin_degeneracy}",
        "lattice_A: " + ("continuum" if lat is None else json.dumps(np.round(lat, 12).tolist())),
        f"mesh_k: {list(cfg.k)}" + (f" kmax_1/A: {cfg.kmax}" if cfg.kmax else "")
        + "; error = |value - value on the every-other-point mesh|",
        f"temperatures_K: {list(cfg.temperatures_K)}; tau_fs: {list(cfg.taus_fs)}",
        "conventions: electron charge -e; j_a = sigma_ab E_b; j_a = chi_abc E_b E_c; "
        "sigma_xy(AHC) = -(e^2/hbar) int f Omega_z; D_ab = int f d_a Omega_b (Omega pseudovector);"
        " Bloch convention " + spec.convention + "; units SI (2D sheet: S; 3D: S/m); "
        "divide a 2D conductivity in S by e^2/h = 3.874046e-05 S for e^2/h",
    ]


def write_csv_atomic(path: Path, meta: list[str], rows: list[list]) -> None:
    """Write metadata + header + rows to a temp file in the same folder, then rename."""
    path = Path(path)
    buf = io.StringIO()
    for line in meta:
        buf.write(f"# {line}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    for r in rows:
        w.writerow([f"{r[0]:.10g}", f"{r[1]:.10g}", f"{r[2]:.10g}", r[3], r[4],
                    f"{r[5]:.17g}", r[6], f"{r[7]:.3g}"])
    atomic_write(path, buf.getvalue().encode())


def check_output(out: Path, key: str, example: str) -> None:
    """ConfigError before any computing if ``out`` cannot be a new file: it is a directory, or
    its folder does not exist (e.g. a path under a regular file)."""
    if out.is_dir():
        raise ConfigError(f"{key} {str(out)!r} is a directory; give a file name ending in {example}")
    directory = out.parent if str(out.parent) else Path(".")
    if not directory.is_dir():
        what = "is a file, not a directory" if directory.exists() else "does not exist"
        raise ConfigError(f"{key} {str(out)!r}: directory {str(directory)!r} {what}; give a path "
                          "in an existing directory")


def run_table(run, out=None, command="kinetic table") -> Path:
    cfg = load_run(run)
    key = "--out" if out else "output.table =" if cfg.table else "output"
    out = Path(out) if out else (cfg.table or cfg.path.with_suffix(".csv"))
    check_output(out, key, ".csv")
    model = build_model(cfg.model, cfg.path.parent)
    t0 = time.perf_counter()
    rows = compute_table(cfg, model)
    write_csv_atomic(out, metadata(cfg, model, command), rows)
    _progress(f"wrote {len(rows)} rows to {out} in {time.perf_counter() - t0:.2f} s")
    return out


GEOMETRY_UNITS = {
    "k": "1/A", "energy": "eV", "velocity": "eV*A (hbar*v)", "curvature": "A^2",
    "metric": "A^2", "bcp_gyn": "A^2/eV",
    "orbital_moment": "eV*A^2 in units of e/hbar (x 2.434135e-24 -> A*m^2)",
}


def run_geometry(run, out) -> Path:
    """Geometry fields on the k-mesh -> .npz (keys and units documented in README)."""
    cfg = load_run(run)
    out = Path(out)
    check_output(out, "--out", ".npz")
    model = build_model(cfg.model, cfg.path.parent)
    check_mesh(cfg, model)
    mesh = make_kmesh(cfg.k, model.reciprocal, cfg.kmax)
    k = mesh.k.reshape(-1, model.dim)
    g = mesh_geometry(model, k, set(), mesh.n)
    shape = mesh.n
    fields = {
        "k": mesh.k,
        "energy": g.energy.reshape(*shape, model.nb),
        "velocity": np.moveaxis(g.velocity, 1, -1).reshape(*shape, model.nb, model.dim),
        "curvature": g.curvature.reshape(*shape, model.nb, model.dim, model.dim),
        "metric": g.metric.reshape(*shape, model.nb, model.dim, model.dim),
        "bcp_gyn": g.bcp_gyn.reshape(*shape, model.nb, model.dim, model.dim),
        "orbital_moment": g.orbital_moment.reshape(*shape, model.nb, 3),
    }
    units_json = json.dumps({k: GEOMETRY_UNITS[k] for k in fields})
    buf = io.BytesIO()
    np.savez(buf, units=np.array(units_json), **fields)
    atomic_write(out, buf.getvalue())
    _progress(f"wrote geometry on {mesh.npoints} k-points to {out}")
    return out
