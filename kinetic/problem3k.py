"""The general homogeneous 3D layout: the full k-mesh (k_x, k_y, k_z), any uniform E and B.

Equations of motion of a homogeneous band (charge −e, e = ħ = 1; physics.md §3.1–3.2,
Xiao, Chang & Niu 2010): D = 1 + B·Ω, ε̃ = ε − m·B (E1_gradient),

    D k̇ = −E − ∇_k ε̃ × B − (E·B) Ω,        D ẋ = ∇_k ε̃ + E × Ω + (∇_k ε̃ · Ω) B.

Discretization (finite volumes on the cells of the k-mesh, fluxes integrated over faces):
−E is constant; ∇ε̃ × B = ∇ × (ε̃ B), so its face flux is the circulation of W = −ε̃ B stored on
the cell edges (Stokes), exactly divergence-free; the anomaly term −(E·B)Ω uses the Berry flux
of each face (−arg of the Wilson loop of the band's eigenvectors, FHS), whose sum over a cell's
six faces is 2π times the monopole charge inside: zero for a gapped band (particle number
conserved to round-off) and the chiral anomaly's source at a Weyl node. Well-balanced
reference fluxes use W^G = −G(ε̃) B (G' = f_FD), so the field-free equilibrium is stationary to
round-off. The mesh is a ``PhaseMesh4`` with axes (k_x, k_y, k_z) and a folded axis of one
point (dof = bands), split along k_x; the matrix is assembled by COO (``kinetic.coo``).
Use the folded ``0x3k`` of ``kinetic.problem`` when E_z = 0 and B ∥ z (faster).

Second order (B = 0 only, physics.md §4.2, §4.5 (ii), V15): ``E2_bcp`` adds ε⁽²⁾ = ½ G^R_ij E_iE_j
to ε̃ (band velocity; with ``relax_to_corrected_energy`` the local equilibrium, IAD) and
``A2_shift_field`` adds Ω′ = ∇_k × (G^GYN E) to Ω in the anomalous velocity E × Ω (D stays 1
at B = 0, and the k-space fluxes are −E alone); the texture terms are the exact zeros of a
homogeneous band. These fields depend on E: ``with_field`` rebuilds them at another field.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from kinetic.coo import upwind_matrix
from kinetic.errors import ConfigError
from kinetic.geometry import band_geometry
from kinetic.mesh import Axis, collective
from kinetic.mesh4 import PhaseMesh4
from kinetic.operator import fermi
from kinetic.problem import cell_relaxation_time
from kinetic.semiclassics import (TERMS, check_solver_terms, corrected_energy, curvature_blocks,
                                  field_shift)

TWO_PI = 2 * np.pi
CYCLIC = ((0, 1, 2), (1, 2, 0), (2, 0, 1))  # (a, b, c): face ⊥ a spans (b, c)


def _vec3(v, name) -> np.ndarray:
    out = np.zeros(3)
    v = np.atleast_1d(np.asarray(v, float))
    if v.size > 3:
        raise ConfigError(f"{name} = {v.tolist()}: at most 3 components")
    out[:v.size] = v
    return out


class Problem3K:
    """Fields and fluxes of a homogeneous 3D band on the full k-mesh; collective over ``comm``.
    physics.E and physics.B are 3-vectors (V/Å, ħ/(eÅ²); a scalar B is B_z)."""

    layout = "0x3k"
    folded = False

    def __init__(self, model, n, physics, *, k_range=None, comm=None):
        ph = self.phys = physics
        ph.terms = check_solver_terms(ph.terms)
        self._args = (model, n, k_range, comm)
        self.E, self.B = _vec3(ph.E, "physics.electric_field"), _vec3(
            ph.B if np.ndim(ph.B) else (0.0, 0.0, ph.B), "physics.magnetic_field")
        second = sorted(t for t in ph.terms if TERMS[t].order == 2)
        if second and self.B.any():
            raise ConfigError(f"physics.terms: {second[0]!r} together with physics.magnetic_field "
                              "≠ 0 is not specified (physics.md §4.8 gives no B-dependent "
                              "second-order terms); set magnetic_field = 0 or switch it off")
        if "wk_correction" in ph.terms:
            raise ConfigError("physics.terms: wk_correction is implemented for 1x1k and 1x2k "
                              "(per k_y) so far")
        for key, bad, allowed in (("solver.reconstruction", ph.reconstruction != "upwind", "upwind"),
                                  ("physics.number_conserving", ph.number_conserving, "false")):
            if bad:
                raise ConfigError(f"{key} = {getattr(ph, key.split('.')[1])!r}: the general 0x3k "
                                  f"layout allows {allowed} so far")
        if getattr(model, "dim", None) != 3 or getattr(model, "dim_x", 0):
            raise ConfigError("model: the general 0x3k layout needs a homogeneous 3D model")
        self.model = model
        self.bands = tuple(range(model.nb)) if ph.bands is None else tuple(ph.bands)
        for b in self.bands:
            if not 0 <= b < model.nb:
                raise ConfigError(f"physics.bands: band {b} does not exist; the model has bands "
                                  f"0..{model.nb - 1}")
        self.mesh = PhaseMesh4(self._axes(model, n, k_range) + (Axis("fold", 1, 0.0, 1.0, True),),
                               len(self.bands), comm=comm)
        self.volume = float(np.prod(self.mesh.h[:3]))
        collective(self.mesh.comm, self._evaluate_fields)

    def _axes(self, model, n, k_range):
        rec = model.reciprocal
        if k_range is None:
            if rec is None:
                raise ConfigError("mesh.kmax: a continuum model needs a k-range")
            if not np.allclose(rec, np.diag(np.diag(rec))):
                raise ConfigError("mesh: the phase-space solver needs an orthogonal lattice "
                                  f"(reciprocal vectors along the axes); this model's are "
                                  f"{np.round(rec, 6).tolist()}")
            k_range = [(-g / 2, g / 2) for g in np.diag(rec)]
        if len(n) != 3 or min(n) < 2:
            raise ConfigError(f"mesh.k = {list(n)}: three axes of at least 2 cells")
        return tuple(Axis(name, int(m), lo, hi, True)
                     for name, m, (lo, hi) in zip(("kx", "ky", "kz"), n, k_range))

    @property
    def field_dependent(self) -> bool:
        """True when ε̃, Ω′ and f_loc depend on physics.E (a field-induced second-order term is
        on and E ≠ 0): the E = 0 reference then comes from ``with_field(0)``."""
        return bool({"A2_shift_field", "E2_bcp"} & self.phys.terms) and bool(self.E.any())

    def with_field(self, E) -> "Problem3K":
        """The same problem with its fields built at the uniform field E (3 components, V/Å)."""
        model, n, k_range, comm = self._args
        ph = dataclasses.replace(self.phys, E=tuple(_vec3(E, "physics.electric_field")))
        return Problem3K(model, n, ph, k_range=k_range,
                         comm=self.mesh.comm if comm is None else comm)

    # ------------------------------------------------------------------ fields
    def _points(self, corner):
        """Wave vectors (..., 3) of the owned points staggered by ``corner`` (3 flags)."""
        K = self.mesh.coordinates(tuple(corner) + (False,))[:3]
        shape = np.broadcast_shapes(*(k.shape for k in K))
        return np.stack([np.broadcast_to(k, shape) for k in K], -1)

    def _energy(self, corner):
        """ε̃ (..., nb) at staggered points: ε − m·B (E1_gradient) + ½ G^R_ij E_iE_j (E2_bcp)."""
        k = self._points(corner)
        terms = self.phys.terms
        if not (self.B.any() and "E1_gradient" in terms) and not (
                self.E.any() and "E2_bcp" in terms):
            ev = np.linalg.eigvalsh(self.model.hamiltonian(k))
            return ev[..., list(self.bands)]
        g = band_geometry(self.model.hamiltonian(k), self.model.dh_dk(k), n_x=0)
        return np.stack([corrected_energy(g, b, terms, B=self.B, E=self.E)
                         for b in self.bands], -1)

    def _field_shift_curvature(self):
        """Ω′ = ∇_k × A′, A′ = G^GYN E (A2_shift_field), at the owned cells (..., nb, 3): A′ at
        the cell corners, each derivative the corner differences along its axis averaged over
        the cell's four edges (second order in h)."""
        k = self._points((True,) * 3)
        g = band_geometry(self.model.hamiltonian(k), self.model.dh_dk(k), n_x=0)
        A = np.stack([field_shift(g, b, self.E) for b in self.bands], -2)  # (..., nb, 3)
        h = self.mesh.h

        def pair_mean(F, axis):
            n = F.shape[axis] - 1
            return 0.5 * (np.take(F, range(n), axis=axis) + np.take(F, range(1, n + 1), axis=axis))

        def d(F, b):  # ∂_b F at the cell centres
            out = np.diff(F, axis=b) / h[b]
            for other in {0, 1, 2} - {b}:
                out = pair_mean(out, other)
            return out

        return np.stack([d(A[..., c], b) - d(A[..., b], c) for _, b, c in CYCLIC], -1)

    def _evaluate_fields(self):
        ph = self.phys
        k = self._points((False,) * 3)
        g = band_geometry(self.model.hamiltonian(k), self.model.dh_dk(k), n_x=0)
        self.eps_bare = g.energy[..., list(self.bands)]
        self.eps_cell = np.stack([corrected_energy(g, b, ph.terms, B=self.B, E=self.E)
                                  for b in self.bands], -1)
        kk = [curvature_blocks(g, b, ph.terms)[0] for b in self.bands]  # (..., 3, 3)
        self.omega = np.stack([np.stack([O[..., 1, 2], O[..., 2, 0], O[..., 0, 1]], -1)
                               for O in kk], -2)  # Ω vector (..., nb, 3)
        if "A2_shift_field" in ph.terms and self.E.any():  # + Ω′ (B = 0: D stays 1)
            self.omega = self.omega + self._field_shift_curvature()
        self.D = 1.0 + self.omega @ self.B
        if np.any(self.D <= 0):
            raise ConfigError("phase-space density D = 1 + B·Ω ≤ 0 somewhere: the magnetic field "
                              "is too strong for semiclassics here")
        # ε̃ on the edges along each axis d (centre along d, corners along the others)
        self.eps_edge = [self._energy(tuple(c != d for c in range(3))) for d in range(3)]
        self.plaquettes = self._plaquette_fluxes()
        relax = self.eps_cell if "relax_to_corrected_energy" in ph.terms else self.eps_bare
        self.f_loc = fermi((relax - ph.mu) / ph.kT)
        self.tau = cell_relaxation_time(
            ph.tau, self.eps_bare, np.broadcast_to(np.asarray(self.bands), self.eps_bare.shape))

    def _plaquette_fluxes(self):
        """Berry flux Π_a through every face ⊥ a (corner along a, centres along b, c): −arg of
        the Wilson loop around the (b, c) plaquette, b then c (FHS; Ω_a = ∂_b A_c − ∂_c A_b)."""
        if "berry_kk" not in self.phys.terms:
            return [0.0] * 3
        k = self._points((True,) * 3)
        _, u = np.linalg.eigh(self.model.hamiltonian(k))
        u = u[..., :, list(self.bands)]
        shape = k.shape[:-1]

        def link(c):  # ⟨u(n)|u(n + e_c)⟩ per band
            a = np.take(u, range(shape[c] - 1), axis=c)
            b = np.take(u, range(1, shape[c]), axis=c)
            return np.einsum("...in,...in->...n", a.conj(), b)

        first = lambda A, ax: np.take(A, range(A.shape[ax] - 1), axis=ax)  # noqa: E731
        last = lambda A, ax: np.take(A, range(1, A.shape[ax]), axis=ax)  # noqa: E731
        out = []
        for a, b, c in CYCLIC:
            Lb, Lc = link(b), link(c)
            loop = first(Lb, c) * last(Lc, b) * np.conj(last(Lb, c)) * np.conj(first(Lc, b))
            out.append(-np.angle(loop))  # (..., fold, nb)
        return out

    # ------------------------------------------------------------------ fluxes
    def _face_mean_energy(self, a, b, c):
        """ε̃ at the centres of the faces ⊥ a: mean of the four edges around each face."""
        eb, ec = self.eps_edge[b], self.eps_edge[c]
        return 0.25 * (np.take(eb, range(eb.shape[c] - 1), axis=c)
                       + np.take(eb, range(1, eb.shape[c]), axis=c)
                       + np.take(ec, range(ec.shape[b] - 1), axis=b)
                       + np.take(ec, range(1, ec.shape[b]), axis=b))

    def _curl_fluxes(self, phi):
        """Face fluxes of ∇ × W, W_d = −φ(ε̃_edge_d) B_d: the circulation of W around each face
        (h_b [W_b(c−) − W_b(c+)] + h_c [W_c(b+) − W_c(b−)])."""
        h = self.mesh.h
        W = [-phi(self.eps_edge[d]) * self.B[d] for d in range(3)]
        out = []
        for a, b, c in CYCLIC:
            out.append(-h[b] * np.diff(W[b], axis=c) + h[c] * np.diff(W[c], axis=b))
        return out

    def face_fluxes(self, E, weight=None):
        """Φ_a (a = k_x, k_y, k_z) through the owned cells' faces, per band; ``weight(ε̃)``
        multiplies the −E and anomaly parts by f(ε̃ at the face) (reference fluxes)."""
        E = _vec3(E, "E")
        h = self.mesh.h
        EB = float(E @ self.B)
        curl = self._curl_fluxes(lambda e: e) if weight is None else self._curl_fluxes(weight[0])
        out = []
        for (a, b, c), F in zip(CYCLIC, curl):
            rest = -E[a] * h[b] * h[c] - EB * self.plaquettes[a]
            if weight is not None:
                rest = rest * weight[1](self._face_mean_energy(a, b, c))
            out.append(F + rest)
        return out

    def reference(self):
        return fermi((self.eps_cell - self.phys.mu) / self.phys.kT)

    def reference_fluxes(self, E):
        mu, kT = self.phys.mu, self.phys.kT
        G = lambda e: -kT * np.logaddexp(0.0, -(e - mu) / kT)  # noqa: E731
        return self.face_fluxes(E, weight=(G, lambda e: fermi((e - mu) / kT)))

    def matrix(self, E, collision_diag, mat=None):
        return upwind_matrix(self.mesh, self.face_fluxes(E), collision_diag, mat)

    def measure(self) -> float:
        """k-space cell volume / (2π)³."""
        return self.volume / TWO_PI**3

    # ------------------------------------------------------------------ moments
    def velocity(self) -> np.ndarray:
        """∇_k ε̃ at the cell centres (..., nb, 3): along a, the differences of the edge values
        along b (averaged over the two c-positions) and along c (over the two b-positions),
        averaged — a stencil symmetric under permutations of the axes."""
        h = self.mesh.h
        out = []
        for a, b, c in CYCLIC:
            grad = 0.0
            for along, other in ((b, c), (c, b)):
                d = np.diff(self.eps_edge[along], axis=a) / h[a]
                grad = grad + 0.25 * (np.take(d, range(d.shape[other] - 1), axis=other)
                                      + np.take(d, range(1, d.shape[other]), axis=other))
            out.append(grad)
        return np.stack(out, -1)

    def number_current(self, f, E=None) -> np.ndarray:
        """Σ_n ∫[dk] D ẋ f, D ẋ = v + E × Ω + (v·Ω) B (local part, (3,), per Å² ħ/eV)."""
        E = self.E if E is None else _vec3(E, "E")
        v = self.velocity()
        Dx = v + np.cross(E, self.omega) + np.einsum("...i,...i->...", v, self.omega)[..., None] * self.B
        return (Dx * f[..., None]).sum(axis=tuple(range(f.ndim))) * self.measure()
