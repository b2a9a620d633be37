"""``quantity = "texture_hall"``: the O(q) Hall slope dσ_xy/dq of the V12 helical texture.

The helical texture H(x, k) = U(x) H0(k) U(x)†, U = exp(−iqxΣ/2), of the ``qwz_helical`` model
is unitarily equivalent to the homogeneous H′(k; q), so its Hall conductivity is known exactly
for every q (physics.md §6.5, V12). The table rows compare, per (μ, T), the semiclassical slope
term by term — the first-order theory (``first_order``: −∫f′Δε⁽¹⁾Ω_z), the positional shift
(``shift``: B′, mixed Berry-connection polarizability) and the metric-gradient connection
(``metric``: B″, mixed quantum metric), their sum (``semiclassical``) — with the exact slope
(``exact``, from σ_xy(±q) of H′ with Richardson extrapolation). Formulas and tests:
``kinetic.reference.helical_hall_slope`` / ``helical_exact_slope``, tests/test_reference.py.
Units: internal e²/ħ·Å, reported in S·m (σ_xy of the sheet in S per 1/m of q).
"""
from __future__ import annotations

import numpy as np

from kinetic import units
from kinetic.errors import ConfigError

COMPONENTS = ("first_order", "shift", "metric", "semiclassical", "exact")
UNIT = (units.E2_HBAR * units.ANGSTROM, "S*m")


def check_model(model, k) -> int:
    """The square k-mesh size; ConfigError unless the model is the V12 helical texture."""
    if getattr(model, "name", "") != "qwz_helical":
        raise ConfigError(f"response.quantities: 'texture_hall' is the O(q) Hall slope of the "
                          f"V12 helical texture: it needs model.name = \"qwz_helical\", not "
                          f"{getattr(model, 'name', '')!r}")
    if float(model.params.get("q", 0.0)) != 0.0:
        raise ConfigError(f"model.params.q = {model.params['q']}: texture_hall is the slope at "
                          "q = 0; leave q out")
    if len(k) != 2 or k[0] != k[1]:
        raise ConfigError(f"mesh.k = {list(k)}: texture_hall integrates on a square mesh; give "
                          "[n, n]")
    return int(k[0])


def slopes(model, nk: int, mus, kT: float) -> dict:
    """{component: array over μ} of dσ_xy/dq in internal units (e²/ħ·Å)."""
    from kinetic.reference import helical_exact_slope, helical_hall_slope

    if not kT > 0:
        raise ConfigError("physics.temperature: texture_hall needs T > 0")
    sigma = getattr(model, "Sigma", None)
    out = {c: np.empty(len(mus)) for c in COMPONENTS}
    for i, mu in enumerate(mus):
        s = helical_hall_slope(float(mu), kT, nk, Sigma=sigma)
        out["first_order"][i], out["shift"][i], out["metric"][i] = s.A, s.B_shift, s.B_metric
        out["semiclassical"][i] = s.total
        out["exact"][i] = helical_exact_slope(float(mu), kT, nk, Sigma=sigma)
    return out


#: relaxation times of the τ⁰ extrapolation of a texture's Hall conductivity, as fractions of τ
TAU_FRACTIONS = (1.0, 0.5, 0.25)


def tau0_extrapolation(s_tau, s_half, s_quarter):
    """σ(τ → 0) from σ at τ, τ/2, τ/4: the quadratic through the three points (physics.md §6.5:
    the τ⁰ part, free of the τ¹ and τ² parts), (σ(τ) − 6σ(τ/2) + 8σ(τ/4))/3. Two relaxation
    times (linear extrapolation) are not enough: in 2x2k σ_xy (E_y) of the V12 helical texture
    has a τ² part, which a linear extrapolation from (τ/2, τ) leaves in its slope dσ_xy/dq as a
    spurious symmetric part of 6.6e-4 of the exact slope (measured at 32² k-cells; with the
    three points the slopes of σ_xy and −σ_yx agree to 1e-9 of it)."""
    return (s_tau - 6 * s_half + 8 * s_quarter) / 3
