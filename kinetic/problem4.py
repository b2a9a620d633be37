"""The 2x2k layout: a 2D band with textures in x and y, on the 4-D phase space (x, y, k_x, k_y).

Fields (physics.md §3.2, first order): per band the corrected energy ε̃ = ε + Δε⁽¹⁾ − m_z B,
the symplectic form ω of all curvature blocks (Ω_kk, Ω_kx, Ω_xx, and B ∥ z), D = Pf ω/Pf ω⁽⁰⁾
at cell centres, and the face fluxes of ``kinetic.pfaffian`` from Ψ_ab = κ_ab ε̃ on the
codimension-2 grids — exactly divergence-free (Liouville to round-off). The upwind matrix
is assembled by COO (``kinetic.coo``); a uniform
transport field E = (E_x, E_y) enters the fluxes only (V = E·x is not in f_loc).

Well-balanced (default, as in ``kinetic.operator``): the operator acts on f − f_ref with the
exact fluxes of f_ref = f_FD(ε̃; μ, T) built from Ψ^G_ab = κ_ab G(ε̃), G' = f_FD; these are
divergence-free too, so the equilibrium of a field-free run is stationary to round-off (V14).

Second-order terms: the texture connections A′, A″ (with the quadrupole density) of textures
along x (``kinetic.texture2x2k``), in every curvature block, the plaquette fluxes included —
so E_y, the Onsager partner of E_x, can be applied to a quasi-1D texture (physics.md §6.5).
Internal units (eV, Å, ħ = e = k_B = 1). The energy terms, reservoirs, MUSCL and the
number-conserving collision are not implemented in this layout (ConfigError naming them).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from kinetic.coo import upwind_matrix
from kinetic.errors import ConfigError
from kinetic.geometry import band_geometry
from kinetic.mesh4 import PhaseMesh4, axes_2x2k
from kinetic.mesh import collective
from kinetic.operator import fermi
from kinetic.problem import cell_relaxation_time, check_open_points, check_x_resolution
from kinetic.pfaffian import EPS4, PAIRS, dual, face_fluxes
from kinetic.semiclassics import (TERMS, check_solver_terms, corrected_energy, curvature_blocks,
                                  symplectic_form)

TWO_PI = 2 * np.pi
#: second-order terms of 2x2k: the texture connections of an x-texture (``kinetic.texture2x2k``)
TEXTURE_TERMS = {"A2_shift_texture", "A2_threeband", "A2_metric_gradient", "obs_quadrupole"}
_CHUNK = 1 << 15  # phase-space points per geometry batch


class Problem4:
    """Mesh, fields and fluxes of the 2x2k layout; collective over ``comm``.

    model: a ``PhaseSpaceModel`` with dim = dim_x = 2 (textures in x and y), or a 2D ``Model``
    (homogeneous). n = (nx, ny, nkx, nky); x_range, y_range in Å (y periodic)."""

    layout = "2x2k"

    def __init__(self, model, n, physics, *, x_range, y_range, comm=None):
        from kinetic.models.texture import PhaseSpaceModel, texture

        self.phys = ph = physics
        self._args = (n, x_range, y_range, comm)
        ph.terms = check_solver_terms(ph.terms)
        second = sorted(t for t in ph.terms if TERMS[t].order == 2 and t not in TEXTURE_TERMS)
        if second:
            raise ConfigError(f"physics.terms: {second[0]!r} is not implemented in the 2x2k layout "
                              f"(it takes {', '.join(sorted(TEXTURE_TERMS))} for x-textures)")
        self.texture_terms = bool({"A2_shift_texture", "A2_metric_gradient"} & ph.terms)
        if self.texture_terms and ph.B != 0:
            raise ConfigError("physics.terms: the second-order texture terms together with "
                              "physics.magnetic_field ≠ 0 are not specified (physics.md §4.8 gives "
                              "no B-dependent second-order terms); set magnetic_field = 0 or switch "
                              "them off")
        for key, bad, allowed in (("solver.reconstruction", ph.reconstruction != "upwind", "upwind"),
                                  ("physics.number_conserving", ph.number_conserving, "false")):
            if bad:
                raise ConfigError(f"{key} = {getattr(ph, key.split('.')[1])!r}: the 2x2k layout "
                                  f"allows {allowed} so far")
        if not isinstance(model, PhaseSpaceModel):
            model = texture(model, {}, dim_x=2)
        if model.dim != 2 or model.dim_x != 2:
            raise ConfigError(f"model: the 2x2k layout needs a 2D band with an x-y texture "
                              f"(dim = dim_x = 2); this one has dim {model.dim}, dim_x {model.dim_x}")
        self.model = model
        self.bands = tuple(range(model.nb)) if ph.bands is None else tuple(ph.bands)
        for b in self.bands:
            if not 0 <= b < model.nb:
                raise ConfigError(f"physics.bands: band {b} does not exist; the model has bands "
                                  f"0..{model.nb - 1}")
        if ph.boundary not in ("periodic", "wall"):
            raise ConfigError(f"mesh.x.boundary = {ph.boundary!r}: the 2x2k layout allows "
                              "periodic, wall")
        if self.texture_terms:
            self._check_x_texture(model, x_range, y_range)
        axes = axes_2x2k(model, n, x_range, y_range, ph.boundary)
        if self.texture_terms:  # before any fourth-order stencil runs
            check_open_points(axes[0])
        self.mesh = PhaseMesh4(axes, len(self.bands), comm=comm)
        self.volume = float(np.prod(self.mesh.h))
        collective(self.mesh.comm, self._evaluate_fields)

    @staticmethod
    def _check_x_texture(model, x_range, y_range):
        """The second-order texture terms here are those of x-textures (physics.md §5.2
        quasi-1D): refuse an H that depends on y (∂_y H ≠ 0 at sample points)."""
        rng = np.random.default_rng(0)
        x = np.stack([rng.uniform(*x_range, 64), rng.uniform(*y_range, 64)], -1)
        k = rng.uniform(-np.pi, np.pi, (64, 2))
        dHy = model.evaluate(x, k)[1][..., 1, :, :]
        if np.abs(dHy).max() > 1e-12:
            raise ConfigError("physics.terms: the second-order texture terms of the 2x2k layout "
                              "are implemented for textures along x (H independent of y); this "
                              "texture varies along y")

    def with_field(self, E) -> "Problem4":
        n, x_range, y_range, comm = self._args
        ph = dataclasses.replace(self.phys, E=tuple(np.atleast_1d(np.asarray(E, float))))
        return Problem4(self.model, n, ph, x_range=x_range, y_range=y_range,
                        comm=self.mesh.comm if comm is None else comm)

    # ------------------------------------------------------------------ fields
    def _band_fields(self, corner):
        """(ε̃, ε, ω) at the owned points staggered by ``corner``: shapes (..., nb) and
        (..., nb, 4, 4), points in logical order (x, y, k_x, k_y)."""
        X, Y, KX, KY = self.mesh.coordinates(corner)
        if not self.mesh.axes[0].periodic:
            X = np.clip(X, self.mesh.axes[0].lo, self.mesh.axes[0].hi)
        shape = np.broadcast_shapes(X.shape, Y.shape, KX.shape, KY.shape)
        ph, nb = self.phys, len(self.bands)
        eps_t = np.empty(shape + (nb,))
        eps = np.empty(shape + (nb,))
        omega = np.empty(shape + (nb, 4, 4))
        step = max(1, _CHUNK // int(np.prod(shape[1:])))  # batches of x-columns
        for i0 in range(0, shape[0], step):
            sl = slice(i0, min(shape[0], i0 + step))
            sub = (min(shape[0], i0 + step) - i0,) + shape[1:]
            xy = np.stack([np.broadcast_to(X[sl], sub), np.broadcast_to(Y, sub)], -1)
            k = np.stack([np.broadcast_to(KX, sub), np.broadcast_to(KY, sub)], -1)
            H, dH = self.model.evaluate(xy, k)
            g = band_geometry(H, dH, n_x=2)
            for j, b in enumerate(self.bands):
                eps_t[sl, ..., j] = corrected_energy(g, b, ph.terms, B=ph.B)
                eps[sl, ..., j] = g.energy[..., b]
                omega[sl, ..., j, :, :] = symplectic_form(*curvature_blocks(g, b, ph.terms), B=ph.B)
        if self.texture_terms:  # ω_c = ω + dA⁽²⁾ (x-textures, kinetic.texture2x2k)
            from kinetic.texture2x2k import curvature

            omega = omega + curvature(self, corner)
        return eps_t, eps, omega

    def _evaluate_fields(self):
        ph = self.phys
        self.eps_cell, self.eps_bare, w = self._band_fields((False,) * 4)
        if self.texture_terms:  # x-derivatives of geometric fields on the mesh
            check_x_resolution(self.eps_cell[:, :1], 0, self.mesh.axes[0], self.mesh.comm)
        w0 = symplectic_form(*(np.zeros((2, 2)),) * 3)
        pf0 = w0[0, 1] * w0[2, 3] - w0[0, 2] * w0[1, 3] + w0[0, 3] * w0[1, 2]
        self.D = (w[..., 0, 1] * w[..., 2, 3] - w[..., 0, 2] * w[..., 1, 3]
                  + w[..., 0, 3] * w[..., 1, 2]) / pf0
        if np.any(self.D <= 0):
            raise ConfigError("phase-space density D ≤ 0 somewhere: the textures or the magnetic "
                              "field are too strong for semiclassics (D = Pf ω must stay positive)")
        # Ψ_ab = κ_ab ε̃ on the six codimension-2 grids (κ and ε̃ kept for the field and
        # reference fluxes)
        self.kappa, self.eps_pair = {}, {}
        for a, b in PAIRS:
            corner = tuple(c in (a, b) for c in range(4))
            eps_t, _, w = self._band_fields(corner)
            self.kappa[(a, b)] = dual(w)[..., a, b]
            self.eps_pair[(a, b)] = eps_t
        self.plaquettes = self._plaquette_fluxes()
        if self.texture_terms:  # + ∮A⁽²⁾: the plaquette fluxes of ω_c stay exactly closed
            from kinetic.texture2x2k import plaquette_circulation

            for key, val in plaquette_circulation(self).items():
                self.plaquettes[key] = self.plaquettes[key] + val
        if "obs_quadrupole" in ph.terms:  # g_{k_x k_x} at the cells, for the quadrupole density
            X, Y, KX, KY = self.mesh.coordinates((False,) * 4)
            shape = np.broadcast_shapes(X.shape, Y.shape, KX.shape, KY.shape)
            xy = np.stack([np.broadcast_to(X, shape), np.broadcast_to(Y, shape)], -1)
            k = np.stack([np.broadcast_to(KX, shape), np.broadcast_to(KY, shape)], -1)
            g = band_geometry(*self.model.evaluate(xy, k), n_x=2)
            self.g_kxkx = g.metric[..., list(self.bands), 2, 2]
        relax = self.eps_cell if "relax_to_corrected_energy" in ph.terms else self.eps_bare
        self.f_loc = fermi((relax - ph.mu) / ph.kT)
        self.tau = cell_relaxation_time(
            ph.tau, self.eps_bare, np.broadcast_to(np.asarray(self.bands), self.eps_bare.shape))

    # ------------------------------------------------------------------ fluxes
    def _walls(self, fluxes):
        m = self.mesh
        if m.left_edge:
            fluxes[0][0] = 0.0
        if m.right_edge:
            fluxes[0][-1] = 0.0
        return fluxes

    def _plaquette_fluxes(self):
        """Π_cd = ∫ ω_cd over every elementary plaquette of the corner grid: the canonical part
        ω⁽⁰⁾_cd h_c h_d plus the Berry flux −arg of the Wilson loop of the band's eigenvectors
        (gauge invariant, Fukui–Hatsugai–Suzuki; physics.md §2). Around any elementary cube the
        six fluxes sum to zero to round-off (discrete Bianchi identity), which makes the
        transport-field fluxes exactly divergence-free. Keys (c, d), c < d; arrays with n + 1
        points along the other two axes, n along c and d, bands last."""
        ph, h = self.phys, self.mesh.h
        X, Y, KX, KY = self.mesh.coordinates((True,) * 4)
        if not self.mesh.axes[0].periodic:
            X = np.clip(X, self.mesh.axes[0].lo, self.mesh.axes[0].hi)
        shape = np.broadcast_shapes(X.shape, Y.shape, KX.shape, KY.shape)
        xy = np.stack([np.broadcast_to(X, shape), np.broadcast_to(Y, shape)], -1)
        k = np.stack([np.broadcast_to(KX, shape), np.broadcast_to(KY, shape)], -1)
        _, u = np.linalg.eigh(self.model.hamiltonian(xy, k))
        u = u[..., :, list(self.bands)]  # (..., nb_model, nb): columns are the bands
        w0 = symplectic_form(*(np.zeros((2, 2)),) * 3, B=ph.B)
        block = lambda c, d: ("berry_xx" if d < 2 else "berry_kk" if c >= 2 else "berry_kx")  # noqa

        def link(c):  # ⟨u(n)|u(n + e_c)⟩ per band, n + 1 → n points along c
            a = np.take(u, range(shape[c] - 1), axis=c)
            b = np.take(u, range(1, shape[c]), axis=c)
            return np.einsum("...in,...in->...n", a.conj(), b)

        out = {}
        for c, d in PAIRS:
            Lc, Ld = link(c), link(d)  # along c at d-corners, along d at c-corners
            first = lambda A, ax: np.take(A, range(A.shape[ax] - 1), axis=ax)  # noqa: E731
            last = lambda A, ax: np.take(A, range(1, A.shape[ax]), axis=ax)  # noqa: E731
            loop = first(Lc, d) * last(Ld, c) * np.conj(last(Lc, d)) * np.conj(first(Ld, c))
            berry = -np.angle(loop) if block(c, d) in ph.terms else 0.0
            out[(c, d)] = w0[c, d] * h[c] * h[d] + berry
        return out

    def _field_fluxes(self, E, weight=None):
        """The transport-field part of the face fluxes, Σ_b κ_ab E_b · V/h_a for b = x, y:
        κ_ab = Σ_{c<d} ε_abcd ω_cd integrated over the face ⊥ a by the plaquette fluxes Π_cd
        (``_plaquette_fluxes``), averaged over the two b-positions (the face's ends). Each
        x- (y-) slice of the plaquette fluxes is closed, so these fluxes are exactly
        divergence-free. ``weight(ε̃, face)`` multiplies them per face (the well-balanced
        reference uses f_FD at the mean ε̃ of the two b-positions)."""
        E = (tuple(np.atleast_1d(np.asarray(E, float))) + (0.0, 0.0))[:2]
        h = self.mesh.h
        out = [0.0] * 4
        for b in (0, 1):
            if E[b] == 0.0:
                continue
            for a in range(4):
                if a == b:
                    continue
                c, d = sorted(set(range(4)) - {a, b})
                P = self.plaquettes[(c, d)]
                n = P.shape[b] - 1
                mean = 0.5 * (np.take(P, range(n), axis=b) + np.take(P, range(1, n + 1), axis=b))
                val = EPS4[a, b, c, d] * E[b] * h[b] * mean
                if weight is not None:
                    e = self.eps_pair[tuple(sorted((a, b)))]
                    val = val * weight(0.5 * (np.take(e, range(n), axis=b)
                                              + np.take(e, range(1, n + 1), axis=b)))
                out[a] = out[a] + val
        return out

    def face_fluxes(self, E):
        """Φ_a, a = 0..3: flux through the owned cells' faces ⊥ a (n_a + 1 along a), per band."""
        band = face_fluxes({p: K * self.eps_pair[p] for p, K in self.kappa.items()}, self.mesh.h)
        field = self._field_fluxes(E)
        return self._walls([F + G for F, G in zip(band, field)])

    def reference(self):
        """f_ref = f_FD(ε̃; μ, T) at the owned cells (the well-balanced reference)."""
        return fermi((self.eps_cell - self.phys.mu) / self.phys.kT)

    def reference_fluxes(self, E):
        """Exact fluxes of f_ref: Ψ^G_ab = κ_ab G(ε̃) (G' = f_FD) plus the field part times
        f_FD at the face."""
        mu, kT = self.phys.mu, self.phys.kT
        G = lambda e: -kT * np.logaddexp(0.0, -(e - mu) / kT)  # noqa: E731
        band = face_fluxes({p: K * G(self.eps_pair[p]) for p, K in self.kappa.items()},
                           self.mesh.h)
        field = self._field_fluxes(E, weight=lambda e: fermi((e - mu) / kT))
        return self._walls([F + G_ for F, G_ in zip(band, field)])

    # ------------------------------------------------------------------ matrix
    def matrix(self, E, collision_diag, mat=None):
        """Upwind flux matrix + diag(collision_diag) (``kinetic.coo``)."""
        return upwind_matrix(self.mesh, self.face_fluxes(E), collision_diag, mat)

    def measure(self) -> float:
        """k-space cell volume / (2π)²."""
        return self.mesh.h[2] * self.mesh.h[3] / TWO_PI**2
