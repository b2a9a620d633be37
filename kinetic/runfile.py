"""Run files for ``kinetic run`` (the phase-space solver) -> validated ``SolverRun``.

Sections: [model] (as for tables), [texture] (x-dependent parameters), [mesh] (k, x, kmax),
[physics], [solver], [output], [pump] (time-periodic parameters, ``kinetic.pump``); see README "Running the kinetic solver". Units: eV, Å, 1/Å,
fs, K, V/m, T. Custom textures are ``module:function`` entry points, never evaluated strings.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from kinetic.config import ModelSpec, _number, _unknown, load_model_section, read_run_file
from kinetic.errors import ConfigError

SECTIONS = {"model", "texture", "mesh", "physics", "solver", "output", "pump"}
TEXTURE_BUILTINS = {"rice_mele_ring", "helical"}


@dataclass(frozen=True)
class SolverRun:
    path: Path
    sha256: str
    model: ModelSpec
    texture: dict = field(default_factory=dict)  # parameter -> profile spec
    builtin: str | None = None  # a ready-made texture (e.g. rice_mele_ring)
    builtin_args: dict = field(default_factory=dict)
    k: tuple = ()
    kmax: float | None = None
    x_n: int | None = None
    x_length: float | None = None
    x_start: float = 0.0  # Å: the x-mesh covers [start, start + length]
    y_n: int | None = None  # mesh.y: the 2x2k layout (x-y textures of a 2D model), y periodic
    y_length: float | None = None
    boundary: str = "periodic"
    temperature_K: float = 300.0
    tau_fs: object = 10.0  # fs: a number, a per-band list, or "module:function"(ε eV, band) -> fs
    mu_eV: float = 0.0
    mu_left_eV: float | None = None
    mu_right_eV: float | None = None
    electric_field: tuple = ()  # V/m
    field_time: dict = field(default_factory=lambda: {"kind": "static"})
    number_conserving: bool = False
    magnetic_field_T: float = 0.0  # B_z (T)
    magnetic_field_xy_T: tuple = (0.0, 0.0)  # (B_x, B_y) of a 3-vector magnetic_field (3D models)
    terms: tuple | None = None
    bands: tuple | None = None
    mode: str = "steady"
    t_end_fs: float | None = None
    ts_type: str = "arkimex"
    reconstruction: str = "upwind"
    dt_fs: float | None = None
    checkpoint_steps: int | None = None  # solver.checkpoint = { every_steps, every_minutes }
    checkpoint_minutes: float | None = None
    force: bool = False  # run even if the memory estimate exceeds MemAvailable
    output_dir: Path | None = None
    pump: dict | None = None  # {period_fs, cycles, steps_per_cycle, params}: kinetic.pump
    exact_reference: bool = False  # [output]: exact-diagonalization density of the ring (1x1k)
    texture_hall: bool = False  # [output]: τ⁰ Hall conductivity σ_yx(x) of a 1x2k texture


def _y_mesh(y, x):
    """mesh.y = { n, length } (the 2x2k layout; y periodic) -> (n, length) or (None, None)."""
    if y is None:
        return None, None
    if not isinstance(y, dict):
        raise ConfigError(f"mesh.y = {y!r}: expected {{ n = 16, length = 16.0 }} (y is periodic)")
    _unknown(y, {"n", "length", "boundary"}, "mesh.y")
    if x is None:
        raise ConfigError("mesh.y: an x-y texture (2x2k layout) needs mesh.x as well")
    n = y.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ConfigError(f"mesh.y.n = {n!r}: expected an integer ≥ 2 (y cells)")
    if "length" not in y:
        raise ConfigError("mesh.y: missing length (Å)")
    if y.get("boundary", "periodic") != "periodic":
        raise ConfigError(f"mesh.y.boundary = {y['boundary']!r}: allowed periodic (walls and "
                          "contacts are along x)")
    return n, _number(y["length"], "mesh.y.length", positive=True)


def _pump_spec(value, sv):
    """[pump] period = fs, cycles = N, steps_per_cycle = M, params = { name = schedule }."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"[pump] = {value!r}: expected a table with period, cycles, params")
    _unknown(value, {"period", "cycles", "steps_per_cycle", "params"}, "[pump]")
    if "period" not in value:
        raise ConfigError("[pump]: missing period (fs)")
    out = {"period_fs": _number(value["period"], "pump.period", positive=True)}
    for key, default in (("cycles", 1), ("steps_per_cycle", 200)):
        n = value.get(key, default)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"pump.{key} = {n!r}: expected an integer ≥ 1")
        out[key] = n
    params = value.get("params")
    if not isinstance(params, dict) or not params:
        raise ConfigError(f"pump.params = {params!r}: expected a table of parameter schedules, e.g. "
                          "{ theta = { winding = 1 } } or { Delta = { mean = 0.0, amplitude = 0.6 } }")
    out["params"] = params
    if sv.get("mode", "transient") != "transient":
        raise ConfigError(f"solver.mode = {sv['mode']!r}: a [pump] run is time-dependent; allowed "
                          "with [pump]: \"transient\" (the default then)")
    return out


