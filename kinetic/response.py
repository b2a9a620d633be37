"""Homogeneous response tensors as Brillouin-zone integrals (physics.md §6.4, V1–V8).

Every calculator is registered in ``CALCULATORS`` with its formula, unit and reference; tests
iterate the registry. A calculator turns band geometry on a k-mesh into *weights* w_{kn} that
multiply one occupation kernel F(ε; μ, T):

    ``"f"``   f0(ε)           Fermi–Dirac occupation
    ``"df"``  ∂f0/∂ε          (1/eV)
    ``"lnf"`` k_BT ln(1 + e^{−(ε−μ)/k_BT})   (eV)

so that value(μ, T, τ) = g_s · τ^p · ∫[dk] Σ_n w_{kn} F(ε_{kn}; μ, T). Internal units: eV, Å,
ħ = e = k_B = 1, electron charge −e (physics.md §1.2); SI conversion via ``kinetic.units``.
Derivatives of geometric quantities are moved onto f0 by parts (∫ f0 ∂_a X = −∫ f0' v_a X,
exact on the periodic zone), so only analytic first/second derivatives of H are needed.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from kinetic import units
from kinetic.errors import ConfigError

AXES = "xyz"


@dataclass(frozen=True)
class Calculator:
    """A registered response quantity.

    ``weights(geom, dim)`` returns {component: (kernel, w)} with w of shape (points, nb);
    ``tau_power`` p multiplies the result by τ^p; ``unit(dim)`` gives (SI factor, unit);
    ``needs`` lists the BandGeometry fields used (for the geometry engine: "inverse_mass"
    requires ∂²H/∂k²); ``min_dim`` is the lowest k-dimension where it is defined.
    """

    name: str
    weights: Callable
    tau_power: int
    unit: Callable
    needs: tuple = ()
    min_dim: int = 1
    doc: str = ""


CALCULATORS: dict[str, Calculator] = {}


def register(name, *, tau_power, unit, needs=(), min_dim=1):
    def deco(fn):
        CALCULATORS[name] = Calculator(name, fn, tau_power, unit, tuple(needs), min_dim,
                                       (fn.__doc__ or "").strip())
        return fn

    return deco


def pseudovector_index(c: int, dim: int) -> tuple[int, int] | None:
    """(a, b) with Ω_c = Ω_ab (c the pseudovector component); 2D has only c = z."""
    pairs = {0: (1, 2), 1: (2, 0), 2: (0, 1)}
    a, b = pairs[c]
    return (a, b) if max(a, b) < dim else None


def _curv(geom):  # (P, nb, d, d)
    return geom.curvature


def _vel(geom):  # (P, d, nb)
    return geom.velocity


@register("density", tau_power=0, unit=lambda d: units.density_si(d))
def density(geom, dim):
    """Carrier number density n = g_s Σ_n ∫[dk] f0(ε_n). Unit 1/m^d. Component ''.

    Reference: physics.md §6.1 (homogeneous, D = 1).
    """
    return {"": ("f", np.ones_like(geom.energy))}


@register("drude", tau_power=1, unit=lambda d: units.conductivity_si(d), needs=("velocity",))
def drude(geom, dim):
    """Drude conductivity σ_ab = (e²τ/ħ²) g_s Σ_n ∫[dk] ∂_aε ∂_bε (−∂f0/∂ε).

    Components ab; SI (S in 2D, S/m in 3D). Reference: physics.md §6.4, V1.
    """
    v = _vel(geom)
    return {AXES[a] + AXES[b]: ("df", -v[:, a] * v[:, b]) for a in range(dim) for b in range(dim)}


@register("ahc", tau_power=0, unit=lambda d: units.conductivity_si(d), needs=("curvature",),
          min_dim=2)
def ahc(geom, dim):
    """Intrinsic anomalous Hall conductivity σ_ab = −(e²/ħ) g_s Σ_n ∫[dk] f0 Ω_{k_a k_b}, a < b.

    Insulator: σ_xy = −(e²/h) C. References: TKNN 1982; Jungwirth–Niu–MacDonald 2002;
    physics.md §6.4, V3.
    """
    O = _curv(geom)
    return {AXES[a] + AXES[b]: ("f", -O[:, :, a, b])
            for a, b in itertools.combinations(range(dim), 2)}


def _dipole_weights(geom, dim):
    """D_ac = ∫ f0 ∂_a Ω_c = −∫ f0' v_a Ω_c  → {(a, c): w} for the 'df' kernel."""
    v, O = _vel(geom), _curv(geom)
    out = {}
    for c in range(3):
        ab = pseudovector_index(c, dim)
        if ab is None:
            continue
        for a in range(dim):
            out[(a, c)] = -v[:, a] * O[:, :, ab[0], ab[1]]
    return out


