"""Figures from response tables: one quantity/component against μ, T or τ.

``series`` gives the arrays that are drawn (tests compare them with the table); ``plot_table``
draws them. 2D sheet conductivities (unit S) are shown in e²/h, the rest in SI with a power of
ten moved into the label."""
from __future__ import annotations

import csv
import io
import json
import math
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import constants as C

from kinetic.errors import ConfigError
from kinetic.fileio import atomic_write
from kinetic.table import HEADER, check_output

E2_H = C.e**2 / C.h  # S, 3.874045865e-5
VARS = {"mu": ("mu_eV", "μ", "eV"), "T": ("T_K", "T", "K"), "tau": ("tau_fs", "τ", "fs"),
        "E": ("E_V_per_m", "E", "V/m"), "E_y": ("E_y_V_per_m", "E_y", "V/m"),
        "B": ("B_T", "B", "T")}  # the last three: sweeps of `kinetic run` files
SWEEP_TAIL = ["quantity", "component", "value", "unit"]  # kinetic.solver_sweep tables
SYMBOL = {"density": "n", "drude": "σ", "ahc": "σ", "bcd": "D", "orbital_magnetization": "M",
          "texture_hall": "dσ_xy/dq",
          "current": "j", "transport_current": "j", "energy_density": "u"}
SUPER, MINUS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"), str.maketrans("-", "−")
MAX_LINES = 8  # more curves than this: evenly spaced values are shown (noted in the legend)


@dataclass(frozen=True)
class Line:
    """One curve: ``x`` (N,) in the x-axis unit; ``y``, ``err`` (N,) in the y-axis unit."""
    label: str
    x: np.ndarray
    y: np.ndarray
    err: np.ndarray


@dataclass(frozen=True)
class Series:
    """What ``plot_table`` draws; plotted y = table value (SI) / ``scale``."""
    x_label: str
    y_label: str
    title: str
    legend_title: str
    scale: float
    lines: list


