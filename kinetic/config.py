"""Run files (TOML) -> validated, frozen configuration. Every error names key, value, allowed.

Units in run files: energies eV, lengths Å, k 1/Å, time fs, temperature K. Paths are relative
to the run file. A run file is data: custom code is only ever an explicit ``module:function``.
"""
from __future__ import annotations

import difflib
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kinetic.errors import ConfigError
from kinetic.presets import toml_error

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

SECTIONS = {"model", "mesh", "physics", "response", "output"}
MODEL_KEYS = {"name", "params", "wannier90", "tb", "convention", "lattice", "spin_degeneracy"}
MESH_KEYS = {"k", "kmax"}
PHYSICS_KEYS = {"temperature", "tau", "mu"}
RESPONSE_KEYS = {"quantities"}
OUTPUT_KEYS = {"table"}
MAX_AXIS = 100_000  # values of one physics axis (mu, temperature, tau)


@dataclass(frozen=True)
class ModelSpec:
    name: str | None = None
    params: dict = field(default_factory=dict)
    wannier90: Path | None = None
    tb: Path | None = None
    convention: str = "II"
    lattice: tuple | None = None
    spin_degeneracy: int = 1


@dataclass(frozen=True)
class RunConfig:
    path: Path
    sha256: str
    model: ModelSpec
    k: tuple[int, ...]
    kmax: float | None
    temperatures_K: tuple[float, ...]
    taus_fs: tuple[float, ...]
    mus_eV: tuple[float, ...]
    quantities: tuple[str, ...]
    table: Path | None = None


def _unknown(table: dict, allowed: set, where: str) -> None:
    for key in table:
        if key not in allowed:
            near = difflib.get_close_matches(key, allowed, n=1)
            if where == "run file":  # the top level of a run file holds [sections]
                hint = f" (did you mean [{near[0]}]?)" if near else ""
                raise ConfigError(f"run file: unknown section [{key}]{hint}; allowed: "
                                  + ", ".join(f"[{k}]" for k in sorted(allowed)))
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; allowed: {', '.join(sorted(allowed))}")


def _number(value, key: str, *, positive=False, nonneg=False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} = {value!r}: expected a number")
    v = float(value)
    if not math.isfinite(v):
        raise ConfigError(f"{key} = {value!r}: must be finite")
    if positive and not v > 0:
        raise ConfigError(f"{key} = {value!r}: must be > 0")
    if nonneg and v < 0:
        raise ConfigError(f"{key} = {value!r}: must be ≥ 0")
    return v


def number_list(value, key: str, **kw) -> tuple[float, ...]:
    """A number, a list of numbers, or {start, stop, num} (inclusive linspace)."""
    if isinstance(value, dict):
        _unknown(value, {"start", "stop", "num"}, key)
        missing = {"start", "stop", "num"} - set(value)
        if missing:
            raise ConfigError(f"{key}: missing {sorted(missing)}; write {{start = .., stop = .., num = ..}}")
        start = _number(value["start"], f"{key}.start")
        stop = _number(value["stop"], f"{key}.stop")
        num = value["num"]
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise ConfigError(f"{key}.num = {num!r}: expected an integer ≥ 1")
        if num > MAX_AXIS:  # a typo like num = 1000000000 must not allocate gigabytes
            raise ConfigError(f"{key}.num = {num}: at most {MAX_AXIS} values per axis")
        vals = np.linspace(start, stop, num)
        return tuple(_number(float(v), key, **kw) for v in vals)
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"{key} = []: give at least one value")
        return tuple(_number(v, f"{key}[{i}]", **kw) for i, v in enumerate(value))
    return (_number(value, key, **kw),)


def _path(base: Path, value, key: str) -> Path:
    if not isinstance(value, str):
        raise ConfigError(f"{key} = {value!r}: expected a file path string")
    p = (base / value).resolve()
    if not p.is_file():
        raise ConfigError(f"{key} = {value!r}: file not found ({p})")
    return p