@register("bcd", tau_power=0, unit=lambda d: units.length_power_si(3 - d),
          needs=("velocity", "curvature"), min_dim=2)
def bcd(geom, dim):
    """Berry-curvature dipole D_ac = g_s Σ_n ∫[dk] f0 ∂_{k_a} Ω_c (Ω as a pseudovector).

    Evaluated as −∫ f0' v_a Ω_c. Components 'ac' (2D: xz, yz). Unit m^(3−d) (2D: m).
    Reference: Sodemann & Fu 2015; physics.md §6.4, V7.
    """
    return {AXES[a] + AXES[c]: ("df", w) for (a, c), w in _dipole_weights(geom, dim).items()}


def _eps(a, c, d):
    return np.linalg.det(np.eye(3)[[a, c, d]])


@register("bcd_hall", tau_power=1, unit=lambda d: units.chi_si(d),
          needs=("velocity", "curvature"), min_dim=2)
def bcd_hall(geom, dim):
    """BCD nonlinear Hall (dc): j_a = (e³τ/ħ²) ε_acd E_b E_c D_bd, χ_abc symmetrized in (b, c).

    2D: j = (e³τ/ħ²)(D·E)(E_y, −E_x). Components abc. Reference: Sodemann & Fu 2015 for charge
    −e and dc; physics.md §6.4, V7.
    """
    D = _dipole_weights(geom, dim)
    out = {}
    for a, b, c in itertools.product(range(dim), repeat=3):
        w = 0.0
        for d in range(3):
            if (b, d) in D:
                w = w + 0.5 * _eps(a, c, d) * D[(b, d)]
            if (c, d) in D:
                w = w + 0.5 * _eps(a, b, d) * D[(c, d)]
        if not np.isscalar(w):
            out[AXES[a] + AXES[b] + AXES[c]] = ("df", w)
    return out


@register("nonlinear_drude", tau_power=2, unit=lambda d: units.chi_si(d),
          needs=("velocity", "inverse_mass"))
def nonlinear_drude(geom, dim):
    """Nonlinear Drude χ_abc = −(e³τ²/ħ³) g_s Σ_n ∫[dk] f0 ∂_a∂_b∂_c ε = (e³τ²/ħ³) ∫ f0' v_a ∂_b∂_cε.

    Components abc. Reference: physics.md §6.4, V8.
    """
    v, M = _vel(geom), geom.inverse_mass
    return {AXES[a] + AXES[b] + AXES[c]: ("df", v[:, a] * M[:, :, b, c])
            for a, b, c in itertools.product(range(dim), repeat=3)}


def _intrinsic(geom, dim, half):
    v, G = _vel(geom), geom.bcp_gyn
    out = {}
    for a, b, c in itertools.product(range(dim), repeat=3):
        w = (half * v[:, a] * G[:, :, b, c]
             - 0.5 * (v[:, b] * G[:, :, a, c] + v[:, c] * G[:, :, a, b]))
        out[AXES[a] + AXES[b] + AXES[c]] = ("df", w)
    return out


@register("intrinsic_nonlinear", tau_power=0, unit=lambda d: units.chi_si(d),
          needs=("velocity", "bcp_gyn"))
def intrinsic_nonlinear(geom, dim):
    """Intrinsic nonlinear Hall with the intrinsic anomalous distribution (IAD):

    χ_abc = e³ g_s Σ_n ∫[dk] f0' (v_a G_bc − v_b G_ac), G = G^GYN, symmetrized over (b, c).
    Purely Hall (E_a j_a = 0). References: Gao–Yang–Niu 2014; Xiao–Cao–Niu–Yang 2024;
    physics.md §6.4, V8.
    """
    return _intrinsic(geom, dim, 1.0)


@register("intrinsic_nonlinear_noiad", tau_power=0, unit=lambda d: units.chi_si(d),
          needs=("velocity", "bcp_gyn"))
def intrinsic_nonlinear_noiad(geom, dim):
    """Intrinsic nonlinear response relaxing to f0(ε) (no IAD):

    χ_abc = e³ g_s Σ_n ∫[dk] f0' (½ v_a G_bc − v_b G_ac), symmetrized over (b, c); has a
    longitudinal part. References: Wang–Gao–Xiao 2021; Liu et al. 2021; physics.md §6.4, V8.
    """
    return _intrinsic(geom, dim, 0.5)


