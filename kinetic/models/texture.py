"""Phase-space models H(x, k): textures built from catalogue models.

Units: x in Å, k in 1/Å, energies eV (ħ = e = 1). Coordinates are ordered ξ = (x_1..x_dx,
k_1..k_dk) (physics.md §1.1, §1.3); x_i is conjugate to k_i, so a texture with dim_x < dim
depends on the first dim_x Cartesian directions (e.g. an x-texture of a 2D model: dim_x = 1).

``PhaseSpaceModel.evaluate(x, k, order=1)`` with x (..., dim_x) and k (..., dim) broadcast
together returns

- ``H``   (..., nb, nb),
- ``dH``  (..., n, nb, nb),      n = dim_x + dim, ∂H/∂ξ_a,
- ``d2H`` (..., n, n, nb, nb)    (``order=2``), ∂²H/∂ξ_a∂ξ_b.

Constructors:

- ``homogeneous(model)``: dim_x = 0.
- ``texture(model, {param: profile}, dim_x=1)``: parameters as analytic profiles of x.
  ∂H/∂x = Σ_p ∂H/∂p ∂p/∂x, ∂²H/∂x∂x = Σ_p ∂H/∂p ∂²p + Σ_pq ∂²H/∂p∂q ∂p ∂q,
  ∂²H/∂x∂k = Σ_p ∂²H/∂k∂p ∂p/∂x. ∂H/∂p is analytic where the model provides it
  (``model.analytic_params`` + ``model.dh_dparam``), otherwise 4th-order central differences in p
  (see ``_fd_param_derivs`` for steps and errors; exact for linear dependence up to rounding).
- ``landau_shift(model, B)``: H0(k_x, k_y + B x) (physics.md §1.2, V13; B in ħ/(e Å²)).
- ``helical(model, q, Sigma)``: U(x) H0(k) U(x)†, U = exp(−iqxΣ/2) (physics.md V12).
- ``rice_mele_ring(L, ...)``: the V10 texture. ``dirac1d_texture(m, theta, v)``: the V9 texture.

``midpoint_lattice`` builds the exact lattice operator of a 1D-textured symbol with the
midpoint (Weyl) rule of physics.md §1.1, for exact-diagonalization references.
"""
from __future__ import annotations

import difflib
import importlib
import inspect
import re
from typing import Callable, Mapping

import numpy as np

from kinetic.errors import ModelError
from kinetic.models.base import Model
from kinetic.models.catalogue import Dirac1D, RiceMele


