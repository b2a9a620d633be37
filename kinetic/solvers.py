"""PETSc solvers for a ``Problem``: steady state (KSP) and time evolution (TS).

Semi-discrete equation per cell (area A, density D, outward face fluxes F_out):

    A D ∂t f = −Σ_faces F_out f_upwind + s − A D (f − f_loc)/τ

with s the reservoir inflow and the well-balanced correction (``kinetic.operator``).
Every PETSc object has an options prefix (``steady_`` for the KSP, ``ts_`` is PETSc's own for
the TS and its inner solvers: ``-ts_type``, ``-ts_monitor``, ``-ts_dt`` ...) and calls
``setFromOptions``, so command-line options reach every solver.
"""
from __future__ import annotations

import numpy as np

from kinetic.problem import Problem


def check_ts_type(ts_type: str) -> None:
    """ConfigError unless ``ts_type`` names a PETSc TS type (checked on a serial TS)."""
    from petsc4py import PETSc

    ts = PETSc.TS().create(comm=PETSc.COMM_SELF)
    try:
        ts.setType(ts_type)
    except PETSc.Error:
        from kinetic.errors import ConfigError

        raise ConfigError(f"solver.ts_type = {ts_type!r}: not a PETSc TS type (e.g. arkimex, "
                          "ssp, rk, beuler, cn, theta)") from None
    finally:
        ts.destroy()


def collision_jacobian(ts, f0, inv_tau):
    """Attach the implicit (ARKIMEX) collision Jacobian shift·I + diag(1/τ) to ``ts``: a
    diagonal AIJ matrix of f0's layout, re-filled from the Vec ``inv_tau`` at every shift.
    Returns the matrix (the caller destroys it)."""
    from petsc4py import PETSc

    def ijacobian(ts, t, u, udot, shift, J, P):
        P.zeroEntries()
        P.setDiagonal(inv_tau)
        P.shift(shift)
        if J != P:
            J.assemble()

    J = PETSc.Mat().createAIJ(((f0.getLocalSize(), None),) * 2, nnz=1, comm=f0.getComm())
    J.setUp()
    zero = f0.duplicate()
    zero.set(0.0)
    J.setDiagonal(zero)  # the diagonal pattern of shift·I + I/τ
    zero.destroy()
    J.assemble()
    ts.setIJacobian(ijacobian, J)
    return J


def integrate(f0, t_end, *, ts_type, dt, rhs, ifunction, inv_tau, t0=0.0, rtol=1e-7,
              atol=1e-10, monitor=None, adapt=True) -> dict:
    """Integrate f0 (Vec, in place) from t0 to t_end with a PETSc TS (options database last:
    -ts_type, -ts_monitor, -ts_dt ...). rhs(t, u, F, imex) is the explicit right-hand side — the
    advection only when the final type is ARKIMEX (imex = True), whose implicit part
    ifunction(t, u, udot, F) = udot + (u − f_loc)/τ has the Jacobian shift + diag(inv_tau);
    ``adapt=False`` keeps dt fixed (``-ts_adapt_type`` overrides); monitor(step, t, u).
    Returns the info dict (solver, steps, time, converged_reason)."""
    from petsc4py import PETSc

    ts = PETSc.TS().create(comm=f0.getComm())
    ts.setProblemType(PETSc.TS.ProblemType.NONLINEAR)
    ts.setType(ts_type)
    ts.setTimeStep(dt)
    ts.setTime(t0)  # > 0 when continuing from a checkpoint
    ts.setMaxTime(t_end)
    ts.setMaxSteps(10**9)
    ts.setExactFinalTime(PETSc.TS.ExactFinalTime.MATCHSTEP)
    ts.setTolerances(rtol=rtol, atol=atol)  # adaptive schemes (arkimex, rk); -ts_rtol overrides
    if monitor is not None:
        ts.setMonitor(lambda ts, i, t, u: monitor(i, t, u))
    opts = PETSc.Options()
    fixed = not adapt and not opts.hasName("ts_adapt_type")
    if fixed:  # petsc4py has no TSAdapt object: set the option for this TS only
        opts.setValue("ts_adapt_type", "none")
    ts.setFromOptions()
    if fixed:
        opts.delValue("ts_adapt_type")
    imex = ts.getType() == "arkimex"  # -ts_type may change the scheme: the split follows it
    ts.setRHSFunction(lambda ts, t, u, F: rhs(t, u, F, imex), f0.duplicate())
    J = None
    if imex:
        ts.setIFunction(lambda ts, t, u, udot, F: ifunction(t, u, udot, F), f0.duplicate())
        J = collision_jacobian(ts, f0, inv_tau)
    try:
        ts.solve(f0)
        return {"solver": f"TS {ts.getType()}", "steps": ts.getStepNumber(),
                "time": ts.getTime(), "converged_reason": int(ts.getConvergedReason())}
    finally:
        ts.destroy()
        if J is not None:
            J.destroy()