def read_table(path) -> tuple[dict, list[dict]]:
    """(metadata {key: text} from the ``#`` lines, rows with numbers parsed) of a table CSV."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"table {str(path)!r}: cannot read ({exc.strerror})") from None
    meta = dict(ln[1:].strip().partition(": ")[::2] for ln in lines if ln.startswith("#"))
    reader = csv.DictReader(ln for ln in lines if ln.strip() and not ln.startswith("#"))
    head = reader.fieldnames or []
    axes = [c for c in head[:-4] if c in {spec[0] for spec in VARS.values()}]
    if head == HEADER:
        numeric = ("mu_eV", "T_K", "tau_fs", "value", "error")
    elif head[-4:] == SWEEP_TAIL and axes and axes == head[:-4]:  # no error column: 0
        numeric = tuple(axes) + ("value",)
    else:
        raise ConfigError(f"table {str(path)!r}: header {reader.fieldnames} is not the kinetic "
                          f"table header {','.join(HEADER)} (or a sweep of a run file: "
                          f"<axes>,{','.join(SWEEP_TAIL)})")
    meta["vars"] = [v for v, spec in VARS.items() if spec[0] in head]
    rows = []
    for n, r in enumerate(reader, 1):
        try:
            rows.append({"error": 0.0, **r, **{k: float(r[k]) for k in numeric}})
        except (TypeError, ValueError):
            raise ConfigError(f"table {str(path)!r}: data row {n} is not numeric: {r}") from None
    return meta, rows


def _title(meta: dict) -> str:
    model = meta.get("model", "")
    m = re.match(r"catalogue:(\S+) params=(.*)$", model)
    if m:
        params = {k: f"{v:g}".translate(MINUS) if isinstance(v, (int, float)) else v
                  for k, v in json.loads(m.group(2)).items()}
        model = f"{m.group(1)}: " + ", ".join(f"{k} = {v}" for k, v in params.items())
    elif model.startswith("wannier90:"):
        model = "Wannier90: " + ", ".join(Path(p).name for p in model[10:].split(" ")[0].split(","))
    return "\n".join(textwrap.wrap(model, 70))


def series(table, quantity: str, component: str | None, vs: str = "mu") -> Series:
    """The curves of ``quantity``/``component`` against ``vs``, one per value of the others.

    Parameters
    ----------
    table : path of a CSV written by ``kinetic table``
    quantity, component : names as in the table (``component`` "" or None for scalars)
    vs : "mu" (μ in eV), "T" (K) or "tau" (τ in fs)

    A variable with one value, or on which the data do not depend (τ for the AHC), is named in
    the legend title instead of multiplying the curves.
    """
    meta, all_rows = read_table(table)
    component = component or ""
    tvars = {v: VARS[v] for v in meta.pop("vars")}
    if vs not in tvars:
        raise ConfigError(f"vs = {vs!r}: allowed values for this table are {', '.join(tvars)}")
    comps = {q: dict.fromkeys(r["component"] for r in all_rows if r["quantity"] == q)
             for q in dict.fromkeys(r["quantity"] for r in all_rows)}
    if quantity not in comps:
        have = "; ".join(f"{q} [{', '.join(c or '(none)' for c in cs)}]" for q, cs in sorted(comps.items()))
        raise ConfigError(f"quantity = {quantity!r} is not in table {str(table)!r}; it "
                          f"contains: {have}")
    if component not in comps[quantity]:
        raise ConfigError(f"component = {component!r} of {quantity!r} is not in table "
                          f"{str(table)!r}; available: {', '.join(map(repr, comps[quantity]))}")
    rows = [r for r in all_rows if r["quantity"] == quantity and r["component"] == component]
    others, notes, indep = [], [], []
    for v, (col, sym, vunit) in tvars.items():
        if v == vs:
            continue
        values, seen = sorted({r[col] for r in rows}), {}
        keep = [tvars[w][0] for w in tvars if w != v]
        if len(values) == 1:
            notes.append(f"{sym} = {values[0]:g} {vunit}".translate(MINUS))
        elif all(seen.setdefault(tuple(r[c] for c in keep), r["value"]) == r["value"] for r in rows):
            rows = [r for r in rows if r[col] == values[0]]
            indep.append(sym)
        else:
            others.append((v, values))
    notes += [f"independent of {' and '.join(indep)}"] if indep else []
    while math.prod(len(vals) for _, vals in others) > MAX_LINES:  # thin the longest variable
        i = max(range(len(others)), key=lambda j: len(others[j][1]))
        (v, vals), rest = others[i], math.prod(len(w) for _, w in others) // len(others[i][1])
        m = max(1, min(MAX_LINES // rest, len(vals) - 1))  # evenly spaced, distinct
        others[i] = (v, [vals[j] for j in np.linspace(0, len(vals) - 1, m).round().astype(int)])
        rows = [r for r in rows if r[tvars[v][0]] in others[i][1]]
        notes.append(f"{len(others[i][1])} of {len(vals)} {tvars[v][1]} values shown")
    unit, scale = rows[0]["unit"], 1.0
    dim = re.match(r"\d+", meta.get("dimension", ""))
    if unit == "S" and (dim is None or dim.group() == "2"):
        unit, scale = "e²/h", E2_H
    else:
        peak = max(abs(r["value"]) for r in rows)
        p = 3 * math.floor(math.log10(peak) / 3) if peak > 0 else 0
        unit = re.sub(r"\^(-?\d+)", lambda m: m.group(1).translate(SUPER), unit.replace("*", "·"))
        scale, unit = 10.0**p, (f"10{str(p).translate(SUPER)} " if p else "") + unit
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r[tvars[v][0]] for v, _ in others), []).append(r)
    lines = []
    for key, rs in sorted(groups.items()):
        rs.sort(key=lambda r: r[tvars[vs][0]])
        label = ", ".join(f"{tvars[v][1]} = {k:g} {tvars[v][2]}" for (v, _), k in zip(others, key))
        y = np.array([[r["value"], r["error"]] for r in rs]) / scale  # (N, 2)
        lines.append(Line(label.translate(MINUS) or ", ".join(notes) or quantity,
                          np.array([r[tvars[vs][0]] for r in rs]), y[:, 0], y[:, 1]))
    ylabel = (f"{quantity}:  {SYMBOL.get(quantity, 'χ')}"
              + (f"$_{{{component}}}$" if component else "") + f"  ({unit})")
    return Series(f"{tvars[vs][1]} ({tvars[vs][2]})", ylabel, _title(meta),
                  ", ".join(notes) if others else "", scale, lines)


def _output(out, fmt: str, formats, default: Path) -> tuple[Path, str]:
    """(output path, format), checked before drawing: the suffix of ``out`` sets the format,
    which must be one matplotlib writes; the folder must exist. ``default`` (no suffix) is
    used when ``out`` is None."""
    key = "--format"
    if out is not None and Path(out).suffix:
        fmt, key = Path(out).suffix[1:].lower(), f"--out {str(out)!r}: format"
    if fmt not in formats:
        raise ConfigError(f"{key} {fmt!r} is not supported (fmt = {fmt!r}): allowed formats are "
                          f"{', '.join(sorted(formats))}")
    given = out is not None
    out = Path(out) if given else default.with_name(f"{default.name}.{fmt}")
    check_output(out, "--out" if given else "output", f".{fmt}")
    return out, fmt


def plot_table(table_path, quantity: str, component: str | None, vs: str = "mu", out=None,
               fmt: str = "png") -> Path:
    """Plot ``quantity``/``component`` of a response table against ``vs``; return the file.

    Parameters
    ----------
    table_path : CSV written by ``kinetic table``
    quantity, component : e.g. "ahc", "xy" ("" or None for scalars such as density)
    vs : "mu", "T" or "tau" (x axis μ in eV, T in K, τ in fs)
    out : output file; default ``<table stem>_<quantity>_<component>_vs_<vs>.<fmt>`` next to
        the table. A suffix of ``out`` sets the format.
    fmt : "png", "pdf", "svg", ... (any format matplotlib writes)

    The ``error`` column is drawn as error bars (≤ 20 points) or a shaded band. Rendered in
    memory by a pyplot-free ``Figure`` (Agg; no window, no global backend change) and renamed
    into place, so a failure leaves no partial file.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("plotting needs matplotlib; install the plot extra: "
                          "pip install 'kinetic[plot]'") from None
    table_path = Path(table_path)
    comps = component.split(",") if component and "," in component else [component]
    s = series(table_path, quantity, comps[0], vs)
    if len(comps) > 1:  # several components in one figure, on the first one's scale
        lines = []
        for c in comps:
            sc = series(table_path, quantity, c, vs)
            r = sc.scale / s.scale
            lines += [Line(c if len(sc.lines) == 1 else f"{c}: {ln.label}", ln.x, ln.y * r,
                           ln.err * r) for ln in sc.lines]
        s = Series(s.x_label, s.y_label.replace(f"$_{{{comps[0]}}}$", ""), s.title,
                   s.legend_title, s.scale, lines)
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    formats = fig.canvas.get_supported_filetypes()
    name = "_".join(p for p in (table_path.stem, quantity, component, "vs", vs) if p)
    out, fmt = _output(out, fmt, formats, table_path.with_name(name))
    ax = fig.add_subplot()
    for ln in s.lines:
        if len(ln.x) <= 20:
            ax.errorbar(ln.x, ln.y, yerr=ln.err, marker="o", ms=4, capsize=3, label=ln.label)
        else:
            (h,) = ax.plot(ln.x, ln.y, label=ln.label)
            ax.fill_between(ln.x, ln.y - ln.err, ln.y + ln.err, color=h.get_color(), alpha=0.25, lw=0)
    ax.axhline(0.0, color="0.6", lw=0.6, zorder=0)
    xs = np.concatenate([ln.x for ln in s.lines])
    if np.all(xs > 0) and xs.max() > 100 * xs.min():  # e.g. a field sweep over decades
        ax.set_xscale("log")
    ax.set(xlabel=s.x_label, ylabel=s.y_label)
    ax.set_title(s.title, fontsize="medium")
    ax.legend(title=s.legend_title or None, fontsize="small", title_fontsize="small")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=150)
    atomic_write(out, buf.getvalue())
    return out