# ============================================================================ profiles
class Profile:
    """A scalar function of x with analytic gradient and Hessian.

    ``profile(x)`` with x (..., dim_x) returns (value (...), grad (..., dim_x), hess (..., dim_x, dim_x)).
    Profiles support +, −, * with numbers and other profiles (sum and product rules), so
    composite textures stay analytic.
    """

    constant = False

    def __call__(self, x):
        x = np.asarray(x, float)
        v, g, h = self._eval(x)
        s, dx = x.shape[:-1], x.shape[-1]
        return (np.broadcast_to(v, s), np.broadcast_to(g, s + (dx,)), np.broadcast_to(h, s + (dx, dx)))

    def _eval(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def __add__(self, other):
        return _Sum(self, as_profile(other))

    __radd__ = __add__

    def __neg__(self):
        return _Product(Constant(-1.0), self)

    def __sub__(self, other):
        return _Sum(self, -as_profile(other))

    def __rsub__(self, other):
        return _Sum(as_profile(other), -self)

    def __mul__(self, other):
        return _Product(self, as_profile(other))

    __rmul__ = __mul__


class _Sum(Profile):
    def __init__(self, a, b):
        self.a, self.b = a, b
        self.constant = a.constant and b.constant

    def _eval(self, x):
        (va, ga, ha), (vb, gb, hb) = self.a(x), self.b(x)
        return va + vb, ga + gb, ha + hb


class _Product(Profile):
    def __init__(self, a, b):
        self.a, self.b = a, b
        self.constant = a.constant and b.constant

    def _eval(self, x):
        (va, ga, ha), (vb, gb, hb) = self.a(x), self.b(x)
        outer = ga[..., :, None] * gb[..., None, :]
        return (va * vb, ga * vb[..., None] + va[..., None] * gb,
                ha * vb[..., None, None] + va[..., None, None] * hb + outer + np.swapaxes(outer, -1, -2))


class Constant(Profile):
    """p(x) = value."""

    constant = True

    def __init__(self, value):
        self.value = float(value)

    def _eval(self, x):
        return self.value, 0.0, 0.0


class TanhWall(Profile):
    """p = left + (right − left)(1 + tanh((x_axis − center)/width))/2 (center, width in Å)."""

    def __init__(self, center=0.0, width=1.0, left=0.0, right=1.0, axis=0):
        if width == 0:
            raise ModelError("profile 'tanh_wall': width must be nonzero")
        self.center, self.width, self.left, self.right, self.axis = center, width, left, right, axis

    def _eval(self, x):
        u = (x[..., self.axis] - self.center) / self.width
        th = np.tanh(u)
        s2 = 1 - th**2
        A = (self.right - self.left) / 2
        return _axis_derivs(x, self.axis, self.left + A * (1 + th), A * s2 / self.width,
                            -2 * A * th * s2 / self.width**2)


class Sine(Profile):
    """p = mean + amplitude · sin(2π x_axis / period + phase) (period in Å, phase in rad)."""

    def __init__(self, mean=0.0, amplitude=1.0, period=1.0, phase=0.0, axis=0):
        if period == 0:
            raise ModelError("profile 'sine': period must be nonzero")
        self.mean, self.amplitude, self.period, self.phase, self.axis = mean, amplitude, period, phase, axis

    def _eval(self, x):
        w = 2 * np.pi / self.period
        arg = w * x[..., self.axis] + self.phase
        A = self.amplitude
        return _axis_derivs(x, self.axis, self.mean + A * np.sin(arg), A * w * np.cos(arg), -A * w * w * np.sin(arg))


class Linear(Profile):
    """p = value + slope · x (slope: number for dim_x = 1, or a vector of length dim_x)."""

    def __init__(self, value=0.0, slope=0.0):
        self.value, self.slope = float(value), np.atleast_1d(np.asarray(slope, float))

    def _eval(self, x):
        if self.slope.size not in (1, x.shape[-1]):
            raise ModelError(f"profile 'linear': slope has {self.slope.size} components; x has {x.shape[-1]}")
        sl = np.broadcast_to(self.slope, x.shape[-1:])
        return self.value + x @ sl, sl, 0.0


class Function(Profile):
    """Profile from a callable f(x) -> (value, gradient, Hessian), x (..., dim_x).

    For dim_x = 1 the gradient and Hessian may have the shape of the value (first and second
    derivative).
    """

    def __init__(self, func: Callable, kwargs: Mapping | None = None, label: str = "function"):
        self.func, self.kwargs, self.label = func, dict(kwargs or {}), label

    def _eval(self, x):
        try:
            v, g, h = self.func(x, **self.kwargs)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"profile {self.label!r}: must return (value, derivative, second derivative); {exc}") from None
        v, g, h = np.asarray(v, float), np.asarray(g, float), np.asarray(h, float)
        if x.shape[-1] == 1 and g.shape == v.shape:
            g, h = g[..., None], h[..., None, None]
        return v, g, h


def _axes(prof) -> list[int]:
    """x axes a (composite) profile refers to."""
    if isinstance(prof, (_Sum, _Product)):
        return _axes(prof.a) + _axes(prof.b)
    return [prof.axis] if hasattr(prof, "axis") else []


def _axis_derivs(x, axis, v, d1, d2):
    dx = x.shape[-1]
    g = np.zeros(x.shape[:-1] + (dx,))
    h = np.zeros(x.shape[:-1] + (dx, dx))
    g[..., axis] = d1
    h[..., axis, axis] = d2
    return v, g, h


