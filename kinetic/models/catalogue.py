"""Closed-form Bloch Hamiltonians (the model catalogue) and a general matrix tight-binding model.

Units: energies eV, lengths Å, k in 1/Å (Cartesian), ħ = 1 (``kinetic.units``).
Shapes: ``k`` (..., dim); H (..., nb, nb); ∂H/∂k (..., dim, nb, nb); ∂²H/∂k∂k (..., dim, dim, nb, nb).
Parameters may be floats or arrays broadcastable against ``k.shape[:-1]`` (textures make them
x-dependent; see ``kinetic.models.texture``). Bloch convention II (H(k+G) = H(k), orbitals at
the cell origin) unless a model says otherwise.

Registered names (``CATALOGUE``, ``get_model``):

=================  ====  ===  ============================================================
name               dim   nb   H
=================  ====  ===  ============================================================
parabolic1d/2d/3d  1-3   1    ħ²k²/(2 m_eff m_e) + e0                     (continuum)
cosine1d/2d/3d     1-3   1    e0 − 2t Σ_i cos(k_i a)                      (simple cubic)
dirac2d            2     2    tilt k_x + v(k_x σx + k_y σy) + m σz        (continuum, V2/V7)
qwz                2     2    t[sin k_x a σx + sin k_y a σy + (M + cos k_x a + cos k_y a) σz]
haldane            2     2    physics.md V5 (honeycomb; ``convention`` "II" or "I")
rice_mele          1     2    physics.md V10 symbol with plain parameters
dirac1d            1     2    v k σz + m(cos θ σx + sin θ σy) + V        (continuum, V9)
qwz_helical        2     2    V12 H'(k): T_x → e^{iqΣ/4} T_x e^{iqΣ/4}; q = 0 gives H0
=================  ====  ===  ============================================================

The dimension of ``parabolic`` and ``cosine`` is part of the registered name (a model's ``dim``
is a class attribute, so tests can iterate over the registry).

Parameter derivatives (used by textures): models list in ``analytic_params`` the parameters for
which ``dh_dparam(k, p)`` returns analytic derivatives; ``kinetic.models.texture`` falls back to
finite differences for the others.

Lattice models also provide ``hoppings(p) -> (R, HR)``: integer lattice vectors R (nR, dim) and
matrices HR (nR, nb, nb) with H(k) = Σ_R HR e^{i k·(R·A)} (the Wannier90 sign convention, both R
and −R listed, unit degeneracies), so that they can be written as Wannier90 files.
"""
from __future__ import annotations

import difflib
from typing import Mapping

import numpy as np
from scipy import constants as _C

from kinetic.errors import ModelError
from kinetic.models.base import PAULI, Model, TwoBandModel

#: ħ²/(2 m_e) in eV Å² (3.80998 eV Å²), from scipy.constants.
HBAR2_2ME = _C.hbar**2 / (2 * _C.m_e) / _C.e * 1e20


# ----------------------------------------------------------------------------- helpers
def _k(k, dim: int) -> np.ndarray:
    k = np.asarray(k, dtype=float)
    if k.ndim == 0 or k.shape[-1] != dim:
        raise ModelError(f"k must have shape (..., {dim}); got {k.shape}")
    return k


def _shape(k: np.ndarray, p: Mapping) -> tuple:
    """Batch shape: k.shape[:-1] broadcast with the shapes of all (array) parameters."""
    return np.broadcast_shapes(k.shape[:-1], *(np.shape(v) for v in p.values()))


def _vec(shape, comps) -> np.ndarray:
    """Stack components (scalars or arrays broadcastable to ``shape``) into (*shape, len(comps))."""
    out = np.zeros(tuple(shape) + (len(comps),))
    for a, c in enumerate(comps):
        if c is not None:
            out[..., a] = c
    return out


def _scalar(model: Model, name: str) -> float:
    v = model.params[name]
    if np.ndim(v) != 0:
        raise ModelError(f"model {model.name!r}: parameter {name!r} must be a scalar here; got shape {np.shape(v)}")
    return float(v)


class AnalyticParamsMixin:
    """Converts d-vector (or band) parameter derivatives into matrices.

    Subclasses implement ``_dparams(k, p) -> (dd, ddk, d2)`` with dicts
    ``dd[name]`` (..., ncomp), ``ddk[name]`` (..., dim, ncomp), ``d2[(a, b)]`` (..., ncomp)
    (keys sorted; absent = 0) and ``_to_matrix(comp_array) -> (..., nb, nb)``.
    """

    analytic_params: tuple = ()

    def dh_dparam(self, k, p=None):
        """Analytic parameter derivatives for the names in ``analytic_params``.

        Returns
        -------
        dH : dict name -> (..., nb, nb), ∂H/∂p
        dHk : dict name -> (..., dim, nb, nb), ∂²H/∂k_i∂p
        d2H : dict (a, b) -> (..., nb, nb), ∂²H/∂a∂b with (a, b) sorted; absent key means zero
        """
        k = _k(k, self.dim)
        dd, ddk, d2 = self._dparams(k, self.p(p))
        m = self._to_matrix
        return ({n: m(v) for n, v in dd.items()}, {n: m(v) for n, v in ddk.items()},
                {n: m(v) for n, v in d2.items()})


# ----------------------------------------------------------------------------- one band
class OneBandModel(AnalyticParamsMixin, Model):
    """A single band ε(k); subclasses implement ``band(k, p) -> (ε, ∂ε, ∂²ε)``.

    Parameter derivatives (``_dparams``) carry a trailing component axis of length 1.
    """

    nb = 1

    def band(self, k, p):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _to_matrix(c):
        return np.asarray(c, dtype=complex)[..., None]

    def hamiltonian(self, k, p=None):
        return self._to_matrix(self.band(_k(k, self.dim), self.p(p))[0][..., None])

    def dh_dk(self, k, p=None):
        return self._to_matrix(self.band(_k(k, self.dim), self.p(p))[1][..., None])

    def d2h_dk2(self, k, p=None):
        return self._to_matrix(self.band(_k(k, self.dim), self.p(p))[2][..., None])


