"""``kinetic run`` for the layouts assembled by COO (``kinetic.coo``, ``kinetic.transport4``):
2x2k (run files with mesh.x and mesh.y: x-y textures of a 2D band on the 4-D phase space,
``kinetic.problem4``) and the full 3-D k-mesh of a homogeneous 3D band with E_z ≠ 0 or B off
the z axis (``kinetic.problem3k``).

Outputs in DIR, as for the other layouts (``kinetic.run``): ``summary.json`` (2x2k: mean
density, current and transport current over the x-y box; 0x3k: density, current and transport
current; SI with units; solver, iterations, wall time, ranks), ``fields.npz`` (2x2k: x, y and
n(x, y), j_x, j_y and the transport current as x-y fields in SI, f (N_x, N_y, N_kx, N_ky,
bands); 0x3k: f (N_kx, N_ky, N_kz, bands) and the k coordinates), ``fields.vtk`` (2x2k: the x-y
fields on a rectilinear grid), ``diagnostics.csv``; transient runs add ``timeseries.csv``.
Static fields only; no checkpoints, pumps or exact references here (ConfigError).
"""
from __future__ import annotations

import json
import time

import numpy as np

from kinetic import units
from kinetic.errors import ConfigError
from kinetic.fileio import atomic_write


def _refuse_unsupported(cfg, what, builtins=()):
    refused = [(cfg.builtin and cfg.builtin not in builtins, "texture.builtin"), (cfg.pump, "[pump]"),
               (cfg.exact_reference, "output.exact_reference"),
               (cfg.field_time["kind"] != "static", "physics.field_time"),
               (cfg.checkpoint_steps or cfg.checkpoint_minutes, "solver.checkpoint")]
    for bad, key in refused:
        if bad:
            raise ConfigError(f"{key}: not available in {what} so far; remove it")


def _physics(cfg, model, E, B):
    from kinetic.problem import Physics
    from kinetic.run import relaxation_time
    from kinetic.semiclassics import DEFAULT_TERMS

    return Physics(
        mu=cfg.mu_eV, kT=units.kelvin_to_ev(cfg.temperature_K), tau=relaxation_time(cfg, model),
        E=tuple(units.field_to_internal(e) for e in E), B=B,
        terms=frozenset(cfg.terms if cfg.terms is not None else DEFAULT_TERMS), bands=cfg.bands,
        boundary=cfg.boundary, number_conserving=cfg.number_conserving,
        reconstruction=cfg.reconstruction)


def build_problem3k(cfg, model, comm):
    """SolverRun of a homogeneous 3D model with E_z ≠ 0 or B off z -> Problem3K."""
    from kinetic.problem3k import Problem3K

    _refuse_unsupported(cfg, "the full 3-D k-mesh layout (E_z ≠ 0 or B not along z)")
    if len(cfg.k) != 3:
        raise ConfigError(f"mesh.k = {list(cfg.k)}: model {model.name!r} has 3 k-dimensions")
    E = tuple(cfg.electric_field) + (0.0,) * (3 - len(cfg.electric_field))
    if len(E) != 3:
        raise ConfigError(f"physics.electric_field = {list(cfg.electric_field)}: give 3 "
                          "components (V/m)")
    B = tuple(units.tesla_to_internal(b) for b in (*cfg.magnetic_field_xy_T, cfg.magnetic_field_T))
    k_range = None
    if getattr(model, "reciprocal", None) is None:
        if cfg.kmax is None:
            raise ConfigError(f"mesh.kmax: continuum model {model.name!r} needs kmax (1/Å)")
        k_range = ((-cfg.kmax, cfg.kmax),) * 3
    return Problem3K(model, tuple(cfg.k), _physics(cfg, model, E, B), k_range=k_range, comm=comm)


def build_problem4(cfg, model, comm):
    """SolverRun (with mesh.y) -> Problem4."""
    from kinetic.models.texture import texture
    from kinetic.problem4 import Problem4

    _refuse_unsupported(cfg, "the 2x2k layout (mesh.y)", builtins=("helical",))
    if model.dim != 2:
        raise ConfigError(f"mesh.y: x-y textures (2x2k) need a 2D model; {model.name!r} has "
                          f"dim = {model.dim}")
    if len(cfg.k) != 2:
        raise ConfigError(f"mesh.k = {list(cfg.k)}: model {model.name!r} has 2 k-dimensions")
    E = cfg.electric_field or (0.0, 0.0)
    if len(E) != 2:
        raise ConfigError(f"physics.electric_field = {list(E)}: give 2 components (V/m)")
    ph = _physics(cfg, model, E, units.tesla_to_internal(cfg.magnetic_field_T))
    if cfg.builtin == "helical":  # the V12 texture along x, seen in the x-y plane
        from kinetic.models.texture import along_x
        from kinetic.run import helical_texture

        pm = along_x(helical_texture(cfg, model))
    else:
        pm = texture(model, cfg.texture, dim_x=2) if cfg.texture else model
    n = (cfg.x_n, cfg.y_n) + tuple(cfg.k)
    return Problem4(pm, n, ph, x_range=(cfg.x_start, cfg.x_start + cfg.x_length),
                    y_range=(0.0, cfg.y_length), comm=comm)


