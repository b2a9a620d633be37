"""A kinetic problem on a 2-D phase space: mesh + semiclassical fields + transport operator.

Builds, for the owned block of a ``PhaseMesh``, the corrected energy ε̃ at cell corners and
centres, the phase-space density D at centres, the local equilibrium f_loc, and the
``StreamOperator``. Internal units (eV, Å, ħ = e = k_B = 1; electron charge −e).

Layouts (see ``kinetic.mesh``): ``1x1k`` takes a ``PhaseSpaceModel`` with dim_x = dim = 1
(textures, potentials); ``1x2k`` a 2D model textured along x (k_y folded into the dof);
``0x1k``, ``0x2k`` and ``0x3k`` a homogeneous ``Model`` of dimension 1, 2 or 3 — 0x3k folds k_z
into the dof (k_z conserved: E in the x-y plane, B ∥ z).

Second-order terms (physics.md §4.8): all of them in 1x1k; in the homogeneous layouts the
field-induced ones at B = 0 — ``E2_bcp`` (ε̃ += ½ G^R_ij E_i E_j) and ``A2_shift_field``
(Ω′ = ∇_k × G^GYN E in the 0x2k and 0x3k anomalous velocities, all three components in
0x3k; zero in 0x1k) — with the texture terms
accepted as the exact zeros they are there (V15); in 1x2k the connections A′ (texture and
field parts) and A″ (with the quadrupole density) in every curvature block and the quasi-1D
ε⁽²⁾ and Wigner–Kirkwood terms per k_y. These fields are built for
physics.E: use ``with_field`` for a problem at another field (``field_dependent``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kinetic.derivatives import MIN_OPEN_POINTS, axis_derivatives, spectral_derivative
from kinetic.errors import ConfigError
from kinetic.geometry import band_geometry
from kinetic.mesh import Axis, PhaseMesh, collective, gather_line
from kinetic.operator import StreamOperator, fermi
from kinetic.semiclassics import (DEFAULT_TERMS, TERMS, check_solver_terms, corrected_energy,
                                  curvature_blocks, field_shift, phase_space_density,
                                  positional_shift, second_order_energy, wigner_kirkwood)

TWO_PI = 2 * np.pi
#: second-order energy terms (two bands; in 1x2k the quasi-1D form per k_y, physics.md §4.5)
ENERGY_TERMS = {"E2_quadrupole", "E2_bcp", "E2_curv2", "E2_metric_laplacian"}
#: second-order terms built from x-derivatives of geometric fields on the mesh (resolution check)
TEXTURE_DERIVATIVE_TERMS = {"A2_shift_texture", "A2_shift_field", "A2_metric_gradient",
                            "obs_quadrupole", "E2_metric_laplacian"}
#: cells per texture period 2πℓ: ring (spectral x-derivatives), open x-range (fourth-order)
MIN_CELLS_PER_PERIOD = {True: 8, False: 16}


def check_open_points(axis: Axis) -> None:
    """An open x-range needs MIN_OPEN_POINTS cells for the fourth-order stencils."""
    if not axis.periodic and axis.n < MIN_OPEN_POINTS:
        raise ConfigError(f"mesh.x.n = {axis.n} is too coarse for the second-order texture terms "
                          "on an open x-range: their fourth-order x-differences need "
                          f"mesh.x.n ≥ {MIN_OPEN_POINTS}")


def check_x_resolution(eps, x_index: int, axis: Axis, comm) -> None:
    """Refuse an x-mesh too coarse for the second-order texture terms, which take x-derivatives
    of geometric fields on the mesh (physics.md §2.6, §8): the texture's shortest scale ℓ is
    read from cell energies ``eps`` (the owned block, x along array axis ``x_index``; gathered
    to the whole x-line), r = max|Δ²ε| / max|Δε| ≈ h/ℓ (a sine of period λ gives r = 2πh/λ),
    and MIN_CELLS_PER_PERIOD cells per 2πℓ are required: 8 on a ring (spectral derivatives,
    exact for the resolved harmonics), 16 on an open x-range, where the fourth-order
    differences of a sine then err by ≤ 8e-4 (∂) and 3e-4 (∂²) of the term inside and ≤ 5e-3
    and 1.8e-2 in the one-sided rows at the ends (at 8 cells: 1.2e-2, 4e-3 inside, 6.8e-2,
    0.25 at the ends); plus ``check_open_points``. ConfigError naming the mesh.x.n needed.
    Collective."""
    check_open_points(axis)
    eps = gather_line(comm, eps, x_index)  # differences across the seams: any rank count
    d1 = np.diff(eps, axis=x_index)
    d2 = np.diff(d1, axis=x_index)
    m1 = float(np.abs(d1).max()) if d1.size else 0.0
    m2 = float(np.abs(d2).max()) if d2.size else 0.0
    if m1 <= 1e-12 * max(1.0, float(np.abs(eps).max()) if eps.size else 0.0):
        return  # no x-variation of the energies (e.g. a helical texture)
    r = m2 / m1
    cells = 2 * np.pi / max(r, 1e-300)
    least = MIN_CELLS_PER_PERIOD[axis.periodic]
    if cells < least:
        need = int(np.ceil(axis.n * least / cells))
        where = "a ring" if axis.periodic else "an open x-range"
        raise ConfigError(f"mesh.x.n = {axis.n} is too coarse for the second-order texture terms: "
                          f"the texture varies on ℓ ≈ {axis.h / r:.3g} Å, i.e. "
                          f"{cells:.1f} cells per period 2πℓ; {where} needs at least {least}: "
                          f"use mesh.x.n ≥ {need}")


def cell_relaxation_time(tau, eps, band):
    """τ (ħ/eV): the number itself, or τ(ε, band) evaluated per cell and dof (shape of ``eps``,
    ``band`` the band index of each entry); ConfigError unless positive and finite."""
    if not callable(tau):
        return float(tau)
    out = np.asarray(tau(eps, band), float)
    if out.shape != eps.shape or not np.all(np.isfinite(out)) or np.any(out <= 0):
        raise ConfigError("physics.tau: τ(ε, band) must return positive finite values of the "
                          "shape of its energy argument")
    return out


@dataclass
class Physics:
    """Physical parameters in internal units."""

    mu: float  # eV
    kT: float  # eV
    tau: object  # ħ/eV: a number, or callable(energy eV, band) -> τ (ħ/eV) for τ(n, ε)
    E: tuple = (0.0,)  # uniform transport field, V/Å, one component per k-dimension
    B: float = 0.0  # out-of-plane field (0x2k), ħ/(eÅ²)
    terms: frozenset = field(default_factory=lambda: frozenset(DEFAULT_TERMS))
    bands: tuple | None = None  # band indices (default all)
    boundary: str = "periodic"  # x boundary: periodic | wall | reservoir
    mu_left: float | None = None
    mu_right: float | None = None
    well_balanced: bool = True
    number_conserving: bool = False  # relax to f_FD(ε̃ − μ(x, t)) with μ fixed by local density
    reconstruction: str = "upwind"  # "upwind" (first order) | "muscl" (van Leer limited)


class Problem:
    """Mesh, fields and operator for one layout; collective over ``comm``."""

    def __init__(self, layout: str, model, n, physics: Physics, *, x_range=None, k_range=None,
                 comm=None):
        self.layout, self.model, self.phys = layout, model, physics
        self._args = (n, x_range, k_range, comm)  # for with_field
        self.ky = None  # 1x2k: the k_y values folded into the dof (cell centres), 1/Å
        physics.terms = check_solver_terms(physics.terms)
        nb_model = model.nb
        self.bands = tuple(range(nb_model)) if physics.bands is None else tuple(physics.bands)
        if len(set(self.bands)) != len(self.bands):
            raise ConfigError(f"physics.bands = {list(self.bands)}: a band is listed twice")
        for b in self.bands:
            if not 0 <= b < nb_model:
                raise ConfigError(f"physics.bands: band {b} does not exist; the model has "
                                  f"bands 0..{nb_model - 1}")
        axes = self._axes(layout, model, n, x_range, k_range)
        nfold = 1
        self.kz = None  # 0x3k: the k_z values folded into the dof (cell centres), 1/Å
        if layout == "1x2k":
            ky_axis = self._ky_axis
            self.ky = ky_axis.centres(0, ky_axis.n)
            nfold = ky_axis.n
        if layout == "0x3k":
            self.kz = self._kz_axis.centres(0, self._kz_axis.n)
            nfold = self._kz_axis.n
        self.nfold = nfold
        if physics.reconstruction not in ("upwind", "muscl"):
            raise ConfigError(f"solver.reconstruction = {physics.reconstruction!r}: allowed "
                              "upwind, muscl")
        self.mesh = PhaseMesh(layout, axes, nfold * len(self.bands), comm=comm,
                              stencil=2 if physics.reconstruction == "muscl" else 1)
        collective(self.mesh.comm, self._evaluate_fields)
        self.op = StreamOperator(self.mesh, self.eps_corner, self.eps_cell, self.D, self.c,
                                 self.psi_E, boundary=physics.boundary)

    @property
    def field_dependent(self) -> bool:
        """True when the fields (ε̃, Ω′, D, f_loc) depend on physics.E: a field-induced
        second-order term is on and E ≠ 0. Then an E = 0 reference (magnetization-current
        subtraction, physics.md §6.2) must come from ``with_field(0)``, not from this problem's
        operator at E = 0 — which would keep ε⁽²⁾(E) in ε̃ and f_loc and, without IAD, subtract
        the τ⁰ current −∫ f0 ∇ε⁽²⁾ itself."""
        return bool({"A2_shift_field", "E2_bcp"} & self.phys.terms) and bool(
            np.any(np.atleast_1d(self.phys.E)))

    def with_field(self, E) -> "Problem":
        """The same problem (model, mesh, physics, communicator) at the uniform field E.
        Collective."""
        import dataclasses

        n, x_range, k_range, comm = self._args
        ph = dataclasses.replace(self.phys, E=tuple(np.atleast_1d(np.asarray(E, float))))
        return Problem(self.layout, self.model, n, ph, x_range=x_range, k_range=k_range,
                       comm=self.mesh.comm if comm is None else comm)

    # ------------------------------------------------------------------ set-up
    def _axes(self, layout, model, n, x_range, k_range):
        def k_axis(name, i):
            rec = getattr(model, "model", model).reciprocal
            if k_range is not None:
                lo, hi = k_range[i]
            elif rec is not None:
                if not np.allclose(rec, np.diag(np.diag(rec))):
                    raise ConfigError("mesh: the phase-space solver needs an orthogonal lattice "
                                      "(reciprocal vectors along the axes); this model's are "
                                      f"{np.round(rec, 6).tolist()}")
                g = rec[i, i]
                lo, hi = -g / 2, g / 2
            else:
                raise ConfigError("mesh.kmax: a continuum model needs a k-range")
            return Axis(name, int(n[i if layout not in ("1x1k", "1x2k") else i + 1]), lo, hi, True)

        if layout == "1x2k":
            self._ky_axis = k_axis("ky", 1)
        if layout in ("1x1k", "1x2k"):
            if x_range is None:
                raise ConfigError("mesh.x: a 1x1k run needs x = {n = ..., length = ...}")
            per = self.phys.boundary == "periodic"
            if self.phys.boundary not in ("periodic", "wall", "reservoir"):
                raise ConfigError(f"mesh.x.boundary = {self.phys.boundary!r}: allowed periodic, "
                                  "wall, reservoir")
            return (Axis("x", int(n[0]), x_range[0], x_range[1], per), k_axis("k", 0))
        if layout == "0x1k":
            return (k_axis("k", 0), Axis("x", 4, 0.0, 4.0, True))
        if layout in ("0x2k", "0x3k"):
            if layout == "0x3k":
                self._kz_axis = k_axis("kz", 2)
            return (k_axis("kx", 0), k_axis("ky", 1))
        raise ConfigError(f"layout {layout!r}: allowed 1x1k, 1x2k, 0x1k, 0x2k, 0x3k")

    @property
    def c(self) -> float:
        return {"1x1k": 1.0, "1x2k": 1.0, "0x1k": -1.0, "0x2k": -self.phys.B,
                "0x3k": -self.phys.B}[self.layout]

    def psi_E(self, Q1, Q2, E):
        """Field part of the stream function at coordinates (Q1, Q2)."""
        E = np.atleast_1d(np.asarray(E, float))
        if self.layout in ("1x1k", "1x2k"):
            return E[0] * Q1
        if self.layout == "0x1k":
            return -E[0] * Q2
        return -E[0] * Q2 + E[1] * Q1

    def _band_fields(self, q1, q2):
        """(ε̃, ε, D, geometry) at points of shape q1.shape, last axis = dof (k_y-major, band)."""
        ph = self.phys
        B = ph.B if self.layout == "0x2k" else 0.0
        if self.layout == "0x3k":
            B = np.array([0.0, 0.0, ph.B])  # B ∥ z: k_z is conserved (folded into the dof)
        if self.layout == "1x1k":
            H, dH = self.model.evaluate(q1[..., None], q2[..., None])
            g = band_geometry(H, dH, n_x=1)
        elif self.layout == "1x2k":
            ky = np.broadcast_to(self.ky, q1.shape + self.ky.shape)
            k = np.stack([np.broadcast_to(q2[..., None], ky.shape), ky], axis=-1)
            H, dH = self.model.evaluate(np.broadcast_to(q1[..., None, None], ky.shape + (1,)), k)
            g = band_geometry(H, dH, n_x=1)
        else:
            k = self._k_points(q1, q2)
            g = band_geometry(self.model.hamiltonian(k), self.model.dh_dk(k), n_x=0)
        eps_t, eps, D = [], [], []
        E2 = self._field_vector() if self.layout in ("0x1k", "0x2k", "0x3k") else None
        for b in self.bands:
            # homogeneous layouts: + ½ G^R_ij E_i E_j (E2_bcp, physics.md §4.5 (ii), V15)
            eps_t.append(corrected_energy(g, b, ph.terms, B=B, E=E2))
            eps.append(g.energy[..., b])
            D.append(phase_space_density(*curvature_blocks(g, b, ph.terms), B=B))
        fold = lambda arrs: np.stack(arrs, -1).reshape(q1.shape + (-1,))  # noqa: E731
        return fold(eps_t), fold(eps), fold(D), g

    def _k_points(self, q1, q2) -> np.ndarray:
        """Wave vectors (..., d) of the homogeneous layouts at mesh coordinates (q1, q2); 0x3k
        adds an axis of the folded k_z values before the last."""
        if self.layout == "0x1k":
            return q1[..., None]
        if self.layout == "0x3k":
            kz = np.broadcast_to(self.kz, q1.shape + self.kz.shape)
            return np.stack([np.broadcast_to(q1[..., None], kz.shape),
                             np.broadcast_to(q2[..., None], kz.shape), kz], axis=-1)
        return np.stack([q1, q2], axis=-1)

    def _field_vector(self) -> np.ndarray:
        """The uniform transport field as a vector with one component per k-dimension (V/Å)."""
        d = 1 if self.layout in ("0x1k", "1x1k") else 3 if self.layout == "0x3k" else 2
        E = np.zeros(d)
        e = np.atleast_1d(np.asarray(self.phys.E, float))[:d]
        E[:len(e)] = e
        return E

    def _check_layout_terms(self):
        """Second-order combinations the layout does not implement: ConfigError naming them.

        1x1k and 1x2k take every second-order term. Homogeneous layouts (0x1k, 0x2k, 0x3k)
        take the field-induced terms (A2_shift_field, E2_bcp) for B = 0; every texture term
        (A2_shift_texture, A2_threeband, A2_metric_gradient with obs_quadrupole, E2_quadrupole,
        E2_curv2, E2_metric_laplacian) vanishes identically there (no x-dependence, V = eE·x
        linear: G^R_{x·} = g_{x·} = Ω_kx = ∂_x g = ∂_x∂_x ε̄ = 0, physics.md V15) and is accepted
        as an exact zero. Folded 0x3k needs E_z = 0."""
        ph = self.phys
        # (wk_correction is refused outside 1x1k and 1x2k in _evaluate_fields)
        second = sorted(t for t in ph.terms if TERMS[t].order == 2 and t != "wk_correction")
        E = np.atleast_1d(np.asarray(ph.E, float))
        if self.layout == "0x3k" and E.size > 2 and E[2] != 0:
            raise ConfigError(f"physics.electric_field = {E.tolist()}: the 0x3k layout folds k_z "
                              "into the dof and needs k_z conserved: E_z = 0 (B is along z); "
                              "put the field in the x-y plane")
        if self.layout in ("0x1k", "0x2k", "0x3k"):
            if second and ph.B != 0:
                raise ConfigError(
                    f"physics.terms: {second[0]!r} together with physics.magnetic_field ≠ 0 is not "
                    "implemented: the second-order terms of the homogeneous layouts are those of "
                    "the transport field at B = 0 (physics.md V15); the B-dependent second-order "
                    "terms (magnetic BCP, O(B²) energy, B·Ω′ in D) are not specified — set "
                    "physics.magnetic_field = 0 or switch the second-order terms off")

    def _field_shift_curvature(self, g_corner):
        """0x2k: cell averages of the field-induced curvature Ω′_z = ∂_kx A′_ky − ∂_ky A′_kx with
        A′_i = G^GYN_ij E_j (physics.md §4.2 homogeneous limit, V15; e = 1), from A′ at the
        corners by the exact discrete Stokes circulation ∮A′·dk/(Δk_x Δk_y) (trapezoid edges),
        so that Σ Ω′ ΔA telescopes to the boundary circulation (zero on a periodic zone)."""
        a1, a2 = self.mesh.axes
        E = self._field_vector()
        out = []
        for b in self.bands:
            Ap = field_shift(g_corner, b, E)  # corners (n2+1, n1l+1, 2): axis 0 = k_y, 1 = k_x
            Ax, Ay = Ap[..., 0], Ap[..., 1]
            # counter-clockwise in (k_x, k_y): bottom (k_y−), right (k_x+), top (k_y+), left
            circ = (0.5 * (Ax[:-1, :-1] + Ax[:-1, 1:]) * a1.h
                    + 0.5 * (Ay[:-1, 1:] + Ay[1:, 1:]) * a2.h
                    - 0.5 * (Ax[1:, :-1] + Ax[1:, 1:]) * a1.h
                    - 0.5 * (Ay[:-1, :-1] + Ay[1:, :-1]) * a2.h)
            out.append(circ / (a1.h * a2.h))
        return np.stack(out, -1).reshape(self.D.shape)  # 0x3k: dof = (k_z, band)

    def _field_terms_z(self, g_corner):
        """0x3k: the field-induced terms in the z-velocity (physics.md §4.2, §4.5 (ii), V15):
        Ω′_x = ∂_ky A′_kz − ∂_kz A′_ky and Ω′_y = ∂_kz A′_kx − ∂_kx A′_kz (A′ = G^GYN E,
        A2_shift_field) added to curv_x, curv_y, and ∂_kz ε⁽²⁾ (E2_bcp) to vel_z, at the cells:
        k_x, k_y derivatives from corner differences (averaged over the cell's two edges), k_z
        derivatives spectral across the folded k_z, corner values averaged to the cell."""
        a1, a2 = self.mesh.axes
        hz = self._kz_axis.h
        n2, n1 = self.D.shape[:2]
        shape = (n2, n1, len(self.kz), len(self.bands))
        if "E2_bcp" in self.phys.terms:  # ε̃ − ε = ε⁽²⁾ at B = 0
            e2 = (self.eps_cell - self.eps_bare).reshape(shape)
            self.vel_z = self.vel_z + spectral_derivative(e2, hz, 2).reshape(self.D.shape)
        if "A2_shift_field" not in self.phys.terms:
            return
        E = self._field_vector()
        A = np.stack([field_shift(g_corner, b, E) for b in self.bands], -2)  # (n2+1, n1+1, nkz, nb, 3)
        cell = lambda F: 0.25 * (F[1:, 1:] + F[1:, :-1] + F[:-1, 1:] + F[:-1, :-1])  # noqa: E731
        d_kx = lambda F: 0.5 * ((F[1:, 1:] - F[1:, :-1]) + (F[:-1, 1:] - F[:-1, :-1])) / a1.h  # noqa
        d_ky = lambda F: 0.5 * ((F[1:, 1:] - F[:-1, 1:]) + (F[1:, :-1] - F[:-1, :-1])) / a2.h  # noqa
        d_kz = lambda F: cell(spectral_derivative(F, hz, 2))  # noqa: E731
        Ax, Ay, Az = A[..., 0], A[..., 1], A[..., 2]
        self.curv_x = self.curv_x + (d_ky(Az) - d_kz(Ay)).reshape(self.D.shape)
        self.curv_y = self.curv_y + (d_kz(Ax) - d_kx(Az)).reshape(self.D.shape)

    def _with_field(self, g):
        """The geometry with the transport potential V = eE·x in every band energy (∂_x ε += E),
        so that ε̄-flows include the field (physics.md §4.2: V is included in every ε)."""
        E = float(np.atleast_1d(self.phys.E)[0])
        if E == 0.0:
            return g
        import dataclasses

        v = g.velocity.copy()
        v[..., 0, :] += E
        return dataclasses.replace(g, velocity=v)

    def _geometry_1d(self, X, K, order=1):
        """The (x, k_x) geometry at points (X, K): 1x1k as is; 1x2k with a trailing axis of the
        folded k_y values, each k_y a parameter (quasi-1D: ∂H restricted to x and k_x)."""
        if self.layout == "1x1k":
            out = self.model.evaluate(X[..., None], K[..., None], order=order)
        else:
            shape = X.shape + self.ky.shape
            k = np.stack([np.broadcast_to(K[..., None], shape), np.broadcast_to(self.ky, shape)], -1)
            H, dH, *d2 = self.model.evaluate(np.broadcast_to(X[..., None, None], shape + (1,)), k,
                                             order=order)
            sub = [0, 1]
            out = (H, dH[..., sub, :, :]) + tuple(d[..., sub, :, :, :][..., :, sub, :, :] for d in d2)
        return band_geometry(*out, n_x=1)

    def _add_second_order_energy(self, Q1, Q2, C1, C2):
        """ε̃ += ε⁽²⁾_c at the cells (Q1, Q2) and corners (C1, C2): the two-band closed forms,
        or for N > 2 bands the Moyal engine (no closed forms, physics.md §4.5, §4.7)."""
        if self.model.nb > 2:
            cell, corner = self._moyal_energy()
        else:
            cell = self._second_order_energy(Q1, Q2, corner=False)
            corner = self._second_order_energy(C1, C2, corner=True)
        self.eps_cell = self.eps_cell + cell
        self.eps_corner = self.eps_corner + corner

    def _moyal_energy(self):
        """ε⁽²⁾_c of every selected band of an N > 2 band model (1x1k ring; 1x2k per k_y, each
        k_y a parameter) from the Moyal coefficient engine (``kinetic.moyal``) on the full
        periodic cell-centre and corner grids (spectral in x and k, so the x-mesh must be one
        periodic texture period); each rank takes its own x-range. Returns
        (cells (n2, n1l, dof), corners (n2+1, n1l+1, dof))."""
        from kinetic.moyal import ky_slice, moyal_coefficients

        ph, m = self.phys, self.mesh
        a1, a2 = m.axes
        if self.layout not in ("1x1k", "1x2k") or not a1.periodic:
            raise ConfigError(f"physics.terms: the E2_* energy of a {self.model.nb}-band model "
                              "comes from the Moyal engine (physics.md §4.7), implemented for "
                              "periodic 1x1k and 1x2k rings (mesh.x.boundary = \"periodic\") "
                              "so far")
        if np.any(np.atleast_1d(ph.E)):
            raise ConfigError(f"physics.terms: E2_* with electric_field ≠ 0 for a "
                              f"{self.model.nb}-band model: the Moyal engine takes textures, not "
                              "a uniform field (use two bands, or E = 0)")
        missing = sorted(ENERGY_TERMS - ph.terms)
        if missing:
            raise ConfigError(f"physics.terms: for N = {self.model.nb} > 2 bands the second-order "
                              f"energy is one piece (Moyal engine); {missing[0]!r} is off — switch "
                              f"on all of {', '.join(sorted(ENERGY_TERMS))} or none")
        models = ([self.model] if self.layout == "1x1k"
                  else [ky_slice(self.model, ky) for ky in self.ky])
        out = []
        for shift, stop in ((0.5, 0), (0.0, 1)):  # cell centres, then corners
            x = a1.lo + (np.arange(a1.n) + shift) * a1.h
            k = a2.lo + (np.arange(a2.n) + shift) * a2.h
            xi = np.mod(np.arange(m.s1, m.e1 + stop), a1.n)
            ki = np.mod(np.arange(m.s2, m.e2 + stop), a2.n)
            e2 = [moyal_coefficients(pm, x, k).eps2_c[..., list(self.bands)][np.ix_(xi, ki)]
                  for pm in models]  # each (n1l(+1), n2(+1), nb)
            e2 = np.stack(e2, -2)  # (.., nfold, nb): k_y-major dof
            out.append(np.transpose(e2, (1, 0, 2, 3)).reshape(len(ki), len(xi), -1))
        return tuple(out)

    def _second_order_energy(self, X, K, corner: bool):
        """ε⁽²⁾_c (two bands, physics.md §4.5; quasi-1D per k_y in 1x2k) at the owned cells
        (corner False) or corners (X, K) for every selected band (last axis: dof)."""
        g = self._geometry_1d(X, K, order=2)
        lap = self._metric_laplacian(corner) if "E2_metric_laplacian" in self.phys.terms else None
        gE = self._with_field(g)  # term (ii) includes the transport field in ε̄ and ε_n
        out = [second_order_energy(gE, b, self.phys.terms,
                                   None if lap is None else lap[..., b]) for b in self.bands]
        return np.stack(out, -1).reshape(X.shape + (-1,))

    def _metric_laplacian(self, corner: bool):
        """∂a∂bσ_ab = ∂²_x g_kk − 2∂_x∂_k g_kx + ∂²_k g_xx of every band (term (iv) of ε⁽²⁾,
        physics.md §4.5) at the owned cells or corners, (n2 (+1), n1l (+1)[, n_ky], nb),
        differentiated on the mesh (physics.md §2.6 rule 3): the geometry on the whole x-line
        of cell centres or corners (every rank evaluates it), spectral in k; in x spectral on a
        ring, fourth-order differences on an open x-range (``kinetic.derivatives``)."""
        m = self.mesh
        a1, a2 = m.axes
        nx = a1.n + (1 if corner and not a1.periodic else 0)  # a ring's corners: n distinct
        shift = 0.0 if corner else 0.5
        K, X = np.meshgrid(a2.lo + (np.arange(a2.n) + shift) * a2.h,  # the k-zone, seam once
                           a1.lo + (np.arange(nx) + shift) * a1.h, indexing="ij")
        g = self._geometry_1d(X, K).metric  # (n_k, n_x[, n_ky], nb, 2, 2)
        d1, d2 = axis_derivatives(a1)
        dk = lambda F: spectral_derivative(F, a2.h, 0)  # noqa: E731
        lap = d2(g[..., 1, 1], 1) - 2 * d1(dk(g[..., 1, 0]), 1) + dk(dk(g[..., 0, 0]))
        own = np.arange(m.s1, m.e1 + (1 if corner else 0))
        lap = lap[:, np.mod(own, a1.n) if a1.periodic else own]
        return np.concatenate([lap, lap[:1]], axis=0) if corner else lap  # corner n2 = corner 0

    def shift_connection(self, g, b) -> np.ndarray:
        """The positional shift A′ (..., 2d) of band b on the geometry g (physics.md §4.2) as the
        toggles make it: its texture part (A2_shift_texture, with A2_threeband) and its field
        part (A2_shift_field: V = eE_x x in every ε̄, the difference of the two evaluations)."""
        three = "A2_threeband" in self.phys.terms
        A_tex = positional_shift(g, b, threeband=three)
        Ap = A_tex if "A2_shift_texture" in self.phys.terms else np.zeros(A_tex.shape)
        if "A2_shift_field" in self.phys.terms:
            Ap = Ap + positional_shift(self._with_field(g), b, threeband=three) - A_tex
        return Ap

    def _texture_curvatures_1x1k(self):
        """1x1k: Ω′_kx = ∂_k A′_x − ∂_x A′_k (A2_shift_texture, A2_threeband, A2_shift_field;
        physics.md §4.2) plus Ω″_kx = −½ ∂_a∂_bσ_ab (A2_metric_gradient, §4.3) at the owned
        cells (n2, n1l, dof), from the geometry on the whole x-line of cells (every rank
        evaluates it: 1D, cheap). k-derivatives are spectral; x-derivatives spectral on a
        periodic ring, fourth-order differences on an open x-range (``kinetic.derivatives``);
        ∂²_x is the same operator as in the quadrupole density (``kinetic.observables``), so
        that Ω″ and the quadrupole cancel in insulators to round-off. On a ring Σ Ω over the
        torus vanishes (no k = 0 mode in a derivative)."""
        ph, m = self.phys, self.mesh
        a1, a2 = m.axes
        K, X = np.meshgrid(a2.centres(0, a2.n), a1.centres(0, a1.n), indexing="ij")
        H, dH = self.model.evaluate(X[..., None], K[..., None])
        g = band_geometry(H, dH, n_x=1)  # (n_k, n_x)
        d1, d2 = axis_derivatives(a1)
        dx = lambda F: d1(F, 1)  # noqa: E731
        dk = lambda F: spectral_derivative(F, a2.h, 0)  # noqa: E731
        out = []
        for b in self.bands:
            O = np.zeros(K.shape)
            if {"A2_shift_texture", "A2_shift_field"} & ph.terms:
                Ap = self.shift_connection(g, b)
                O = O + dk(Ap[..., 0]) - dx(Ap[..., 1])
            if "A2_metric_gradient" in ph.terms:
                G = g.metric[..., b, :, :]  # [x, k] blocks
                O = O - 0.5 * (d2(G[..., 1, 1], 1) - 2 * dx(dk(G[..., 1, 0])) + dk(dk(G[..., 0, 0])))
            out.append(O[:, m.s1:m.e1])
        return np.stack(out, -1)

    def _texture_curvatures_1x2k(self):
        """1x2k: the second-order curvature blocks (Ω′ + Ω″)_{k_x x}, _{k_y x}, _{k_x k_y} at the
        owned cell centres (n2, n1l, dof), from the positional shift A′ (A2_shift_texture,
        A2_threeband, and its field part A2_shift_field: E_x in every ε̄; physics.md §4.2) and
        the metric-gradient connection A″ (A2_metric_gradient,
        §4.3: A″_{k_i} = ½(∂_x g_{k_i k_x} − ∂_{k_x} g_{k_i x}), A″_x = ½(∂_x g_{x k_x} − ∂_{k_x}
        g_{xx}), y-independent), Ω_ab = ∂_a A_b − ∂_b A_a. k_x and k_y derivatives are spectral
        (the whole periodic zone is local); x-derivatives are taken on the whole x-line of cells
        (every rank evaluates it): spectral on a periodic ring, fourth-order differences on an
        open x-range, with ∂²_x of the metric as one second-derivative operator
        (``kinetic.derivatives``). D gains Ω_{k_x x} (D = 1 + Ω_{k_x x} for y-independent
        textures, physics.md §3.2), the transverse velocity the other two (§5.2). Also keeps
        the x-line connections A′_kx, A″_kx of the owned k_x range (``line_connection``, for
        the polarization split)."""
        a1, a2 = self.mesh.axes
        m, ph = self.mesh, self.phys
        K, X = np.meshgrid(a2.centres(m.s2, m.e2), a1.centres(0, a1.n), indexing="ij")  # (n2, n_x)
        kyb = np.broadcast_to(self.ky, K.shape + self.ky.shape)
        k = np.stack([np.broadcast_to(K[..., None], kyb.shape), kyb], axis=-1)
        H, dH = self.model.evaluate(np.broadcast_to(X[..., None, None], kyb.shape + (1,)), k)
        # the full phase space (x, y, k_x, k_y) with ∂_y H = 0 (positional_shift pairs x_i, k_i)
        dH = np.concatenate([dH[..., :1, :, :], np.zeros_like(dH[..., :1, :, :]),
                             dH[..., 1:, :, :]], axis=-3)
        g = band_geometry(H, dH, n_x=2)  # arrays (n2, n_x, nky, ...)
        d1, d2 = axis_derivatives(a1)
        dx = lambda F: d1(F, 1)  # noqa: E731
        dxx = lambda F: d2(F, 1)  # noqa: E731
        dkx = lambda F: spectral_derivative(F, a2.h, 0)  # noqa: E731
        dky = lambda F: spectral_derivative(F, self._ky_axis.h, 2)  # noqa: E731
        X_, KX, KY = 0, 2, 3
        blocks = ([], [], [])
        self.line_connection = {"P_shift": [], "P_metric": []}  # A′_kx, A″_kx on the x-line
        zero = np.zeros(g.energy.shape[:-1])
        for b in self.bands:
            Ax = Akx = Aky = zero  # connections; ∂_x A_kx and ∂_x A_ky kept apart (∂²_x g)
            dxAkx = dxAky = zero
            shift_kx = metric_kx = zero
            if {"A2_shift_texture", "A2_shift_field"} & ph.terms:
                Ap = self.shift_connection(g, b)
                Ax, Akx, Aky = (Ap[..., i] for i in (X_, KX, KY))
                dxAkx, dxAky = dx(Akx), dx(Aky)
                shift_kx = Akx
            if "A2_metric_gradient" in ph.terms:
                G = g.metric[..., b, :, :]
                metric_kx = 0.5 * (dx(G[..., KX, KX]) - dkx(G[..., KX, X_]))
                Ax = Ax + 0.5 * (dx(G[..., X_, KX]) - dkx(G[..., X_, X_]))
                Akx = Akx + metric_kx
                Aky = Aky + 0.5 * (dx(G[..., KY, KX]) - dkx(G[..., KY, X_]))
                dxAkx = dxAkx + 0.5 * (dxx(G[..., KX, KX]) - dx(dkx(G[..., KX, X_])))
                dxAky = dxAky + 0.5 * (dxx(G[..., KY, KX]) - dx(dkx(G[..., KY, X_])))
            self.line_connection["P_shift"].append(shift_kx)
            self.line_connection["P_metric"].append(metric_kx)
            blocks[0].append(dkx(Ax) - dxAkx)  # Ω_{k_x x}
            blocks[1].append(dky(Ax) - dxAky)  # Ω_{k_y x}
            blocks[2].append(dkx(Aky) - dky(Akx))  # Ω_{k_x k_y}
        shape = self.D.shape
        return tuple(np.stack(bl, -1)[:, m.s1:m.e1].reshape(shape) for bl in blocks)

    def _evaluate_fields(self):
        m, ph = self.mesh, self.phys
        self._check_layout_terms()
        Q1, Q2 = m.cell_centres()
        self.eps_cell, self.eps_bare, self.D, g = self._band_fields(Q1, Q2)
        if self.layout in ("0x2k", "0x3k"):  # Ω_z = Ω_{k_x k_y} (and Ω_x, Ω_y for 0x3k's j_z)
            pick = lambda a, b: np.stack([g.curvature[..., n, a, b] for n in self.bands],  # noqa
                                         -1).reshape(Q1.shape + (-1,))
            kk = "berry_kk" in ph.terms
            self.curv_z = pick(0, 1) if kk else np.zeros(self.D.shape)
            if self.layout == "0x3k":
                self.curv_x = pick(1, 2) if kk else np.zeros(self.D.shape)  # Ω_{k_y k_z}
                self.curv_y = pick(2, 0) if kk else np.zeros(self.D.shape)  # Ω_{k_z k_x}
                vz = [g.velocity[..., 2, b] for b in self.bands]  # ∂ε/∂k_z (B = 0: ε̃ = ε)
                self.vel_z = np.stack(vz, -1).reshape(Q1.shape + (-1,))
        if self.layout == "1x2k":  # blocks entering the transverse velocity D ẏ (physics.md §5.2)
            terms, nx = ph.terms, 1
            pick = lambda a, b: np.stack([g.curvature[..., n, a, b] for n in self.bands],  # noqa
                                         -1).reshape(Q1.shape + (-1,))
            zero = np.zeros(self.D.shape)
            self.curv_kykx_x = pick(nx + 1, 0) if "berry_kx" in terms else zero  # Ω_{k_y x}
            self.curv_kxky = pick(nx, nx + 1) if "berry_kk" in terms else zero  # Ω_{k_x k_y}
        C1, C2 = m.corner_points()
        a1 = m.axes[0]
        if not a1.periodic:  # corners outside [lo, hi] do not occur; clip for safety
            C1 = np.clip(C1, a1.lo, a1.hi)
        homogeneous = self.layout in ("0x1k", "0x2k", "0x3k")
        field_terms = {"A2_shift_field", "E2_bcp"} & ph.terms
        if homogeneous and ph.B == 0 and not field_terms:
            # homogeneous, no B: ε̃ = ε at the corners (Δε⁽¹⁾ = 0, no m·B): eigenvalues suffice
            k = self._k_points(C1, C2)
            ev = np.linalg.eigvalsh(self.model.hamiltonian(k))
            self.eps_corner = ev[..., list(self.bands)].reshape(C1.shape + (-1,))
            g_corner = None
        else:
            self.eps_corner, _, _, g_corner = self._band_fields(C1, C2)
        if self.layout in ("1x1k", "1x2k") and TEXTURE_DERIVATIVE_TERMS & ph.terms:
            check_x_resolution(self.eps_cell, 1, self.mesh.axes[0], self.mesh.comm)
        if homogeneous:
            # Field-induced second order (physics.md §4.2, §4.5 (ii), §6.4, V15), B = 0 only:
            # ε̃ = ε + ½ G^R_ij E_i E_j at cells and corners (E2_bcp, added by _band_fields), so
            # it enters the band velocity ∇_k ε̃ and, with relax_to_corrected_energy, f_loc (IAD);
            # A′_k = G^GYN E (A2_shift_field) adds Ω′_z = (∇_k × A′)_z to Ω_kk (0x2k; in 0x1k
            # Ω′ ≡ 0). D = Pf ω_c stays 1: at B = 0 with Ω_xx = Ω_kx = 0 (no texture, A′_x = 0)
            # the Ω_kk terms of the Pfaffian are multiplied by Ω_xy − B = 0 (physics.md §3.2),
            # and ω_c gives k̇ = −E and ẋ = ∇_k ε̃ + E × (Ω + Ω′) ẑ (observables.number_current).
            # 0x3k (k_z folded, E_z = 0): the same per k_z, plus Ω′_x, Ω′_y and ∂_kz ε⁽²⁾ in the
            # z-velocity D ż = ∂_kz ε̃ + (E × (Ω + Ω′))_z.
            if "A2_shift_field" in ph.terms and self.layout in ("0x2k", "0x3k"):
                self.curv_z = self.curv_z + self._field_shift_curvature(g_corner)
            if self.layout == "0x3k" and field_terms:
                self._field_terms_z(g_corner)
        elif self.layout == "1x2k":
            if ENERGY_TERMS & ph.terms:  # quasi-1D ε⁽²⁾ per k_y (physics.md §4.5)
                self._add_second_order_energy(Q1, Q2, C1, C2)
            if {"A2_shift_texture", "A2_shift_field", "A2_metric_gradient"} & ph.terms:
                dkx_x, dky_x, dkxky = self._texture_curvatures_1x2k()
                self.D = self.D + dkx_x
                self.curv_kykx_x = self.curv_kykx_x + dky_x
                self.curv_kxky = self.curv_kxky + dkxky
        else:
            if ENERGY_TERMS & ph.terms:
                self._add_second_order_energy(Q1, Q2, C1, C2)
            if {"A2_shift_texture", "A2_shift_field", "A2_metric_gradient"} & ph.terms:
                self.D = self.D + self._texture_curvatures_1x1k()  # physics.md §2.6 rule 3
        if "obs_quadrupole" in ph.terms:
            self.g_kk = np.stack([g.metric[..., b, 1, 1] for b in self.bands],
                                 -1).reshape(Q1.shape + (-1,))  # g_{k_x k_x}
        if "wk_correction" in ph.terms:
            if self.layout not in ("1x1k", "1x2k"):
                raise ConfigError("physics.terms: wk_correction is implemented for 1x1k and 1x2k "
                                  "(per k_y) so far")
            g2 = self._geometry_1d(Q1, Q2, order=2)
            w = [wigner_kirkwood(g2, b) for b in self.bands]
            self.wk_w2 = np.stack([a for a, _ in w], -1).reshape(self.eps_bare.shape)
            self.wk_w3 = np.stack([b for _, b in w], -1).reshape(self.eps_bare.shape)
        if np.any(self.D <= 0):
            raise ConfigError("phase-space density D ≤ 0 somewhere: the fields or textures are too "
                              "strong for semiclassics (D = 1 + Ω_kx + ... must stay positive)")
        relax = self.eps_cell if "relax_to_corrected_energy" in ph.terms else self.eps_bare
        self.f_loc = fermi((relax - ph.mu) / ph.kT)
        self.tau = self._relaxation_time()

    def _relaxation_time(self):
        """τ as a number or per cell and dof (n2, n1l, dof) from τ(ε, band)."""
        band = np.broadcast_to(np.tile(np.asarray(self.bands), self.nfold), self.eps_bare.shape)
        return cell_relaxation_time(self.phys.tau, self.eps_bare, band)

    # ------------------------------------------------------------------ helpers
    def field(self, values) -> "object":
        """A global Vec holding a cell field (n2, n1l, nb)."""
        v = self.mesh.create_vec()
        self.mesh.set_local(v, values)
        return v

    def local_equilibrium(self, f) -> np.ndarray:
        """f_loc for the distribution f (n2, n1l, dof): fixed μ, or the number-conserving
        μ(x) (per owned x column in 1x1k/1x2k, global otherwise) with Σ D f_loc = Σ D f."""
        ph = self.phys
        if not ph.number_conserving:
            return self.f_loc
        from mpi4py import MPI

        relax = self.eps_cell if "relax_to_corrected_energy" in ph.terms else self.eps_bare
        column = self.layout in ("1x1k", "1x2k")
        axes = (0, 2) if column else None
        target = (self.D * f).sum(axis=axes)
        comm = self.mesh.comm.tompi4py()
        if not column:
            target = comm.allreduce(float(target), op=MPI.SUM)
        mu = np.full(np.shape(target), ph.mu, float)
        for _ in range(60):  # Newton on Σ D f_FD((ε − μ)/kT) = target, vectorized over columns
            m = mu if not column else mu[None, :, None]
            fl = fermi((relax - m) / ph.kT)
            g = (self.D * fl).sum(axis=axes)
            dg = (self.D * fl * (1 - fl)).sum(axis=axes) / ph.kT
            if not column:
                g, dg = comm.allreduce(float(g), op=MPI.SUM), comm.allreduce(float(dg), op=MPI.SUM)
            step = (g - target) / np.maximum(dg, 1e-300)
            mu = mu - np.clip(step, -5 * ph.kT, 5 * ph.kT)
            if np.all(np.abs(step) <= 1e-15 * ph.kT):
                break
        m = mu if not column else mu[None, :, None]
        return fermi((relax - m) / ph.kT)

    def f_boundary(self, mu):
        return fermi((self.eps_cell - mu) / self.phys.kT)

    def measure(self) -> float:
        """Phase-space cell volume / (2π)^d_k (per unit length in x for 1x1k)."""
        a1, a2 = self.mesh.axes
        if self.layout == "1x1k":
            return a2.h / TWO_PI
        if self.layout == "1x2k":
            return a2.h * self._ky_axis.h / TWO_PI**2
        if self.layout == "0x1k":
            return a1.h / TWO_PI / a2.n
        if self.layout == "0x3k":
            return a1.h * a2.h * self._kz_axis.h / TWO_PI**3
        return a1.h * a2.h / TWO_PI**2
