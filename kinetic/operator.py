"""Conservative finite-volume transport in a 2-D phase space with a stream function.

The kinetic equation ∂t(D f) + ∇·(D ξ̇ f) = −D (f − f_loc)/τ has an incompressible phase-space
flux D ξ̇ = (∂_{q2} ψ, −∂_{q1} ψ) (physics.md §3.2, §5.2). With ψ stored at cell corners the
face fluxes are corner differences,

    F1(i+½, j) = ψ(i+½, j+½) − ψ(i+½, j−½),     F2(i, j+½) = −[ψ(i+½, j+½) − ψ(i−½, j+½)],

so the discrete flow is exactly divergence-free (discrete Liouville) and Σ D f ΔA is conserved
to round-off. ψ = c·ε̃ + ψ_E, with ψ_E the (non-periodic, linear) part of a uniform field:

====== ===== ============================  ==================
layout   c     ψ_E                           (q1, q2)
====== ===== ============================  ==================
1x1k     1     E_x x                         (x, k)
0x1k    −1    −E x_d  (x_d a dummy axis)     (k, x_d)
0x2k    −B    −E_x k_y + E_y k_x             (k_x, k_y)
====== ===== ============================  ==================

Face values are first-order upwind. *Well-balanced* option (default): the operator acts on
f − f_ref, f_ref = f_FD(ε̃; μ0, T0), and the flux of f_ref is integrated exactly along faces
(the c·ε̃ part is c·ΔG with G' = f_FD, the ψ_E part is Δψ_E · f_ref(face midpoint)). Then the
equilibrium f_FD(ε̃) of a field-free run is stationary to round-off (physics.md V14.1) while
the scheme stays conservative and consistent.
"""
from __future__ import annotations

import numpy as np

from kinetic.mesh import PhaseMesh


def fermi(x):
    """Fermi–Dirac 1/(1 + e^x), overflow-free."""
    return 0.5 * (1.0 - np.tanh(0.5 * x))