def _tau_spec(value):
    """physics.tau: number (fs), list of numbers (fs, one per band), or "module:function"."""
    if isinstance(value, str):
        import re

        if not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", value):
            raise ConfigError(f"physics.tau = {value!r}: a custom τ is an entry point "
                              "'package.module:function' taking (energy_eV, band) and returning fs")
        return value
    if isinstance(value, list):
        if not value:
            raise ConfigError("physics.tau = []: give one τ (fs) per band")
        return tuple(_number(v, f"physics.tau[{i}]", positive=True) for i, v in enumerate(value))
    return _number(value, "physics.tau", positive=True)


def _checkpoint_spec(value, mode):
    """solver.checkpoint = { every_steps = N, every_minutes = M } -> (N or None, M or None)."""
    if value is None:
        return None, None
    form = "{ every_steps = 100, every_minutes = 30.0 } (either or both)"
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"solver.checkpoint = {value!r}: expected {form}")
    _unknown(value, {"every_steps", "every_minutes"}, "solver.checkpoint")
    if mode != "transient":
        raise ConfigError(f"solver.checkpoint: checkpoints are written by transient runs; "
                          f"solver.mode = {mode!r} (allowed with checkpoint: \"transient\")")
    steps = value.get("every_steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ConfigError(f"solver.checkpoint.every_steps = {steps!r}: expected an integer ≥ 1 "
                          "(time steps between checkpoints)")
    minutes = value.get("every_minutes")
    if minutes is not None:
        minutes = _number(minutes, "solver.checkpoint.every_minutes", positive=True)
    return steps, minutes