def onsager_texture_hall(tr, f_x, f_eq, rows, t0) -> dict:
    """The τ⁰ Hall conductivity of an x-texture with its Onsager partner (physics.md §6.5): the
    E = (E_x, 0) state ``f_x`` is given; solve (E_x, 0) at τ/2, τ/4 and (0, E_x) at τ, τ/2, τ/4;
    with j[0] (``f_eq``) subtracted, σ_yx = Δj_y/E_x and σ_xy = Δj_x/E_y, extrapolated
    quadratically to τ⁰ (``kinetic.texture_hall.tau0_extrapolation``: σ_xy has a τ² part), and
    σ_H = ½(σ_xy − σ_yx). x-y fields and box means (S, e²/h)."""
    from kinetic.texture_hall import TAU_FRACTIONS, tau0_extrapolation

    p = tr.p
    E = float(p.phys.E[0])
    j0 = -tr.current(f_eq, E=(0.0, 0.0))
    tau = p.tau

    def sigma(fvec, Ev, comp):
        return (-tr.current(fvec, E=Ev) - j0)[..., comp] / E

    sig = {("yx", 1.0): sigma(f_x, (E, 0.0), 1)}
    for label, Ev, comp in (("yx", (E, 0.0), 1), ("xy", (0.0, E), 0)):
        for scale in TAU_FRACTIONS if label == "xy" else TAU_FRACTIONS[1:]:
            p.tau = tau * scale
            g, info = tr.steady(E=Ev)
            p.tau = tau
            rows.append([f"texture_hall_{label}_tau_x{scale:g}", info["iterations"],
                         info["residual"], info["converged_reason"], time.perf_counter() - t0])
            sig[(label, scale)] = sigma(g, Ev, comp)
            g.destroy()
    s0 = {lab: tau0_extrapolation(*(sig[(lab, s)] for s in TAU_FRACTIONS)) for lab in ("yx", "xy")}
    s0["H"] = 0.5 * (s0["xy"] - s0["yx"])
    out = {"xy_fields": {f"sigma_{lab}_tau0": v for lab, v in s0.items()}}
    fac = units.E2_HBAR  # e²/ħ (sheet) -> S
    for lab, v in s0.items():
        mean = float(tr.mean(v))
        out[f"texture_hall_sigma_{lab}_tau0"] = {"value": mean * fac, "unit": "S"}
        out[f"texture_hall_sigma_{lab}_tau0_e2h"] = {"value": mean * 2 * np.pi, "unit": "e^2/h"}
    return out


def observables3k(tr, f, f_eq=None, p_eq=None) -> dict:
    """Density, energy density, current and transport current of the full 3-D k-mesh in SI;
    the E = 0 reference ``f_eq`` belongs to ``p_eq`` (default: this problem)."""
    p = tr.p
    p_eq = p if p_eq is None else p_eq
    nfac, nunit = units.density_si(3)
    jfac = units.E2_HBAR * units.ANGSTROM ** -2  # e · eV/ħ per Å² -> A/m²
    fa = p.mesh.from_vec(f)
    n = p.mesh.allsum(float((p.D * fa).sum()) * p.measure())
    u = p.mesh.allsum(float((p.D * p.eps_cell * fa).sum()) * p.measure())
    j = -p.mesh.allsum(p.number_current(fa))
    out = {"density": {"value": n * nfac, "unit": nunit},
           "energy_density": {"value": u * units.E_CHARGE * units.ANGSTROM ** -3, "unit": "J/m^3"},
           "current": {"value": (j * jfac).tolist(), "unit": "A/m^2"}}
    if f_eq is not None:
        jt = j + p.mesh.allsum(p_eq.number_current(p.mesh.from_vec(f_eq), E=(0.0, 0.0, 0.0)))
        out["transport_current"] = {"value": (jt * jfac).tolist(), "unit": "A/m^2"}
    return out