class _Parabolic(OneBandModel):
    """Free-electron band ε = ħ²k²/(2 m_eff m_e) + e0 (continuum).

    Parameters: ``m_eff`` (mass in units of the electron mass), ``e0`` (eV).
    ħ²/(2m_e) = 3.80998 eV Å² (``HBAR2_2ME``).
    """

    defaults = {"m_eff": 1.0, "e0": 0.0}
    analytic_params = ("m_eff", "e0")

    def band(self, k, p):
        s = _shape(k, p)
        c = HBAR2_2ME / p["m_eff"]
        k2 = np.sum(k * k, axis=-1)
        e = np.broadcast_to(c * k2 + p["e0"], s)
        de = np.broadcast_to(2 * np.asarray(c)[..., None] * k, s + (self.dim,))
        d2e = np.broadcast_to(2 * np.asarray(c)[..., None, None] * np.eye(self.dim), s + (self.dim,) * 2)
        return e, de, d2e

    def _dparams(self, k, p):
        s = _shape(k, p)
        m = np.asarray(p["m_eff"], float)
        k2 = np.sum(k * k, axis=-1)
        one = np.ones(s)
        dd = {"m_eff": (-HBAR2_2ME * k2 / m**2 * one)[..., None], "e0": one[..., None]}
        ddk = {"m_eff": (-2 * HBAR2_2ME * k / m[..., None] ** 2 * one[..., None])[..., None],
               "e0": np.zeros(s + (self.dim, 1))}
        d2 = {("m_eff", "m_eff"): (2 * HBAR2_2ME * k2 / m**3 * one)[..., None]}
        return dd, ddk, d2


class Parabolic1D(_Parabolic):
    name, dim = "parabolic1d", 1


class Parabolic2D(_Parabolic):
    name, dim = "parabolic2d", 2


class Parabolic3D(_Parabolic):
    name, dim = "parabolic3d", 3


class _Cosine(OneBandModel):
    """Nearest-neighbour simple-cubic band ε = e0 − 2t Σ_i cos(k_i a).

    Parameters: ``t`` (eV), ``e0`` (eV), ``a`` (Å). Lattice a·1.
    """

    defaults = {"t": 1.0, "e0": 0.0, "a": 1.0}
    analytic_params = ("t", "e0")

    @property
    def lattice(self):
        return _scalar(self, "a") * np.eye(self.dim)

    def band(self, k, p):
        s = _shape(k, p)
        t, a = np.asarray(p["t"], float)[..., None], np.asarray(p["a"], float)[..., None]
        ka = k * a
        e = np.broadcast_to(p["e0"] - 2 * np.sum(t * np.cos(ka), axis=-1), s)
        de = np.broadcast_to(2 * t * a * np.sin(ka), s + (self.dim,))
        d2e = np.zeros(s + (self.dim, self.dim))
        idx = np.arange(self.dim)
        d2e[..., idx, idx] = 2 * t * a**2 * np.cos(ka)
        return e, de, d2e

    def _dparams(self, k, p):
        s = _shape(k, p)
        a = np.asarray(p["a"], float)[..., None]
        ka = k * a
        one = np.ones(s)
        dd = {"t": (-2 * np.sum(np.cos(ka), axis=-1) * one)[..., None], "e0": one[..., None]}
        ddk = {"t": (2 * a * np.sin(ka) * one[..., None])[..., None], "e0": np.zeros(s + (self.dim, 1))}
        return dd, ddk, {}

    def hoppings(self, p=None):
        p = self.p(p)
        R = [np.zeros(self.dim, int)]
        HR = [np.array([[p["e0"]]], complex)]
        for i in range(self.dim):
            for sgn in (1, -1):
                r = np.zeros(self.dim, int)
                r[i] = sgn
                R.append(r)
                HR.append(np.array([[-p["t"]]], complex))
        return np.array(R), np.array(HR)


class Cosine1D(_Cosine):
    name, dim = "cosine1d", 1


class Cosine2D(_Cosine):
    name, dim = "cosine2d", 2


class Cosine3D(_Cosine):
    name, dim = "cosine3d", 3


# ----------------------------------------------------------------------------- two bands
def _pauli_matrix(d0, dx, dy, dz, shape) -> np.ndarray:
    """d0·1 + dx σx + dy σy + dz σz (..., 2, 2) complex from real components broadcastable to
    ``shape`` (the same numbers as the einsum with PAULI, written without complex arithmetic)."""
    out = np.empty(tuple(shape) + (2, 2), complex)
    f = out.view(float).reshape(tuple(shape) + (8,))  # H00 re, im, H01 re, im, H10 .., H11 ..
    np.add(d0, dz, out=f[..., 0])
    f[..., 1] = 0.0
    f[..., 2] = dx
    np.negative(dy, out=f[..., 3])
    f[..., 4] = dx
    f[..., 5] = dy
    np.subtract(d0, dz, out=f[..., 6])
    f[..., 7] = 0.0
    return out