def plot_run(rundir, out=None, fmt: str = "png") -> Path:
    """Figure of a ``kinetic run`` output directory: the distribution f on the phase-space mesh
    (band 0 / first dof) and, for textures, the x-fields n(x), j(x); for transient runs also the
    totals against t. Axes carry the units stored in ``fields.npz`` / ``timeseries.csv``."""
    import csv as _csv
    import json
    import zipfile

    import numpy as np

    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("plotting needs matplotlib; install the plot extra: "
                          "pip install 'kinetic[plot]'") from None
    rundir = Path(rundir)
    path = rundir / "fields.npz"
    if not path.is_file():
        raise ConfigError(f"kinetic plot {str(rundir)!r}: no fields.npz (not a `kinetic run` "
                          "output directory)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            z = {k: npz[k] for k in npz.files}
        units = json.loads(str(z["units"]))
        if np.ndim(z["f"]) == 5 and "y" in z:  # the 2x2k layout (kinetic.run4)
            return _plot_run_xy(rundir, z, units, out, fmt, Figure)
        q1 = next(k for k in z if k.startswith("q1_"))
        q2 = next(k for k in z if k.startswith("q2_"))
        if np.ndim(z["f"]) != 3:
            raise ValueError(f"f has shape {np.shape(z['f'])}, expected (N_q2, N_q1, bands)")
    except (OSError, ValueError, KeyError, StopIteration, TypeError, EOFError,
            zipfile.BadZipFile) as exc:
        raise ConfigError(f"kinetic plot {str(rundir)!r}: {path.name} is not a readable "
                          f"`kinetic run` output ({type(exc).__name__}: {exc}); needs f, q1_*, "
                          "q2_* and units (rerun kinetic run)") from None
    out, fmt = _output(out, fmt, Figure().canvas.get_supported_filetypes(), rundir / "run")
    series_path = rundir / "timeseries.csv"
    split = [k for k in ("P_shift", "P_metric") if k in z]
    panels = 1 + ("n" in z) + series_path.is_file() + bool(split)
    fig = Figure(figsize=(5.0 * panels, 4.2), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    name = lambda key: key.split("_", 1)[1]  # noqa: E731
    f = z["f"][..., 0]
    im = axes[0].pcolormesh(z[q1], z[q2], f, shading="nearest", cmap="viridis")
    fig.colorbar(im, ax=axes[0], label="f (occupation)")
    axes[0].set(xlabel=f"{name(q1)} ({units[q1]})", ylabel=f"{name(q2)} ({units[q2]})",
                title="distribution f, first band")
    i = 1
    if "n" in z:
        ax = axes[i]
        i += 1
        x = z[q1]
        ax.plot(x, z["n"], color="C0", label="kinetic")
        ax.set(xlabel=f"x ({units[q1]})", ylabel=f"n ({units['n']})", title="x-fields")
        if "n_exact" in z:  # [output] exact_reference: ED density and the residual
            ax.plot(x, z["n_exact"], "o", ms=2.5, color="k", label="exact diagonalization")
            ax.legend(fontsize="small", loc="upper left")
            ax2 = ax.twinx()
            ax2.plot(x, z["n"] - z["n_exact"], color="C3")
            ax2.set_ylabel(f"n − n_exact ({units['n']})", color="C3")
        elif "j" in z:
            ax2 = ax.twinx()
            ax2.plot(x, z["j"], color="C1")
            ax2.set_ylabel(f"j ({units['j']})", color="C1")
    if split:  # the polarization split of physics.md §6.1 (kinetic.polarization)
        ax = axes[i]
        i += 1
        for k, c in zip(split, ("C2", "C4")):
            ax.plot(z[q1], z[k], color=c, label=k.replace("_", " "))
        ax.set(xlabel=f"x ({units[q1]})", ylabel=f"P ({units[split[0]]})",
               title="polarization split and bound density")
        ax.legend(fontsize="small", loc="upper left")
        if "n_bound" in z:
            ax2 = ax.twinx()
            ax2.plot(z[q1], z["n_bound"], "--", color="k")
            ax2.set_ylabel(f"n_bound, dashed ({units['n_bound']})")
    if series_path.is_file():
        try:
            rows = list(_csv.reader(series_path.read_text().splitlines()))
            head, data = rows[0], rows[1:]
            t = np.array([float(r[0]) for r in data])
            cols = {label: [json.loads(r[col]) for r in data]
                    for col, label in enumerate(head[1:], start=1)}
        except (OSError, UnicodeDecodeError, ValueError, IndexError) as exc:
            raise ConfigError(f"kinetic plot {str(rundir)!r}: {series_path.name} is not a readable "
                              f"time series ({type(exc).__name__}: {exc})") from None
        ax = axes[i]
        for label, vals in cols.items():
            arr = np.array([v if np.ndim(v) == 0 else v[0] for v in vals], float)
            if label.startswith("current") or label.startswith("mean_current"):
                ax.plot(t, arr, label=label.replace("_", " "))
            if label.startswith("pumped_electrons"):  # pump runs (kinetic.pump)
                ax2 = ax.twinx()
                ax2.plot(t, arr, color="k", ls="--", label="pumped electrons")
                ax2.set_ylabel("electrons pumped in +x since t = 0")
                ax2.legend(fontsize="small", loc="lower right")
        ax.set(xlabel="t (fs)", ylabel="current", title="time series")
        ax.legend(fontsize="small")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=130)
    atomic_write(out, buf.getvalue())
    return out


def _plot_run_xy(rundir, z, units, out, fmt, Figure) -> Path:
    """2x2k run directory: the density n(x, y) with the current j(x, y) as arrows (with the
    equilibrium magnetization currents), and the components of the transport current
    j[E] − j[0] (of j where no E = 0 reference was solved) as maps."""
    out, fmt = _output(out, fmt, Figure().canvas.get_supported_filetypes(), rundir / "run")
    key = "j_transport" if "j_transport_x" in z else "j"
    fig = Figure(figsize=(15.0, 4.4), layout="constrained")
    axes = fig.subplots(1, 3)
    x, y = z["x"], z["y"]
    for ax, name in zip(axes, ("n", key + "_x", key + "_y")):
        im = ax.pcolormesh(x, y, z[name].T, shading="nearest",
                           cmap="viridis" if name == "n" else "RdBu_r")
        fig.colorbar(im, ax=ax, label=f"{name} ({units[name].split(' ')[0]})")
        ax.set(xlabel="x (Å)", ylabel="y (Å)", title=name.replace("_", " "), aspect="equal")
    axes[0].quiver(x, y, z["j_x"].T, z["j_y"].T, color="w")
    axes[0].set_title("n(x, y) and the current j (arrows)")
    fig.savefig(out, format=fmt)
    return out
