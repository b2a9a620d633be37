"""Band quantum geometry on batches of phase-space points (pure numpy, no PETSc).

Everything here is gauge invariant: built from analytic derivatives of the Bloch Hamiltonian
by sums over states (physics.md §2.2), for two bands by the equivalent closed forms in
H = d0·1 + d·σ (§2.4), or from band projectors (§2.3). Eigenvectors are never differentiated
numerically (§2.6).

Phase-space coordinates
-----------------------
A batch of points carries ``n = n_x + n_k`` coordinates ordered ``(x_1..x_{n_x}, k_1..k_{n_k})``
(physics.md §1.1). ``dH[..., a, :, :]`` is ∂H/∂ξ_a for coordinate ``a`` in that order. Units are
the internal ones of ``kinetic.units``: energies eV, x in Å, k in 1/Å, ħ = e = 1. A tensor
component with indices (a, b) carries the unit 1/([ξ_a][ξ_b]): for example Å² for a (k, k)
block of the quantum metric, 1 (dimensionless) for a mixed (k, x) block and 1/Å² for an
(x, x) block.

Sign conventions (physics.md §2.1–2.2, used verbatim)
-----------------------------------------------------
- (A_a)_mn = i⟨u_m|∂_a u_n⟩ = i(∂_aH)_mn/(ε_n − ε_m) for m ≠ n;
- Q^n_ab = Σ_{m≠n} (∂_aH)_nm(∂_bH)_mn/(ε_n − ε_m)² = g_ab − (i/2) Ω_ab;
- Ω_ab = ∂_aA_b − ∂_bA_a = −2 Im Q_ab (so Ω_z ≡ Ω_{k_x k_y} = +v²m/2E³ for the lower band of
  H = v(k_xσ_x + k_yσ_y) + mσ_z);
- G^GYN_ab = 2 Re Σ_{m≠n} (A_a)_nm(A_b)_mn/(ε_n − ε_m), G^R = −G^GYN;
- Δε⁽¹⁾_n = −Σ_i Σ_{m≠n} Im[(∂_{x_i}H)_nm(∂_{k_i}H)_mn]/(ε_n − ε_m)   (Sundaram–Niu);
- m_n = −(ie/2ħ)⟨∇_k u_n| × (H − ε_n)|∇_k u_n⟩ for charge −e, i.e.
  m_{n,z} = Σ_{m≠n} Im[(∂_{k_x}H)_nm(∂_{k_y}H)_mn]/(ε_m − ε_n) (and cyclically for x, y).

Public API
----------
- :func:`band_geometry` → :class:`BandGeometry` (single-band quantities for every band);
- :func:`group_qgt` (projector form for a band group, safe inside degenerate groups);
- :func:`chern_fhs` (Fukui–Hatsugai–Suzuki lattice Chern number of a band or band group).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from kinetic.errors import DegeneracyError, ModelError

__all__ = ["BandGeometry", "band_geometry", "group_qgt", "chern_fhs"]

# points processed per block (bounds the temporaries: ~ n²·nb² complex per point)
_CHUNK = 1 << 16

#: use the closed-form two-band path (``_two_band_geometry``) whenever it applies; tests set this
#: to False to force the general sum-over-states path on the same inputs
_TWO_BAND_FAST = True
#: points per block of the two-band path (its temporaries are real (points,), (n, points) and
#: (n, n, points) arrays; blocks of this size keep them in cache)
_CHUNK_2BAND = 1 << 12


@dataclass(frozen=True)
class BandGeometry:
    """Single-band geometry of every band at a batch of phase-space points.

    ``...`` is the batch shape of the input, ``nb`` the number of bands, ``n = n_x + n_k`` the
    number of phase-space coordinates ordered (x_1..x_{n_x}, k_1..k_{n_k}). Band index ``n`` runs
    over bands in ascending energy. Units: energies eV, x in Å, k in 1/Å, ħ = e = 1; a
    component with coordinate indices (a, b) carries 1/([ξ_a][ξ_b]) as described below.

    Attributes
    ----------
    energy : (..., nb) float
        Band energies ε_n, ascending [eV].
    vectors : (..., nb, nb) complex
        Eigenvectors as columns, ``vectors[..., :, n]`` = |u_n⟩ (gauge arbitrary).
    dH_band : (..., n, nb, nb) complex
        ⟨u_m|∂_aH|u_n⟩, indexed ``[..., a, m, n]`` [eV/[ξ_a]]. Gauge covariant.
    velocity : (..., n, nb) float
        Diagonal of ``dH_band``: ∂_a ε_n (Hellmann–Feynman). For a k coordinate this is
        ∂ε/∂k [eV·Å] (group velocity ħ⁻¹∂ε/∂k); for an x coordinate ∂ε/∂x [eV/Å].
    connection : (..., n, nb, nb) complex
        Interband Berry connection (A_a)_mn = i(∂_aH)_mn/(ε_n − ε_m), indexed ``[..., a, m, n]``
        [1/[ξ_a]: Å for k, 1/Å for x]. The (gauge-dependent) diagonal is set to 0.
    qgt : (..., nb, n, n) complex
        Quantum geometric tensor Q^n_ab of each band [1/([ξ_a][ξ_b])].
    metric : (..., nb, n, n) float
        Quantum metric g = Re Q (symmetric, positive semidefinite).
    curvature : (..., nb, n, n) float
        Berry curvature Ω = −2 Im Q (antisymmetric). Ω_z = ``curvature[..., n, n_x, n_x+1]``;
        the mixed curvature Ω_{k_i x_j} = ``curvature[..., n, n_x+i, j]``.
    bcp_gyn : (..., nb, n, n) float
        Berry-connection polarizability G^GYN (Gao–Yang–Niu sign) [1/(eV·[ξ_a][ξ_b])].
    bcp_R : (..., nb, n, n) float
        G^R = −G^GYN (Ren's non-adiabatic metric; positive definite for the lowest band).
    inverse_mass : (..., nb, n, n) float or None
        ∂_a∂_b ε_n [eV/([ξ_a][ξ_b]); eV·Å² for the (k, k) block] by second-order perturbation
        theory; ``None`` when ``d2H`` was not given.
    gradient_energy : (..., nb) float
        Sundaram–Niu gradient energy Δε⁽¹⁾_n [eV], pairing x_i with k_i for
        i < min(n_x, n_k); zero when n_x = 0.
    orbital_moment : (..., nb, 3) float
        Orbital moment m_n for charge −e, in units e/ħ·eV·Å² (numerically eV·Å² since e = ħ = 1;
        the energy is −m·B with B in units ħ/(e Å²)). Only m_z (from k_1, k_2) for n_k = 2; the
        full vector for n_k = 3 (k_1, k_2, k_3 = x, y, z); zeros for n_k = 1 (or n_k > 3).
    degenerate : (..., nb) bool
        True where band n is within ``degeneracy_tol`` of another band; the contributions of
        those pairs were set to 0 (only with ``allow_degenerate=True``; otherwise all False).
    n_x, n_k : int
        Number of real-space and momentum coordinates.
    """

    energy: np.ndarray
    vectors: np.ndarray
    dH_band: np.ndarray
    velocity: np.ndarray
    connection: np.ndarray
    qgt: np.ndarray
    metric: np.ndarray
    curvature: np.ndarray
    bcp_gyn: np.ndarray
    bcp_R: np.ndarray
    inverse_mass: np.ndarray | None
    gradient_energy: np.ndarray
    orbital_moment: np.ndarray
    degenerate: np.ndarray
    n_x: int
    n_k: int


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------
def _check_inputs(H, dH, d2H, n_x):
    H = np.asarray(H)
    dH = np.asarray(dH)
    if H.ndim < 2 or H.shape[-1] != H.shape[-2]:
        raise ValueError(f"H must have shape (..., nb, nb); got {H.shape}")
    nb = H.shape[-1]
    batch = H.shape[:-2]
    if dH.ndim != H.ndim + 1 or dH.shape[-2:] != (nb, nb) or dH.shape[:-3] != batch:
        raise ValueError(
            f"dH must have shape (..., n, nb, nb) = {batch} + (n, {nb}, {nb}); got {dH.shape}"
        )
    n = dH.shape[-3]
    if d2H is not None:
        d2H = np.asarray(d2H)
        if d2H.shape != batch + (n, n, nb, nb):
            raise ValueError(
                f"d2H must have shape (..., n, n, nb, nb) = {batch + (n, n, nb, nb)}; "
                f"got {d2H.shape}"
            )
    if not (0 <= n_x <= n):
        raise ValueError(f"n_x = {n_x} must be between 0 and the number of coordinates n = {n}")
    return H, dH, d2H, batch, nb, n


def _eigen(H, eig, batch, nb):
    if eig is None:
        return np.linalg.eigh(H)
    E, V = eig
    E = np.asarray(E, dtype=float)
    V = np.asarray(V)
    if E.shape != batch + (nb,) or V.shape != batch + (nb, nb):
        raise ValueError(
            f"eig must be (energy (..., nb), vectors (..., nb, nb)) with ... = {batch}, nb = {nb};"
            f" got {E.shape} and {V.shape}"
        )
    if nb > 1 and np.any(np.diff(E, axis=-1) < 0):
        raise ValueError("eig: energies must be sorted ascending along the last axis")
    return E, V


def _degenerate_pairs(E, tol):
    """(P, nb, nb) bool: |ε_n − ε_m| < tol for m ≠ n."""
    nb = E.shape[-1]
    gap = np.abs(E[:, None, :] - E[:, :, None])
    return (gap < tol) & ~np.eye(nb, dtype=bool)


def _degeneracy_message(E, pairs, batch, tol, what):
    """Describe where ``pairs`` (P, nb, nb) is set: how many points, which, which bands."""
    bad = np.flatnonzero(pairs.any(axis=(-1, -2)))
    gaps = np.abs(E[:, None, :] - E[:, :, None])
    smallest = gaps[pairs].min()
    first = bad[:5]
    where = [tuple(int(i) for i in np.unravel_index(p, batch)) if batch else () for p in first]
    band_pairs = sorted({(int(m), int(n)) for m, n in zip(*np.nonzero(np.triu(pairs[bad].any(0))))})
    bands_txt = ", ".join(f"{m} and {n}" for m, n in band_pairs[:8])
    if len(band_pairs) > 8:
        bands_txt += ", ..."
    return (
        f"{what}: bands {bands_txt} are degenerate (|ε_n − ε_m| < degeneracy_tol = {tol:g} eV) "
        f"at {bad.size} of {E.shape[0]} point(s); first point indices {where}; smallest gap "
        f"{smallest:.3g} eV. Move the mesh off the band touching, open a gap, use group_qgt for "
        f"the degenerate group, or pass allow_degenerate=True to mask those pairs."
    )


# --------------------------------------------------------------------------------------------
# single-band geometry
# --------------------------------------------------------------------------------------------
def _geometry_block(E, V, dH, d2H, deg, n_x, n_k):
    """Core on flattened points: E (P, nb), V (P, nb, nb), dH (P, n, nb, nb), deg (P, nb, nb)."""
    P, nb = E.shape
    # D[p, a, m, n] = <u_m|∂_a H|u_n>
    D = np.einsum("pim,paij,pjn->pamn", V.conj(), dH, V, optimize=True)
    gap = E[:, None, :] - E[:, :, None]  # gap[p, m, n] = ε_n − ε_m
    off = ~np.eye(nb, dtype=bool) & ~deg
    inv = np.divide(1.0, gap, out=np.zeros_like(gap), where=off)  # 1/(ε_n − ε_m), 0 if masked
    X = D * inv[:, None, :, :]  # X_a[m, n] = (∂_aH)_mn/(ε_n − ε_m) = −i (A_a)_mn
    connection = 1j * X

    # band-major layouts: Xt[p, n, m, a] = X_a[m, n]; then Σ_m conj(X_a) Y_b = (Xt^H Yt)[a, b]
    Xt = np.ascontiguousarray(X.transpose(0, 3, 2, 1))
    XtH = np.conj(Xt).swapaxes(-1, -2)
    Dt = np.ascontiguousarray(D.transpose(0, 3, 2, 1))
    invt = inv.transpose(0, 2, 1)[..., None]  # [p, n, m, 1]
    Q = XtH @ Xt  # Σ_m (∂_aH)_nm (∂_bH)_mn /(ε_n − ε_m)²
    S1 = XtH @ Dt  # Σ_m (∂_aH)_nm (∂_bH)_mn /(ε_n − ε_m)
    S3 = XtH @ (Xt * invt)  # Σ_m (∂_aH)_nm (∂_bH)_mn /(ε_n − ε_m)³

    metric = Q.real.copy()
    curvature = -2.0 * Q.imag
    bcp_gyn = 2.0 * S3.real
    velocity = np.einsum("pann->pan", D).real.copy()

    grad = np.zeros((P, nb))
    for i in range(min(n_x, n_k)):
        grad -= S1[:, :, i, n_x + i].imag

    moment = np.zeros((P, nb, 3))
    if n_k == 2:
        moment[..., 2] = -S1[:, :, n_x, n_x + 1].imag
    elif n_k == 3:
        kx, ky, kz = n_x, n_x + 1, n_x + 2
        moment[..., 0] = -S1[:, :, ky, kz].imag
        moment[..., 1] = -S1[:, :, kz, kx].imag
        moment[..., 2] = -S1[:, :, kx, ky].imag

    out = dict(
        dH_band=D,
        velocity=velocity,
        connection=connection,
        qgt=Q,
        metric=metric,
        curvature=curvature,
        bcp_gyn=bcp_gyn,
        bcp_R=-bcp_gyn,
        gradient_energy=grad,
        orbital_moment=moment,
    )
    if d2H is not None:
        # (∂_a∂_bH)_nn + 2 Re Σ_{m≠n} (∂_aH)_nm (∂_bH)_mn/(ε_n − ε_m)
        d2 = np.einsum("pin,pabij,pjn->pnab", V.conj(), d2H, V, optimize=True).real
        out["inverse_mass"] = d2 + 2.0 * S1.real
    return out


# --------------------------------------------------------------------------------------------
# closed-form two-band path (physics.md §2.4)
# --------------------------------------------------------------------------------------------
def _pauli_parts(A, lead):
    """(c0, cx, cy, cz) of the Hermitian part of 2×2 matrices: A = c0 + c·σ. ``A`` is (C, *lead,
    2, 2); the parts come back as C-contiguous (*lead, C) arrays (the point axis last, so that
    elementwise work on them runs over long inner loops)."""
    At = np.moveaxis(A, 0, -3)
    a, b = At[..., 0, 0].real, At[..., 1, 1].real
    lo, up = At[..., 1, 0], At[..., 0, 1]
    shape = a.shape
    c0 = np.add(a, b, out=np.empty(shape))
    cz = np.subtract(a, b, out=np.empty(shape))
    cx = np.add(lo.real, up.real, out=np.empty(shape))
    cy = np.subtract(lo.imag, up.imag, out=np.empty(shape))
    for c in (c0, cx, cy, cz):
        c *= 0.5
    return c0, cx, cy, cz


def _two_band_geometry(H, dH, d2H, batch, n, n_x, n_k, tol, allow_degenerate):
    """BandGeometry for nb = 2 in closed form (physics.md §2.4), or None where the general
    path must decide (non-finite input; h = 0 at a point that is not masked, i.e. tol ≤ 0).

    H = d0·1 + d·σ with d from the diagonal and the lower off-diagonal element of H (exactly
    what ``numpy.linalg.eigh`` reads), derivatives from the Hermitian part of dH (and d2H);
    h = |d|, n̂ = d/h, band s = −1 (lower), +1 (upper), ε_s = d0 + s h.

    Eigenvectors in closed form in a gauge regular on the hemisphere of n̂ (north gauge for
    n̂_z ≥ 0, south gauge otherwise; V = 1 at h = 0 like LAPACK). (e₁, e₂, n̂) is the
    right-handed frame of that gauge with ⟨u₋|σ|u₊⟩ = e₁ + i e₂, and α_a = e₁·∂_a d,
    β_a = e₂·∂_a d, γ_a = n̂·∂_a d. Then ⟨u₋|∂_aH|u₊⟩ = α_a + iβ_a, ∂_a ε_s = ∂_a d0 + s γ_a and,
    with α̃ = α/2h, β̃ = β/2h (set to 0 at masked points, like the masked pairs of the general
    path):

    - (A_a)₋₊ = i(α_a + iβ_a)/2h = −β̃_a + iα̃_a, (A_a)₊₋ = its conjugate;
    - g_ab = α̃_aα̃_b + β̃_aβ̃_b = ¼ ∂_a n̂·∂_b n̂ (both bands);
    - Ω^s_ab = −2s (α̃_aβ̃_b − β̃_aα̃_b) = −(s/2) n̂·(∂_a n̂ × ∂_b n̂);
    - G^GYN,s = s g/h, G^R = −G^GYN;
    - Δε⁽¹⁾ = h Σ_i Ω⁻_{k_i x_i}; m = −h (Ω⁻_{k_y k_z}, Ω⁻_{k_z k_x}, Ω⁻_{k_x k_y}) (both bands);
    - ∂_a∂_b ε_s = ∂_a∂_b d0 + s (n̂·∂_a∂_b d + 4h g_ab).

    Blocks of points; inside a block the work arrays carry the point axis last (long inner
    loops) and are written component by component into the (points-first) outputs.
    """
    P = int(np.prod(batch, dtype=int))
    Hr = H.reshape(P, 2, 2)
    dHr = dH.reshape(P, n, 2, 2)
    d2r = None if d2H is None else d2H.reshape(P, n, n, 2, 2)
    E = np.empty((P, 2))
    mask = np.empty(P, bool)
    # zeros where some entries are identically 0 (fresh zero pages; those entries are not written)
    vectors = np.empty((P, 2, 2), complex)
    dH_band = np.zeros((P, n, 2, 2), complex)
    velocity = np.empty((P, n, 2))
    connection = np.zeros((P, n, 2, 2), complex)
    qgt = np.zeros((P, 2, n, n), complex)
    metric = np.empty((P, 2, n, n))
    curvature = np.zeros((P, 2, n, n))
    bcp_gyn = np.empty((P, 2, n, n))
    bcp_R = np.empty((P, 2, n, n))
    inverse_mass = None if d2r is None else np.empty((P, 2, n, n))
    grad = np.zeros((P, 2))
    moment = np.zeros((P, 2, 3))
    Vf = vectors.view(float).reshape(P, 8)  # V00 re, im, V01 re, im, V10 .., V11 ..
    Df = dH_band.view(float).reshape(P, n, 8)
    Af = connection.view(float).reshape(P, n, 8)
    Qf = qgt.view(float).reshape(P, 2, n, n, 2)
    upper = [(i, j) for i in range(n) for j in range(i + 1, n)]
    moment_pairs = []
    if n_k == 2:
        moment_pairs = [(2, n_x, n_x + 1)]
    elif n_k == 3:
        kx, ky, kz = n_x, n_x + 1, n_x + 2
        moment_pairs = [(0, ky, kz), (1, kz, kx), (2, kx, ky)]
    failed = False  # a degenerate point with allow_degenerate=False: only E and mask from now

    for s in range(0, P, _CHUNK_2BAND):
        sl = slice(s, min(s + _CHUNK_2BAND, P))
        C = sl.stop - sl.start
        Hc = Hr[sl]
        a, b = Hc[:, 0, 0].real, Hc[:, 1, 1].real
        dx, dy = Hc[:, 1, 0].real, Hc[:, 1, 0].imag
        d0 = 0.5 * (a + b)
        dz = 0.5 * (a - b)
        with np.errstate(over="ignore"):
            h = np.sqrt(dx * dx + dy * dy + dz * dz)
        if not (h.min() > 1e-150 and h.max() < 1e150):  # h² may under/overflow: scaled form
            bad = ~((h > 1e-150) & (h < 1e150))
            h[bad] = np.hypot(np.hypot(dx[bad], dy[bad]), dz[bad])
        Ec = E[sl]
        np.subtract(d0, h, out=Ec[:, 0])
        np.add(d0, h, out=Ec[:, 1])
        mk = mask[sl]
        np.less(Ec[:, 1] - Ec[:, 0], tol, out=mk)
        if not np.isfinite(Ec).all():
            return None  # NaN/inf: whatever LAPACK does
        if not mk.any():
            mk = None
        elif not allow_degenerate:
            failed = True
        if failed:
            continue
        zero = h == 0
        if zero.any():
            if mk is None or not np.all(mk[zero]):
                return None  # h = 0 not masked (tol ≤ 0): the general path's 1/0
            h[zero] = 1.0
        ih = 1.0 / h
        nx, ny, nz = dx / h, dy / h, dz / h
        if mk is not None:
            nz[zero] = -1.0  # H ∝ 1: n̂ = −ẑ, so that V = 1 (as from LAPACK)
            ih[mk] = 0.0  # masked: no pair contributions (α̃ = β̃ = 0, so g = Ω = A = 0)

        # eigenvectors (columns u₋, u₊) and the frame (e₁, e₂) of their gauge
        north = nz >= 0
        r = 1.0 + np.abs(nz)
        ir = 1.0 / r
        iN = np.sqrt(0.5 * ir)
        xn, yn, rn = nx * iN, ny * iN, r * iN
        V = Vf[sl]
        V[:, 0] = np.where(north, -xn, rn)
        V[:, 1] = np.where(north, yn, 0.0)
        V[:, 2] = np.where(north, rn, xn)
        V[:, 3] = np.where(north, 0.0, -yn)
        V[:, 4] = np.where(north, rn, -xn)
        V[:, 5] = np.where(north, 0.0, -yn)
        V[:, 6] = np.where(north, xn, rn)
        V[:, 7] = np.where(north, yn, 0.0)
        sg = np.where(north, 1.0, -1.0)
        xy = nx * ny * ir
        e1x, e1y, e1z = 1.0 - nx * nx * ir, -xy, -sg * nx
        e2x, e2y, e2z = -sg * xy, sg - sg * ny * ny * ir, -ny

        # ∂_a d0, ∂_a d as (n, C) and their frame components
        q0, qx, qy, qz = _pauli_parts(dHr[sl], (n,))
        gam = nx * qx + ny * qy + nz * qz
        alp = e1x * qx + e1y * qy + e1z * qz
        bet = e2x * qx + e2y * qy + e2z * qz
        vm = q0 - gam
        vp = np.add(q0, gam, out=q0)
        i2h = 0.5 * ih
        alt = alp * i2h  # α̃
        bet_t = bet * i2h  # β̃
        D, A, vel = Df[sl], Af[sl], velocity[sl]
        for i in range(n):
            vel[:, i, 0] = vm[i]
            vel[:, i, 1] = vp[i]
            D[:, i, 0] = vm[i]
            D[:, i, 2] = alp[i]
            D[:, i, 3] = bet[i]
            D[:, i, 4] = alp[i]
            np.negative(bet[i], out=D[:, i, 5])
            D[:, i, 6] = vp[i]
            np.negative(bet_t[i], out=A[:, i, 2])
            A[:, i, 3] = alt[i]
            np.negative(bet_t[i], out=A[:, i, 4])
            np.negative(alt[i], out=A[:, i, 5])

        # g (both bands), Ω of the lower band, written component by component
        g = np.empty((n, n, C))
        gh = np.empty((n, n, C))
        Om = np.zeros((n, n, C))
        for i in range(n):
            for j in range(i, n):
                gij = g[i, j]
                np.multiply(alt[i], alt[j], out=gij)
                gij += bet_t[i] * bet_t[j]
                if j > i:
                    g[j, i] = gij
                    oij = Om[i, j]
                    np.multiply(alt[i], bet_t[j], out=oij)
                    oij -= bet_t[i] * alt[j]
                    oij *= 2.0
                    np.negative(oij, out=Om[j, i])
        np.multiply(g, ih, out=gh)  # g/h
        met, cv, Q, bg, bR = metric[sl], curvature[sl], Qf[sl], bcp_gyn[sl], bcp_R[sl]
        for i in range(n):
            for j in range(n):
                gij, hij = g[i, j], gh[i, j]
                met[:, 0, i, j] = gij
                met[:, 1, i, j] = gij
                Q[:, 0, i, j, 0] = gij
                Q[:, 1, i, j, 0] = gij
                np.negative(hij, out=bg[:, 0, i, j])
                bg[:, 1, i, j] = hij
                bR[:, 0, i, j] = hij
                np.negative(hij, out=bR[:, 1, i, j])
        for i, j in upper:
            for a_, b_ in ((i, j), (j, i)):
                oab = Om[a_, b_]
                cv[:, 0, a_, b_] = oab
                np.negative(oab, out=cv[:, 1, a_, b_])
                np.multiply(oab, -0.5, out=Q[:, 0, a_, b_, 1])
                np.multiply(oab, 0.5, out=Q[:, 1, a_, b_, 1])
        if n_x and n_k:
            de = Om[n_x, 0].copy()
            for i in range(1, min(n_x, n_k)):
                de += Om[n_x + i, i]
            de *= h
            grad[sl, 0] = de
            grad[sl, 1] = de
        for c, i, j in moment_pairs:
            mc = -h * Om[i, j]
            moment[sl, 0, c] = mc
            moment[sl, 1, c] = mc
        if d2r is not None:
            c0, cx, cy, cz = _pauli_parts(d2r[sl], (n, n))
            t = nx * cx + ny * cy + nz * cz
            t += (4.0 * h) * g  # U_a·U_b/h = 4 h g (g = 0 where masked)
            im_ = inverse_mass[sl]
            for i in range(n):
                for j in range(n):
                    np.subtract(c0[i, j], t[i, j], out=im_[:, 0, i, j])
                    np.add(c0[i, j], t[i, j], out=im_[:, 1, i, j])

    if failed:
        pairs = np.zeros((P, 2, 2), bool)
        pairs[:, 0, 1] = pairs[:, 1, 0] = mask
        raise DegeneracyError(_degeneracy_message(E, pairs, batch, tol, "band_geometry"))
    if allow_degenerate:
        degenerate = np.repeat(mask[:, None], 2, axis=1)
    else:
        degenerate = np.zeros((P, 2), bool)

    def r_(x):
        return x.reshape(batch + x.shape[1:])

    return BandGeometry(
        energy=r_(E),
        vectors=r_(vectors),
        dH_band=r_(dH_band),
        velocity=r_(velocity),
        connection=r_(connection),
        qgt=r_(qgt),
        metric=r_(metric),
        curvature=r_(curvature),
        bcp_gyn=r_(bcp_gyn),
        bcp_R=r_(bcp_R),
        inverse_mass=None if inverse_mass is None else r_(inverse_mass),
        gradient_energy=r_(grad),
        orbital_moment=r_(moment),
        degenerate=r_(degenerate),
        n_x=n_x,
        n_k=n_k,
    )


def band_geometry(
    H,
    dH,
    d2H=None,
    *,
    n_x: int = 0,
    degeneracy_tol: float = 1e-8,
    allow_degenerate: bool = False,
    eig: tuple | None = None,
) -> BandGeometry:
    """Gauge-invariant single-band geometry at a batch of phase-space points.

    Parameters
    ----------
    H : (..., nb, nb) complex
        Hermitian Bloch Hamiltonian (Weyl symbol) H(x, k) [eV].
    dH : (..., n, nb, nb) complex
        Analytic derivatives ∂_aH along the n phase-space coordinates ordered
        (x_1..x_{n_x}, k_1..k_{n_k}) [eV/Å for x, eV·Å for k].
    d2H : (..., n, n, nb, nb) complex, optional
        Analytic second derivatives ∂_a∂_bH; needed only for ``inverse_mass``.
    n_x : int
        Number of real-space coordinates (the first ``n_x`` of ``dH``); n_k = n − n_x.
    degeneracy_tol : float
        A pair of bands with |ε_n − ε_m| < degeneracy_tol [eV] counts as degenerate.
    allow_degenerate : bool
        False (default): raise :class:`kinetic.errors.DegeneracyError` at any degenerate pair.
        True: set the contributions of degenerate pairs to 0 and flag the bands in
        ``BandGeometry.degenerate``. (Single-band quantities of degenerate bands are then not
        gauge invariant; use :func:`group_qgt` for the group.)
    eig : (energy (..., nb), vectors (..., nb, nb)), optional
        A precomputed eigen-decomposition of H (energies ascending, eigenvectors as columns,
        any phases). Skips ``numpy.linalg.eigh``.

    Returns
    -------
    BandGeometry
        See its docstring for every field's shape, unit and sign convention.

    Notes
    -----
    Two bands (nb = 2, complex128 input, no ``eig``): closed forms in H = d0·1 + d·σ
    (physics.md §2.4; ``_two_band_geometry``), real arithmetic in cache-sized blocks, with
    closed-form eigenvectors in a gauge regular on each hemisphere of d̂ and ``dH_band`` /
    ``connection`` exactly those of the returned ``vectors``. It agrees with the general path
    to rounding and raises / masks degeneracies identically; non-finite input is left to the
    general path.

    General path: vectorized over points (LAPACK ``eigh`` on stacks, batched matmul),
    processed in blocks of 65536 points to bound temporary memory. Formulas: physics.md §2.2;
    ∂_a∂_bε_n from second-order perturbation theory.
    """
    H, dH, d2H, batch, nb, n = _check_inputs(H, dH, d2H, n_x)
    n_k = n - n_x
    if (
        nb == 2
        and _TWO_BAND_FAST
        and eig is None
        and n > 0
        and H.size > 0
        and H.dtype == np.complex128
        and dH.dtype == np.complex128
        and (d2H is None or d2H.dtype in (np.complex128, np.float64))
    ):
        out = _two_band_geometry(H, dH, d2H, batch, n, n_x, n_k, degeneracy_tol, allow_degenerate)
        if out is not None:
            return out
    E, V = _eigen(H, eig, batch, nb)
    P = int(np.prod(batch, dtype=int))
    E = E.reshape(P, nb)
    V = V.reshape(P, nb, nb)
    dHf = dH.reshape(P, n, nb, nb)
    d2f = None if d2H is None else d2H.reshape(P, n, n, nb, nb)

    deg_pairs = _degenerate_pairs(E, degeneracy_tol)
    if deg_pairs.any() and not allow_degenerate:
        raise DegeneracyError(_degeneracy_message(E, deg_pairs, batch, degeneracy_tol, "band_geometry"))
    degenerate = deg_pairs.any(axis=-1) if allow_degenerate else np.zeros((P, nb), bool)

    if P <= _CHUNK:
        out = _geometry_block(E, V, dHf, d2f, deg_pairs, n_x, n_k)
    else:
        out = {}
        for s in range(0, P, _CHUNK):
            sl = slice(s, min(s + _CHUNK, P))
            blk = _geometry_block(
                E[sl], V[sl], dHf[sl], None if d2f is None else d2f[sl], deg_pairs[sl], n_x, n_k
            )
            if not out:
                out = {k: np.empty((P,) + v.shape[1:], v.dtype) for k, v in blk.items()}
            for k, v in blk.items():
                out[k][sl] = v

    def r(a):
        return a.reshape(batch + a.shape[1:])

    return BandGeometry(
        energy=r(E),
        vectors=r(V),
        dH_band=r(out["dH_band"]),
        velocity=r(out["velocity"]),
        connection=r(out["connection"]),
        qgt=r(out["qgt"]),
        metric=r(out["metric"]),
        curvature=r(out["curvature"]),
        bcp_gyn=r(out["bcp_gyn"]),
        bcp_R=r(out["bcp_R"]),
        inverse_mass=r(out["inverse_mass"]) if "inverse_mass" in out else None,
        gradient_energy=r(out["gradient_energy"]),
        orbital_moment=r(out["orbital_moment"]),
        degenerate=r(degenerate),
        n_x=n_x,
        n_k=n_k,
    )


# --------------------------------------------------------------------------------------------
# band groups
# --------------------------------------------------------------------------------------------
def _band_mask(bands, nb, what):
    idx = np.atleast_1d(np.asarray(bands, dtype=int))
    if idx.size == 0 or np.any(idx < -nb) or np.any(idx >= nb):
        raise ValueError(f"{what}: bands {list(np.atleast_1d(bands))} must be indices in [0, {nb})")
    mask = np.zeros(nb, dtype=bool)
    mask[idx] = True
    return mask


def group_qgt(H, dH, bands, *, degeneracy_tol: float = 1e-8, eig: tuple | None = None):
    """Quantum metric and Berry curvature of a band group S (projector form, physics.md §2.3).

    Q^S_ab = tr(P_S ∂_aP_S ∂_bP_S) = Σ_{n∈S} Σ_{m∉S} (∂_aH)_nm(∂_bH)_mn/(ε_n − ε_m)².
    Only gaps between S and its complement enter, so bands inside S may be degenerate.

    Parameters
    ----------
    H : (..., nb, nb), dH : (..., n, nb, nb)
        As in :func:`band_geometry`.
    bands : int or sequence of int
        Band indices (ascending-energy order) forming S.
    degeneracy_tol : float
        Raise :class:`DegeneracyError` where a band of S is within this of a band outside S.
    eig : optional precomputed (energy, vectors), as in :func:`band_geometry`.

    Returns
    -------
    g : (..., n, n) float
        g^S = Re Q^S [1/([ξ_a][ξ_b])].
    omega : (..., n, n) float
        Ω^S = −2 Im Q^S = i tr(P_S[∂_aP_S, ∂_bP_S]). For a non-degenerate group Ω^S = Σ_{n∈S} Ω^n,
        while g^S = Σ_{n∈S} g^n − Σ_{n≠m∈S} g^{(nm)} (intra-group pairs drop out).
    """
    H, dH, _, batch, nb, n = _check_inputs(H, dH, None, 0)
    E, V = _eigen(H, eig, batch, nb)
    inS = _band_mask(bands, nb, "group_qgt")
    P = int(np.prod(batch, dtype=int))
    E = E.reshape(P, nb)
    V = V.reshape(P, nb, nb)
    dHf = dH.reshape(P, n, nb, nb)

    cross = inS[None, :] & ~inS[:, None]  # [m, n]: n in S, m outside S
    pairs = _degenerate_pairs(E, degeneracy_tol) & (cross | cross.T)
    if pairs.any():
        raise DegeneracyError(_degeneracy_message(E, pairs, batch, degeneracy_tol, "group_qgt"))
    Q = np.empty((P, n, n), complex)
    Vs, Vc = V[:, :, inS], V[:, :, ~inS]
    for s in range(0, P, _CHUNK):
        sl = slice(s, min(s + _CHUNK, P))
        # D[p, a, m, n] for m outside S, n in S
        D = np.einsum("pim,paij,pjn->pamn", Vc[sl].conj(), dHf[sl], Vs[sl], optimize=True)
        gap = E[sl][:, None, inS] - E[sl][:, ~inS, None]
        X = D / gap[:, None]
        Q[sl] = np.einsum("pamn,pbmn->pab", X.conj(), X, optimize=True)
    Q = Q.reshape(batch + (n, n))
    return Q.real.copy(), -2.0 * Q.imag


# --------------------------------------------------------------------------------------------
# Chern number
# --------------------------------------------------------------------------------------------
def chern_fhs(
    hamiltonian_fn: Callable[[np.ndarray], np.ndarray],
    reciprocal,
    n_k,
    bands,
    *,
    periodic_tol: float = 1e-8,
) -> float:
    """Fukui–Hatsugai–Suzuki lattice Chern number of a band or band group in 2D.

    C = −(1/2π) Σ_□ arg(U_12 U_23 U_34 U_41), U_ij = det(U_S(k_i)^† U_S(k_j)), with plaquettes
    k → k + b_1/N_1 → k + b_1/N_1 + b_2/N_2 → k + b_2/N_2 (physics.md §2.6). The result is
    oriented in Cartesian (k_x, k_y) so that C = (1/2π)∫Ω_z d²k with Ω from §2.1 (the sign of
    det(reciprocal) is taken into account). It is an exact integer for any mesh; it equals the
    true Chern number once the mesh resolves the curvature.

    Parameters
    ----------
    hamiltonian_fn : callable
        ``hamiltonian_fn(k)`` with k of shape (..., 2) [1/Å] returning (..., nb, nb). It must be
        BZ-periodic, H(k + b_i) = H(k) (Bloch convention II, physics.md §1.1); this is checked
        and a :class:`ModelError` is raised otherwise.
    reciprocal : (2, 2) array
        Reciprocal vectors b_1, b_2 as rows [1/Å].
    n_k : int or (int, int)
        Mesh size along b_1 and b_2.
    bands : int or sequence of int
        Band (or group of bands, ascending-energy indices) whose Chern number is computed; a
        group uses the determinant of its overlap matrix and may be internally degenerate.
    periodic_tol : float
        Tolerance of the periodicity check, relative to max|H|.

    Returns
    -------
    float
        The Chern number (an integer up to rounding, ~1e-12).
    """
    b = np.asarray(reciprocal, dtype=float)
    if b.shape != (2, 2):
        raise ValueError(f"chern_fhs: reciprocal must have shape (2, 2); got {b.shape}")
    N1, N2 = (int(n_k), int(n_k)) if np.ndim(n_k) == 0 else (int(n_k[0]), int(n_k[1]))
    if N1 < 2 or N2 < 2:
        raise ValueError(f"chern_fhs: n_k = {n_k} must be at least 2 along each direction")
    u1 = np.arange(N1 + 1) / N1
    u2 = np.arange(N2 + 1) / N2
    k = u1[:, None, None] * b[0] + u2[None, :, None] * b[1]  # (N1+1, N2+1, 2), closed mesh
    Hk = np.asarray(hamiltonian_fn(k))
    nb = Hk.shape[-1]
    scale = max(np.abs(Hk).max(), 1e-300)
    err = max(np.abs(Hk[N1] - Hk[0]).max(), np.abs(Hk[:, N2] - Hk[:, 0]).max()) / scale
    if err > periodic_tol:
        raise ModelError(
            f"chern_fhs: hamiltonian_fn is not periodic over the Brillouin zone "
            f"(max|H(k+b_i) − H(k)|/max|H| = {err:.3g} > {periodic_tol:g}); use Bloch convention "
            f"II (orbitals at the cell origin, physics.md §1.1): H_II(k) = V(k)^† H(k) V(k), "
            f"V = diag(exp(−i k·τ_α))"
        )
    inS = _band_mask(bands, nb, "chern_fhs")
    _, V = np.linalg.eigh(Hk[:N1, :N2])
    U = V[..., :, inS]  # (N1, N2, nb, |S|)
    Uh = np.conj(U).swapaxes(-1, -2)

    def link(axis):
        return np.linalg.det(Uh @ np.roll(U, -1, axis=axis))  # det <u(k)|u(k + δ_axis)>

    L1 = link(0)  # k -> k + b1/N1
    L2 = link(1)  # k -> k + b2/N2
    # plaquette k -> k+δ1 -> k+δ1+δ2 -> k+δ2 -> k
    W = L1 * np.roll(L2, -1, axis=0) * np.conj(np.roll(L1, -1, axis=1)) * np.conj(L2)
    C = -np.angle(W).sum() / (2 * np.pi)
    return float(np.sign(np.linalg.det(b)) * C)