class _TwoBand(AnalyticParamsMixin, TwoBandModel):
    """TwoBandModel whose ``dvec`` validates k; parameter derivatives as d-vectors."""

    @staticmethod
    def _to_matrix(d):
        d = np.asarray(d)
        if np.iscomplexobj(d):
            return np.einsum("...a,aij->...ij", d, PAULI)
        return _pauli_matrix(d[..., 0], d[..., 1], d[..., 2], d[..., 3], d.shape[:-1])

    def hamiltonian(self, k, p=None):
        return self._to_matrix(self.dvec(_k(k, self.dim), self.p(p))[0])

    def dh_dk(self, k, p=None):
        return self._to_matrix(self.dvec(_k(k, self.dim), self.p(p))[1])

    def d2h_dk2(self, k, p=None):
        return self._to_matrix(self.dvec(_k(k, self.dim), self.p(p))[2])


class Dirac2D(_TwoBand):
    """Tilted massive 2D Dirac model (continuum), physics.md V2, V7, V8.

    H = tilt·k_x·1 + v (k_x σx + k_y σy) + m σz.
    Parameters: ``v`` (eV Å), ``m`` (eV), ``tilt`` (eV Å). Spectrum tilt k_x ± sqrt(v²k² + m²).
    """

    name, dim, nb = "dirac2d", 2, 2
    defaults = {"v": 1.0, "m": 0.5, "tilt": 0.0}
    analytic_params = ("v", "m", "tilt")

    def dvec(self, k, p):
        s = _shape(k, p)
        v, m, t = p["v"], p["m"], p["tilt"]
        kx, ky = k[..., 0], k[..., 1]
        d = _vec(s, [t * kx, v * kx, v * ky, m])
        dd = np.zeros(s + (2, 4))
        dd[..., 0, 0], dd[..., 0, 1], dd[..., 1, 2] = t, v, v
        return d, dd, np.zeros(s + (2, 2, 4))

    def _dparams(self, k, p):
        s = _shape(k, p)
        kx, ky = k[..., 0], k[..., 1]
        dd = {"v": _vec(s, [0, kx, ky, 0]), "m": _vec(s, [0, 0, 0, 1]), "tilt": _vec(s, [kx, 0, 0, 0])}
        ddk = {n: np.zeros(s + (2, 4)) for n in dd}
        ddk["v"][..., 0, 1] = ddk["v"][..., 1, 2] = 1
        ddk["tilt"][..., 0, 0] = 1
        return dd, ddk, {}


class QWZ(_TwoBand):
    """Qi–Wu–Zhang Chern insulator on the square lattice (physics.md V5).

    H = t [sin(k_x a) σx + sin(k_y a) σy + (M + cos k_x a + cos k_y a) σz].
    Parameters: ``M`` (dimensionless), ``t`` (eV), ``a`` (Å). Lower-band Chern number −1 for
    0 < M < 2 (V5). Lattice a·1.
    """

    name, dim, nb = "qwz", 2, 2
    defaults = {"M": 1.0, "t": 1.0, "a": 1.0}
    analytic_params = ("M", "t")

    @property
    def lattice(self):
        return _scalar(self, "a") * np.eye(2)

    def _unit(self, k, p):
        a = np.asarray(p["a"], float)
        s = _shape(k, p)
        sx, sy = np.sin(k[..., 0] * a), np.sin(k[..., 1] * a)
        cx, cy = np.cos(k[..., 0] * a), np.cos(k[..., 1] * a)
        d = _vec(s, [0, sx, sy, p["M"] + cx + cy])
        dd = np.zeros(s + (2, 4))
        dd[..., 0, 1], dd[..., 0, 3] = a * cx, -a * sx
        dd[..., 1, 2], dd[..., 1, 3] = a * cy, -a * sy
        d2 = np.zeros(s + (2, 2, 4))
        d2[..., 0, 0, 1], d2[..., 0, 0, 3] = -a * a * sx, -a * a * cx
        d2[..., 1, 1, 2], d2[..., 1, 1, 3] = -a * a * sy, -a * a * cy
        return d, dd, d2

    def dvec(self, k, p):
        t = np.asarray(p["t"], float)[..., None]
        d, dd, d2 = self._unit(k, p)
        return t * d, t[..., None] * dd, t[..., None, None] * d2

    def _dparams(self, k, p):
        s = _shape(k, p)
        d, dd, _ = self._unit(k, p)
        t = np.asarray(p["t"], float)
        dd_ = {"M": _vec(s, [0, 0, 0, t]), "t": d}
        ddk = {"M": np.zeros(s + (2, 4)), "t": dd}
        return dd_, ddk, {("M", "t"): _vec(s, [0, 0, 0, 1])}

    def hoppings(self, p=None):
        p = self.p(p)
        t, M = p["t"], p["M"]
        sx, sy, sz = PAULI[1], PAULI[2], PAULI[3]
        R = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]
        HR = [t * M * sz, t * (sz - 1j * sx) / 2, t * (sz + 1j * sx) / 2,
              t * (sz - 1j * sy) / 2, t * (sz + 1j * sy) / 2]
        return np.array(R), np.array(HR)