_ENTRY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def custom(entry_point: str, **kwargs) -> Function:
    """Profile from a Python entry point ``"module:function"`` (imported with importlib, no eval).

    The function is called as ``f(x, **kwargs)`` with x (..., dim_x) in Å and must return
    (value, gradient, Hessian) — for dim_x = 1 also (value, first, second derivative).
    """
    if not isinstance(entry_point, str) or not _ENTRY.match(entry_point):
        raise ModelError(f"custom profile: entry point {entry_point!r} must look like 'package.module:function'")
    mod_name, func_name = entry_point.split(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ModelError(f"custom profile {entry_point!r}: cannot import module {mod_name!r} ({exc})") from None
    func = getattr(mod, func_name, None)
    if not callable(func):
        raise ModelError(f"custom profile {entry_point!r}: module {mod_name!r} has no function {func_name!r}")
    return Function(func, kwargs, label=entry_point)


#: named profile kinds for run files: {"kind": name, **arguments}
PROFILES: dict[str, Callable] = {"constant": Constant, "tanh_wall": TanhWall, "sine": Sine, "linear": Linear,
                                 "custom": custom}


def as_profile(spec) -> Profile:
    """A Profile from a Profile, a number (constant), ``"module:function"``, or a dict
    ``{"kind": name, ...arguments}`` with name in ``PROFILES`` (custom: ``{"kind": "custom",
    "entry_point": "mod:func", ...kwargs}``)."""
    if isinstance(spec, Profile):
        return spec
    if isinstance(spec, (int, float, np.floating, np.integer)):
        return Constant(spec)
    if isinstance(spec, str):
        return custom(spec)
    if isinstance(spec, Mapping):
        args = dict(spec)
        kind = args.pop("kind", args.pop("profile", None))
        if kind not in PROFILES:
            raise ModelError(f"profile kind {kind!r} not allowed; allowed: {', '.join(PROFILES)}")
        try:
            return PROFILES[kind](**args)
        except TypeError as exc:
            try:
                names = [p.name for p in inspect.signature(PROFILES[kind]).parameters.values()
                         if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            except (TypeError, ValueError):
                names = []
            allowed = f"; allowed: {', '.join(names)}" if names else ""
            raise ModelError(f"profile {kind!r}: bad arguments {sorted(args)} ({exc}){allowed}") from None
    raise ModelError(f"cannot make a profile from {spec!r}; give a number, a dict with 'kind', or 'module:function'")


# ============================================================================ phase-space models
class PhaseSpaceModel:
    """H(x, k) with analytic derivatives in all phase-space coordinates (see module docstring).

    Attributes: ``nb``, ``dim`` (k), ``dim_x`` (x), ``model`` (the underlying Model),
    ``lattice`` (of k, from the model).
    """

    nb: int
    dim: int
    dim_x: int
    model: Model

    @property
    def lattice(self):
        return self.model.lattice

    def _points(self, x, k):
        k = np.asarray(k, float)
        if k.ndim == 0 or k.shape[-1] != self.dim:
            raise ModelError(f"k must have shape (..., {self.dim}); got {k.shape}")
        if self.dim_x == 0:
            x = np.zeros(k.shape[:-1] + (0,)) if x is None else np.asarray(x, float)
        else:
            x = np.asarray(x, float)
        if x.ndim == 0 or x.shape[-1] != self.dim_x:
            raise ModelError(f"x must have shape (..., {self.dim_x}); got {x.shape}")
        batch = np.broadcast_shapes(x.shape[:-1], k.shape[:-1])
        return np.broadcast_to(x, batch + x.shape[-1:]), np.broadcast_to(k, batch + k.shape[-1:])

    def hamiltonian(self, x, k):
        """H(x, k): (..., nb, nb)."""
        return self.evaluate(x, k, order=0)[0]

    def evaluate(self, x, k, order=1):
        """(H, dH) for order 1, (H, dH, d2H) for order 2; shapes in the module docstring."""
        x, k = self._points(x, k)
        if order not in (0, 1, 2):
            raise ModelError(f"order must be 0, 1 or 2; got {order}")
        return self._evaluate(x, k, order)

    def _evaluate(self, x, k, order):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _assemble(H, Hx, Hk, order, Hxx=None, Hxk=None, Hkk=None):
        """Stack blocks: Hx (..., dx, nb, nb), Hk (..., dk, ...), Hxx, Hxk (..., dx, dk, ...), Hkk."""
        if order == 0:
            return (H,)
        dH = np.concatenate([Hx, Hk], axis=-3)
        if order == 1:
            return H, dH
        top = np.concatenate([Hxx, Hxk], axis=-3)
        bottom = np.concatenate([np.swapaxes(Hxk, -4, -3), Hkk], axis=-3)
        return H, dH, np.concatenate([top, bottom], axis=-4)


def _model_k(model, k, p, order):
    H = model.hamiltonian(k, p)
    Hk = model.dh_dk(k, p) if order >= 1 else None
    Hkk = model.d2h_dk2(k, p) if order >= 2 else None
    return H, Hk, Hkk


class Homogeneous(PhaseSpaceModel):
    """H(x, k) = H(k): dim_x = 0."""

    dim_x = 0

    def __init__(self, model: Model):
        self.model, self.nb, self.dim = model, model.nb, model.dim

    def _evaluate(self, x, k, order):
        H, Hk, Hkk = _model_k(self.model, k, None, order)
        s = H.shape[:-2] + (0,)
        z = np.zeros(s + H.shape[-2:], complex)
        return self._assemble(H, z, Hk, order, np.zeros(s + (0,) + H.shape[-2:], complex),
                              np.zeros(s + (self.dim,) + H.shape[-2:], complex), Hkk)


def homogeneous(model: Model) -> Homogeneous:
    return Homogeneous(model)


# finite-difference coefficients (4th order central)
_C1 = {-2: 1 / 12, -1: -8 / 12, 1: 8 / 12, 2: -1 / 12}
_C2 = {-2: -1 / 12, -1: 16 / 12, 0: -30 / 12, 1: 16 / 12, 2: -1 / 12}
#: relative steps: first derivatives h = FD_STEP1·max(|p|, 1), second derivatives FD_STEP2·max(|p|, 1)
FD_STEP1, FD_STEP2 = 1e-3, 5e-3


def _fd_param_derivs(model, k, p, names, pairs, order):
    """4th-order central differences of H and ∂H/∂k in the parameters ``names`` and of H in the
    parameter ``pairs`` (second derivatives).

    First derivative: [f(−2h) − 8f(−h) + 8f(h) − f(2h)]/(12h), truncation h⁴ f⁽⁵⁾/30, rounding
    ~ ε|f|/h; with h = 1e-3·max(|p|, 1) the error is ~1e-12 relative for smooth O(1) models.
    Second derivative (same p): 5-point stencil, truncation h⁴ f⁽⁶⁾/90, rounding ~5ε|f|/h²;
    mixed (p ≠ q): product of first-derivative stencils (16 evaluations); h = 5e-3·max(|p|, 1),
    error ~1e-10. Linear dependence on p is reproduced exactly up to rounding.
    """
    def hp(n, c):
        return c * np.maximum(np.abs(np.asarray(p[n], float)), 1.0)

    def h_of(shifts, with_k):
        q = dict(p)
        for n, s in shifts.items():
            q[n] = np.asarray(p[n], float) + s
        return model.hamiltonian(k, q), (model.dh_dk(k, q) if with_k else None)

    def expand(h, nd):
        return np.asarray(h)[(...,) + (None,) * nd]

    dH, dHk, d2H = {}, {}, {}
    for n in names:
        h = hp(n, FD_STEP1)
        acc, acck = 0, 0
        for j, c in _C1.items():
            Hj, Hkj = h_of({n: j * h}, order >= 2)
            acc = acc + c * Hj
            if order >= 2:
                acck = acck + c * Hkj
        dH[n] = acc / expand(h, 2)
        if order >= 2:
            dHk[n] = acck / expand(h, 3)
    for a, b in pairs:
        ha, hb = hp(a, FD_STEP2), hp(b, FD_STEP2)
        acc = 0
        if a == b:
            for j, c in _C2.items():
                acc = acc + c * h_of({a: j * ha}, False)[0]
            d2H[(a, a)] = acc / expand(ha * ha, 2)
        else:
            for j, cj in _C1.items():
                for l, cl in _C1.items():
                    acc = acc + cj * cl * h_of({a: j * ha, b: l * hb}, False)[0]
            d2H[tuple(sorted((a, b)))] = acc / expand(ha * hb, 2)
    return dH, dHk, d2H


def param_derivatives(model, k, p, names, order=2):
    """∂H/∂p, ∂²H/∂k∂p and ∂²H/∂p∂q for parameters ``names``: analytic where the model
    provides them (``analytic_params``, ``dh_dparam``), finite differences otherwise.

    Returns dicts as ``AnalyticParamsMixin.dh_dparam`` (pair keys sorted; absent = zero).
    """
    names = list(names)
    analytic = [n for n in names if n in getattr(model, "analytic_params", ())]
    numeric = [n for n in names if n not in analytic]
    dH, dHk, d2H = {}, {}, {}
    if analytic:
        a1, a2, a3 = model.dh_dparam(k, p)
        dH.update({n: a1[n] for n in analytic})
        dHk.update({n: a2[n] for n in analytic})
        d2H.update({key: v for key, v in a3.items() if key[0] in analytic and key[1] in analytic})
    if numeric:
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i:] if a in numeric or b in numeric]
        f1, f2, f3 = _fd_param_derivs(model, k, p, numeric, pairs if order >= 2 else [], order)
        dH.update(f1)
        dHk.update(f2)
        d2H.update(f3)
    return dH, dHk, d2H


