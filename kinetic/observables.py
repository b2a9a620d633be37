"""Moments of the distribution: density and current (internal units; charge −e).

Number density n = Σ_n ∫[dk] D f and number current j_N = Σ_n ∫[dk] D ẋ f (physics.md §6);
the charge current is −e j_N. For ``1x1k`` both are x-fields (per Å, and per ħ/eV), D ẋ being
the x-face flux of the stream function averaged over the cell's two x-faces; for the
homogeneous layouts they are totals (per Å^d).
"""
from __future__ import annotations

import numpy as np

from kinetic.derivatives import axis_derivatives

def density(problem, fvec) -> np.ndarray:
    """1x1k/1x2k: n(x) for owned x-cells (n1l,); homogeneous: the local part of the total."""
    f = problem.mesh.local_view(fvec)
    w = problem.D * f * problem.measure()
    if problem.layout in ("1x1k", "1x2k"):
        n = w.sum(axis=(0, 2))
        if "obs_quadrupole" in problem.phys.terms:
            n = n + quadrupole_density(problem, f)
        if "wk_correction" in problem.phys.terms:
            n = n + wigner_kirkwood_density(problem)
        return n
    return w.sum()


def wigner_kirkwood_density(p) -> np.ndarray:
    """Σ_n ∫dk/2π [w₂ f″(ε_n) + w₃ f‴(ε_n)] at the equilibrium (μ, T) (physics.md §4.6;
    comparison with exact quantum densities only). Owned x-cells (n1l,)."""
    kT = p.phys.kT
    f = 0.5 * (1.0 - np.tanh(0.5 * (p.eps_bare - p.phys.mu) / kT))
    f1 = -f * (1 - f)  # df/dx, x = (ε − μ)/k_BT
    f2 = -f1 * (1 - 2 * f)
    f3 = f1 * (1 - 6 * f + 6 * f * f)
    w = p.wk_w2 * f2 / kT**2 + p.wk_w3 * f3 / kT**3
    return w.sum(axis=(0, 2)) * p.measure()


def quadrupole_density(p, f) -> np.ndarray:
    """½ ∂²_x Σ_n ∫dk/2π g^n_kk f_n (physics.md §6.1) at the owned x-cells, from the moment
    gathered on the whole x-line: on a periodic ring two spectral first derivatives, on an open
    x-range the fourth-order second difference — the same ∂²_x as Ω″ in ``Problem``, so the two
    cancel in insulators to round-off (``kinetic.derivatives``). Collective."""
    Q = (p.g_kk * f).sum(axis=(0, 2)) * p.measure()
    m = p.mesh
    return 0.5 * axis_derivatives(m.axes[0])[1](_line(p, Q), 0)[m.s1:m.e1]


def _line(p, Q) -> np.ndarray:
    """An x-moment (n1l,) of every rank gathered into the whole x-line (N1,). Collective."""
    from kinetic.mesh import gather_line

    return gather_line(p.mesh.comm, Q)


def line_dx(p, F) -> np.ndarray:
    """∂_x of a whole-line x-moment (N1,): spectral on a ring, fourth-order differences on an
    open x-range."""
    return axis_derivatives(p.mesh.axes[0])[0](F, 0)


def quadrupole_current(transport, fvec, E=None) -> np.ndarray:
    """The x-component of the quadrupole current j_Q = −½ ∂_x ∂_t Σ_n ∫[dk] g_{k_x k_x} f (number
    units; charge (e/2)∂_x∂_t∫g f, physics.md §6.2), so that ∂_t n + ∂_x j = 0 holds with the
    quadrupole density of ``quadrupole_density`` (exactly on a ring; on an open x-range ∂_t n_Q
    takes the second-derivative stencil and j_Q the first derivative twice: they agree to
    O(h⁴) inside and O(h³) in the one-sided end rows). ∂_t f is the kinetic equation's
    right-hand side at f (field E, default physics.E; the local equilibrium of f); zero in
    steady states.
    Owned x-cells (n1l,); 1x1k and 1x2k with obs_quadrupole. Collective."""
    p = transport.p
    E = p.phys.E if E is None else E
    f = p.mesh.local_view(fvec)
    dfdt = -transport.flux_divergence(fvec, E) / transport.AD - (f - p.local_equilibrium(f)) / p.tau
    Qdot = (p.g_kk * dfdt).sum(axis=(0, 2)) * p.measure()
    return -0.5 * line_dx(p, _line(p, Qdot))[p.mesh.s1:p.mesh.e1]


def energy_density(problem, fvec) -> np.ndarray:
    """u = Σ_n ∫[dk] D ε̃ f (eV per Å^d; physics.md §6.3, first-order part): x-field or total."""
    f = problem.mesh.local_view(fvec)
    w = problem.D * problem.eps_cell * f * problem.measure()
    if problem.layout in ("1x1k", "1x2k"):
        return w.sum(axis=(0, 2))
    return w.sum()