class Haldane(_TwoBand):
    """Haldane model on the honeycomb lattice, exactly physics.md V5.

    Lattice a1 = a(1, 0), a2 = a(1/2, √3/2); nearest-neighbour vectors δ1 = a(0, 1/√3),
    δ2,3 = a(±1/2, −1/(2√3)); next-nearest b1 = a(1, 0), b2,3 = a(−1/2, ±√3/2).

        d_x + i d_y = t1 Σ_j e^{i k·ρ_j},   d0 = 2 t2 cos φ Σ_j cos(k·b_j),
        d_z = M − 2 t2 sin φ Σ_j sin(k·b_j),

    with ρ_j = δ_j (``convention="I"``: the literal V5 formula; orbitals A at 0, B at −δ1, i.e.
    ``centres`` = [(0,0), −δ1]; H(k+G) = W† H(k) W with W = diag(e^{iG·τ})) or ρ_j = δ_j − δ1
    (``convention="II"``, the project default: both orbitals at the cell origin, H(k+G) = H(k)).
    The two conventions differ by the k-dependent unitary diag(1, e^{−ik·δ1}); Chern numbers agree,
    the quantum metric does not (V5's metric integrals 1.182677 / 0.678504 hold in convention I).
    Parameters: ``t1``, ``t2`` (eV), ``phi`` (rad), ``M`` (eV), ``a`` (Å).
    """

    name, dim, nb = "haldane", 2, 2
    defaults = {"t1": 1.0, "t2": 0.1, "phi": np.pi / 2, "M": 0.0, "a": 1.0}
    analytic_params = ("t1", "t2", "phi", "M")
    _S3 = np.sqrt(3.0)
    _DELTA = np.array([[0.0, 1 / _S3], [0.5, -0.5 / _S3], [-0.5, -0.5 / _S3]])
    _B = np.array([[1.0, 0.0], [-0.5, _S3 / 2], [-0.5, -_S3 / 2]])
    _B_INT = np.array([[1, 0], [-1, 1], [0, -1]])  # b_j in units of (a1, a2)
    _RHO_INT = np.array([[0, 0], [1, -1], [0, -1]])  # δ_j − δ1 in units of (a1, a2)

    def __init__(self, convention: str = "II", **params):
        if convention not in ("I", "II"):
            raise ModelError(f"model 'haldane': convention {convention!r} not allowed; allowed: 'I', 'II'")
        self.convention = convention
        super().__init__(**params)

    @property
    def lattice(self):
        return _scalar(self, "a") * np.array([[1.0, 0.0], [0.5, self._S3 / 2]])

    @property
    def centres(self):
        """(nb, dim) orbital positions in Å used by the Bloch convention."""
        if self.convention == "II":
            return np.zeros((2, 2))
        return np.array([[0.0, 0.0], -_scalar(self, "a") * self._DELTA[0]])

    def _parts(self, k, p):
        a = np.asarray(p["a"], float)[..., None, None]
        rho = a * (self._DELTA - (self._DELTA[0] if self.convention == "II" else 0.0))
        b = a * self._B
        kr = np.einsum("...i,...ji->...j", k, rho)
        kb = np.einsum("...i,...ji->...j", k, b)
        z = np.exp(1j * kr)  # (..., 3)
        return rho, b, z, np.cos(kb), np.sin(kb)

    # b_j = ρ_p − ρ_q in both conventions: b1 = δ2 − δ3, b2 = δ1 − δ2, b3 = δ3 − δ1
    _B_FROM_RHO = ((1, 2), (0, 1), (2, 0))
    _BLOCK = 1 << 13  # points per block of the basis evaluation (keeps the basis in cache)

    def _basis_weights(self, p, order):
        """Fast evaluation for scalar parameters: H (order 0), ∂H (1) or ∂²H (2) is linear in the
        real basis F = (1, cos θ_j, sin θ_j, cos(θ_p − θ_q), sin(θ_p − θ_q)) with θ_j = k·ρ_j over
        the ρ_j ≠ 0 (k·b_j = θ_p − θ_q, ``_B_FROM_RHO``). Returns (ρ, rows, pairs, m, comps):
        for each derivative block the coefficient vectors (m,) of (d0, dx, dy, dz) over F; the
        numbers are those of ``dvec`` (to rounding).
        """
        t1, t2, phi, M, a = (float(p[n]) for n in ("t1", "t2", "phi", "M", "a"))
        A0, Az = 2 * t2 * np.cos(phi), 2 * t2 * np.sin(phi)
        rho = a * (self._DELTA - (self._DELTA[0] if self.convention == "II" else 0.0))
        bvec = a * self._B
        rows = [j for j in range(3) if rho[j].any()]
        pairs = [(i, j) for i, j in self._B_FROM_RHO if i in rows and j in rows]
        m = 1 + 2 * len(rows) + 2 * len(pairs)
        e = np.eye(m)
        col = {j: 1 + 2 * n for n, j in enumerate(rows)}
        cr = [e[col[j]] if j in col else e[0] for j in range(3)]  # cos θ_j (θ_j = 0: 1)
        sr = [e[col[j] + 1] if j in col else 0 * e[0] for j in range(3)]
        cb, sb = [], []
        for i, j in self._B_FROM_RHO:
            if (i, j) in pairs:
                c = 1 + 2 * len(rows) + 2 * pairs.index((i, j))
                cb.append(e[c])
                sb.append(e[c + 1])
            else:  # θ_i or θ_j is 0
                cb.append(cr[i] if j not in col else cr[j])
                sb.append(sr[i] if j not in col else -sr[j])

        comps = []  # per derivative block: coefficient vectors of (d0, dx, dy, dz) over F
        if order == 0:
            comps.append((A0 * sum(cb), t1 * sum(cr), t1 * sum(sr), M * e[0] - Az * sum(sb)))
        elif order == 1:
            for i in range(2):
                comps.append((-A0 * sum(sb[j] * bvec[j, i] for j in range(3)),
                              -t1 * sum(sr[j] * rho[j, i] for j in range(3)),
                              t1 * sum(cr[j] * rho[j, i] for j in range(3)),
                              -Az * sum(cb[j] * bvec[j, i] for j in range(3))))
        else:
            for i in range(2):
                for l in range(2):
                    bb, rr = bvec[:, i] * bvec[:, l], rho[:, i] * rho[:, l]
                    comps.append((-A0 * sum(cb[j] * bb[j] for j in range(3)),
                                  -t1 * sum(cr[j] * rr[j] for j in range(3)),
                                  -t1 * sum(sr[j] * rr[j] for j in range(3)),
                                  Az * sum(sb[j] * bb[j] for j in range(3))))
        return rho, rows, pairs, m, comps

    def _fast(self, k, p, order):
        """H, ∂H or ∂²H (order 0, 1, 2) for scalar parameters; None if a parameter is an array.

        Blocks of points: the basis F (m, block) in cache, each d component a short linear
        combination of its rows, written into the real/imaginary parts of the matrices."""
        k = _k(k, self.dim)
        p = self.p(p)
        if any(np.ndim(v) != 0 for v in p.values()):
            return None
        rho, rows, pairs, m, comps = self._basis_weights(p, order)
        kf = k.reshape(-1, 2)
        P = kf.shape[0]
        nblk = len(comps)
        out = np.empty((P, nblk, 8))
        F = np.empty((m, min(P, self._BLOCK)))
        terms = [[[(r, v[r]) for r in np.flatnonzero(v)] for v in comp] for comp in comps]

        def combine(tr, C, buf):
            """Σ_r v_r F_r over the block (row 0 of F is the constant 1)."""
            const = sum(c for r, c in tr if r == 0)
            rest = [(r, c) for r, c in tr if r != 0]
            if not rest:
                buf.fill(const)
                return buf
            r, c = rest[0]
            np.multiply(F[r, :C], c, out=buf)
            for r, c in rest[1:]:
                buf += c * F[r, :C]
            if const:
                buf += const
            return buf

        bufs = np.empty((4, min(P, self._BLOCK)))
        for s in range(0, P, self._BLOCK):
            kb = kf[s:s + self._BLOCK]
            C = kb.shape[0]
            c = 1
            for j in rows:
                th = kb[:, 0] * rho[j, 0] + kb[:, 1] * rho[j, 1]
                np.cos(th, out=F[c, :C])
                np.sin(th, out=F[c + 1, :C])
                c += 2
            for i, j in pairs:  # cos, sin(θ_i − θ_j)
                ci, si = F[1 + 2 * rows.index(i), :C], F[2 + 2 * rows.index(i), :C]
                cj, sj = F[1 + 2 * rows.index(j), :C], F[2 + 2 * rows.index(j), :C]
                np.multiply(ci, cj, out=F[c, :C])
                F[c, :C] += si * sj
                np.multiply(si, cj, out=F[c + 1, :C])
                F[c + 1, :C] -= ci * sj
                c += 2
            ob = out[s:s + C]
            for b, tr in enumerate(terms):
                d0, dx, dy, dz = (combine(t, C, bufs[n, :C]) for n, t in enumerate(tr))
                o = ob[:, b]
                np.add(d0, dz, out=o[:, 0])
                o[:, 1] = 0.0
                o[:, 2] = dx
                np.negative(dy, out=o[:, 3])
                o[:, 4] = dx
                o[:, 5] = dy
                np.subtract(d0, dz, out=o[:, 6])
                o[:, 7] = 0.0
        return out.view(complex).reshape(k.shape[:-1] + (2,) * order + (2, 2))

    def hamiltonian(self, k, p=None):
        H = self._fast(k, p, 0)
        return super().hamiltonian(k, p) if H is None else H

    def dh_dk(self, k, p=None):
        dH = self._fast(k, p, 1)
        return super().dh_dk(k, p) if dH is None else dH

    def d2h_dk2(self, k, p=None):
        d2H = self._fast(k, p, 2)
        return super().d2h_dk2(k, p) if d2H is None else d2H

    def dvec(self, k, p):
        s = _shape(k, p)
        rho, b, z, c, sn = self._parts(k, p)
        t1, t2, phi, M = (np.asarray(p[n], float) for n in ("t1", "t2", "phi", "M"))
        A0, Az = 2 * t2 * np.cos(phi), 2 * t2 * np.sin(phi)
        zs = t1 * z.sum(-1)
        d = _vec(s, [A0 * c.sum(-1), zs.real, zs.imag, M - Az * sn.sum(-1)])
        dz = t1[..., None] * np.einsum("...j,...ji->...i", 1j * z, rho)
        dd = np.zeros(s + (2, 4))
        dd[..., 0] = -A0[..., None] * np.einsum("...j,...ji->...i", sn, b)
        dd[..., 1], dd[..., 2] = dz.real, dz.imag
        dd[..., 3] = -Az[..., None] * np.einsum("...j,...ji->...i", c, b)
        d2z = -t1[..., None, None] * np.einsum("...j,...ji,...jl->...il", z, rho, rho)
        d2 = np.zeros(s + (2, 2, 4))
        d2[..., 0] = -A0[..., None, None] * np.einsum("...j,...ji,...jl->...il", c, b, b)
        d2[..., 1], d2[..., 2] = d2z.real, d2z.imag
        d2[..., 3] = Az[..., None, None] * np.einsum("...j,...ji,...jl->...il", sn, b, b)
        return d, dd, d2

    def _dparams(self, k, p):
        s = _shape(k, p)
        rho, b, z, c, sn = self._parts(k, p)
        t2, phi = np.asarray(p["t2"], float), np.asarray(p["phi"], float)
        C, S = c.sum(-1), sn.sum(-1)
        Ck = -np.einsum("...j,...ji->...i", sn, b)  # ∂_k Σ cos
        Sk = np.einsum("...j,...ji->...i", c, b)  # ∂_k Σ sin
        zs, zk = z.sum(-1), np.einsum("...j,...ji->...i", 1j * z, rho)
        cp, sp = np.cos(phi), np.sin(phi)
        dd = {"t1": _vec(s, [0, zs.real, zs.imag, 0]), "t2": _vec(s, [2 * cp * C, 0, 0, -2 * sp * S]),
              "phi": _vec(s, [-2 * t2 * sp * C, 0, 0, -2 * t2 * cp * S]), "M": _vec(s, [0, 0, 0, 1])}
        ddk = {n: np.zeros(s + (2, 4)) for n in dd}
        ddk["t1"][..., 1], ddk["t1"][..., 2] = zk.real, zk.imag
        ddk["t2"][..., 0], ddk["t2"][..., 3] = 2 * cp[..., None] * Ck, -2 * sp[..., None] * Sk
        ddk["phi"][..., 0] = -2 * (t2 * sp)[..., None] * Ck
        ddk["phi"][..., 3] = -2 * (t2 * cp)[..., None] * Sk
        d2 = {("phi", "t2"): _vec(s, [-2 * sp * C, 0, 0, -2 * cp * S]),
              ("phi", "phi"): _vec(s, [-2 * t2 * cp * C, 0, 0, 2 * t2 * sp * S])}
        return dd, ddk, d2

    def hoppings(self, p=None):
        """(R, HR) in the Wannier90 convention; with ``convention="I"`` pair them with ``centres``."""
        p = self.p(p)
        t1, t2, phi, M = (p[n] for n in ("t1", "t2", "phi", "M"))
        acc: dict = {}

        def add(R, i, j, v):
            acc.setdefault(tuple(R), np.zeros((2, 2), complex))[i, j] += v

        add((0, 0), 0, 0, M)
        add((0, 0), 1, 1, -M)
        for r in self._RHO_INT:
            add(r, 1, 0, t1)
            add(-r, 0, 1, t1)
        for bj in self._B_INT:
            add(bj, 0, 0, t2 * np.exp(1j * phi))
            add(-bj, 0, 0, t2 * np.exp(-1j * phi))
            add(bj, 1, 1, t2 * np.exp(-1j * phi))
            add(-bj, 1, 1, t2 * np.exp(1j * phi))
        R = sorted(acc)
        return np.array(R), np.array([acc[r] for r in R])


