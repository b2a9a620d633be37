"""Adiabatic pumps: homogeneous 1D models whose parameters vary periodically in time.

physics.md §3.4 and V9b: for H(k, t) the anomalous velocity is −Ω_kt, so the number current
of band n is j_N = ∫dk/2π f (∂_kε − Ω_kt) (D = 1: nothing depends on x), and a filled band
pumps −∮dt ∫dk/2π Ω_kt = −C_kt electrons per cycle (Thouless 1983).

Time plays the role of the texture coordinate: ``PumpModel`` wraps a ``ParamTexture`` whose
"x" is t (internal units, ħ/eV), so ``band_geometry(..., n_x=1)`` returns Ω_kt in the mixed
curvature block exactly as it returns Ω_kx for a static texture.

Parameter schedules over one period T (run file ``[pump.params]``):

* a number: constant;
* ``{ mean = a, amplitude = b, phase = φ }``: a + b sin(2π t/T + φ);
* ``{ winding = w, offset = θ0 }``: θ0 + 2π w t/T (an angle wound w times per cycle).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from kinetic.errors import ConfigError
from kinetic.geometry import band_geometry
from kinetic.models.texture import Constant, Linear, Sine, texture

TWO_PI = 2 * np.pi


def schedule(name: str, spec, period: float):
    """A Profile of t (internal units) for parameter ``name`` from a run-file spec."""
    where = f"pump.params.{name}"
    if isinstance(spec, bool) or not isinstance(spec, (int, float, Mapping)):
        raise ConfigError(f"{where} = {spec!r}: expected a number, {{ mean, amplitude, phase }} "
                          "or { winding, offset }")
    if not isinstance(spec, Mapping):
        return Constant(float(spec))
    keys = set(spec)
    for key, val in spec.items():
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not np.isfinite(val):
            raise ConfigError(f"{where}.{key} = {val!r}: expected a finite number")
    if keys <= {"winding", "offset"} and "winding" in keys:
        return Linear(value=float(spec.get("offset", 0.0)),
                      slope=TWO_PI * float(spec["winding"]) / period)
    if keys <= {"mean", "amplitude", "phase"} and keys:
        return Sine(mean=float(spec.get("mean", 0.0)), amplitude=float(spec.get("amplitude", 0.0)),
                    period=period, phase=float(spec.get("phase", 0.0)))
    raise ConfigError(f"{where}: keys {sorted(keys)} not allowed; use {{ mean, amplitude, phase }} "
                      "(a + b sin(2π t/T + φ)) or { winding, offset } (θ0 + 2π w t/T)")


class PumpModel:
    """H(k, t) of a 1D model with parameters scheduled in time; ``period`` in ħ/eV."""

    def __init__(self, model, params: Mapping, period: float):
        if model.dim != 1:
            raise ConfigError(f"[pump]: pumps are implemented for 1D models; model {model.name!r} "
                              f"has dim = {model.dim}")
        unknown = sorted(set(params) - set(model.params))
        if unknown:
            raise ConfigError(f"pump.params.{unknown[0]}: model {model.name!r} has no parameter "
                              f"{unknown[0]!r}; allowed: {', '.join(sorted(model.params))}")
        if not params:
            raise ConfigError("[pump]: pump.params is empty; schedule at least one parameter")
        self.model, self.period = model, float(period)
        self.texture = texture(model, {n: schedule(n, s, period) for n, s in params.items()})
        self.nb, self.dim, self.name = model.nb, 1, model.name

    def at(self, t: float) -> "Snapshot":
        return Snapshot(self, t)

    def geometry(self, t: float, k: np.ndarray):
        """(ε, ∂_kε, Ω_kt) of every band at time t (ħ/eV) and wave vectors k (n,) 1/Å;
        each (n, nb) in eV, eV·Å, Å (Ω_kt per unit time: Å·eV/ħ … internal units)."""
        kk = np.asarray(k, float)[:, None]
        H, dH = self.texture.evaluate(np.full(kk.shape, float(t)), kk)
        g = band_geometry(H, dH, n_x=1)  # coordinates (t, k)
        return g.energy, g.velocity[..., 1, :], g.curvature[..., :, 1, 0]


class Snapshot:
    """The pumped model frozen at time t, with the ``Model`` interface a Problem needs."""

    def __init__(self, pump: PumpModel, t: float):
        self.pump, self.t = pump, float(t)
        m = pump.model
        self.model, self.nb, self.dim, self.name = m, m.nb, m.dim, m.name
        self.reciprocal, self.lattice, self.params = m.reciprocal, m.lattice, m.params

    def _t(self, k):
        k = np.asarray(k, float)
        return np.full(k.shape[:-1] + (1,), self.t), k

    def hamiltonian(self, k):
        return self.pump.texture.hamiltonian(*self._t(k))

    def dh_dk(self, k):
        return self.pump.texture.evaluate(*self._t(k))[1][..., 1:, :, :]


class PumpFields:
    """Time-dependent band fields of a 0x1k Problem built from ``pump.at(0)``: local
    equilibrium and the moments with the anomalous velocity −Ω_kt (owned cells)."""

    def __init__(self, problem, pump: PumpModel):
        if problem.layout != "0x1k":
            raise ConfigError("[pump]: a pump is a homogeneous 1D run (no mesh.x)")
        if problem.phys.number_conserving:
            raise ConfigError("physics.number_conserving = true: not implemented with [pump]; "
                              "a homogeneous pump relaxes to f_FD(ε(k, t) − μ)")
        self.p, self.pump = problem, pump
        self.k = problem.mesh.axes[0].centres(problem.mesh.s1, problem.mesh.e1)
        self.bands = list(problem.bands)
        self._t, self._fields = None, None

    def fields(self, t):
        """(ε, v, Ω_kt), each (1, n1l, nbands), cached for the last t."""
        if self._t != t:
            e, v, om = self.pump.geometry(t, self.k)
            b = self.bands
            self._t, self._fields = t, (e[None, :, b], v[None, :, b], om[None, :, b])
        return self._fields

    def equilibrium(self, t, f):
        from kinetic.operator import fermi

        eps = self.fields(t)[0]
        return np.broadcast_to(fermi((eps - self.p.phys.mu) / self.p.phys.kT), f.shape)

    def moments(self, t, fvec) -> dict:
        """Totals (internal units): particles per length, band and anomalous number currents
        (per ħ/eV), energy per length (eV/Å)."""
        p = self.p
        f = p.mesh.local_view(fvec)
        eps, v, om = self.fields(t)
        w = f * p.measure()
        return {"n": float(p.mesh.allsum(np.sum(p.D * w))),
                "j_band": float(p.mesh.allsum(np.sum(w * v))),
                "j_anomalous": float(p.mesh.allsum(np.sum(-w * om))),
                "u": float(p.mesh.allsum(np.sum(w * eps)))}
