"""Mesh presets: ``meshes/<name>.toml`` files holding one ``[mesh]`` table.

A run file may say ``[mesh] preset = "fine2d"``; the preset's keys are the defaults and the run
file's explicit keys override them (a table value such as ``x = {n = 512}`` overrides key by key,
so ``x.length`` and ``x.boundary`` still come from the preset). Presets are looked up, in order,
in the run file's folder ``meshes/``, the folders of ``$KINETIC_MESH_PATH`` (``os.pathsep``
separated) and the project's ``meshes/``. ``preset`` may also be a path to a ``.toml`` file,
relative to the run file.
"""
from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

from kinetic.errors import ConfigError

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

PROJECT_MESHES = Path(__file__).resolve().parent.parent / "meshes"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def toml_error(exc: Exception, text: str) -> str:
    """A TOML decoding error with the offending line quoted (tomllib gives only its number)."""
    msg = str(exc)
    m = re.search(r"at line (\d+)", msg)
    lines = text.splitlines()
    if m and 1 <= int(m.group(1)) <= len(lines):
        msg += f": line {m.group(1)} is {lines[int(m.group(1)) - 1].strip()!r}"
    return msg


def default_search_dirs(base: Path | None = None) -> list[Path]:
    """Preset folders: <run file folder>/meshes, $KINETIC_MESH_PATH, the project's meshes/."""
    dirs = [Path(base) / "meshes"] if base is not None else []
    dirs += [Path(p) for p in os.environ.get("KINETIC_MESH_PATH", "").split(os.pathsep) if p]
    dirs.append(PROJECT_MESHES)
    seen, out = set(), []
    for d in dirs:
        key = d.resolve()
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def available_presets(search_dirs) -> list[str]:
    """Names of the presets (``*.toml`` stems) in the search folders, sorted."""
    names = set()
    for d in search_dirs:
        if Path(d).is_dir():
            names.update(p.stem for p in Path(d).glob("*.toml") if NAME.fullmatch(p.stem))
    return sorted(names)


def load_preset(name, search_dirs, base: Path | None = None) -> dict:
    """The ``[mesh]`` table of preset ``name`` (first match in ``search_dirs``) as a dict.

    ``name`` is a preset name (``"fine2d"``) or a path ending in ``.toml`` (relative to ``base``).
    ConfigError for an unknown name (listing the available presets), an unreadable or invalid
    file, or a preset that is not a single ``[mesh]`` table.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"mesh.preset = {name!r}: expected a preset name string, e.g. "
                          f"\"fine2d\"; available: {', '.join(available_presets(search_dirs)) or 'none'}")
    if name.endswith(".toml") or "/" in name or os.sep in name:
        path = (Path(base) if base is not None else Path(".")) / name
        if not path.is_file():
            raise ConfigError(f"mesh.preset = {name!r}: file not found ({path.resolve()})")
    else:
        path = next((Path(d) / f"{name}.toml" for d in search_dirs
                     if NAME.fullmatch(name) and (Path(d) / f"{name}.toml").is_file()), None)
        if path is None:
            avail = available_presets(search_dirs)
            near = difflib.get_close_matches(name, avail, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(f"mesh.preset = {name!r}: unknown preset{hint}; available: "
                              f"{', '.join(avail) or 'none'} (in {', '.join(str(d) for d in search_dirs)})")
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"mesh.preset = {name!r}: cannot read {path} ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"mesh.preset = {name!r}: {path} is not valid TOML (not UTF-8 "
                          f"text: {exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"mesh.preset = {name!r}: {path} is not valid TOML: "
                          f"{toml_error(exc, text)}") from None
    if set(data) != {"mesh"} or not isinstance(data["mesh"], dict):
        raise ConfigError(f"mesh.preset = {name!r}: {path} must hold exactly one [mesh] table "
                          f"(found {sorted(data) or 'nothing'})")
    mesh = dict(data["mesh"])
    if "preset" in mesh:
        raise ConfigError(f"mesh.preset = {name!r}: {path} may not itself name a preset")
    return mesh


def apply_preset(mesh: dict, base: Path | None = None, search_dirs=None) -> dict:
    """A run file's ``[mesh]`` table with its ``preset`` expanded; explicit keys win.

    Without a ``preset`` key the table is returned unchanged. Table values (``x``) are merged
    one level deep, so ``x = {n = 512}`` keeps the preset's ``x.length``.
    """
    if not isinstance(mesh, dict) or "preset" not in mesh:
        return mesh
    dirs = default_search_dirs(base) if search_dirs is None else search_dirs
    merged = load_preset(mesh["preset"], dirs, base)
    for key, value in mesh.items():
        if key == "preset":
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged
