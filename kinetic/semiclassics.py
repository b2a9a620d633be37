"""Wave-packet semiclassics of one band: corrected energy, phase-space density, connections.

Pure numpy on ``BandGeometry`` (kinetic.geometry) evaluated on phase-space points with
coordinates (x_1..x_{n_x}, k_1..k_{n_k}). Internal units eV, Å, ħ = e = 1, electron charge −e
(physics.md §1). Every correction is a named term in ``TERMS`` (physics.md §4.8); a run switches
terms on and off by name and D, ẋ, k̇ always come from the same symplectic form ω, so
Liouville's theorem holds for any toggle set.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kinetic.errors import ConfigError


@dataclass(frozen=True)
class Term:
    name: str
    order: int
    kind: str  # "connection" | "energy" | "observable" | "collision"
    doc: str


TERMS: dict[str, Term] = {t.name: t for t in [
    Term("berry_kk", 1, "connection", "Ω_{k_i k_j}: anomalous velocity"),
    Term("berry_kx", 1, "connection", "Ω_{k_i x_j}: mixed curvature (Goldstone–Wilczek, pumps)"),
    Term("berry_xx", 1, "connection", "Ω_{x_i x_j}: emergent magnetic field"),
    Term("E1_gradient", 1, "energy", "Δε⁽¹⁾ (Sundaram–Niu gradient energy) and −m·B"),
    Term("A2_shift_field", 2, "connection", "positional shift A′ from V = eE·x (Gao–Yang–Niu)"),
    Term("E2_bcp", 2, "energy", "½ G^R_ab Φ_a[ε̄] Φ_b[2ε_n − ε̄]: field part ½ G^R_ij E_i E_j"),
    Term("A2_shift_texture", 2, "connection",
         "positional shift A′ from the flow of the mid-point energy ε̄ (texture; mixed BCP)"),
    Term("A2_threeband", 2, "connection", "three-band term of the admixture c_m in A′"),
    Term("A2_metric_gradient", 2, "connection", "metric-gradient connection A″ = −½ J ∂·σ"),
    Term("E2_quadrupole", 2, "energy", "ε⁽²⁾ term (i): ½ σ_ab ∂a∂b ε̄"),
    Term("E2_curv2", 2, "energy", "ε⁽²⁾ term (iii): −(ε_m−ε_n)/4 Ω_kx²"),
    Term("E2_metric_laplacian", 2, "energy", "ε⁽²⁾ term (iv): −(ε_m−ε_n)/8 ∂a∂b σ_ab"),
    Term("obs_quadrupole", 2, "observable", "½ ∂∂ ∫ g f in the density; quadrupole current"),
    Term("wk_correction", 2, "observable", "Wigner–Kirkwood w₂f″ + w₃f‴ (comparison only)"),
    Term("relax_to_corrected_energy", 0, "collision",
         "relax to f_eq(ε̃) (intrinsic anomalous distribution) instead of f_eq(ε)"),
]}
FIRST_ORDER = ("berry_kk", "berry_kx", "berry_xx", "E1_gradient")
#: terms the phase-space solver implements (layout restrictions: Problem._check_layout_terms;
#: homogeneous layouts take the field-induced ones at B = 0, 1x2k the connections A′ (texture
#: and field parts), A″ and the quasi-1D ε⁽²⁾)
SOLVER_IMPLEMENTED = set(FIRST_ORDER) | {"relax_to_corrected_energy", "A2_shift_texture",
                                         "A2_threeband", "A2_shift_field", "A2_metric_gradient",
                                         "obs_quadrupole", "wk_correction", "E2_quadrupole",
                                         "E2_bcp", "E2_curv2", "E2_metric_laplacian"}
DEFAULT_TERMS = FIRST_ORDER + ("relax_to_corrected_energy",)


def check_terms(names) -> frozenset:
    """Validate term names (ConfigError naming the unknown term and the allowed ones)."""
    import difflib

    for n in names:
        if n not in TERMS:
            near = difflib.get_close_matches(n, TERMS, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(f"physics.terms: unknown term {n!r}{hint}; allowed: {', '.join(TERMS)}")
    return frozenset(names)


def check_solver_terms(names) -> frozenset:
    """check_terms, and refuse terms the phase-space solver does not implement yet."""
    terms = check_terms(names)
    if ("A2_metric_gradient" in terms) != ("obs_quadrupole" in terms):
        raise ConfigError("physics.terms: A2_metric_gradient and obs_quadrupole must be switched on "
                          "together (physics.md §4.8 consistency rule: their densities cancel in "
                          "insulators; one alone creates spurious bound charge)")
    missing = sorted(terms - SOLVER_IMPLEMENTED)
    if missing:
        raise ConfigError(f"physics.terms: {missing[0]!r} is specified in physics.md §4.8 but not "
                          "implemented in the phase-space solver yet; implemented: "
                          + ", ".join(sorted(SOLVER_IMPLEMENTED)))
    return terms


def curvature_blocks(geom, band: int, terms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Ω_kk (..., d, d), Ω_kx (..., d, d) with [i, j] = Ω_{k_i x_j}, Ω_xx (..., d, d)).

    d = n_k; x coordinates beyond n_x are absent (zero blocks). Toggled off blocks are zero.
    """
    nx, nk = geom.n_x, geom.n_k
    O = geom.curvature[..., band, :, :]
    shape = O.shape[:-2]
    kk = O[..., nx:, nx:] if "berry_kk" in terms else np.zeros(shape + (nk, nk))
    kx = np.zeros(shape + (nk, nk))
    xx = np.zeros(shape + (nk, nk))
    if "berry_kx" in terms:
        kx[..., :, :nx] = O[..., nx:, :nx]
    if "berry_xx" in terms:
        xx[..., :nx, :nx] = O[..., :nx, :nx]
    return kk, kx, xx