def constant_field(E):
    E = tuple(np.atleast_1d(np.asarray(E, float)))
    return lambda t: E


class Transport:
    """Matrix-free and assembled transport for one Problem."""

    def __init__(self, problem: Problem):
        self.p = problem
        m = problem.mesh
        self.m = m
        self.AD = m.cell_area * problem.D  # (n2, n1l, nb)
        self.local = m.da.createLocalVec()
        (gs1, ge1), (gs2, ge2) = m.da.getGhostRanges()
        self.gshape = (ge2 - gs2, ge1 - gs1, m.nb)
        self.o1, self.o2 = m.s1 - gs1, m.s2 - gs2  # owned offset inside the ghosted block
        self._src_cache = {}
        self.damping = 0.3  # MUSCL steady: pseudo-time A D/Δt added to the correction operator, Δt = τ/damping

    # ------------------------------------------------------------------ matrix-free pieces
    def _ghosted(self, fvec):
        self.m.da.globalToLocal(fvec, self.local)
        return self.local.getArray(readonly=True).reshape(self.gshape)

    def _ghost_values(self, fvec) -> np.ndarray:
        """Ghosted cell values; non-periodic x edges get reservoir values f_FD(μ_L,R) or, for
        walls, the boundary cell's own value (zero gradient for the reconstruction)."""
        g = self._ghosted(fvec)
        op, ph = self.p.op, self.p.phys
        if not (op.left_edge or op.right_edge):
            return g
        g = g.copy()
        n1l, n2 = self.m.local_shape
        o1, o2, w = self.o1, self.o2, self.o1  # ghost width along q1
        rows = slice(o2, o2 + n2)
        if op.left_edge:
            edge = (self.p.f_boundary(ph.mu_left)[:, 0] if ph.boundary == "reservoir"
                    else g[rows, o1])
            g[rows, o1 - w:o1] = edge[:, None, :]
        if op.right_edge:
            edge = (self.p.f_boundary(ph.mu_right)[:, -1] if ph.boundary == "reservoir"
                    else g[rows, o1 + n1l - 1])
            g[rows, o1 + n1l:o1 + n1l + w] = edge[:, None, :]
        return g

    @staticmethod
    def _van_leer(dm, dp):
        """Limited slope (van Leer): 2 dm dp/(dm + dp) where dm dp > 0, else 0."""
        prod = dm * dp
        return np.where(prod > 0, 2 * prod / np.where(prod > 0, dm + dp, 1.0), 0.0)

    def scheme_face_fluxes(self, g, E, muscl=None):
        """Fluxes F f_face through q1-faces (n2, n1l+1, nb) and q2-faces (n2+1, n1l, nb) of a
        ghosted field g: first-order upwind, or MUSCL with the van Leer limiter (default: the
        physics' reconstruction)."""
        n1l, n2 = self.m.local_shape
        o1, o2 = self.o1, self.o2
        F1, F2 = self.p.op.face_fluxes(E)
        rows, cols = slice(o2, o2 + n2), slice(o1, o1 + n1l)
        if muscl is None:
            muscl = self.p.phys.reconstruction == "muscl"
        if muscl:
            c1 = g[rows, o1 - 2:o1 + n1l + 2]  # cells −2 .. n1l+1 along q1
            s1 = self._van_leer(c1[:, 1:-1] - c1[:, :-2], c1[:, 2:] - c1[:, 1:-1])  # cells −1..n1l
            left = c1[:, 1:-2] + 0.5 * s1[:, :-1]  # face a: from cell a−1
            right = c1[:, 2:-1] - 0.5 * s1[:, 1:]  # face a: from cell a
            c2 = g[o2 - 2:o2 + n2 + 2, cols]
            s2 = self._van_leer(c2[1:-1] - c2[:-2], c2[2:] - c2[1:-1])
            below = c2[1:-2] + 0.5 * s2[:-1]
            above = c2[2:-1] - 0.5 * s2[1:]
        else:
            left, right = g[rows, o1 - 1:o1 + n1l], g[rows, o1:o1 + n1l + 1]
            below, above = g[o2 - 1:o2 + n2, cols], g[o2:o2 + n2 + 1, cols]
        return (np.maximum(F1, 0.0) * left + np.minimum(F1, 0.0) * right,
                np.maximum(F2, 0.0) * below + np.minimum(F2, 0.0) * above)

    def upwind_face_fluxes(self, fvec, E):
        """The scheme's fluxes of f itself (no well-balanced correction)."""
        return self.scheme_face_fluxes(self._ghost_values(fvec), E)

    def _reference(self, E):
        """(ghosted f_ref, exact face fluxes X1, X2 of f_ref) for the well-balanced scheme,
        f_ref = f_FD(ε̃; μ, T) at the physics' current μ, T (cached per μ, T and E)."""
        ph = self.p.phys
        rkey = ("ref", ph.mu, ph.kT)
        key = (ph.mu, ph.kT) + tuple(np.atleast_1d(E))
        if rkey not in self._src_cache:
            if len(self._src_cache) > 64:
                self._src_cache = {}
            ref = self.p.field(self.p.op.reference(ph.mu, ph.kT))
            self._src_cache[rkey] = self._ghost_values(ref).copy()
            ref.destroy()
        if key not in self._src_cache:
            self._src_cache[key] = self.p.op.exact_reference_fluxes(E, ph.mu, ph.kT)
        return self._src_cache[rkey], self._src_cache[key]

    def _well_balanced(self) -> bool:
        return self.p.phys.well_balanced and self.p.phys.boundary != "reservoir"

    def face_fluxes(self, fvec, E):
        """The scheme's phase-space fluxes of f through q1- and q2-faces (conservative):
        scheme(f − f_ref) + exact(f_ref) when well-balanced, else scheme(f)."""
        if not self._well_balanced():
            return self.scheme_face_fluxes(self._ghost_values(fvec), E)
        gref, (X1, X2) = self._reference(E)  # first: building it reuses the local work vector
        P1, P2 = self.scheme_face_fluxes(self._ghost_values(fvec) - gref, E)
        return P1 + X1, P2 + X2

    def flux_divergence(self, fvec, E) -> np.ndarray:
        """Σ_faces F_out f_face for every owned cell, (n2, n1l, nb), including corrections."""
        P1, P2 = self.face_fluxes(fvec, E)
        return P1[:, 1:] - P1[:, :-1] + P2[1:] - P2[:-1]

    def source(self, E) -> np.ndarray:
        """Reservoir inflow for the assembled matrix (n2, n1l, nb): −min(F_out, 0) f_FD(μ_L,R)."""
        p, ph = self.p, self.p.phys
        if ph.boundary != "reservoir":
            return np.zeros(self.AD.shape)
        return p.op.boundary_inflow(E, p.f_boundary(ph.mu_left), p.f_boundary(ph.mu_right))

    def wb_source(self, E) -> np.ndarray:
        """The well-balanced correction as a source for the assembled first-order upwind
        matrix M: s = M f_ref − Σ_faces X(f_ref), so that M f − s = upwind(f − f_ref) + X."""
        if not self._well_balanced():
            return np.zeros(self.AD.shape)
        gref, (X1, X2) = self._reference(E)
        U1, U2 = self.scheme_face_fluxes(gref, E, muscl=False)
        return (U1[:, 1:] - U1[:, :-1] + U2[1:] - U2[:-1]) - (X1[:, 1:] - X1[:, :-1] + X2[1:] - X2[:-1])

    # ------------------------------------------------------------------ steady state
    def steady(self, E=None, f_guess=None, prefix="steady_"):
        """Solve the steady state with a KSP; returns (f Vec, info dict).

        ``E`` replaces the transport field of the advection only: the fields of a problem with
        field-induced second-order terms (``Problem.field_dependent``) keep physics.E — solve
        another field on ``Problem.with_field(E)`` (``kinetic.run.equilibrium_reference``)."""
        from petsc4py import PETSc

        p, ph = self.p, self.p.phys
        E = ph.E if E is None else E
        if ph.number_conserving:
            return self._steady_number_conserving(E, prefix)
        coll = self.AD / p.tau
        A = p.op.matrix(E, coll)
        b = p.field(coll * p.f_loc + self.source(E) + self.wb_source(E))
        x = p.field(p.f_loc) if f_guess is None else f_guess.copy()
        ksp = PETSc.KSP().create(comm=self.m.comm)
        ksp.setOptionsPrefix(prefix)
        ksp.setOperators(A)
        # defaults measured with `make bench` (2×10⁶ unknowns, 0x2k in B): GMRES with the
        # four-direction sweep preconditioner (kinetic.operator.SweepPC) converges in 3
        # iterations where BiCGStab + ILU(1) took 54 (steady solve incl. assembly 3.6 → 0.6 s
        # on one rank); every choice is overridable (-steady_ksp_type, -steady_ksp_pc_side,
        # -steady_pc_type ilu, -steady_sweep_type ilu, -steady_sweep_residual local, ...)
        self._default_steady_solver(ksp)
        opts, added = PETSc.Options(prefix), []
        ksp.setTolerances(rtol=1e-12, atol=1e-14, max_it=2000)
        ksp.setInitialGuessNonzero(True)
        try:
            ksp.setFromOptions()
            if ksp.getType() == "preonly":  # a direct solve (-steady_pc_type lu) takes no guess
                ksp.setInitialGuessNonzero(False)
            ksp.solve(b, x)
        finally:
            for key in added:
                del opts[key]
        info = {"solver": f"KSP {ksp.getType()} + PC {self._pc_name(ksp.getPC())}",
                "iterations": ksp.getIterationNumber(),
                "residual": ksp.getResidualNorm(),
                "converged_reason": int(ksp.getConvergedReason())}
        ksp.destroy()
        b.destroy()
        if info["converged_reason"] < 0:
            A.destroy()
            from kinetic.errors import KineticError

            raise KineticError(f"steady solve did not converge (KSP reason "
                               f"{info['converged_reason']} after {info['iterations']} iterations);"
                               " try -steady_ksp_type preonly -steady_pc_type lu, or more -steady_ksp_max_it")
        if ph.reconstruction == "muscl":
            # damped defect correction: P = first-order operator + A D/Δt (pseudo time Δt = τ)
            p.op.matrix(E, (1 + self.damping) * coll, mat=A)
            x, info = self._steady_muscl(E, x, A, prefix, info)
        A.destroy()
        return x, info

    def _steady_number_conserving(self, E, prefix):
        """Steady state with the number-conserving collision (f_loc depends on f through μ(x)):
        SNES (default Anderson mixing, prefix ``steady_``: -steady_snes_type, -steady_snes_rtol,
        -steady_snes_monitor …) on F(f) = G(f) − f with the Picard map
        G(f) = M⁻¹[A D f_loc(f)/τ + s] (M: the linear operator with collisions, one KSP set-up).
        Each Picard step, and every Anderson combination of them, keeps Σ A D f — the particle
        number of the starting f_FD(ε̃ − μ) — so the steady state is the one with that number.
        First-order upwind and constant τ."""
        from petsc4py import PETSc

        p, ph = self.p, self.p.phys
        if ph.reconstruction != "upwind" or callable(ph.tau):
            from kinetic.errors import ConfigError

            raise ConfigError("physics.number_conserving = true in a steady run needs "
                              "solver.reconstruction = \"upwind\" and a constant τ (or use a "
                              "transient run)")
        coll = self.AD / p.tau
        A = p.op.matrix(E, coll)
        ksp = self._multi_rhs_ksp(A, prefix)
        src = self.source(E) + self.wb_source(E)
        m = self.m

        def residual(snes, x, F):  # F = G(x) − x
            rhs = p.field(coll * p.local_equilibrium(m.local_view(x)) + src)
            ksp.solve(rhs, F)
            rhs.destroy()
            F.axpy(-1.0, x)

        x = p.field(p.f_loc)
        r = x.duplicate()
        snes = PETSc.SNES().create(comm=m.comm)
        snes.setOptionsPrefix(prefix)
        snes.setType("anderson")
        snes.setFunction(residual, r)
        snes.setTolerances(rtol=1e-12, atol=1e-13, stol=1e-14, max_it=1000)
        # damped mixing: plain Picard (β = 1) diverges or stalls on metallic two-band rings
        # (measured: -snes_anderson_beta 1 and 0.7 stall at 1000 iterations, 0.5 converges)
        opts = PETSc.Options(prefix)
        defaults = {k: v for k, v in (("snes_anderson_beta", "0.5"), ("snes_anderson_m", "10"))
                    if not opts.hasName(k)}
        for k, v in defaults.items():
            opts[k] = v
        try:
            snes.setFromOptions()
        finally:
            for k in defaults:
                del opts[k]
        try:
            snes.solve(None, x)
            info = {"solver": f"SNES {snes.getType()} (Picard map: KSP {ksp.getType()} + PC "
                              f"{self._pc_name(ksp.getPC())})",
                    "iterations": snes.getIterationNumber(),
                    "residual": snes.getFunctionNorm(),
                    "converged_reason": int(snes.getConvergedReason())}
        finally:
            snes.destroy()
            ksp.destroy()
            A.destroy()
            r.destroy()
        if info["converged_reason"] < 0:
            from kinetic.errors import KineticError

            raise KineticError(f"number-conserving steady state did not converge (SNES reason "
                               f"{info['converged_reason']} after {info['iterations']} "
                               "iterations); try -steady_snes_max_it or a transient run")
        return x, info

    def _default_steady_solver(self, ksp):
        """The steady KSP defaults (before setFromOptions): GMRES, right-preconditioned (it
        stops on the true residual ‖b − A x‖ and needs one preconditioner application per
        iteration less than left), by the four-direction sweeps of ``kinetic.operator.SweepPC``
        on the assembled operator."""
        from petsc4py import PETSc

        from kinetic.operator import SweepPC

        ksp.setType("gmres")
        ksp.setPCSide(PETSc.PC.Side.RIGHT)
        pc = ksp.getPC()
        pc.setType("python")
        pc.setPythonContext(SweepPC(self.m.local_shape[1],
                                    reversed_block=self.p.op.reversed_block))

    @staticmethod
    def _pc_name(pc) -> str:
        """The PC type; for a python PC its context's ``name`` (e.g. "sweeps(sor)")."""
        name = pc.getType()
        if name == "python":
            name = getattr(pc.getPythonContext(), "name", name)
        return name

    def field_derivative(self, fvec, direction) -> np.ndarray:
        """A (ê·∇_k f) at the owned cells (n2, n1l, dof): the field advection per unit field,
        ∇_k·(D k̇ f) = −E ê·∇_k f (the field part of D k̇ is −E in every layout), by central
        differences of ghosted values; A = cell area. Homogeneous layouts and 1x1k."""
        layout = self.p.layout
        if layout not in ("0x1k", "0x2k", "0x3k", "1x1k"):
            from kinetic.errors import ConfigError

            raise ConfigError(f"perturbative orders: layout {layout!r} not supported (0x1k, "
                              "0x2k, 0x3k, 1x1k)")
        g = self._ghosted(fvec)
        n1l, n2 = self.m.local_shape
        o1, o2 = self.o1, self.o2
        a1, a2 = self.m.axes

        def shifted(d1, d2):
            return g[o2 + d2:o2 + d2 + n2, o1 + d1:o1 + d1 + n1l]

        d1 = (shifted(1, 0) - shifted(-1, 0)) / (2 * a1.h)
        d2 = (shifted(0, 1) - shifted(0, -1)) / (2 * a2.h)
        grads = {"0x1k": (d1,), "1x1k": (d2,)}.get(layout, (d1, d2))
        e = np.atleast_1d(np.asarray(direction, float))
        return self.m.cell_area * sum(ei * gi for ei, gi in zip(e, grads))

    def _multi_rhs_ksp(self, A, prefix):
        """One KSP for many right-hand sides of the operator A (the steady defaults, options)."""
        from petsc4py import PETSc

        ksp = PETSc.KSP().create(comm=self.m.comm)
        ksp.setOptionsPrefix(prefix)
        ksp.setOperators(A)
        self._default_steady_solver(ksp)  # as in steady(): GMRES + four-direction sweeps
        ksp.setTolerances(rtol=1e-12, atol=1e-14, max_it=2000)
        ksp.setFromOptions()
        return ksp

    def _solve_rhs(self, ksp, rhs, what):
        """Solve for one right-hand side given as cell values; KineticError if KSP fails."""
        b = self.p.field(rhs)
        x = b.duplicate()
        ksp.solve(b, x)
        b.destroy()
        if ksp.getConvergedReason() < 0:
            from kinetic.errors import KineticError

            raise KineticError(f"{what}: KSP did not converge")
        return x

    def steady_orders(self, direction, order=2, prefix="steady_"):
        """Perturbative steady states in a uniform field E ê: f = f0 + E f1 + E² f2 + …, all from
        ONE operator M0 (the E = 0 upwind matrix with collisions) and one KSP set-up:
        M0 f0 = b0 and M0 f_n = A ê·∇_k f_{n−1} (central differences, so no upwind diffusion
        in the field direction). Returns [f0, f1, …, f_order] (Vecs; f_n per unit Eⁿ, V/Å).
        Needs the fixed-μ collision, a constant τ and no field-dependent fields."""
        p, ph = self.p, self.p.phys
        if ph.number_conserving or callable(ph.tau) or p.field_dependent or (
                p.layout == "1x1k" and ph.boundary != "periodic"):
            from kinetic.errors import ConfigError

            raise ConfigError("perturbative orders need the fixed-μ collision, a constant τ, no "
                              "field-induced second-order terms and (1x1k) a periodic x")
        zero = (0.0,) * len(np.atleast_1d(ph.E))
        coll = self.AD / p.tau
        A = p.op.matrix(zero, coll)
        ksp = self._multi_rhs_ksp(A, prefix)
        out = []
        try:
            rhs = coll * p.f_loc + self.source(zero) + self.wb_source(zero)
            for n in range(order + 1):
                out.append(self._solve_rhs(ksp, rhs, f"steady_orders (order {n})"))
                rhs = self.field_derivative(out[-1], direction)
        finally:
            ksp.destroy()
            A.destroy()
        return out

    def steady_sweep(self, points, E=None, prefix="steady_"):
        """Steady states for many (μ eV, k_BT eV) with ONE assembled operator and ONE KSP
        set-up — the operator depends on E, B and τ but not on μ, T, so a μ/T sweep of a
        response only changes the right-hand side. First-order upwind; returns [Vec]."""
        p, ph = self.p, self.p.phys
        if ph.number_conserving or ph.reconstruction != "upwind" or callable(ph.tau):
            from kinetic.errors import ConfigError

            raise ConfigError("steady_sweep: needs the fixed-μ collision, upwind reconstruction "
                              "and a constant τ (the operator must not depend on μ, T)")
        E = ph.E if E is None else E
        coll = self.AD / p.tau
        A = p.op.matrix(E, coll)
        ksp = self._multi_rhs_ksp(A, prefix)
        relax = p.eps_cell if "relax_to_corrected_energy" in ph.terms else p.eps_bare
        mu0, kT0 = ph.mu, ph.kT
        out = []
        try:
            for mu, kT in points:
                ph.mu, ph.kT = float(mu), float(kT)
                floc = 0.5 * (1.0 - np.tanh(0.5 * (relax - mu) / kT))
                out.append(self._solve_rhs(ksp, coll * floc + self.source(E) + self.wb_source(E),
                                           f"steady_sweep at μ = {mu} eV"))
        finally:
            ph.mu, ph.kT = mu0, kT0
            ksp.destroy()
            A.destroy()
        return out

    def residual(self, fvec, E) -> np.ndarray:
        """Steady residual Σ F_out f_face + A D (f − f_loc)/τ of the (possibly MUSCL) scheme."""
        f = self.m.local_view(fvec)
        return self.flux_divergence(fvec, E) + self.AD * (f - self.p.f_loc) / self.p.tau

    def _steady_muscl(self, E, x, P, prefix, first):
        """Newton–Krylov on the MUSCL residual: matrix-free Jacobian, preconditioned by the
        assembled first-order operator P; starts from the first-order solution x."""
        from petsc4py import PETSc

        snes = PETSc.SNES().create(comm=self.m.comm)
        snes.setOptionsPrefix(prefix)
        r = x.duplicate()
        snes.setFunction(lambda s, u, F: self.m.set_local(F, self.residual(u, E)), r)
        # defect correction: Newton steps with the damped first-order operator P as the
        # Jacobian (the limiter is not differentiable, so a matrix-free Jacobian stalls GMRES);
        # converges linearly. -steady_snes_mf_operator switches to Newton–Krylov.
        snes.setJacobian(lambda s, u, J, Pm: None, P, P)  # fixed: never recomputed
        snes.getLineSearch().setType("basic")
        snes.setTolerances(rtol=1e-10, atol=1e-15, stol=0.0, max_it=500)
        ksp = snes.getKSP()
        ksp.setType("gmres")
        ksp.getPC().setType("asm" if self.m.comm.getSize() > 1 else "ilu")
        ksp.setTolerances(rtol=1e-4, max_it=200)  # an approximate correction suffices
        snes.setMaxKSPFailures(10**6)  # an unconverged correction is still a correction
        snes.setFromOptions()
        snes.solve(None, x)
        info = {"solver": f"SNES {snes.getType()} defect correction (MUSCL residual, first-order "
                          f"operator, PC {ksp.getPC().getType()})",
                "iterations": snes.getIterationNumber(),
                "linear_iterations": snes.getLinearSolveIterations(),
                "residual": snes.getFunctionNorm(),
                "converged_reason": int(snes.getConvergedReason()),
                "first_order_iterations": first["iterations"]}
        for obj in (snes, r):
            obj.destroy()
        if info["converged_reason"] < 0:
            from kinetic.errors import KineticError

            raise KineticError(f"MUSCL steady solve did not converge (SNES reason "
                               f"{info['converged_reason']}); try -steady_snes_monitor, or "
                               "solver.reconstruction = \"upwind\"")
        return x, info

    # ------------------------------------------------------------------ time evolution
    def cfl_dt(self, E) -> float:
        """Largest stable explicit step of the advection (global min over cells)."""
        out = sum(np.maximum(F, 0.0) for F in self.p.op.outflows(E))
        local = np.min(self.AD / np.maximum(out, 1e-300)) if out.size else np.inf
        from mpi4py import MPI

        return self.m.comm.tompi4py().allreduce(local, op=MPI.MIN)

    def transient(self, f0, t_end, field=None, ts_type="arkimex", monitor=None, dt=None,
                  rtol=1e-7, atol=1e-10, t0=0.0, equilibrium=None, adapt=True):
        """Integrate from f0 (Vec, modified in place) to t_end with PETSc TS.

        field(t) -> E tuple (default: the static physics.E); monitor(step, t, f) is called every
        step; equilibrium(t, f) -> f_loc (n2, n1l, dof) replaces the problem's local equilibrium
        (time-dependent Hamiltonians, ``kinetic.pump``). ``ts_type`` "arkimex" treats collisions
        implicitly and advection explicitly; "ssp" / "rk" / "beuler" ... integrate the full
        right-hand side. ``adapt=False`` keeps the step dt fixed (``-ts_adapt_type`` overrides).
        """

        p, ph = self.p, self.p.phys
        field = field or constant_field(ph.E)
        inv_AD = 1.0 / self.AD
        m = self.m
        f_loc = equilibrium or (lambda t, f: p.local_equilibrium(f))

        def advection(t, u, F, imex):  # reservoir inflow enters through the ghost cells
            E = field(t)
            rhs = -self.flux_divergence(u, E) * inv_AD
            if not imex:
                f = m.local_view(u)
                rhs -= (f - f_loc(t, f)) / p.tau
            m.set_local(F, rhs)

        def ifunction(t, u, udot, F):
            f = m.local_view(u)
            m.set_local(F, m.local_view(udot) + (f - f_loc(t, f)) / p.tau)

        inv_tau = p.field(np.broadcast_to(1.0 / p.tau, self.AD.shape))
        check_ts_type(ts_type)
        step = 0.9 * self.cfl_dt(field(t0))
        if ts_type != "arkimex":
            from mpi4py import MPI

            tmin = m.comm.tompi4py().allreduce(float(np.min(p.tau)), op=MPI.MIN)  # same on all ranks
            step = min(step, 0.5 * tmin)
        try:
            info = integrate(f0, t_end, ts_type=ts_type, dt=dt or step, t0=t0, rtol=rtol,
                             atol=atol, monitor=monitor, adapt=adapt, rhs=advection,
                             ifunction=ifunction, inv_tau=inv_tau)
        finally:
            inv_tau.destroy()
        return f0, info

    def destroy(self):
        self.local.destroy()