def observables4(tr, f, f_eq=None, polarization=True) -> dict:
    """Means over the x-y box in SI and the x-y fields (internal units) under "xy_fields";
    ``polarization`` adds the split of ``kinetic.polarization.fields_2x2k`` (x-textures)."""
    nfac, nunit = units.density_si(2)
    jfac = units.E2_HBAR * units.ANGSTROM ** -1  # e · eV/ħ per Å -> A/m
    n = tr.density(f)
    j = -tr.current(f)  # charge current (charge −e)
    fields = {"n": n, "j_x": j[..., 0], "j_y": j[..., 1]}
    out = {"mean_density": {"value": float(tr.mean(n)) * nfac, "unit": nunit},
           "mean_current": {"value": (tr.mean(j) * jfac).tolist(), "unit": "A/m"}}
    if f_eq is not None:
        jt = j + tr.current(f_eq, E=(0.0, 0.0))
        fields.update({"j_transport_x": jt[..., 0], "j_transport_y": jt[..., 1]})
        out["mean_transport_current"] = {"value": (tr.mean(jt) * jfac).tolist(), "unit": "A/m"}
    from kinetic.polarization import fields_2x2k

    if polarization:
        fields.update(fields_2x2k(tr.p, f))
    out["xy_fields"] = fields
    return out


def write_vtk_xy(path, x, y, fields: dict) -> None:
    """Legacy-VTK rectilinear grid of x-y fields (nx, ny) at cell centres (x fastest)."""
    lines = ["# vtk DataFile Version 3.0", "kinetic x-y fields (x, y in Angstrom)", "ASCII",
             "DATASET RECTILINEAR_GRID", f"DIMENSIONS {len(x)} {len(y)} 1",
             f"X_COORDINATES {len(x)} double", " ".join(f"{v:.17g}" for v in x),
             f"Y_COORDINATES {len(y)} double", " ".join(f"{v:.17g}" for v in y),
             "Z_COORDINATES 1 double", "0", f"POINT_DATA {len(x) * len(y)}"]
    for name, vals in fields.items():
        lines += [f"SCALARS {name} double 1", "LOOKUP_TABLE default",
                  " ".join(f"{v:.17g}" for v in np.asarray(vals).T.ravel())]
    atomic_write(path, ("\n".join(lines) + "\n").encode())


def run_assembled(cfg, model, comm, outdir, say, quiet, t0, mem=None) -> dict:
    """Solve a 2x2k or full-3-D-k-mesh run file and write its outputs (rank 0); the summary on
    every rank."""
    import resource

    from mpi4py import MPI

    import kinetic
    from kinetic.run import _csv, _output_dir
    from kinetic.transport4 import Transport4

    mpi = comm.tompi4py()
    xy = cfg.y_n is not None
    p = build_problem4(cfg, model, comm) if xy else build_problem3k(cfg, model, comm)
    obs_of = observables4 if xy else observables3k
    tr = Transport4(p)
    m = p.mesh
    n = [a.n for a in m.axes]
    ndof = int(np.prod(n)) * m.nb
    shape = (f"{n[0]} x {n[1]} x {n[2]} x ({n[3]} k_y x {m.nb} bands)" if xy
             else f"{n[0]} x {n[1]} x {n[2]} x {m.nb} bands")
    layout = "2x2k" if xy else "0x3k (full 3-D k-mesh)"
    say(f"kinetic: {layout} mesh {shape} = {ndof} unknowns on {comm.getSize()} rank(s); built in "
        f"{time.perf_counter() - t0:.2f} s")
    zero = (0.0,) * len(p.phys.E)
    series, f_eq = [], None
    if cfg.mode == "steady":
        f, info = tr.steady()
        rows = [["field", info["iterations"], info["residual"], info["converged_reason"],
                 time.perf_counter() - t0]]
        tr_eq = tr
        if any(p.phys.E):  # the E = 0 reference removes magnetization currents (§6.2)
            if getattr(p, "field_dependent", False):  # ε⁽²⁾(E), Ω′(E) are not in j[0]
                tr_eq = Transport4(p.with_field(zero))
            f_eq, ref = tr_eq.steady(E=zero)
            rows.append(["reference_E0", ref["iterations"], ref["residual"],
                         ref["converged_reason"], time.perf_counter() - t0])
        hall = None
        if cfg.texture_hall:
            if not xy:
                raise ConfigError("output.texture_hall = true: for x-textures (mesh.x, and mesh.y "
                                  "for the Onsager pair)")
            hall = onsager_texture_hall(tr, f, f_eq, rows, t0)
        diag = _csv(["solve", "iterations", "residual", "converged_reason", "wall_s"], rows)
    else:
        nkey = "mean_density" if xy else "density"
        rows, said = [], [time.perf_counter()]
        t_end = units.fs_to_internal(cfg.t_end_fs)

        def monitor(i, t, u):
            obs = {k: v for k, v in (obs_of(tr, u, polarization=False) if xy else obs_of(tr, u))
                   .items() if k != "xy_fields"}
            t_fs = units.internal_to_fs(t)
            series.append((t_fs, obs))
            dens = obs[nkey]["value"]
            n0 = rows[0][2] if rows else dens
            rows.append([i, t_fs, dens, (dens - n0) / n0 if n0 else 0.0, time.perf_counter() - t0])
            now = time.perf_counter()
            if not quiet and (now - said[0] > 2.0 or t >= t_end * (1 - 1e-12)):
                said[0] = now
                say(f"kinetic: step {i} t = {t_fs:.4g} fs / {cfg.t_end_fs:g} fs, elapsed "
                    f"{now - t0:.1f} s")

        tr_eq = tr
        f = m.to_vec(p.f_loc)
        dt = units.fs_to_internal(cfg.dt_fs) if cfg.dt_fs else None
        f, info = tr.transient(f, t_end, ts_type=cfg.ts_type, dt=dt, monitor=monitor)
        unit = series[0][1][nkey]["unit"]
        diag = _csv(["step", "t_fs", f"{nkey}_{unit}", "drift_rel", "wall_s"], rows)
    obs = obs_of(tr, f, f_eq) if tr_eq is tr else obs_of(tr, f, f_eq, tr_eq.p)
    if cfg.mode == "steady" and hall is not None:
        obs["xy_fields"].update(hall.pop("xy_fields"))
        obs.update(hall)
    xyf = {k: m.gather_xy(v) for k, v in obs.pop("xy_fields", {}).items()}
    fgrid = m.gather(f)
    for v in (f, f_eq):
        if v is not None:
            v.destroy()
    summary = {
        "kinetic": kinetic.__version__, "run_file": str(cfg.path), "run_sha256": cfg.sha256,
        "layout": "2x2k" if xy else "0x3k", "kz_folded": None if xy else False,
        "ranks": comm.getSize(), "unknowns": ndof, "solver": info,
        "wall_time_s": time.perf_counter() - t0,
        "memory": {**(mem or {}), "peak_rss_B": mpi.allreduce(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, op=MPI.MAX)},
        "observables": obs,
    }
    if xy:
        del summary["kz_folded"]
    _output_dir(outdir, mpi, create=True)
    if comm.getRank() == 0:
        _write_outputs4(outdir, m, xyf, fgrid, summary, series, diag, say)
    return summary


