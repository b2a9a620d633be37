"""PETSc solvers for the layouts assembled by COO — 2x2k (``kinetic.problem4``) and the full
3-D k-mesh (``kinetic.problem3k``, whose current is ``Problem3K.number_current``) — and the
2x2k moments.

Semi-discrete equation per cell (volume V = h_x h_y h_kx h_ky, density D):

    V D ∂t f = −Σ_faces Φ_out f_upwind + s − V D (f − f_loc)/τ,

s the well-balanced correction (upwind fluxes of f_ref minus their exact values). Steady state:
KSP with prefix ``steady_`` (default GMRES + ASM/ILU); time evolution: PETSc TS (default
ARKIMEX: collisions implicit, advection explicit; ``-ts_type`` etc. override).

Moments per owned x-y cell (internal units): density n = Σ_n ∫[dk] D f (1/Å²) and number
current j_a = Σ_n ∫[dk] D ẋ_a f (1/(Å·ħ/eV)) — the scheme's own face fluxes averaged over a
cell's two a-faces; the charge current is −e j.
"""
from __future__ import annotations

import numpy as np

from kinetic.derivatives import axis_derivatives
from kinetic.mesh import gather_line

TWO_PI = 2 * np.pi


class Transport4:
    """Steady and transient solves of one ``Problem4`` or ``Problem3K``."""

    def __init__(self, problem):
        self.p = problem
        self.m = problem.mesh
        self.VD = problem.volume * problem.D
        self._wb = {}

    # ------------------------------------------------------------------ fluxes of a field
    def _well_balanced(self) -> bool:
        return bool(self.p.phys.well_balanced)

    def scheme_face_fluxes(self, fvec, E):
        """The scheme's flux of f through every face ⊥ a of the owned cells (n_a + 1 along a):
        upwind of f − f_ref plus the exact reference fluxes when well-balanced."""
        p, m = self.p, self.m
        g = m.ghosted(fvec)  # (nxl + 2, ny, nkx, nky, nb): one ghost x-column per side
        F = p.face_fluxes(E)
        wb = self._well_balanced()
        if wb:  # upwind of f − f_ref (the x-neighbours' f_ref from a ghosted field)
            rvec = m.to_vec(p.reference())
            g = g - m.ghosted(rvec)
            rvec.destroy()
            X = p.reference_fluxes(E)
        out = []
        for a in range(len(F)):
            if a == 0:
                left, right = g[:-1], g[1:]
            else:
                c = g[1:-1]
                left = np.concatenate([np.take(c, [-1], axis=a), c], axis=a)  # periodic
                right = np.concatenate([c, np.take(c, [0], axis=a)], axis=a)
            flux = np.maximum(F[a], 0.0) * left + np.minimum(F[a], 0.0) * right
            out.append(flux + X[a] if wb else flux)
        return out

    def wb_source(self, E, M, coll):
        """s = M_adv f_ref − Σ_out X (exact reference fluxes); zero unless well-balanced."""
        p, m = self.p, self.m
        if not self._well_balanced():
            return 0.0
        key = (p.phys.mu, p.phys.kT) + tuple(np.atleast_1d(E))
        if key not in self._wb:
            from kinetic.pfaffian import divergence

            ref = p.reference()
            r, y = m.to_vec(ref), m.create_vec()
            M.mult(r, y)
            adv = m.from_vec(y) - coll * ref
            r.destroy()
            y.destroy()
            self._wb = {key: adv - divergence(p.reference_fluxes(E))}
        return self._wb[key]

    # ------------------------------------------------------------------ steady state
    def steady(self, E=None, prefix="steady_"):
        """Steady state by KSP; returns (f Vec, info dict)."""
        from petsc4py import PETSc

        from kinetic.errors import KineticError

        p, m = self.p, self.m
        E = p.phys.E if E is None else E
        coll = self.VD / p.tau
        A = p.matrix(E, coll)
        b = m.to_vec(coll * p.f_loc + self.wb_source(E, A, coll))
        x = m.to_vec(p.f_loc)
        ksp = PETSc.KSP().create(comm=m.comm)
        ksp.setOptionsPrefix(prefix)
        ksp.setOperators(A)
        ksp.setType("gmres")
        ksp.getPC().setType("asm")
        ksp.setTolerances(rtol=1e-12, atol=1e-14, max_it=2000)
        ksp.setInitialGuessNonzero(True)
        ksp.setFromOptions()
        if ksp.getType() == "preonly":
            ksp.setInitialGuessNonzero(False)
        ksp.solve(b, x)
        info = {"solver": f"KSP {ksp.getType()} + PC {ksp.getPC().getType()}",
                "iterations": ksp.getIterationNumber(), "residual": ksp.getResidualNorm(),
                "converged_reason": int(ksp.getConvergedReason())}
        for obj in (ksp, b, A):
            obj.destroy()
        if info["converged_reason"] < 0:
            raise KineticError(f"steady solve did not converge (KSP reason "
                               f"{info['converged_reason']} after {info['iterations']} "
                               "iterations); try -steady_ksp_type preonly -steady_pc_type lu")
        return x, info

    # ------------------------------------------------------------------ time evolution
    def transient(self, f0, t_end, ts_type="arkimex", dt=None, monitor=None, rtol=1e-7,
                  atol=1e-10):
        """Integrate f0 (Vec, modified in place) to t_end (ħ/eV) at the static physics.E with
        PETSc TS; ARKIMEX treats the collisions implicitly. Returns (f0, info)."""

        from kinetic.solvers import check_ts_type, integrate

        p, m = self.p, self.m
        E = p.phys.E
        A = p.matrix(E, 0.0)  # advection only
        src = self.wb_source(E, A, 0.0)
        inv_VD = 1.0 / self.VD
        tmp = m.create_vec()

        def advection(t, u, F, imex):
            A.mult(u, tmp)
            rhs = (src - m.from_vec(tmp)) * inv_VD
            if not imex:
                rhs -= (m.from_vec(u) - p.f_loc) / p.tau
            m.to_vec(rhs, F)

        def ifunction(t, u, udot, F):
            m.to_vec(m.from_vec(udot) + (m.from_vec(u) - p.f_loc) / p.tau, F)

        inv_tau = m.to_vec(np.broadcast_to(1.0 / np.asarray(p.tau, float), self.VD.shape))
        check_ts_type(ts_type)
        try:
            info = integrate(f0, t_end, ts_type=ts_type, dt=dt or 0.9 * self.cfl_dt(A),
                             rtol=rtol, atol=atol, monitor=monitor, rhs=advection,
                             ifunction=ifunction, inv_tau=inv_tau)
        finally:
            for obj in (inv_tau, A, tmp):
                obj.destroy()
        return f0, info

    def cfl_dt(self, A) -> float:
        """Largest stable explicit step: min over cells of V D / (total outflow) (ħ/eV)."""
        from mpi4py import MPI

        d = A.getDiagonal()
        out = self.m.from_vec(d)
        d.destroy()
        local = float(np.min(self.VD / np.maximum(out, 1e-300)))
        return self.m.comm.tompi4py().allreduce(local, op=MPI.MIN)

    # ------------------------------------------------------------------ moments
    def density(self, fvec) -> np.ndarray:
        """n(x, y) = Σ_n ∫[dk] D f for the owned x-y cells (nxl, ny), 1/Å²; with obs_quadrupole
        plus ½ ∂²_x Σ_n ∫[dk] g_{k_x k_x} f (x-textures, physics.md §6.1; spectral on a periodic x,
        fourth-order on an open one)."""
        p, m = self.p, self.m
        f = m.from_vec(fvec)
        n = (p.D * f).sum(axis=(2, 3, 4)) * p.measure()
        if "obs_quadrupole" in p.phys.terms:
            Q = gather_line(m.comm, (p.g_kxkx * f).sum(axis=(2, 3, 4)) * p.measure())  # (nx, ny)
            d2 = axis_derivatives(m.axes[0])[1]  # ∂²_x as in Ω″ (kinetic.texture2x2k)
            n = n + 0.5 * d2(Q, 0)[m.s:m.e]
        return n

    def current(self, fvec, E=None) -> np.ndarray:
        """j(x, y) = Σ_n ∫[dk] D ẋ f for the owned x-y cells (nxl, ny, 2): the scheme's x- and
        y-face fluxes averaged over each cell's two faces (number current, 1/(Å ħ/eV))."""
        E = self.p.phys.E if E is None else E
        F = self.scheme_face_fluxes(fvec, E)
        h = self.m.h
        out = []
        for a, other in ((0, h[1]), (1, h[0])):
            n = F[a].shape[a] - 1
            avg = 0.5 * (np.take(F[a], range(n), axis=a) + np.take(F[a], range(1, n + 1), axis=a))
            out.append(avg.sum(axis=(2, 3, 4)) / (other * TWO_PI**2))
        return np.stack(out, -1)

    def mean(self, xy_field) -> np.ndarray:
        """Average of an owned x-y field (nxl, ny, ...) over the whole x-y box (all ranks)."""
        nx, ny = self.m.axes[0].n, self.m.axes[1].n
        return self.m.allsum(np.asarray(xy_field).sum(axis=(0, 1))) / (nx * ny)