def load_model_section(m, base: Path) -> ModelSpec:
    """Validate a run file's [model] table (catalogue name or Wannier90 files)."""
    if m is None:
        raise ConfigError("run file: missing section [model] (name = \"...\" or wannier90 = \"x_hr.dat\")")
    if not isinstance(m, dict):
        raise ConfigError(f"[model] must be a table, got {m!r}")
    _unknown(m, MODEL_KEYS, "[model]")
    if ("name" in m) == ("wannier90" in m or "tb" in m):
        raise ConfigError("[model]: give exactly one of name = \"<catalogue model>\" or "
                          "wannier90 = \"<seed>_hr.dat\" / tb = \"<seed>_tb.dat\"")
    params = m.get("params", {})
    if not isinstance(params, dict):
        raise ConfigError(f"model.params = {params!r}: expected a table, e.g. {{ M = 1.0 }}")
    for key, v in params.items():
        _number(v, f"model.params.{key}")
    conv = m.get("convention", "II")
    if conv not in ("I", "II"):
        raise ConfigError(f"model.convention = {conv!r}: allowed 'I' (orbital positions in the "
                          "Bloch phase) or 'II' (orbitals at the cell origin)")
    lattice = m.get("lattice")
    if lattice is not None:
        arr = np.asarray(lattice, dtype=object)
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] not in (1, 2, 3):
            raise ConfigError(f"model.lattice = {lattice!r}: expected a square list of lattice "
                              "vectors in Å, e.g. [[1, 0], [0, 1]]")
        lattice = tuple(tuple(_number(x, "model.lattice") for x in row) for row in lattice)
    spin = m.get("spin_degeneracy", 1)
    if spin not in (1, 2) or isinstance(spin, bool):
        raise ConfigError(f"model.spin_degeneracy = {spin!r}: allowed 1 or 2")
    if "name" in m and not isinstance(m["name"], str):
        raise ConfigError(f"model.name = {m['name']!r}: expected a string")
    return ModelSpec(
        name=m.get("name"),
        params=dict(params),
        wannier90=_path(base, m["wannier90"], "model.wannier90") if "wannier90" in m else None,
        tb=_path(base, m["tb"], "model.tb") if "tb" in m else None,
        convention=conv,
        lattice=lattice,
        spin_degeneracy=int(spin),
    )



def read_run_file(path, sections) -> tuple[bytes, dict, Path]:
    """(raw bytes, parsed TOML, folder) of a run file whose top level holds only ``sections``,
    each a table; ConfigError for unreadable files, bad TOML, unknown or non-table sections."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"run file {str(path)!r}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"run file {str(path)!r}: not valid TOML (not UTF-8 text: {exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"run file {str(path)!r}: not valid TOML: {toml_error(exc, text)}") from None
    _unknown(data, sections, "run file")
    for sec in sections & set(data):
        if not isinstance(data[sec], dict):
            raise ConfigError(f"[{sec}] must be a table, got {data[sec]!r}")
    return raw, data, path.resolve().parent


def load_run(path) -> RunConfig:
    """Parse and validate a run file."""
    path = Path(path)
    raw, data, base = read_run_file(path, SECTIONS)

    model = load_model_section(data.get("model"), base)

    mesh = data.get("mesh", {})
    if "preset" in mesh:  # meshes/<name>.toml; the run file's explicit keys override it
        from kinetic.presets import apply_preset

        mesh = apply_preset(mesh, base)
    _unknown(mesh, MESH_KEYS, "[mesh]")
    if "k" not in mesh:
        raise ConfigError("[mesh]: missing k = [n1, n2, ...] (points along each reciprocal vector)")
    k = mesh["k"]
    if isinstance(k, int) and not isinstance(k, bool):
        k = [k]
    if (not isinstance(k, list) or not k
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in k)):
        raise ConfigError(f"mesh.k = {mesh['k']!r}: expected a list of integers, e.g. [400, 400]")
    for n in k:
        if n < 4:
            raise ConfigError(f"mesh.k = {k!r}: each entry must be ≥ 4")
    if np.prod(k) > 5e7:
        raise ConfigError(f"mesh.k = {k!r}: {int(np.prod(k)):.3g} points exceeds the 5e7 limit "
                          "of a single-node table")
    kmax = _number(mesh["kmax"], "mesh.kmax", positive=True) if "kmax" in mesh else None

    phys = data.get("physics", {})
    _unknown(phys, PHYSICS_KEYS, "[physics]")
    for key in ("temperature", "mu"):
        if key not in phys:
            raise ConfigError(f"[physics]: missing {key} ({'K' if key == 'temperature' else 'eV'})")
    temps = number_list(phys["temperature"], "physics.temperature", positive=True)
    taus = number_list(phys.get("tau", 10.0), "physics.tau", positive=True)
    mus = number_list(phys["mu"], "physics.mu")

    resp = data.get("response", {})
    _unknown(resp, RESPONSE_KEYS, "[response]")
    qs = resp.get("quantities", ["density", "drude"])
    if isinstance(qs, str):
        qs = [qs]
    if not isinstance(qs, list) or not all(isinstance(q, str) for q in qs) or not qs:
        raise ConfigError(f"response.quantities = {qs!r}: expected a list of names")

    out = data.get("output", {})
    _unknown(out, OUTPUT_KEYS, "[output]")
    table = out.get("table")
    if table is not None:
        if not isinstance(table, str):
            raise ConfigError(f"output.table = {table!r}: expected a path string")
        table = (base / table).resolve()

    return RunConfig(path=path.resolve(), sha256=hashlib.sha256(raw).hexdigest(), model=model,
                     k=tuple(k), kmax=kmax, temperatures_K=temps, taus_fs=taus, mus_eV=mus,
                     quantities=tuple(dict.fromkeys(qs)), table=table)