class RiceMele(_TwoBand):
    """Rice–Mele chain, the physics.md V10 symbol with plain parameters (convention II).

    H = [[Δ + V, t1 + t2 e^{−ika}], [t1 + t2 e^{ika}, −Δ + V]] + t3 sin(ka + φ3)·1,
    i.e. d = (V + t3 sin(ka+φ3), t1 + t2 cos ka, t2 sin ka, Δ).
    Parameters: ``t1``, ``t2``, ``Delta``, ``V``, ``t3`` (eV), ``phi3`` (rad), ``a`` (Å).
    """

    name, dim, nb = "rice_mele", 1, 2
    defaults = {"t1": 1.0, "t2": 0.6, "Delta": 0.3, "V": 0.0, "t3": 0.0, "phi3": 0.0, "a": 1.0}
    analytic_params = ("t1", "t2", "Delta", "V", "t3", "phi3")

    @property
    def lattice(self):
        return np.array([[_scalar(self, "a")]])

    def dvec(self, k, p):
        s = _shape(k, p)
        a = np.asarray(p["a"], float)
        ka = k[..., 0] * a
        t2, t3 = np.asarray(p["t2"], float), np.asarray(p["t3"], float)
        c, sn = np.cos(ka), np.sin(ka)
        c3, s3 = np.cos(ka + p["phi3"]), np.sin(ka + p["phi3"])
        d = _vec(s, [p["V"] + t3 * s3, p["t1"] + t2 * c, t2 * sn, p["Delta"]])
        dd = _vec(s, [t3 * a * c3, -t2 * a * sn, t2 * a * c, 0])[..., None, :]
        d2 = _vec(s, [-t3 * a * a * s3, -t2 * a * a * c, -t2 * a * a * sn, 0])[..., None, None, :]
        return d, dd, d2

    def _dparams(self, k, p):
        s = _shape(k, p)
        a = np.asarray(p["a"], float)
        ka = k[..., 0] * a
        t3 = np.asarray(p["t3"], float)
        c, sn = np.cos(ka), np.sin(ka)
        c3, s3 = np.cos(ka + p["phi3"]), np.sin(ka + p["phi3"])
        dd = {"t1": _vec(s, [0, 1, 0, 0]), "t2": _vec(s, [0, c, sn, 0]), "Delta": _vec(s, [0, 0, 0, 1]),
              "V": _vec(s, [1, 0, 0, 0]), "t3": _vec(s, [s3, 0, 0, 0]), "phi3": _vec(s, [t3 * c3, 0, 0, 0])}
        ddk = {n: np.zeros(s + (1, 4)) for n in dd}
        ddk["t2"][..., 0, :] = _vec(s, [0, -a * sn, a * c, 0])
        ddk["t3"][..., 0, 0] = a * c3
        ddk["phi3"][..., 0, 0] = -t3 * a * s3
        d2 = {("phi3", "t3"): _vec(s, [c3, 0, 0, 0]), ("phi3", "phi3"): _vec(s, [-t3 * s3, 0, 0, 0])}
        return dd, ddk, d2

    def hoppings(self, p=None):
        p = self.p(p)
        sx, sy, sz, s0 = PAULI[1], PAULI[2], PAULI[3], PAULI[0]
        e3 = p["t3"] * np.exp(1j * p["phi3"]) / 2j
        HR = [p["V"] * s0 + p["Delta"] * sz + p["t1"] * sx,
              p["t2"] * (sx - 1j * sy) / 2 + e3 * s0,
              p["t2"] * (sx + 1j * sy) / 2 + np.conj(e3) * s0]
        return np.array([[0], [1], [-1]]), np.array(HR)