def load_solver_run(path) -> SolverRun:
    path = Path(path)
    raw, data, base = read_run_file(path, SECTIONS)

    model = load_model_section(data.get("model"), base)

    tex = dict(data.get("texture", {}))
    builtin = tex.pop("builtin", None)
    if builtin is not None and builtin not in TEXTURE_BUILTINS:
        raise ConfigError(f"texture.builtin = {builtin!r}: allowed {sorted(TEXTURE_BUILTINS)}")
    builtin_args = tex.pop("args", {}) if builtin else {}
    if not isinstance(builtin_args, dict):
        raise ConfigError(f"texture.args = {builtin_args!r}: expected a table")
    if builtin in ("rice_mele_ring", "helical"):
        _unknown(builtin_args, {"delta", "Delta0", "phi3"} if builtin == "rice_mele_ring"
                 else {"q"}, "texture.args")
        for key, val in builtin_args.items():
            _number(val, f"texture.args.{key}")
        if builtin == "helical" and not builtin_args.get("q"):
            raise ConfigError("texture.args.q: the helical texture needs a nonzero wave number q "
                              "(1/Å); mesh.x.length must be one period 2π/|q|")
    for name, spec in tex.items():  # profile specs: a number, "module:function" or a table
        if isinstance(spec, dict):
            for key, val in spec.items():
                if key not in ("kind", "profile", "entry_point") and not isinstance(val, (list, str)):
                    _number(val, f"texture.{name}.{key}")
        elif not isinstance(spec, (int, float, str)) or isinstance(spec, bool):
            raise ConfigError(f"texture.{name} = {spec!r}: expected a number, a profile table "
                              "{ kind = \"sine\", ... } or \"module:function\"")

    from kinetic.presets import apply_preset

    mesh = apply_preset(data.get("mesh", {}), base)  # [mesh] preset = "name": meshes/name.toml
    _unknown(mesh, {"k", "kmax", "x", "y"}, "[mesh]")
    k = mesh.get("k")
    if isinstance(k, int) and not isinstance(k, bool):
        k = [k]
    if not isinstance(k, list) or not k or not all(isinstance(n, int) and not isinstance(n, bool)
                                                   and n >= 4 for n in k):
        raise ConfigError(f"mesh.k = {mesh.get('k')!r}: expected a list of integers ≥ 4 "
                          "(cells along each k axis), e.g. [256]")
    kmax = _number(mesh["kmax"], "mesh.kmax", positive=True) if "kmax" in mesh else None
    x = mesh.get("x")
    x_n = x_length = None
    x_start = 0.0
    boundary = "periodic"
    if x is not None:
        if not isinstance(x, dict):
            raise ConfigError(f"mesh.x = {x!r}: expected {{ n = 64, length = 64.0, boundary = \"periodic\" }}")
        _unknown(x, {"n", "length", "boundary", "start"}, "mesh.x")
        x_n = x.get("n")
        if isinstance(x_n, bool) or not isinstance(x_n, int) or x_n < 2:
            raise ConfigError(f"mesh.x.n = {x_n!r}: expected an integer ≥ 2 (x cells)")
        if "length" not in x:
            raise ConfigError("mesh.x: missing length (Å)")
        x_length = _number(x["length"], "mesh.x.length", positive=True)
        x_start = _number(x.get("start", 0.0), "mesh.x.start")
        boundary = x.get("boundary", "periodic")
        if boundary not in ("periodic", "wall", "reservoir"):
            raise ConfigError(f"mesh.x.boundary = {boundary!r}: allowed periodic, wall, reservoir")

    y_n, y_length = _y_mesh(mesh.get("y"), x)

    ph = data.get("physics", {})
    _unknown(ph, {"temperature", "tau", "mu", "mu_left", "mu_right", "electric_field",
                  "field_time", "magnetic_field", "terms", "bands", "number_conserving"},
             "[physics]")
    if "mu" not in ph:
        raise ConfigError("[physics]: missing mu (eV)")
    E = ph.get("electric_field", [])
    E = [E] if isinstance(E, (int, float)) and not isinstance(E, bool) else E
    if not isinstance(E, list):
        raise ConfigError(f"physics.electric_field = {E!r}: expected V/m, one value per k axis")
    E = tuple(_number(v, f"physics.electric_field[{i}]") for i, v in enumerate(E))
    ft = ph.get("field_time", {"kind": "static"})
    if not isinstance(ft, dict):
        raise ConfigError(f"physics.field_time = {ft!r}: expected {{ kind = \"static\" | \"step\" | \"ac\", ... }}")
    _unknown(ft, {"kind", "t_on", "omega"}, "physics.field_time")
    kind = ft.get("kind", "static")
    if kind not in ("static", "step", "ac"):
        raise ConfigError(f"physics.field_time.kind = {kind!r}: allowed static, step (E for t > t_on fs), "
                          "ac (E cos(omega t), omega in rad/fs)")
    field_time = {"kind": kind}
    if kind == "step":
        field_time["t_on"] = _number(ft.get("t_on", 0.0), "physics.field_time.t_on", nonneg=True)
    if kind == "ac":
        if "omega" not in ft:
            raise ConfigError("physics.field_time: kind = \"ac\" needs omega (rad/fs)")
        field_time["omega"] = _number(ft["omega"], "physics.field_time.omega", positive=True)
    Bspec = ph.get("magnetic_field", 0.0)
    if isinstance(Bspec, list):
        if len(Bspec) != 3:
            raise ConfigError(f"physics.magnetic_field = {Bspec!r}: a number (B_z, T) or three "
                              "components [B_x, B_y, B_z] (T, 3D models)")
        Bx, By, Bz = (_number(v, f"physics.magnetic_field[{i}]") for i, v in enumerate(Bspec))
        Bxy = (Bx, By)
    else:
        Bz, Bxy = _number(Bspec, "physics.magnetic_field"), (0.0, 0.0)
    nc = ph.get("number_conserving", False)
    if not isinstance(nc, bool):
        raise ConfigError(f"physics.number_conserving = {nc!r}: expected true or false")
    terms = ph.get("terms")
    if terms is not None and (not isinstance(terms, list) or not all(isinstance(t, str) for t in terms)):
        raise ConfigError(f"physics.terms = {terms!r}: expected a list of term names")
    bands = ph.get("bands")
    if bands is not None and (not isinstance(bands, list) or not all(
            isinstance(b, int) and not isinstance(b, bool) for b in bands)):
        raise ConfigError(f"physics.bands = {bands!r}: expected a list of band indices, e.g. [0]")
    if boundary == "reservoir" and ("mu_left" not in ph or "mu_right" not in ph):
        raise ConfigError("[physics]: reservoir boundaries need mu_left and mu_right (eV)")

    sv = data.get("solver", {})
    _unknown(sv, {"mode", "t_end", "ts_type", "dt", "reconstruction", "checkpoint", "force"},
             "[solver]")
    pump = _pump_spec(data.get("pump"), sv)
    if pump is not None:
        sv = {"mode": "transient", "t_end": pump["period_fs"] * pump["cycles"], **sv}
    recon = sv.get("reconstruction", "upwind")
    if recon not in ("upwind", "muscl"):
        raise ConfigError(f"solver.reconstruction = {recon!r}: allowed upwind (first order), "
                          "muscl (second order, van Leer limited)")
    mode = sv.get("mode", "steady")
    if mode not in ("steady", "transient"):
        raise ConfigError(f"solver.mode = {mode!r}: allowed steady, transient")
    t_end = _number(sv["t_end"], "solver.t_end", positive=True) if "t_end" in sv else None
    if mode == "transient" and t_end is None:
        raise ConfigError("solver.t_end: a transient run needs t_end (fs)")
    ts_type = sv.get("ts_type", "arkimex")
    if not isinstance(ts_type, str):
        raise ConfigError(f"solver.ts_type = {ts_type!r}: expected a PETSc TS type name")

    ck_steps, ck_minutes = _checkpoint_spec(sv.get("checkpoint"), mode)
    if mode == "steady" and field_time["kind"] != "static":
        raise ConfigError(f"physics.field_time.kind = {field_time['kind']!r}: a time-dependent "
                          "field needs solver.mode = \"transient\" (steady runs: \"static\")")
    force = sv.get("force", False)
    if not isinstance(force, bool):
        raise ConfigError(f"solver.force = {force!r}: expected true or false (true: run even if the "
                          "memory estimate exceeds the available memory)")

    out = data.get("output", {})
    _unknown(out, {"dir", "exact_reference", "texture_hall"}, "[output]")
    exact = out.get("exact_reference", False)
    if not isinstance(exact, bool):
        raise ConfigError(f"output.exact_reference = {exact!r}: expected true or false")
    thall = out.get("texture_hall", False)
    if not isinstance(thall, bool):
        raise ConfigError(f"output.texture_hall = {thall!r}: expected true or false")
    if thall and (x_n is None or mode != "steady" or not E or E[0] == 0 or any(E[1:])):
        raise ConfigError("output.texture_hall = true: needs a steady x-texture run (mesh.x, "
                          "solver.mode = \"steady\") of a 2D model with electric_field = [E_x, 0] "
                          "and E_x ≠ 0 (V/m)")
    if exact and (x_n is None or boundary != "periodic"):
        raise ConfigError("output.exact_reference = true: the exact-diagonalization reference is "
                          "for periodic x-textures (mesh.x with boundary = \"periodic\")")
    if "dir" in out and not isinstance(out["dir"], str):
        raise ConfigError(f"output.dir = {out['dir']!r}: expected a path string")
    outdir = (base / out["dir"]).resolve() if "dir" in out else None

    return SolverRun(
        path=path.resolve(), sha256=hashlib.sha256(raw).hexdigest(), model=model, texture=tex,
        builtin=builtin, builtin_args=builtin_args, k=tuple(k), kmax=kmax, x_n=x_n,
        x_length=x_length, x_start=x_start, y_n=y_n, y_length=y_length, boundary=boundary,
        temperature_K=_number(ph.get("temperature", 300.0), "physics.temperature", positive=True),
        tau_fs=_tau_spec(ph.get("tau", 10.0)),
        mu_eV=_number(ph["mu"], "physics.mu"),
        mu_left_eV=_number(ph["mu_left"], "physics.mu_left") if "mu_left" in ph else None,
        mu_right_eV=_number(ph["mu_right"], "physics.mu_right") if "mu_right" in ph else None,
        electric_field=E, field_time=field_time, number_conserving=nc,
        magnetic_field_T=Bz, magnetic_field_xy_T=Bxy,
        terms=tuple(terms) if terms is not None else None,
        bands=tuple(bands) if bands is not None else None,
        mode=mode, t_end_fs=t_end, ts_type=ts_type, reconstruction=recon,
        dt_fs=_number(sv["dt"], "solver.dt", positive=True) if "dt" in sv else None,
        checkpoint_steps=ck_steps, checkpoint_minutes=ck_minutes, force=force,
        output_dir=outdir, pump=pump, exact_reference=exact, texture_hall=thall)
