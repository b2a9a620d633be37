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
    def _csr_pattern(self):
        """CSR pattern of the local rows, split like PETSc's MPIAIJ storage into the diagonal
        block (columns owned by this rank, local numbering) and the off-diagonal block (global
        numbering).

        Rows are (n2, n1l, nb) in the mesh's local ordering; each row has the slots (bottom,
        left, diagonal, right, top) = (q2 − 1, q1 − 1, self, q1 + 1, q2 + 1), q2 wrapping, q1
        wrapping when periodic. Interior cells of the local box have these columns in
        increasing order, all owned here: their pattern is written down directly. The cells
        on the box's edge (wrapped or off-rank neighbours, q1 walls, tiny meshes) are sorted
        per row (``order``), repeated columns merged (``dup``, values added like COO) and
        walls dropped."""
        from petsc4py import PETSc

        m, itype = self.mesh, PETSc.IntType
        n1l, n2, nb = self.n1l, self.n2, self.nb
        nloc = n2 * n1l * nb
        rstart = int(m.petsc_index_ij(m.s1, m.s2, 0))
        L = np.arange(nloc, dtype=itype)[:, None] + np.array(
            [-nb * n1l, -nb, 0, nb, nb * n1l], dtype=itype)
        edge = np.zeros((n2, n1l), bool)
        edge[[0, -1], :] = True
        edge[:, [0, -1]] = True
        jj, ii = np.nonzero(edge)
        spec = (nb * (ii + n1l * jj)[:, None] + np.arange(nb)).ravel()  # edge rows, ascending
        i = (m.s1 + ii)[:, None].repeat(nb, 1).ravel()
        j = (m.s2 + jj)[:, None].repeat(nb, 1).ravel()
        band = np.tile(np.arange(nb), ii.size)
        S = np.stack([m.petsc_index_ij(i + di, j + dj, band) for di, dj in
                      ((0, -1), (-1, 0), (0, 0), (1, 0), (0, 1))], axis=1).astype(np.int64)
        valid = np.ones(S.shape, bool)
        if not m.axes[0].periodic:
            valid[:, 1] = i - 1 >= 0
            valid[:, 3] = i + 1 < m.axes[0].n
        own = valid & (S >= rstart) & (S < rstart + nloc)
        big = np.int64(1) << 40
        key = np.where(own, S - rstart, np.where(valid, big + S, 4 * big))
        order = np.argsort(key, axis=1, kind="stable")
        key = np.take_along_axis(key, order, axis=1)
        S = np.take_along_axis(S, order, axis=1)
        own = np.take_along_axis(own, order, axis=1)
        valid = np.take_along_axis(valid, order, axis=1)
        dup = np.zeros(S.shape, bool)
        dup[:, 1:] = valid[:, 1:] & (key[:, 1:] == key[:, :-1])
        own &= ~dup
        off = valid & ~own & ~dup
        L[spec] = np.where(own, S - rstart, 0)
        cnt = np.full(nloc, 5, dtype=itype)
        cnt[spec] = own.sum(axis=1)
        full = bool((cnt[spec] == 5).all())
        dmask = None
        if not full:
            dmask = np.ones((nloc, 5), bool)
            dmask[spec] = own
        d_ptr = np.zeros(nloc + 1, dtype=itype)
        np.cumsum(cnt, out=d_ptr[1:])
        o_cnt = np.zeros(nloc, dtype=itype)
        o_cnt[spec] = off.sum(axis=1)
        o_ptr = np.zeros(nloc + 1, dtype=itype)
        np.cumsum(o_cnt, out=o_ptr[1:])
        return {"spec": spec, "order": order, "dup": dup if dup.any() else None, "keep": own,
                "dmask": dmask, "omask": off,
                "d": (d_ptr, L.ravel() if full else L[dmask]), "o": (o_ptr, S[off].astype(itype)),
                "parallel": m.comm.getSize() > 1}

    def matrix(self, E, collision_diag, mat=None):
        """Assemble M = upwind flux matrix + diag(collision_diag) (AIJ, pattern set once).

        collision_diag: (n2, n1l, nb) added on the diagonal (e.g. A D / τ).

        The matrix is created from CSR arrays that PETSc keeps without copying
        (MatCreateSeqAIJWithArrays / MatCreateMPIAIJWithSplitArrays): no preallocation and no
        sort (COO preallocation took 0.45 s at 2×10⁶ rows on one rank). ``mat`` — a matrix
        made here before by this operator — is re-assembled by writing its value arrays in
        place.
        """
        from petsc4py import PETSc

        m = self.mesh
        if self._pattern is None:
            self._pattern = self._csr_pattern()
        P = self._pattern
        csr = mat.getAttr("__csr__") if mat is not None else None
        if csr is not None:  # the arrays PETSc works on (MatCreate*WithArrays, no copy)
            vd, vo = (csr[0][2], csr[1][2]) if P["parallel"] else (csr[2], np.zeros(0))
        else:
            vd, vo = np.empty(P["d"][1].size), np.empty(P["o"][1].size)
        self._values(E, collision_diag, vd, vo)
        if mat is not None:
            if csr is None:  # converted in place (-kinetic_mat_type ...): set the values
                mat.setValuesCSR(*self._global_csr(vd, vo))
            mat.assemble()
            return mat
        nloc = self.n2 * self.n1l * self.nb
        if P["parallel"]:
            # PETSc renumbers the off-diagonal columns in place: give it a copy
            csr = ((*P["d"], vd), (P["o"][0], P["o"][1].copy(), vo))
        else:
            csr = (*P["d"], vd)
        mat = PETSc.Mat().createAIJWithArrays(((nloc, None), (nloc, None)), csr, comm=m.comm)
        mat.setOptionsPrefix("kinetic_")
        mat.setFromOptions()
        return mat

    def _global_csr(self, vd, vo):
        """(row pointers, global columns, values) of the local rows: diagonal-block entries
        then off-diagonal ones per row (for MatSetValuesCSR)."""
        from petsc4py import PETSc

        P, m = self._pattern, self.mesh
        (dp, dc), (op, oc) = P["d"], P["o"]
        cd, co = np.diff(dp), np.diff(op)
        ptr = np.zeros(dp.size, dtype=PETSc.IntType)
        np.cumsum(cd + co, out=ptr[1:])
        at_d = np.arange(dc.size) + np.repeat(ptr[:-1] - dp[:-1], cd)
        at_o = np.arange(oc.size) + np.repeat(ptr[:-1] + cd - op[:-1], co)
        cols = np.empty(ptr[-1], dtype=PETSc.IntType)
        vals = np.empty(ptr[-1])
        cols[at_d], vals[at_d] = dc + int(m.petsc_index_ij(m.s1, m.s2, 0)), vd
        cols[at_o], vals[at_o] = oc, vo
        return ptr, cols, vals

    def _values(self, E, collision_diag, vd, vo):
        """Write the matrix values into the CSR data arrays of the diagonal (vd) and
        off-diagonal (vo) blocks, a few q2 lines at a time (the temporaries stay in cache).
        Slots per row: bottom, left, diagonal, right, top; outflows through the faces are
        right F1[:, 1:], left −F1[:, :-1], top F2[1:], bottom −F2[:-1]; the diagonal is the
        collision term plus the positive outflows, an off-diagonal entry min(F_out, 0), i.e.
        minus the inflow from that neighbour."""
        P = self._pattern
        n2, rows = self.n2, self.n1l * self.nb
        F1, F2 = self.face_fluxes(E)
        coll = np.broadcast_to(collision_diag, (n2, self.n1l, self.nb))
        spec, order, dup, omask = P["spec"], P["order"], P["dup"], P["omask"]
        d_ptr, o_ptr, dmask = P["d"][0], P["o"][0], P["dmask"]
        full = dmask is None
        chunk = max(1, (1 << 16) // rows)
        buf = None if full else np.empty((chunk, self.n1l, self.nb, 5))
        for j0 in range(0, n2, chunk):
            j1 = min(n2, j0 + chunk)
            r0, r1 = j0 * rows, j1 * rows
            v = (vd[5 * r0:5 * r1].reshape(j1 - j0, self.n1l, self.nb, 5) if full
                 else buf[:j1 - j0])
            f1, f2 = F1[j0:j1], F2[j0:j1 + 1]
            p1, p2 = np.maximum(f1, 0.0), np.maximum(f2, 0.0)
            m1, m2 = f1 - p1, f2 - p2  # min(F, 0)
            d = v[..., 2]
            np.add(coll[j0:j1], p1[:, 1:], out=d)
            d -= m1[:, :-1]
            d += p2[1:]
            d -= m2[:-1]
            v[..., 3] = m1[:, 1:]
            np.negative(p1[:, :-1], out=v[..., 1])
            v[..., 4] = m2[1:]
            np.negative(p2[:-1], out=v[..., 0])
            flat = v.reshape(-1, 5)
            a, b = np.searchsorted(spec, (r0, r1))
            if b > a:  # edge rows: per-row order, merged duplicates, off-rank entries
                loc = spec[a:b] - r0
                vs = np.take_along_axis(flat[loc], order[a:b], axis=1)
                if dup is not None:
                    for k in range(4, 0, -1):
                        vs[:, k - 1] += np.where(dup[a:b, k], vs[:, k], 0.0)
                flat[loc] = vs
                if vo.size:
                    vo[o_ptr[r0]:o_ptr[r1]] = vs[omask[a:b]]
            if not full:
                vd[d_ptr[r0]:d_ptr[r1]] = flat[dmask[r0:r1]]

    def _reversed_source(self):
        """Index map ``src`` (pattern only, cached) with data(R A_loc R) = data(A_loc)[src]:
        A_loc is this rank's diagonal block of a matrix from ``matrix``, R reverses the q2
        axis. R A_loc R is the operator of the mirrored flow on the same mesh, so its CSR
        pattern is A_loc's and only its values move: slot s of row r holds A's value at row
        R r, slot s with bottom and top swapped. Interior rows keep the slot order; the edge
        rows (``spec``, a mirror-symmetric set) follow the per-row ordering and merging."""
        P = self._pattern
        if "rev_src" not in P:
            d_ptr = P["d"][0].astype(np.int64)
            nloc = d_ptr.size - 1
            itype = np.int32 if d_ptr[-1] < 2**31 else np.int64
            n1l, n2, nb = self.n1l, self.n2, self.nb
            rows = np.arange(nloc).reshape(n2, n1l, nb)
            mirror = rows[::-1].ravel()
            swap = np.array([4, 1, 2, 3, 0])
            src = np.empty(d_ptr[-1], dtype=itype)
            if n2 > 2 and n1l > 2:
                # interior rows (1 ≤ j ≤ n2−2, 1 ≤ i ≤ n1l−2): 5 entries each, in runs of
                # (n1l−2)·nb rows per q2 line, the lines a constant stride L apart
                start = d_ptr[rows[1:-1, 1, 0]]
                L = int(start[1] - start[0]) if start.size > 1 else 0
                if (start != start[0] + L * np.arange(start.size)).any():
                    raise AssertionError("reversed block: irregular interior pattern")
                width = 5 * (n1l - 2) * nb
                view = np.lib.stride_tricks.as_strided(
                    src[start[0]:], shape=(n2 - 2, width), strides=(L * src.itemsize, src.itemsize))
                k = np.arange(width)
                np.add(start[::-1, None].astype(itype), (k - k % 5 + swap[k % 5]).astype(itype),
                       out=view)
            spec, order, keep = P["spec"], P["order"], P["keep"]
            rank = np.cumsum(keep, axis=1) - 1  # stored rank of each sorted entry (a merged
            inv = np.argsort(order, axis=1)     # duplicate shares its target's)
            pos = d_ptr[spec][:, None] + np.take_along_axis(rank, inv, axis=1)  # (row, slot)
            where = np.full(nloc, -1, dtype=np.int64)
            where[spec] = np.arange(spec.size)
            q = where[mirror[spec]]
            if (q < 0).any():
                raise AssertionError("reversed block: edge rows are not mirror-symmetric")
            k = np.nonzero(keep)
            src[d_ptr[spec[k[0]]] + rank[k]] = pos[q[k[0]], swap[order[k]]]
            P["rev_src"] = src
        return P["rev_src"]

    def reversed_block(self, mat):
        """R A_loc R as a sequential AIJ matrix (PETSc.COMM_SELF): this rank's diagonal block
        of ``mat`` (made by ``matrix``) with the q2 axis reversed — the second ordering of
        ``SweepPC``, 5× cheaper than MatPermute (a gather of the values). It shares the row
        pointers and column indices of ``mat`` (same pattern): do not factor it in place."""
        from petsc4py import PETSc

        csr = mat.getAttr("__csr__")
        if csr is None:  # not a matrix of ``matrix`` (or converted in place): no shortcut
            return None
        ptr, cols, vd = csr[0] if self._pattern["parallel"] else csr
        nloc = ptr.size - 1
        return PETSc.Mat().createAIJWithArrays(
            (nloc, nloc), (ptr, cols, vd[self._reversed_source()]), comm=PETSc.COMM_SELF)

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


class SweepPC:
    """Four-direction sweep preconditioner for the assembled upwind operator (a petsc4py
    ``python`` PC context; the default of ``Transport.steady``).

    The upwind matrix of a flow whose direction lies in one quadrant of the (q1, q2) plane is
    triangular in a lexicographic ordering that runs downstream, and Gauss–Seidel in that
    ordering solves it exactly. The mesh ordering (q1 fastest, then q2) runs downstream for
    flows towards (+q1, +q2) in the forward sweep and towards (−q1, −q2) in the backward sweep;
    the same ordering with q2 reversed covers (+q1, −q2) and (−q1, +q2). Closed orbits (0x2k in
    a magnetic field) pass through all four quadrants, which no single ordering can follow —
    BiCGStab with ILU(k) in the mesh ordering needs 54 iterations at 2×10⁶ unknowns. This
    preconditioner sweeps each rank's diagonal block in both orderings and applies them
    multiplicatively,

        z = M1⁻¹ r,    z ← z + R M2⁻¹ R (r − A z)      (R: reverse q2),

    i.e. four sweeps following the flow; GMRES then converges in 3 iterations (true residual
    1e-14) on 1 and 2 ranks. The sweeps stop at rank boundaries (block Jacobi across ranks);
    the residual between the two orderings is global (one halo exchange), which keeps the
    iteration count of 1 rank on 2. The upwind operator is a nonsingular M-matrix (its column
    sums are the collision term A D/τ > 0, the outflow of a cell being its neighbours'
    inflow), so every sweep is a regular splitting and the composite alone already converges
    (spectral radius < 1); the Krylov method accelerates it where orbits are long (0x1k Bloch
    oscillations: 30 GMRES iterations at 1024 k-cells).

    ``n2``: cells along q2 (each rank holds the whole q2 axis, its local rows are
    n2 × (n1_local · dof)). ``reversed_block(P)``: returns R P_loc R as a sequential matrix
    (``StreamOperator.reversed_block``; default MatPermute of the diagonal block, 5× slower).
    Options (prefix of the KSP): ``-<prefix>sweep_type sor|ilu`` — symmetric Gauss–Seidel
    sweeps (default: no set-up but the reversed copy, one extra matrix of A's size) or ILU(0)
    of both orderings (two extra matrices and a factorisation each; its triangular solves
    take as long as the sweeps here, so only the set-up differs); ``-<prefix>sweep_residual
    global|local`` (local: no communication inside the preconditioner, one more iteration on
    2 ranks).
    """

    def __init__(self, n2: int, kind: str | None = None, reversed_block=None,
                 residual: str | None = None):
        self.n2, self.kind, self.residual = int(n2), kind, residual
        self.reversed_block = reversed_block
        self.F = None
        self.t = self.u = self.v = self.xs = self.ys = self.tg = None

    def setUp(self, pc):
        from petsc4py import PETSc

        opts = PETSc.Options(pc.getOptionsPrefix())
        kind = self.kind or opts.getString("sweep_type", "sor")
        residual = self.residual or opts.getString("sweep_residual", "global")
        if kind not in ("ilu", "sor") or residual not in ("global", "local"):
            raise ValueError(f"SweepPC: -sweep_type {kind} / -sweep_residual {residual}: "
                             "expected sor|ilu / global|local")
        self.kind, self.residual = kind, residual
        _, P = pc.getOperators()
        self.local = local = P.getDiagonalBlock() if P.getComm().getSize() > 1 else P
        nloc = local.getSize()[0]
        if nloc % self.n2:
            raise ValueError(f"SweepPC: {nloc} local rows are not a multiple of n2 = {self.n2}")
        self.shape = (self.n2, nloc // self.n2)
        self.destroy_factors()
        flipped = self.reversed_block(P) if self.reversed_block is not None else None
        if flipped is None:
            flip = np.arange(nloc, dtype=PETSc.IntType).reshape(self.shape)[::-1].ravel()
            isf = PETSc.IS().createGeneral(flip, comm=PETSc.COMM_SELF)
            try:
                flipped = local.permute(isf, isf)
            except PETSc.Error:  # a format without MatPermute (e.g. -kinetic_mat_type sell)
                tmp = local.duplicate(copy=True)
                tmp.convert("aij")
                flipped = tmp.permute(isf, isf)
                tmp.destroy()
            isf.destroy()
        if kind == "ilu":
            nat = PETSc.IS().createStride(nloc, 0, 1, comm=PETSc.COMM_SELF)
            first = local.duplicate(copy=True)
            if self.reversed_block is not None:  # may share A's pattern arrays: factor a copy
                shared, flipped = flipped, flipped.duplicate(copy=True)
                shared.destroy()
            for F in (first, flipped):
                F.factorILU(nat, nat)  # in place, ILU(0) in the matrix's own ordering
            nat.destroy()
            self.F = (first, flipped)
        else:
            self.F = (None, flipped)
        self._free_vectors()  # of a previous set-up
        self.P = P
        seq = PETSc.COMM_SELF
        # xs, ys only borrow the arrays of x, y (getLocalVector): no memory of their own
        self.xs, self.ys = (PETSc.Vec().createWithArray(np.empty(nloc), comm=seq) for _ in "xy")
        self.u, self.v = PETSc.Vec().createSeq(nloc, comm=seq), PETSc.Vec().createSeq(nloc, comm=seq)
        if self.residual == "global" and P.getComm().getSize() > 1:
            self.tg = P.createVecs()[0]
        else:
            self.t = PETSc.Vec().createSeq(nloc, comm=seq)

    @property
    def name(self) -> str:
        return f"sweeps({self.kind or 'sor'})"

    def _solve(self, k, b, x):
        from petsc4py import PETSc

        if self.kind == "ilu":
            self.F[k].solve(b, x)
        else:
            M = self.local if k == 0 else self.F[1]
            sweep = PETSc.Mat.SORType
            M.SOR(b, x, sortype=sweep.LOCAL_SYMMETRIC_SWEEP | sweep.ZERO_INITIAL_GUESS)

    def apply(self, pc, x, y):
        xs, ys, t, u, v = self.xs, self.ys, self.t, self.u, self.v
        x.getLocalVector(xs, readonly=True)
        y.getLocalVector(ys)
        try:
            self._solve(0, xs, ys)  # natural ordering: sweeps (+q1, +q2), (−q1, −q2)
            if self.tg is not None:
                y.restoreLocalVector(ys)
                self.P.mult(y, self.tg)
                self.tg.aypx(-1.0, x)
                y.getLocalVector(ys)
                tr = self.tg.getArray(readonly=True)
            else:
                self.local.mult(ys, t)
                t.aypx(-1.0, xs)  # local residual
                tr = t.getArray(readonly=True)
            with u as ua:
                ua.reshape(self.shape)[:] = tr.reshape(self.shape)[::-1]
            self._solve(1, u, v)  # q2 reversed: sweeps (+q1, −q2), (−q1, +q2)
            with ys as ya:
                ya.reshape(self.shape)[:] += v.getArray(readonly=True).reshape(self.shape)[::-1]
        finally:
            x.restoreLocalVector(xs, readonly=True)
            y.restoreLocalVector(ys)

    def view(self, pc, viewer):
        shape = getattr(self, "shape", None)
        viewer.printfASCII(f"  four-direction sweeps ({self.kind or 'sor'}, q2 reversed for the "
                           f"second pair; residual {self.residual or 'global'}), local rows "
                           f"{shape[0] if shape else '?'} x {shape[1] if shape else '?'}\n")

    def destroy_factors(self):
        for F in self.F or ():
            if F is not None:
                F.destroy()
        self.F = None

    def _free_vectors(self):
        for name in ("t", "u", "v", "xs", "ys", "tg"):
            vec = getattr(self, name, None)
            if vec is not None:
                vec.destroy()
            setattr(self, name, None)

    def reset(self, pc):
        self.destroy_factors()
        self._free_vectors()

    def destroy(self, pc):
        self.reset(pc)