class Dirac1D(_TwoBand):
    """1D continuum Dirac model of physics.md V9.

    H = v k σz + m (cos θ σx + sin θ σy) + V·1; spectrum V ± sqrt(v²k² + m²).
    Parameters: ``v`` (eV Å), ``m`` (eV), ``theta`` (rad), ``V`` (eV). Textures make m, θ, V
    functions of x (``kinetic.models.texture.dirac1d_texture``).
    """

    name, dim, nb = "dirac1d", 1, 2
    defaults = {"v": 1.0, "m": 0.5, "theta": 0.0, "V": 0.0}
    analytic_params = ("v", "m", "theta", "V")

    def dvec(self, k, p):
        s = _shape(k, p)
        m, th = np.asarray(p["m"], float), np.asarray(p["theta"], float)
        d = _vec(s, [p["V"], m * np.cos(th), m * np.sin(th), p["v"] * k[..., 0]])
        dd = _vec(s, [0, 0, 0, p["v"]])[..., None, :]
        return d, dd, np.zeros(s + (1, 1, 4))

    def _dparams(self, k, p):
        s = _shape(k, p)
        m, th = np.asarray(p["m"], float), np.asarray(p["theta"], float)
        c, sn = np.cos(th), np.sin(th)
        dd = {"v": _vec(s, [0, 0, 0, k[..., 0]]), "m": _vec(s, [0, c, sn, 0]),
              "theta": _vec(s, [0, -m * sn, m * c, 0]), "V": _vec(s, [1, 0, 0, 0])}
        ddk = {n: np.zeros(s + (1, 4)) for n in dd}
        ddk["v"][..., 0, 3] = 1
        d2 = {("m", "theta"): _vec(s, [0, -sn, c, 0]), ("theta", "theta"): _vec(s, [0, -m * c, -m * sn, 0])}
        return dd, ddk, d2