@register("orbital_magnetization", tau_power=0, unit=lambda d: _magnetization_si(d),
          needs=("curvature", "orbital_moment"), min_dim=2)
def orbital_magnetization(geom, dim):
    """Orbital magnetization M_c = g_s Σ_n ∫[dk] [m_c f0 + Ω_c k_BT ln(1 + e^{−(ε−μ)/k_BT})].

    Charge −e (physics.md §2.2 moment). Satisfies Středa: ∂M/∂μ = ∂n/∂B (V6). 2D: component
    'z', unit A. Reference: Xiao, Shi & Niu 2005; Xiao et al. 2006.
    """
    O, m = _curv(geom), geom.orbital_moment
    out = {}
    for c in range(3):
        ab = pseudovector_index(c, dim)
        if ab is None:
            continue
        out[AXES[c] + "#m"] = ("f", m[:, :, c])
        out[AXES[c] + "#o"] = ("lnf", O[:, :, ab[0], ab[1]])
    return out


def _magnetization_si(dim):
    # internal M (2D): e·eV/ħ = (e²/ħ)·1 V  -> A; per Å^(2-d) in other dimensions
    factor = units.E2_HBAR * units.ANGSTROM ** (2 - dim)
    return factor, {2: "A", 3: "A/m"}[dim]


# --------------------------------------------------------------------------------------------
def occupation_kernels(energy: np.ndarray, mu: np.ndarray, kT: float, kinds) -> dict:
    """F(ε; μ, T) for each kernel kind: arrays (len(mu), energy.size)."""
    x = (energy.reshape(1, -1) - mu.reshape(-1, 1)) / kT
    out = {}
    if "f" in kinds:
        out["f"] = 0.5 * (1.0 - np.tanh(0.5 * x))
    if "df" in kinds:
        e = np.exp(-np.abs(x))  # f0' = −e^{−|x|}/(kT (1 + e^{−|x|})²), no overflow
        out["df"] = -e / (kT * (1.0 + e) ** 2)
    if "lnf" in kinds:
        out["lnf"] = kT * np.logaddexp(0.0, -x)
    return out


def integrate(geom, dim: int, quantities, mu, kT, measure: float, spin: int = 1,
              chunk: int = 8) -> dict:
    """Integrate registered quantities over a k-mesh for all μ at one temperature.

    geom: BandGeometry on P mesh points (flattened: energy (P, nb)); mu: (Nμ,) eV; kT: eV.
    Returns {(quantity, component): array (Nμ,)} in internal units *without* the τ^p factor.
    """
    mu = np.atleast_1d(np.asarray(mu, float))
    blocks = {}
    for q in quantities:
        for comp, (kind, w) in CALCULATORS[q].weights(geom, dim).items():
            blocks.setdefault(kind, []).append(((q, comp), np.broadcast_to(w, geom.energy.shape)))
    rows = {kind: np.stack([w.ravel() for _, w in items]) for kind, items in blocks.items()}
    out = {}
    scale = spin * measure / geom.energy.shape[0]
    for kind, items in blocks.items():
        acc = np.empty((len(items), len(mu)))
        for s in range(0, len(mu), chunk):
            F = occupation_kernels(geom.energy, mu[s:s + chunk], kT, (kind,))[kind]
            acc[:, s:s + chunk] = rows[kind] @ F.T
        for (key, _), vals in zip(items, acc * scale):
            out[key] = vals
    # orbital magnetization: sum its two parts
    for key in [k for k in out if "#" in k[1]]:
        q, comp = key
        base = (q, comp.split("#")[0])
        out[base] = out.get(base, 0.0) + out.pop(key)
    return out


#: quantities computed outside the geometry-integral registry, by their own module
SPECIAL = {"texture_hall": "kinetic.texture_hall"}


def check_quantities(names, dim: int) -> None:
    """ConfigError for unknown names or quantities undefined in this dimension."""
    import difflib

    for q in names:
        if q in SPECIAL:
            continue
        if q not in CALCULATORS:
            allowed = sorted(set(CALCULATORS) | set(SPECIAL))
            near = difflib.get_close_matches(q, allowed, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(f"response.quantities: unknown quantity {q!r}{hint}; allowed: "
                              + ", ".join(allowed))
        if dim < CALCULATORS[q].min_dim:
            raise ConfigError(f"response.quantities: {q!r} needs a k-space dimension ≥ "
                              f"{CALCULATORS[q].min_dim}; this model has dim = {dim}")