def levi_civita_B(B, d: int) -> np.ndarray:
    """The (d, d) matrix ε_ijl B_l (B a z-scalar, or in 3D a 3-vector)."""
    out = np.zeros((d, d))
    if d == 2:
        out[0, 1], out[1, 0] = B, -B
    elif d == 3:  # a scalar B is B_z, as in corrected_energy
        B = np.asarray(B, float)
        Bx, By, Bz = (0.0, 0.0, float(B)) if B.ndim == 0 else B
        out[:] = [[0, Bz, -By], [-Bz, 0, Bx], [By, -Bx, 0]]
    return out


def symplectic_form(kk, kx, xx, B=0.0) -> np.ndarray:
    """ω (..., 2d, 2d) in the ordering (x, k), ħ = e = 1 (physics.md §3.1)."""
    d = kk.shape[-1]
    w = np.zeros(kk.shape[:-2] + (2 * d, 2 * d))
    w[..., :d, :d] = xx - levi_civita_B(B, d)
    w[..., :d, d:] = -(np.eye(d) + np.swapaxes(kx, -1, -2))  # ω_{x_i k_j} = −(δ_ij + Ω_{k_j x_i})
    w[..., d:, :d] = -np.swapaxes(w[..., :d, d:], -1, -2)
    w[..., d:, d:] = kk
    return w


def pfaffian(A: np.ndarray) -> np.ndarray:
    """Pfaffian of antisymmetric (..., 2m, 2m) matrices by expansion along the first row."""
    n = A.shape[-1]
    if n == 0:
        return np.ones(A.shape[:-2])
    if n == 2:
        return A[..., 0, 1]
    out = 0.0
    rest = np.arange(1, n)
    for jj, j in enumerate(rest):
        keep = np.delete(rest, jj)
        sub = A[..., keep[:, None], keep[None, :]]
        out = out + (-1) ** jj * A[..., 0, j] * pfaffian(sub)
    return out


def phase_space_density(kk, kx, xx, B=0.0) -> np.ndarray:
    """D = Pf ω / Pf ω⁽⁰⁾ (1D: 1 + Ω_kx; homogeneous 2D: 1 + B Ω_z)."""
    d = kk.shape[-1]
    w = symplectic_form(kk, kx, xx, B)
    w0 = symplectic_form(*(np.zeros((d, d)),) * 3)
    return pfaffian(w) / pfaffian(w0)