# ----------------------------------------------------------------------------- matrix TB
class MatrixTightBinding(Model):
    """General tight-binding model H(k) = O + Σ_r [T_r e^{−i k·R_r} + h.c.] (convention II).

    ``T_r`` is the coefficient of c†_{R+R_r} c_R (hopping along the bond R → R + R_r;
    physics.md §1.1); ``O`` is the Hermitian on-site (intra-cell) matrix, *not* doubled by the
    h.c. Derivatives are analytic: ∂_i H = Σ_r [−i R_r,i T_r e^{−ik·R_r} + h.c.], etc.

    Parameters
    ----------
    onsite : (nb, nb) Hermitian matrix, eV
    hoppings : dict {R (tuple of dim ints, lattice coordinates): T (nb, nb)} or list of (R, T)
    lattice : (dim, dim) primitive vectors as rows in Å (default: identity, 1 Å)
    name : str

    Subclasses may make O and T_r depend on parameters by overriding ``terms(p)``.
    """

    name = "matrix_tb"
    defaults: dict = {}

    def __init__(self, onsite, hoppings=(), lattice=None, name=None, **params):
        if name is not None:
            self.name = name
        O = np.asarray(onsite, dtype=complex)
        if O.ndim != 2 or O.shape[0] != O.shape[1]:
            raise ModelError(f"model {self.name!r}: onsite must be a square matrix; got shape {O.shape}")
        if not np.allclose(O, O.conj().T, atol=1e-12):
            raise ModelError(f"model {self.name!r}: onsite matrix is not Hermitian")
        items = list(hoppings.items()) if isinstance(hoppings, Mapping) else list(hoppings)
        if lattice is not None:
            lattice = np.atleast_2d(np.asarray(lattice, float))
        dim = len(np.atleast_1d(items[0][0])) if items else (1 if lattice is None else len(lattice))
        R = np.zeros((len(items), dim), int)
        T = np.zeros((len(items),) + O.shape, complex)
        for i, (r, t) in enumerate(items):
            r, t = np.atleast_1d(np.asarray(r)), np.asarray(t, dtype=complex)
            if r.shape != (dim,) or not np.all(r == np.round(r)):
                raise ModelError(f"model {self.name!r}: hopping vector {r.tolist()} must be {dim} integers")
            if t.shape != O.shape:
                raise ModelError(f"model {self.name!r}: hopping {r.tolist()} has shape {t.shape}; expected {O.shape}")
            R[i], T[i] = r, t
        lattice = np.eye(dim) if lattice is None else lattice
        if lattice.shape != (dim, dim):
            raise ModelError(f"model {self.name!r}: lattice must be ({dim}, {dim}); got {lattice.shape}")
        self._O, self._R, self._T, self._lattice = O, R, T, lattice
        self.nb, self.dim = O.shape[0], dim
        super().__init__(**params)

    @property
    def lattice(self):
        return self._lattice

    def terms(self, p):
        """(O, R_int (nR, dim), [T_r]) for parameters p; O and T_r may carry batch dimensions."""
        return self._O, self._R, list(self._T)

    def _phases(self, k, p):
        k = _k(k, self.dim)
        O, R, T = self.terms(p)
        Rc = R @ self.lattice
        ph = np.exp(-1j * (k @ Rc.T))  # (..., nR)
        batch = np.broadcast_shapes(ph.shape[:-1], np.shape(O)[:-2], *(np.shape(t)[:-2] for t in T))
        return O, Rc, T, ph, batch

    @staticmethod
    def _herm(A):
        return A + np.swapaxes(A, -1, -2).conj()

    def hamiltonian(self, k, p=None):
        O, Rc, T, ph, batch = self._phases(k, self.p(p))
        H = np.zeros(batch + (self.nb, self.nb), complex) + O
        for r, Tr in enumerate(T):
            H += self._herm(Tr * ph[..., r, None, None])
        return H

    def dh_dk(self, k, p=None):
        O, Rc, T, ph, batch = self._phases(k, self.p(p))
        out = np.zeros(batch + (self.dim, self.nb, self.nb), complex)
        for r, Tr in enumerate(T):
            out += self._herm((Tr * ph[..., r, None, None])[..., None, :, :] * (-1j * Rc[r])[:, None, None])
        return out

    def d2h_dk2(self, k, p=None):
        O, Rc, T, ph, batch = self._phases(k, self.p(p))
        out = np.zeros(batch + (self.dim, self.dim, self.nb, self.nb), complex)
        for r, Tr in enumerate(T):
            RR = -np.outer(Rc[r], Rc[r])[:, :, None, None]
            out += self._herm((Tr * ph[..., r, None, None])[..., None, None, :, :] * RR)
        return out

    def hoppings(self, p=None):
        """(R (nR, dim) int, HR (nR, nb, nb)) with H(k) = Σ_R HR e^{ik·R} (Wannier90 convention)."""
        O, R, T = self.terms(self.p(p))
        if np.ndim(O) != 2 or any(np.ndim(t) != 2 for t in T):
            raise ModelError(f"model {self.name!r}: hoppings() needs scalar parameters")
        acc = {tuple([0] * self.dim): np.array(O, complex)}
        for r, Tr in zip(R, T):
            for key, M in ((tuple(-r), Tr), (tuple(r), np.conj(Tr).T)):
                acc[key] = acc.get(key, 0) + M
        keys = sorted(acc)
        return np.array(keys, dtype=int).reshape(len(keys), self.dim), np.array([acc[key] for key in keys])