def number_current(transport, fvec, E=None) -> np.ndarray:
    """Number current ∫[dk] D ẋ f: 1x1k (n1l,) x-field; 1x2k (n1l, 2) x-field (j_x, j_y);
    0x1k scalar; 0x2k (2,) vector, 0x3k (3,) vector (local part).

    In 1x1k and 0x1k it is the scheme's own x-face flux (averaged over a cell's two x-faces), so
    the discrete continuity equation ∂t n + ∂x j = 0 holds exactly.
    """
    p = transport.p
    E = p.phys.E if E is None else E
    f = p.mesh.local_view(fvec)
    a1, a2 = p.mesh.axes
    if p.layout in ("1x1k", "1x2k", "0x1k"):
        P1, P2 = transport.face_fluxes(fvec, E)
        if p.layout == "0x1k":
            return (0.5 * (P2[1:] + P2[:-1])).sum() / (2 * np.pi) / a2.n
        # face flux = ∫ D ẋ f dk_x over the face; × measure/h_kx gives ∫[dk] D ẋ f
        jx = (0.5 * (P1[:, 1:] + P1[:, :-1])).sum(axis=(0, 2)) * (p.measure() / a2.h)
        if p.layout == "1x1k":
            return jx
        return np.stack([jx, transverse_current(p, f, E)], axis=-1)
    # 0x2k: D ẋ = ∇_k ε̃ + E × Ω ẑ (in plane), ∇_k ε̃ from corner differences. With the
    # field-induced second-order terms (B = 0, physics.md §4.2, §4.5, §6.4) ε̃ includes
    # ½ G^R_ij E_i E_j (E2_bcp) and Ω = Ω_z + Ω′_z, Ω′ = ∇_k × (G^GYN E) (A2_shift_field), both
    # built for physics.E (Problem); an E argument other than physics.E changes only the
    # factor E in E × Ω ẑ (e.g. E = 0 for an equilibrium reference).
    e = p.eps_corner
    gx = 0.5 * ((e[1:, 1:] - e[1:, :-1]) + (e[:-1, 1:] - e[:-1, :-1])) / a1.h
    gy = 0.5 * ((e[1:, 1:] - e[:-1, 1:]) + (e[1:, :-1] - e[:-1, :-1])) / a2.h
    Ex, Ey = (tuple(np.atleast_1d(E)) + (0.0, 0.0))[:2]
    jx = ((gx + Ey * p.curv_z) * f).sum() * p.measure()
    jy = ((gy - Ex * p.curv_z) * f).sum() * p.measure()
    if p.layout == "0x2k" or p.phys.B != 0:
        # 0x3k with B ∥ z: the (v·Ω)B term of D ż is not implemented; (j_x, j_y) only
        return np.array([jx, jy])
    # 0x3k (k_z folded, E_z = 0) at B = 0: D ż = ∂_kz ε + (E × Ω)_z = ∂_kz ε + E_x Ω_y − E_y Ω_x
    jz = ((p.vel_z + Ex * p.curv_y - Ey * p.curv_x) * f).sum() * p.measure()
    return np.array([jx, jy, jz])


def transverse_current(p, f, E) -> np.ndarray:
    """1x2k: j_y(x) = ∫[dk] D ẏ f, D ẏ = D ∂_{k_y}ε̃ − Ω_{k_y x} ∂_{k_x}ε̃ − Ω_{k_x k_y}(∂_x ε̃ + eE_x)
    (physics.md §5.2, quasi-1D); ∂_{k_y} spectrally across the folded k_y, the others from
    corner differences. Owned x-cells (n1l,)."""
    a1, a2 = p.mesh.axes
    n2, n1l = p.eps_cell.shape[:2]
    nky = p.nfold
    e = p.eps_cell.reshape(n2, n1l, nky, -1)
    kfreq = 2 * np.pi * np.fft.fftfreq(nky, d=p._ky_axis.h)
    fe = np.fft.fft(e, axis=2)
    if nky % 2 == 0:  # drop the Nyquist mode's derivative (it is not real-representable)
        fe[:, :, nky // 2] = 0
    de_dky = np.real(np.fft.ifft(1j * kfreq[:, None] * fe, axis=2))
    de_dky = de_dky.reshape(p.eps_cell.shape)
    c = p.eps_corner
    de_dx = 0.5 * ((c[1:, 1:] - c[1:, :-1]) + (c[:-1, 1:] - c[:-1, :-1])) / a1.h
    de_dkx = 0.5 * ((c[1:, 1:] - c[:-1, 1:]) + (c[1:, :-1] - c[:-1, :-1])) / a2.h
    Ex = float(np.atleast_1d(E)[0])
    Dydot = p.D * de_dky - p.curv_kykx_x * de_dkx - p.curv_kxky * (de_dx + Ex)
    return (Dydot * f).sum(axis=(0, 2)) * p.measure()


def total(problem, local_value):
    """Sum a local total over ranks (homogeneous layouts) or an x-field over x (1x1k, × h_x)."""
    if problem.layout in ("1x1k", "1x2k"):
        return problem.mesh.allsum(np.sum(local_value, axis=0) * problem.mesh.axes[0].h)
    return problem.mesh.allsum(np.asarray(local_value))