def _write_outputs4(outdir, m, xy, fgrid, summary, series, diag, say) -> None:
    from kinetic.run import _vtk_unit, write_series

    nfac, nunit = units.density_si(2)
    jfac = units.E2_HBAR * units.ANGSTROM ** -1
    atomic_write(outdir / "summary.json",
                 (json.dumps(summary, indent=2, default=float) + "\n").encode())
    if xy:  # 2x2k: axes (x, y, k_x, k_y)
        names, kunits = ("x", "y", "kx", "ky"), ("A", "A", "1/A", "1/A")
        fshape = "(N_x, N_y, N_kx, N_ky, bands)"
    else:  # full 3-D k-mesh: axes (k_x, k_y, k_z, fold)
        names, kunits = ("kx", "ky", "kz"), ("1/A",) * 3
        fgrid = None if fgrid is None else fgrid[:, :, :, 0]
        fshape = "(N_kx, N_ky, N_kz, bands)"
    fields = {nm: a.centres(0, a.n) for nm, a in zip(names, m.axes)}
    unit_map = dict(zip(names, kunits))
    fields["f"], unit_map["f"] = fgrid, f"occupation {fshape}"
    from kinetic.polarization import si_units

    special = {"n": (nfac, nunit), **si_units(2)}  # + the polarization split (§6.1)
    for key, vals in xy.items():
        fac, unit = (special[key] if key in special else (units.E2_HBAR, "S")
                     if key.startswith("sigma_") else (jfac, "A/m"))
        fields[key] = vals * fac
        unit_map[key] = f"{unit} (N_x, N_y)"
    if xy:
        write_vtk_xy(outdir / "fields.vtk", fields["x"], fields["y"],
                     {f"{k}_{_vtk_unit(unit_map[k].split(' ')[0])}": fields[k] for k in xy})
    import io

    buf = io.BytesIO()
    np.savez(buf, units=np.array(json.dumps(unit_map)), **fields)
    atomic_write(outdir / "fields.npz", buf.getvalue())
    write_series(outdir, series, diag)
    say(f"kinetic: wrote {outdir}/summary.json, fields.npz" + (", fields.vtk" if xy else "")
        + (", timeseries.csv" if series else "") + ", diagnostics.csv")