def _expm_herm(S: np.ndarray, theta) -> np.ndarray:
    """exp(i θ S) for Hermitian S (nb, nb) and θ scalar or array: (..., nb, nb)."""
    w, V = np.linalg.eigh(S)
    ph = np.exp(1j * np.asarray(theta, float)[..., None] * w)
    return np.einsum("ia,...a,ja->...ij", V, ph, V.conj())


class QWZHelical(MatrixTightBinding):
    """The homogeneous model H'(k) gauge-equivalent to the V12 helical texture.

    H0 = O0 + T_x e^{−ik_x} + T_y e^{−ik_y} + h.c. with O0 = σz,
    T_x = σz/2 + iσx/2 + (0.175 + 0.125i)·1, T_y = σz/2 + iσy/2 + 0.15·1 (physics.md V12;
    QWZ with M = 1 plus d0 = 0.35 cos k_x + 0.25 sin k_x + 0.3 cos k_y), square lattice 1 Å.
    H'(k): T_x → E T_x E with E = exp(+iqΣ/4), Σ = (σx + 2σz)/√5 by default (O0, T_y unchanged).
    The texture symbol H(x,k) = U(x) H0(k) U(x)†, U = exp(−iqxΣ/2), built into a lattice with the
    midpoint rule, is unitarily equivalent to H' (``kinetic.models.texture.helical``; checked
    by exact diagonalization in the tests). ``q = 0`` gives H0.

    Parameters: ``q`` (1/Å). Constructor option ``Sigma`` ((2, 2) Hermitian, default V12's).
    """

    name = "qwz_helical"
    nb, dim = 2, 2
    defaults = {"q": 0.0}
    analytic_params = ("q",)
    O0 = PAULI[3]
    TX = PAULI[3] / 2 + 0.5j * PAULI[1] + (0.175 + 0.125j) * PAULI[0]
    TY = PAULI[3] / 2 + 0.5j * PAULI[2] + 0.15 * PAULI[0]
    SIGMA = (PAULI[1] + 2 * PAULI[3]) / np.sqrt(5)

    def __init__(self, Sigma=None, **params):
        self.Sigma = self.SIGMA if Sigma is None else np.asarray(Sigma, complex)
        if self.Sigma.shape != (2, 2) or not np.allclose(self.Sigma, self.Sigma.conj().T):
            raise ModelError("model 'qwz_helical': Sigma must be a Hermitian 2x2 matrix")
        super().__init__(self.O0, {(1, 0): self.TX, (0, 1): self.TY}, np.eye(2), **params)

    def terms(self, p):
        E = _expm_herm(self.Sigma, np.asarray(p["q"], float) / 4)
        return self._O, self._R, [E @ self.TX @ E, np.asarray(self.TY)]

    def dh_dparam(self, k, p=None):
        """∂/∂q of H' (analytic): ∂T'_x/∂q = (i/4)(ΣT' + T'Σ); see ``AnalyticParamsMixin``."""
        p = self.p(p)
        O, Rc, T, ph, batch = self._phases(k, p)
        S, Tx = self.Sigma, T[0]
        d1 = 0.25j * (S @ Tx + Tx @ S)
        d2 = -(S @ S @ Tx + 2 * S @ Tx @ S + Tx @ S @ S) / 16
        e = np.broadcast_to(ph[..., 0, None, None], batch + (1, 1))
        dH = {"q": self._herm(d1 * e)}
        dHk = {"q": self._herm((d1 * e)[..., None, :, :] * (-1j * Rc[0])[:, None, None])}
        return dH, dHk, {("q", "q"): self._herm(d2 * e)}


# ----------------------------------------------------------------------------- registry
CATALOGUE: dict[str, type] = {
    cls.name: cls
    for cls in (Parabolic1D, Parabolic2D, Parabolic3D, Cosine1D, Cosine2D, Cosine3D, Dirac2D, QWZ,
                Haldane, RiceMele, Dirac1D, QWZHelical)
}


def get_model(name: str, **params) -> Model:
    """Build a catalogue model by name; unknown names raise ``ModelError`` with a suggestion."""
    cls = CATALOGUE.get(name)
    if cls is None:
        near = difflib.get_close_matches(str(name), CATALOGUE, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ModelError(f"unknown model {name!r}{hint}; allowed: {', '.join(sorted(CATALOGUE))}")
    return cls(**params)