def corrected_energy(geom, band: int, terms, B=0.0, E=None) -> np.ndarray:
    """ε̃ = ε_n + Δε⁽¹⁾ − m·B (E1_gradient) + ½ G^R_ij E_i E_j (E2_bcp, uniform field E)."""
    eps = geom.energy[..., band].copy()
    if "E1_gradient" in terms:
        eps = eps + geom.gradient_energy[..., band]
        m = geom.orbital_moment[..., band, :]
        Bv = np.zeros(3)
        if np.ndim(B) == 0:
            Bv[2] = B
        else:
            Bv[:] = B
        eps = eps - m @ Bv
    if "E2_bcp" in terms and E is not None:
        eps = eps + field_bcp_energy(geom, band, E)
    return eps


def _k_block(G, geom):
    nx = geom.n_x
    return G[..., nx:, nx:]


def field_shift(geom, band: int, E) -> np.ndarray:
    """Gao–Yang–Niu positional shift A′_{k_i} = e G^GYN_ij E_j (..., n_k), Å (V15)."""
    G = _k_block(geom.bcp_gyn[..., band, :, :], geom)
    return G @ np.asarray(E, float)


def field_bcp_energy(geom, band: int, E) -> np.ndarray:
    """Second-order field energy ε⁽²⁾ = ½ G^R_ij e²E_iE_j = −½ e E·A′ (..., ), eV (V15)."""
    E = np.asarray(E, float)
    return 0.5 * np.einsum("...ij,i,j->...", _k_block(geom.bcp_R[..., band, :, :], geom), E, E)


def positional_shift(geom, band: int, threeband: bool = True) -> np.ndarray:
    """A′_a (..., n) of physics.md §4.2 for any N, from the mid-point energy flow.

    c_m = [Σ_b (A_b)_mn Φ_b[ε̄_nm] + (i/2) Σ_{l≠n,m} (ε_l − ε_m) Σ_ab J_ab (A_a)_ml (A_b)_ln]
          / (ε_m − ε_n),    A′_a = 2 Re Σ_{m≠n} (A_a)_nm c_m,
    with Φ[φ] = J∇φ over the geometry's coordinates. Needs n_x = n_k (full phase space);
    any potential V(x) must be part of H so that ∇ε includes it.
    """
    nx, nk = geom.n_x, geom.n_k
    if nx != nk:
        raise ValueError("positional_shift needs the full phase space (n_x = n_k)")
    d = nk
    J = np.block([[np.zeros((d, d)), np.eye(d)], [-np.eye(d), np.zeros((d, d))]])
    A = geom.connection  # (..., n, nb, nb), [a, m, l]
    grad = geom.velocity  # (..., n, nb): ∂_a ε_m
    e = geom.energy
    nb = e.shape[-1]
    n = band
    Aprime = np.zeros(A.shape[:-3] + (2 * d,))
    for m in range(nb):
        if m == n:
            continue
        gbar = 0.5 * (grad[..., :, n] + grad[..., :, m])  # ∇ε̄_nm (..., 2d)
        phi = gbar @ J.T  # Φ_b = Σ_c J_bc ∂_c ε̄
        c = np.einsum("...b,...b->...", A[..., :, m, n], phi)
        if threeband:
            for l in range(nb):
                if l in (n, m):
                    continue
                t = np.einsum("ab,...a,...b->...", J, A[..., :, m, l], A[..., :, l, n])
                c = c + 0.5j * (e[..., l] - e[..., m]) * t
        c = c / (e[..., m] - e[..., n])
        Aprime = Aprime + 2 * np.real(A[..., :, n, m] * c[..., None])
    return Aprime