class StreamOperator:
    """Upwind stream-function transport on a PhaseMesh for ``nb`` independent bands.

    Parameters
    ----------
    mesh : PhaseMesh
    eps_corner : (n2+1, n1l+1, nb) corrected energy ε̃ at the corners around owned cells, eV
    eps_cell : (n2, n1l, nb) ε̃ at owned cell centres (for f_loc and f_ref), eV
    D : (n2, n1l, nb) phase-space density at cell centres
    c : stream scale (see module table)
    psi_E : callable(Q1, Q2, E) -> field part of ψ at corner coordinates (same for all bands)
    boundary : q1 boundary when not periodic: "wall" | "reservoir"
    """

    def __init__(self, mesh: PhaseMesh, eps_corner, eps_cell, D, c, psi_E, boundary="wall"):
        self.mesh, self.c, self.psi_E_fn, self.boundary = mesh, c, psi_E, boundary
        self.eps_corner, self.eps_cell, self.D = eps_corner, eps_cell, D
        self.Q1c, self.Q2c = mesh.corner_points()
        self.A = mesh.cell_area
        n1l, n2 = mesh.local_shape
        self.n1l, self.n2, self.nb = n1l, n2, mesh.nb
        a1 = mesh.axes[0]
        self.left_edge = (not a1.periodic) and mesh.s1 == 0
        self.right_edge = (not a1.periodic) and mesh.e1 == a1.n
        self._pattern = None

    # ------------------------------------------------------------------ fluxes
    def psi(self, E) -> np.ndarray:
        """ψ at corners (n2+1, n1l+1, nb)."""
        return self.c * self.eps_corner + self.psi_E_fn(self.Q1c, self.Q2c, E)[..., None]

    def face_fluxes(self, E):
        """F1 (n2, n1l+1, nb) through q1-faces, F2 (n2+1, n1l, nb) through q2-faces."""
        p = self.psi(E)
        F1 = p[1:, :, :] - p[:-1, :, :]
        F2 = -(p[:, 1:, :] - p[:, :-1, :])
        if self.left_edge and self.boundary == "wall":
            F1[:, 0, :] = 0.0
        if self.right_edge and self.boundary == "wall":
            F1[:, -1, :] = 0.0
        return F1, F2

    def field_face_fluxes(self, E):
        """The ψ_E part of the face fluxes (same shapes, broadcast over bands)."""
        pE = self.psi_E_fn(self.Q1c, self.Q2c, E)[..., None]
        return pE[1:] - pE[:-1], -(pE[:, 1:] - pE[:, :-1])

    def outflows(self, E):
        """Outward fluxes of each owned cell through right, left, top, bottom faces."""
        F1, F2 = self.face_fluxes(E)
        return F1[:, 1:], -F1[:, :-1], F2[1:], -F2[:-1]

    # ------------------------------------------------------------------ assembled operator
    def _neighbours(self):
        m = self.mesh
        n1l, n2, nb = self.n1l, self.n2, self.nb
        b, a, n = np.meshgrid(np.arange(n2), np.arange(n1l), np.arange(nb), indexing="ij")
        i, j = a + m.s1, b + m.s2
        row = m.natural_index(i, j, n)
        cols = [m.natural_index(i + 1, j, n), m.natural_index(i - 1, j, n),
                m.natural_index(i, j + 1, n), m.natural_index(i, j - 1, n)]
        inside = [np.ones_like(row, bool)] * 4
        if not m.axes[0].periodic:
            inside[0] = (i + 1) < m.axes[0].n
            inside[1] = (i - 1) >= 0
        return row, cols, inside

    def matrix(self, E, collision_diag, mat=None):
        """Assemble M = upwind flux matrix + diag(collision_diag) by COO (pattern set once).

        collision_diag: (n2, n1l, nb) added on the diagonal (e.g. A D / τ).
        """
        from petsc4py import PETSc

        m = self.mesh
        if self._pattern is None:
            row, cols, inside = self._neighbours()
            R = m.petsc_index(row).ravel()
            C = [m.petsc_index(np.where(ins, c, row)).ravel() for c, ins in zip(cols, inside)]
            self._pattern = (R, C, [ins.ravel() for ins in inside])
        R, C, inside = self._pattern
        outs = [o.ravel() for o in self.outflows(E)]
        diag = collision_diag.ravel() + sum(np.maximum(o, 0.0) for o in outs)
        offd = [np.where(ins, np.minimum(o, 0.0), 0.0) for o, ins in zip(outs, inside)]
        vals = np.concatenate([diag] + offd)
        if mat is None:
            nloc = R.size
            mat = PETSc.Mat().createAIJ(((nloc, None), (nloc, None)), comm=m.comm)
            mat.setPreallocationCOO(np.concatenate([R] + [R] * 4), np.concatenate([R] + C))
            mat.setOptionsPrefix("kinetic_")
            mat.setFromOptions()
        mat.setValuesCOO(vals, addv=PETSc.InsertMode.INSERT_VALUES)
        mat.assemble()
        return mat

    def boundary_inflow(self, E, f_left, f_right) -> np.ndarray:
        """Reservoir source: −min(F_out, 0)·f_bc on boundary cells (n2, n1l, nb)."""
        src = np.zeros((self.n2, self.n1l, self.nb))
        if self.boundary != "reservoir":
            return src
        right, left, _, _ = self.outflows(E)
        if self.left_edge:
            src[:, 0] -= np.minimum(left[:, 0], 0.0) * f_left[:, 0]
        if self.right_edge:
            src[:, -1] -= np.minimum(right[:, -1], 0.0) * f_right[:, -1]
        return src

    # ------------------------------------------------------------------ well-balanced source
    def reference(self, mu0, kT0):
        return fermi((self.eps_cell - mu0) / kT0)

    def exact_reference_fluxes(self, E, mu0, kT0):
        """Exact face fluxes (X1, X2) of f_ref = f_FD(ε̃; μ0, T0): c ΔG + Δψ_E f_ref(face mid).

        G' = f_FD, so the c·ε̃ part is integrated exactly along each face; the well-balanced
        operator replaces the upwind flux of f_ref by these.
        """
        ec = self.eps_corner
        G = -kT0 * np.logaddexp(0.0, -(ec - mu0) / kT0)  # ∫ f_FD dε at corners
        P1, P2 = self.field_face_fluxes(E)
        f1 = fermi((0.5 * (ec[1:] + ec[:-1]) - mu0) / kT0)  # q1-face midpoints (n2, n1l+1, nb)
        f2 = fermi((0.5 * (ec[:, 1:] + ec[:, :-1]) - mu0) / kT0)  # q2-face midpoints
        X1 = self.c * (G[1:] - G[:-1]) + P1 * f1
        X2 = -self.c * (G[:, 1:] - G[:, :-1]) + P2 * f2
        if self.left_edge and self.boundary == "wall":
            X1[:, 0] = 0.0
        if self.right_edge and self.boundary == "wall":
            X1[:, -1] = 0.0
        return X1, X2