class ParamTexture(PhaseSpaceModel):
    """H(x, k) = H_model(k; p(x)) with parameters given as profiles of x (see module docstring).

    Parameters
    ----------
    model : Model
    profiles : dict parameter name -> Profile or spec accepted by ``as_profile``
    dim_x : number of x coordinates (Å)
    """

    def __init__(self, model: Model, profiles: Mapping, dim_x: int = 1):
        unknown = sorted(set(profiles) - set(model.params))
        if unknown:
            near = difflib.get_close_matches(unknown[0], list(model.params), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ModelError(f"texture.{unknown[0]}: texture of model {model.name!r}: unknown "
                             f"parameter {unknown[0]!r}{hint}; "
                             f"allowed: {', '.join(sorted(model.params)) or '(none)'}")
        if dim_x < 1:
            raise ModelError(f"texture: dim_x must be >= 1; got {dim_x}")
        self.model, self.nb, self.dim, self.dim_x = model, model.nb, model.dim, int(dim_x)
        self.profiles = {}
        for n, s in profiles.items():  # errors name the run-file key texture.<parameter>
            try:
                self.profiles[n] = as_profile(s)
            except ModelError as exc:
                shown = f" = {s!r}" if isinstance(s, (Mapping, str, int, float)) else ""
                raise ModelError(f"texture.{n}{shown}: {exc}") from None
        for n, prof in self.profiles.items():
            axes = _axes(prof)
            if axes and max(axes) >= self.dim_x:
                raise ModelError(f"texture: profile of {n!r} uses x axis {max(axes)}; dim_x = {self.dim_x}")

    def _evaluate(self, x, k, order):
        vals = {n: prof(x) for n, prof in self.profiles.items()}
        p = self.model.p({n: v[0] for n, v in vals.items()})
        H, Hk, Hkk = _model_k(self.model, k, p, order)
        if order == 0:
            return (H,)
        varying = [n for n, prof in self.profiles.items() if not prof.constant]
        s, nb, dx = H.shape[:-2], self.nb, self.dim_x
        Hx = np.zeros(s + (dx, nb, nb), complex)
        Hxk = np.zeros(s + (dx, self.dim, nb, nb), complex)
        Hxx = np.zeros(s + (dx, dx, nb, nb), complex)
        if varying:
            dH, dHk, d2H = param_derivatives(self.model, k, p, varying, order)
            for n in varying:
                g = vals[n][1]
                Hx += g[..., :, None, None] * dH[n][..., None, :, :]
                if order >= 2:
                    Hxk += g[..., :, None, None, None] * dHk[n][..., None, :, :, :]
                    Hxx += vals[n][2][..., :, :, None, None] * dH[n][..., None, None, :, :]
            if order >= 2:
                for (a, b), M in d2H.items():
                    ga, gb = vals[a][1], vals[b][1]
                    gg = ga[..., :, None] * gb[..., None, :]
                    if a != b:
                        gg = gg + np.swapaxes(gg, -1, -2)
                    Hxx += gg[..., None, None] * M[..., None, None, :, :]
        return self._assemble(H, Hx, Hk, order, Hxx, Hxk, Hkk)


def texture(model: Model, profiles: Mapping, dim_x: int = 1) -> ParamTexture:
    return ParamTexture(model, profiles, dim_x)


class LandauShift(PhaseSpaceModel):
    """H(x, k) = H0(k_x, k_y + B x): uniform B ẑ in the Landau gauge A = (0, Bx, 0)
    (physics.md §1.2, V13). B in internal units ħ/(e Å²) (``kinetic.units.tesla_to_internal``);
    dim_x = 1. Exact derivatives: ∂_x H = B ∂_{k_y} H0, ∂_x² H = B² ∂²_{k_y} H0,
    ∂_x∂_{k_j} H = B ∂_{k_y}∂_{k_j} H0.
    """

    dim_x = 1

    def __init__(self, model: Model, B: float):
        if model.dim < 2:
            raise ModelError(f"landau_shift needs a model with dim >= 2; {model.name!r} has dim {model.dim}")
        self.model, self.nb, self.dim, self.B = model, model.nb, model.dim, float(B)

    def _evaluate(self, x, k, order):
        ks = np.array(k)
        ks[..., 1] += self.B * x[..., 0]
        H, Hk, Hkk = _model_k(self.model, ks, None, max(order, 1))
        B = self.B
        return self._assemble(H, B * Hk[..., 1:2, :, :], Hk, order,
                              None if Hkk is None else B * B * Hkk[..., 1:2, 1:2, :, :],
                              None if Hkk is None else B * Hkk[..., 1:2, :, :, :], Hkk)


def landau_shift(model: Model, B: float) -> LandauShift:
    return LandauShift(model, B)


class Helical(PhaseSpaceModel):
    """Helical texture H(x, k) = U(x) H0(k) U(x)†, U(x) = exp(−i q x Σ/2) (physics.md V12); dim_x = 1.

    Derivatives with A = −iqΣ/2: ∂_x H = [A, H], ∂_x² H = [A, [A, H]], ∂_x∂_k H = [A, ∂_k H].
    Built into a lattice with the midpoint rule (``midpoint_lattice``), this symbol is exactly
    unitarily equivalent to the homogeneous H'(k) with hoppings T_δ → E^{δ_x} T_δ E^{δ_x},
    E = exp(+iqΣ/4) (on-site terms unchanged): with d_R = U(R)† c_R the bond R → R+δ carries
    U(R+δ)† U(R+δ/2) T U(R+δ/2)† U(R) = U(−δ/2) T U(−δ/2). Note this symbol is *not* the
    Weyl symbol of U(x̂) Ĥ0 U(x̂)† (that operator is equivalent to H0 itself).
    Units: q in 1/Å; Σ a Hermitian (nb, nb) matrix (V12: (σx + 2σz)/√5).
    """

    dim_x = 1

    def __init__(self, model: Model, q: float, Sigma):
        S = np.asarray(Sigma, complex)
        if S.shape != (model.nb, model.nb) or not np.allclose(S, S.conj().T):
            raise ModelError(f"helical: Sigma must be a Hermitian ({model.nb}, {model.nb}) matrix; got shape {S.shape}")
        self.model, self.nb, self.dim, self.q, self.Sigma = model, model.nb, model.dim, float(q), S
        self._w, self._V = np.linalg.eigh(S)

    def U(self, x):
        """U(x) = exp(−i q x Σ/2): (..., nb, nb) for x (...)."""
        ph = np.exp(-0.5j * self.q * np.asarray(x, float)[..., None] * self._w)
        return np.einsum("ia,...a,ja->...ij", self._V, ph, self._V.conj())

    def _evaluate(self, x, k, order):
        H0, Hk0, Hkk0 = _model_k(self.model, k, None, order)
        U = self.U(x[..., 0])
        Ud = np.swapaxes(U, -1, -2).conj()
        H = U @ H0 @ Ud
        if order == 0:
            return (H,)
        A = -0.5j * self.q * self.Sigma

        def comm(M):
            return A @ M - M @ A

        Hk = U[..., None, :, :] @ Hk0 @ Ud[..., None, :, :]
        Hx = comm(H)[..., None, :, :]
        if order == 1:
            return self._assemble(H, Hx, Hk, 1)
        Hkk = U[..., None, None, :, :] @ Hkk0 @ Ud[..., None, None, :, :]
        return self._assemble(H, Hx, Hk, 2, comm(comm(H))[..., None, None, :, :], comm(Hk)[..., None, :, :, :], Hkk)


def helical(model: Model, q: float, Sigma) -> Helical:
    return Helical(model, q, Sigma)


# ============================================================================ ready-made textures
def rice_mele_ring(L: float, delta: float = 0.5, Delta0: float = 0.6, phi3: float = 0.7) -> ParamTexture:
    """The V10 Rice–Mele ring texture (physics.md V10), x in Å (lattice constant 1 Å):

    t_{1,2} = 1 ± a(x) δ cos θ, Δ = a(x) Δ0 sin θ, θ = 2πx/L, a = 1 + 0.4 sin(2πx/L),
    V = 0.4 cos(2πx/L + 0.3), t3 = 0.3 [1 + 0.5 sin(2πx/L)], φ3 constant.
    """
    s = Sine(0.0, 1.0, L, 0.0)
    c = Sine(0.0, 1.0, L, np.pi / 2)
    a = 1.0 + 0.4 * s
    return ParamTexture(RiceMele(phi3=phi3), {
        "t1": 1.0 + delta * a * c,
        "t2": 1.0 - delta * a * c,
        "Delta": Delta0 * a * s,
        "V": Sine(0.0, 0.4, L, 0.3 + np.pi / 2),
        "t3": 0.3 + 0.15 * s,
    })


def dirac1d_texture(m_profile, theta_profile, v: float = 1.0, V=0.0) -> ParamTexture:
    """The V9 texture H = v k σz + m(x)[cos θ(x) σx + sin θ(x) σy] + V(x) (profiles or numbers)."""
    return ParamTexture(Dirac1D(v=v), {"m": m_profile, "theta": theta_profile, "V": V})


# ============================================================================ exact lattice
def midpoint_lattice(model: PhaseSpaceModel, L: int, a: float = 1.0, k_perp=(), periodic: bool = True,
                     max_range: int = 3, nk: int = 16, tol: float = 1e-10) -> np.ndarray:
    """Dense lattice Hamiltonian (L·nb, L·nb) of a symbol H(x, k) textured along x_1 (physics.md §1.1).

    Writing H(x, k) = Σ_δ h_δ(x) e^{−ikδa} (Fourier coefficients in k_1 by an nk-point FFT),
    the operator has on-site blocks h_0(Ra) and, for δ ≥ 1, blocks c†_{R+δ} h_δ((R + δ/2)a) c_R
    plus their Hermitian conjugates (midpoint/Weyl rule). Site R = 0..L−1 at x = Ra (Å); block
    index R·nb + orbital. ``k_perp`` fixes the transverse momenta (k_2, ...). Raises ModelError if
    the symbol has harmonics beyond ``max_range`` larger than ``tol`` (not a finite-range lattice).
    """
    if model.dim_x != 1:
        raise ModelError(f"midpoint_lattice needs dim_x = 1; got {model.dim_x}")
    k_perp = np.atleast_1d(np.asarray(k_perp, float))
    if k_perp.size != model.dim - 1:
        raise ModelError(f"midpoint_lattice: k_perp needs {model.dim - 1} components; got {k_perp.size}")
    if periodic and L <= 2 * max_range:
        raise ModelError(f"midpoint_lattice: ring of L = {L} sites too short for hopping range {max_range}")
    nb = model.nb
    kj = 2 * np.pi * np.arange(nk) / (nk * a)
    kk = np.concatenate([np.broadcast_to(kj[:, None], (nk, 1)), np.broadcast_to(k_perp, (nk, k_perp.size))], axis=1)
    # positions: on-site at Ra, bond midpoints (R + δ/2)a
    deltas = np.arange(0, max_range + 1)
    X = (np.arange(L)[None, :] + deltas[:, None] / 2) * a  # (nδ, L)
    Hs = model.hamiltonian(X[:, :, None, None], kk[None, None, :, :])  # (nδ, L, nk, nb, nb)
    # h_δ(x) = (1/nk) Σ_j H(x, k_j) e^{+i k_j δ a}
    fourier = np.exp(1j * np.outer(np.arange(nk), kj) * a)  # (m, j): e^{i k_j m a}
    coef = np.einsum("mj,dljab->dmlab", fourier, Hs) / nk  # (nδ(x), m(harmonic), L, nb, nb)
    # harmonic m = nk − δ is the e^{+ikδa} component; aliasing check on |m| > max_range
    far = [m for m in range(nk) if max_range < m < nk - max_range]
    if far and np.max(np.abs(coef[:, far])) > tol:
        raise ModelError(f"midpoint_lattice: the symbol has k-harmonics beyond range {max_range} "
                         f"(max {np.max(np.abs(coef[:, far])):.2e}); not a finite-range lattice model")
    M = np.zeros((L, nb, L, nb), complex)
    R = np.arange(L)
    M[R, :, R, :] += coef[0, 0]
    for d in range(1, max_range + 1):
        src = R if periodic else R[: max(L - d, 0)]
        dst = (src + d) % L
        h = coef[d, d, src]  # (n, nb, nb): block (R+δ, R)
        M[dst, :, src, :] += h
        M[src, :, dst, :] += np.swapaxes(h, -1, -2).conj()
    M = M.reshape(L * nb, L * nb)
    return M


class AlongX(PhaseSpaceModel):
    """An x-texture of a 2D band (dim_x = 1) seen in the x-y plane (dim_x = 2): H(x, y, k) =
    H(x, k), ∂_y H = 0 — e.g. the helical V12 texture in the 2x2k layout."""

    dim_x = 2

    def __init__(self, inner: PhaseSpaceModel):
        if inner.dim_x != 1 or inner.dim != 2:
            raise ModelError("along_x needs an x-texture (dim_x = 1) of a 2D model")
        self.inner, self.model, self.nb, self.dim = inner, inner.model, inner.nb, 2

    def _evaluate(self, x, k, order):
        out = self.inner.evaluate(x[..., :1], k, order=order)
        if order == 0:
            return out
        H, dH = out[0], out[1]
        z = np.zeros_like(dH[..., :1, :, :])
        res = (H, np.concatenate([dH[..., :1, :, :], z, dH[..., 1:, :, :]], axis=-3))
        if order == 2:
            d2 = out[2]  # (..., 3, 3, nb, nb) over (x, k_x, k_y) -> (..., 4, 4) with y zero
            full = np.zeros(d2.shape[:-4] + (4, 4) + d2.shape[-2:], complex)
            idx = [0, 2, 3]
            full[..., np.ix_(idx, idx)[0], np.ix_(idx, idx)[1], :, :] = d2
            res = res + (full,)
        return res


def along_x(inner: PhaseSpaceModel) -> AlongX:
    return AlongX(inner)