def wigner_kirkwood(geom, band: int) -> tuple[np.ndarray, np.ndarray]:
    """Scalar Wigner–Kirkwood coefficients (w₂, w₃) of band n (physics.md §4.6, 1D or quasi-1D):

    w₂ = −⅛ Σ_ij (ε_{x_i x_j} ε_{k_i k_j} − ε_{x_i k_j} ε_{x_j k_i}),
    w₃ = −1/24 Σ_ij (ε_{x_i x_j} ε_{k_i} ε_{k_j} − 2 ε_{x_i k_j} ε_{k_i} ε_{x_j} + ε_{k_i k_j} ε_{x_i} ε_{x_j}),

    with ∂ε from ``velocity`` and ∂∂ε from ``inverse_mass`` (needs ∂²H). Units eV and eV·(eV)…:
    the density correction is ∫[dk] (w₂ f″(ε) + w₃ f‴(ε)). Not generated by a classical kinetic
    equation; added only when comparing with exact quantum densities (``wk_correction``)."""
    nx = geom.n_x
    d = min(nx, geom.n_k)
    M = geom.inverse_mass[..., band, :, :]
    v = geom.velocity[..., :, band]
    w2 = np.zeros(M.shape[:-2])
    w3 = np.zeros(M.shape[:-2])
    for i in range(d):
        for j in range(d):
            xx, kk = M[..., i, j], M[..., nx + i, nx + j]
            xk_ij, xk_ji = M[..., i, nx + j], M[..., j, nx + i]
            w2 = w2 - (xx * kk - xk_ij * xk_ji) / 8
            w3 = w3 - (xx * v[..., nx + i] * v[..., nx + j]
                       - 2 * xk_ij * v[..., nx + i] * v[..., j]
                       + kk * v[..., i] * v[..., j]) / 24
    return w2, w3


def second_order_energy(geom, band: int, terms, laplacian_sigma=None) -> np.ndarray:
    """Two-band wave-packet energy ε⁽²⁾_c of physics.md §4.5 (1D / quasi-1D, n_x = n_k = 1):

    (i)   E2_quadrupole        ½ σ_ab ∂a∂b ε̄ = ½(g_kk ε̄_xx − 2 g_kx ε̄_xk + g_xx ε̄_kk)
    (ii)  E2_bcp               ½ G^R_ab Φ_a[ε̄] Φ_b[2ε_n − ε̄]
    (iii) E2_curv2             −(ε_m − ε_n)/4 Ω_kx²
    (iv)  E2_metric_laplacian  −(ε_m − ε_n)/8 ∂a∂bσ_ab   (``laplacian_sigma`` = ∂a∂bσ_ab)

    ε̄ = (ε_n + ε_m)/2 the mid-point energy; Φ[φ] = (∂_k φ, −∂_x φ). Needs ``inverse_mass``
    (∂²H). eV."""
    if geom.energy.shape[-1] != 2:
        raise ConfigError("physics.terms: the E2_* energy terms have closed forms for two-band "
                          "models only (physics.md §4.5, §9 item 2)")
    m = 1 - band
    e_n, e_m = geom.energy[..., band], geom.energy[..., m]
    v = geom.velocity  # (..., 2, nb): ∂_x, ∂_k
    Hbar = 0.5 * (geom.inverse_mass[..., band, :, :] + geom.inverse_mass[..., m, :, :])
    g = geom.metric[..., band, :, :]
    out = np.zeros(e_n.shape)
    if "E2_quadrupole" in terms:
        out = out + 0.5 * (g[..., 1, 1] * Hbar[..., 0, 0] - 2 * g[..., 1, 0] * Hbar[..., 0, 1]
                           + g[..., 0, 0] * Hbar[..., 1, 1])
    if "E2_bcp" in terms:
        vbar = 0.5 * (v[..., :, band] + v[..., :, m])
        w = 2 * v[..., :, band] - vbar  # ∇(2ε_n − ε̄)
        phi1 = np.stack([vbar[..., 1], -vbar[..., 0]], -1)
        phi2 = np.stack([w[..., 1], -w[..., 0]], -1)
        out = out + 0.5 * np.einsum("...a,...ab,...b->...", phi1, geom.bcp_R[..., band, :, :], phi2)
    if "E2_curv2" in terms:
        out = out - 0.25 * (e_m - e_n) * geom.curvature[..., band, 1, 0] ** 2
    if "E2_metric_laplacian" in terms:
        out = out - 0.125 * (e_m - e_n) * laplacian_sigma
    return out
