"""Exact quantum-mechanical references for the semiclassical theory (issue #5).

Pure numpy/scipy, no PETSc. Internal units: energies eV, lengths Å, k in 1/Å,
ħ = e = k_B = 1 (so kT is in eV and conductivities are in e²/ħ). These functions are the
independent "second methods" of physics.md Appendix A: exact diagonalization of
midpoint-rule lattices (V10, V11) and ordinary Brillouin-zone integrals of the homogeneous model
that is gauge-equivalent to a helical texture (V12). The matching semiclassical quantities are
here as well, so that tests can compare the two.

1D textured rings (physics.md §1.1, §6.1, V10, V11)
----------------------------------------------------
The symbol H(x, k) of a ``PhaseSpaceModel`` with ``dim_x = 1`` becomes a ring of L cells with
``kinetic.models.texture.midpoint_lattice``. Cell R = 0..L−1 sits at x_R = R·a. Its orbitals sit
at the cell origin (Bloch convention II). The on-site block is H's k-independent Fourier
coefficient at x_R, and the hopping R → R+δ is evaluated at the bond midpoint (R + δ/2)·a.
Every density here is **electrons per cell**: the sum over the cell's orbitals, shape (L,).
Semiclassical fields are evaluated at the same points x_R. The lattice Weyl calculus of this
construction equals the continuum Moyal product exactly. So n(x_R) = ∫dk/2π tr f_⋆(H)(x_R, k)
holds per cell, with no shift of x.

- :func:`ring_density`: exact n(x_R), grand canonical (Fermi–Dirac at μ, kT) or filled up to
  the gap above band ``filled_bands`` (an insulator, whose count of states N·L + C_xk is returned).
- :func:`ring_first_order_density`: n₁ = a∫dk/2π Ω_kx summed over the filled bands (Goldstone–Wilczek).
- :func:`ring_shift_polarization`: P₂ = ∫dk/2π A′_k (positional shift, physics.md §4.2).
- :func:`ring_second_order_density`: n₂ = −a ∂_x P₂ (static insulator, physics.md §6.1).
- :func:`periodic_derivative`: spectral (FFT) derivative of periodic samples.

Helical texture (physics.md §6.5, V12)
--------------------------------------
The texture is H(x, k) = U(x) H0(k) U(x)†, with U = exp(−iqxΣ/2) and H0 = ``qwz_helical`` at q = 0.
Its midpoint lattice is exactly unitarily equivalent to the homogeneous H′(k) =
``get_model("qwz_helical", q=q)`` (checked in tests/test_models.py).

- :func:`helical_exact`: the exact σ_xy(q) = −∫[dk] Σ_n f Ω_z and n(q) = ∫[dk] Σ_n f of H′.
- :func:`helical_exact_slope`: dσ_xy/dq at q = 0 from central differences, with Richardson
  extrapolation.
- :func:`helical_hall_slope`: the semiclassical O(q) decomposition A + B′ + B″ and the
  first-order density slope.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from kinetic.geometry import band_geometry
from kinetic.kmesh import make_kmesh
from kinetic.models.catalogue import get_model
from kinetic.models.texture import PhaseSpaceModel, helical, midpoint_lattice
from kinetic.semiclassics import positional_shift

__all__ = [
    "fermi",
    "periodic_derivative",
    "RingDensity",
    "ring_density",
    "ring_first_order_density",
    "ring_shift_polarization",
    "ring_second_order_density",
    "HelicalExact",
    "helical_exact",
    "helical_exact_slope",
    "HelicalSlope",
    "helical_hall_slope",
]


# ============================================================================ helpers
def fermi(e, mu: float, kT: float | None, deriv: int = 0):
    """Fermi–Dirac occupation f((ε − μ)/kT) or its ε-derivatives f′ [1/eV] and f″ [1/eV²].

    e : array of energies [eV]; mu [eV]; kT [eV] (k_B = 1). ``kT`` None or 0 gives the T = 0 step
    θ(μ − ε), with 1/2 exactly at ε = μ (only for deriv = 0). Overflow-free (scipy ``expit``).
    """
    e = np.asarray(e, float)
    if kT is None or kT == 0:
        if deriv:
            raise ValueError("fermi: derivatives of the T = 0 step are not functions; give kT > 0")
        return np.heaviside(mu - e, 0.5)
    if kT < 0:
        raise ValueError(f"fermi: kT must be >= 0 (eV); got {kT}")
    f = expit(-(e - mu) / kT)
    if deriv == 0:
        return f
    if deriv == 1:
        return -f * (1 - f) / kT
    if deriv == 2:
        return f * (1 - f) * (1 - 2 * f) / kT**2
    raise ValueError(f"fermi: deriv must be 0, 1 or 2; got {deriv}")


def periodic_derivative(values, period: float, axis: int = -1, order: int = 1) -> np.ndarray:
    """Spectral derivative d^order/dx^order of samples of a periodic function.

    ``values`` holds N equally spaced samples x_j = j·period/N along ``axis`` (real). The
    derivative is exact for trigonometric polynomials of degree < N/2. The Nyquist mode (even N)
    is dropped for odd orders. Units: [values]/[period]^order.
    """
    v = np.asarray(values, float)
    N = v.shape[axis]
    w = 2 * np.pi * np.fft.fftfreq(N, d=period / N)
    mult = (1j * w) ** order
    if N % 2 == 0 and order % 2 == 1:
        mult[N // 2] = 0.0
    shape = [1] * v.ndim
    shape[axis] = N
    return np.fft.ifft(np.fft.fft(v, axis=axis) * mult.reshape(shape), axis=axis).real


def _bands(band) -> np.ndarray:
    b = np.atleast_1d(np.asarray(band, int))
    if b.ndim != 1 or b.size == 0:
        raise ValueError(f"band must be an int or a non-empty sequence of ints; got {band!r}")
    return b


# ============================================================================ 1D rings: exact
@dataclass(frozen=True)
class RingDensity:
    """Exact density of a midpoint-rule ring (see :func:`ring_density`).

    Attributes
    ----------
    x : (L,) float
        Cell positions x_R = R·a [Å].
    n : (L,) float
        Electrons per cell (summed over the cell's orbitals and over occupied eigenstates).
    energies : (L·nb,) float
        Exact eigenvalues of the ring Hamiltonian, ascending [eV].
    occupation : (L·nb,) float
        Occupation of each eigenstate (1/0 for a filled set, Fermi–Dirac otherwise).
    n_states : float
        Σ occupation = Σ_R n(x_R). For a filled set this is the number of filled states
        (nb_filled·L + C_xk on a winding ring, physics.md §5.4).
    gap : float or None
        Filled set: ε[n_states] − ε[n_states − 1], the gap above the last filled state [eV].
        Grand canonical: None.
    """

    x: np.ndarray
    n: np.ndarray
    energies: np.ndarray
    occupation: np.ndarray
    n_states: float
    gap: float | None


def ring_density(pm: PhaseSpaceModel, L: int, mu: float | None = None, kT: float | None = None,
                 filled_bands: int | None = None, a: float = 1.0, k_perp=()) -> RingDensity:
    """Exact density per cell of the midpoint-rule lattice of ``pm`` on a periodic ring.

    Parameters
    ----------
    pm : PhaseSpaceModel with dim_x = 1
        The symbol H(x, k), textured along x with period L·a (e.g. ``rice_mele_ring(L)``).
    L : int
        Number of cells. The dense (L·nb) × (L·nb) Hamiltonian is diagonalized with
        ``numpy.linalg.eigh`` (≈1 s for L·nb = 1024).
    mu, kT : float, optional
        Grand canonical: Fermi–Dirac occupations f((ε − μ)/kT) of the exact eigenstates [eV].
        ``kT`` None or 0 gives the T = 0 step.
    filled_bands : int, optional
        Used when ``mu`` is None (default nb // 2, the gap in the middle of the spectrum). Fills
        every state below the largest level spacing among the states nb_f·L ± max(2, L//4),
        nb_f = ``filled_bands``. On a winding ring the count is nb_f·L + C_xk (V10: L − 1) and is
        returned as ``n_states`` together with the ``gap``. Check the gap: a metal has no gap.
    a : float
        Lattice constant [Å]; cell R sits at x = R·a.
    k_perp : sequence of float
        Fixed transverse momenta (k_2, ...) [1/Å] of a quasi-1D model.

    Returns
    -------
    RingDensity
    """
    if mu is not None and filled_bands is not None:
        raise ValueError("ring_density: give either mu (grand canonical) or filled_bands, not both")
    nb = pm.nb
    M = midpoint_lattice(pm, L, a=a, k_perp=k_perp, periodic=True)
    e, V = np.linalg.eigh(M)
    gap = None
    if mu is None:
        nf = nb // 2 if filled_bands is None else int(filled_bands)
        if not 1 <= nf < nb:
            raise ValueError(f"ring_density: filled_bands must be in [1, {nb - 1}]; got {filled_bands}")
        w = max(2, L // 4)
        lo, hi = max(nf * L - w, 1), min(nf * L + w, nb * L - 1)
        spacing = e[lo:hi + 1] - e[lo - 1:hi]  # spacing[i − lo] = e[i] − e[i − 1]
        count = lo + int(np.argmax(spacing))
        occ = np.zeros(e.size)
        occ[:count] = 1.0
        gap = float(e[count] - e[count - 1])
    else:
        occ = fermi(e, mu, kT)
    w2 = (np.abs(V) ** 2).reshape(L, nb, -1).sum(axis=1)  # (L, states): weight of state in cell R
    n = w2 @ occ
    return RingDensity(x=a * np.arange(L), n=n, energies=e, occupation=occ, n_states=float(occ.sum()),
                       gap=gap)


# ============================================================================ 1D rings: semiclassics
def _ring_geometry(pm: PhaseSpaceModel, L: int, nk: int, a: float, k_perp):
    """band_geometry on the (x_R, k_j) mesh, full phase space (x, y.., k_x, k_y..): (L, nk) points.

    Transverse coordinates y.. (quasi-1D, dim > 1) get ∂H/∂y = 0 so that n_x = n_k = dim.
    """
    if pm.dim_x != 1:
        raise ValueError(f"ring semiclassics need a texture with dim_x = 1; got {pm.dim_x}")
    d = pm.dim
    k_perp = np.atleast_1d(np.asarray(k_perp, float))
    if k_perp.size != d - 1:
        raise ValueError(f"k_perp needs {d - 1} components for a model with dim {d}; got {k_perp.size}")
    x = a * np.arange(L)
    k1 = 2 * np.pi * np.arange(nk) / (nk * a)
    K = np.empty((L, nk, d))
    K[..., 0] = k1[None, :]
    K[..., 1:] = k_perp
    H, dH = pm.evaluate(x[:, None, None], K)  # dH: (L, nk, 1 + d, nb, nb), order (x, k_1..k_d)
    if d > 1:
        z = np.zeros(dH.shape[:-3] + (d - 1,) + dH.shape[-2:], dH.dtype)
        dH = np.concatenate([dH[..., :1, :, :], z, dH[..., 1:, :, :]], axis=-3)
    return band_geometry(H, dH, n_x=d)


def ring_first_order_density(pm: PhaseSpaceModel, L: int, nk: int, band=0, a: float = 1.0,
                             k_perp=()) -> np.ndarray:
    """First-order (Goldstone–Wilczek) density of filled bands, n₁(x_R) = a∫dk/2π Σ_n Ω^n_{k x}.

    Electrons per cell, shape (L,), at x_R = R·a (physics.md §6.1, V9a, V10). ``band``: index or
    indices (ascending energy) of the filled bands. ``nk``: k points (trapezoid rule, which is
    spectrally accurate for the smooth periodic integrand). ``k_perp`` as in :func:`ring_density`.
    """
    g = _ring_geometry(pm, L, nk, a, k_perp)
    d = pm.dim
    om = g.curvature[..., _bands(band), d, 0].sum(-1)  # Ω_{k_1 x_1}, dimensionless
    return om.mean(axis=1)


def ring_shift_polarization(pm: PhaseSpaceModel, L: int, nk: int, band=0, a: float = 1.0,
                            k_perp=(), threeband: bool = True) -> np.ndarray:
    """Positional-shift polarization P₂(x_R) = ∫dk/2π Σ_n A′^n_{k_1} (electrons; shape (L,)).

    A′ is ``kinetic.semiclassics.positional_shift`` (physics.md §4.2; for two bands
    A′_k = G^R_kx ∂_k d0 − G^R_kk ∂_x d0). For N > 2 filled bands the single-band A′ are
    summed, which is unverified here (the tests cover two bands).
    """
    g = _ring_geometry(pm, L, nk, a, k_perp)
    d = pm.dim
    Ak = sum(positional_shift(g, int(n), threeband=threeband)[..., d] for n in _bands(band))
    return Ak.mean(axis=1) / a


def ring_second_order_density(pm: PhaseSpaceModel, L: int, nk: int, band=0, a: float = 1.0,
                              k_perp=(), threeband: bool = True) -> np.ndarray:
    """Second-order density of a static insulator, n₂(x_R) = −a ∂_x P₂ (electrons per cell, (L,)).

    This is physics.md §6.1 / V10. ∫dk Ω′_kx gives −∂_x∫A′_k, and the metric-gradient density
    ∫Ω″_kx cancels the quadrupole term ½∂²_x∫g_kk of a filled band, so n₂ = −∂_x P₂ with
    P₂ from :func:`ring_shift_polarization`. ∂_x is spectral (FFT over the L samples of the
    period L·a; the texture is periodic on the ring).
    """
    P2 = ring_shift_polarization(pm, L, nk, band, a, k_perp, threeband)
    return -a * periodic_derivative(P2, L * a)


# ============================================================================ helical texture (V12)
@dataclass(frozen=True)
class HelicalExact:
    """Exact helical-texture observables (see :func:`helical_exact`).

    sigma_xy : float
        Intrinsic Hall conductivity −Σ_n∫[dk] f(ε_n) Ω^n_z of H′(k; q) [e²/ħ] (2D sheet).
    n : float
        Electrons per unit cell, Σ_n∫[dk] f(ε_n) times the cell area (1 Å² here) [dimensionless].
    """

    sigma_xy: float
    n: float


def _qwz_helical(q: float, Sigma):
    return get_model("qwz_helical", q=float(q), Sigma=Sigma)


def helical_exact(mu: float, kT: float, q: float, nk: int, Sigma=None) -> HelicalExact:
    """Exact σ_xy(q) and n(q) of the V12 helical texture, as ordinary BZ integrals of H′(k; q).

    H′ = ``get_model("qwz_helical", q=q, Sigma=Sigma)`` (Σ default (σx + 2σz)/√5). mu, kT [eV],
    q [1/Å], nk × nk Γ-centred mesh. At kT > 0 the integrand is analytic and periodic, so the
    mesh error decays exponentially (~exp(−2π·πkT/(v Δk))); nk = 200 is at round-off for
    kT = 0.1. ``kT = 0`` uses the step function, whose error is only algebraic in nk.
    """
    m = _qwz_helical(q, Sigma)
    mesh = make_kmesh((nk, nk), m.reciprocal)
    g = band_geometry(m.hamiltonian(mesh.k), m.dh_dk(mesh.k))
    f = fermi(g.energy, mu, kT)
    om = g.curvature[..., 0, 1]  # Ω_z of each band
    cell = abs(np.linalg.det(m.lattice))
    return HelicalExact(sigma_xy=float(-mesh.measure * np.mean((f * om).sum(-1))),
                        n=float(cell * mesh.measure * np.mean(f.sum(-1))))


def helical_exact_slope(mu: float, kT: float, nk: int, dq: float = 0.02, Sigma=None,
                        richardson: bool = True) -> float:
    """Exact dσ_xy/dq at q = 0 [e²/ħ·Å] from :func:`helical_exact`.

    Central difference D(h) = [σ(h) − σ(−h)]/2h has error O(h²). With ``richardson`` the result
    is [4D(dq/2) − D(dq)]/3, with error O(dq⁴) (≈1e-8 relative for dq = 0.02).
    """
    def D(h):
        return (helical_exact(mu, kT, h, nk, Sigma).sigma_xy - helical_exact(mu, kT, -h, nk, Sigma).sigma_xy) / (2 * h)

    if not richardson:
        return D(dq)
    return (4 * D(dq / 2) - D(dq)) / 3


@dataclass(frozen=True)
class HelicalSlope:
    """Semiclassical O(q) coefficients of the helical texture, per unit q (see
    :func:`helical_hall_slope`). Hall terms in e²/ħ·Å; the density slope in electrons·Å per cell.

    A        : −Σ_n∫[dk] f′ Δε⁽¹⁾ Ω_z          (first-order theory: gradient energy)
    B_shift  : B′ = −Σ_n∫[dk] f Ω′_{k_x k_y}   (positional shift A′, mixed BCP)
    B_metric : B″ = −Σ_n∫[dk] f Ω″_{k_x k_y}   (metric-gradient connection A″)
    total    : A + B′ + B″ = dσ_xy/dq at q = 0
    dn_dq    : Σ_n∫[dk] [Ω_{k_x x} f + f′ Δε⁽¹⁾], the O(q) density of the first-order theory
    """

    A: float
    B_shift: float
    B_metric: float
    total: float
    dn_dq: float


def helical_hall_slope(mu: float, kT: float, nk: int, Sigma=None, derivatives: str = "parts") -> HelicalSlope:
    """Semiclassical dσ_xy/dq|₀ of the V12 helical texture (physics.md §6.5, V12), by terms.

    The texture H(x, k) = U(x) H0(k) U(x)† with U = exp(−iqxΣ/2) is evaluated in the quasi-1D
    phase space (x, y, k_x, k_y), where ∂_yH = 0 and k_y is conserved. Every gauge-invariant
    local quantity is x-independent: it equals its value at x = 0, where H = H0 and
    ∂_xH = [−iqΣ/2, H0]. Hence ∂_x ε_n = ∂_x g = 0, and the O(q) objects are exactly linear in q:

    - Δε⁽¹⁾ = ``gradient_energy`` (Sundaram–Niu, x paired with k_x);
    - A′_{k_i} = ``positional_shift`` = G^R_{k_i x} ∂_{k_x}ε̄ (the only surviving term, ε̄ = d0);
      Ω′_{k_xk_y} = ∂_{k_x}A′_{k_y} − ∂_{k_y}A′_{k_x};
    - A″_{k_i} = ½Σ_j(∂_{x_j}g_{k_ik_j} − ∂_{k_j}g_{k_ix_j}) = −½∂_{k_x}g_{k_ix}, so
      Ω″_{k_xk_y} = −½(∂²_{k_x}g_{k_yx} − ∂_{k_x}∂_{k_y}g_{k_xx}).

    f = f(ε_n) with ε_n(k) = ε_n of H0, independent of q. ``derivatives``:

    - ``"parts"`` (default): integrate by parts over the periodic BZ, so that only analytic
      quantities remain: B′ = Σ∫ f′(v_x A′_{k_y} − v_y A′_{k_x}) and
      B″ = ½Σ∫[(∂²_{k_x}f) g_{k_yx} − (∂_{k_x}∂_{k_y}f) g_{k_xx}], with ∂_a∂_b f = f″v_av_b + f′∂_a∂_bε.
    - ``"spectral"``: Ω′, Ω″ pointwise by FFT differentiation of A′ and g on the k mesh
      (physics.md §2.6); an independent check of the above.

    mu, kT [eV] (kT > 0), nk × nk mesh. Returns :class:`HelicalSlope` (per unit q).
    """
    if derivatives not in ("parts", "spectral"):
        raise ValueError(f"derivatives must be 'parts' or 'spectral'; got {derivatives!r}")
    H0 = _qwz_helical(0.0, Sigma)
    q = 1.0  # the O(q) objects are exactly linear in q (see docstring)
    pm = helical(H0, q, H0.Sigma)
    mesh = make_kmesh((nk, nk), H0.reciprocal)
    K = mesh.k
    H, dH, d2H = pm.evaluate(np.zeros(K.shape[:-1] + (1,)), K, order=2)
    z = np.zeros_like(dH[..., :1, :, :])
    g = band_geometry(H, np.concatenate([dH[..., :1, :, :], z, dH[..., 1:, :, :]], axis=-3), n_x=2)
    mass = band_geometry(H, dH[..., 1:, :, :], d2H[..., 1:, 1:, :, :], n_x=0).inverse_mass  # (.., nb, 2, 2)
    e = g.energy
    f, f1, f2 = (fermi(e, mu, kT, deriv=j) for j in range(3))
    X, KX, KY = 0, 2, 3
    om = g.curvature[..., KX, KY]
    de = g.gradient_energy
    vx, vy = g.velocity[..., KX, :], g.velocity[..., KY, :]
    gyx, gxx = g.metric[..., KY, X], g.metric[..., KX, X]  # g_{k_y x}, g_{k_x x}: (.., nb)
    Ap = np.stack([positional_shift(g, n) for n in range(g.energy.shape[-1])], axis=-2)  # (.., nb, 4)
    Apx, Apy = Ap[..., KX], Ap[..., KY]

    def integral(F):
        return float(mesh.measure * np.mean(F.sum(-1)))

    A = -integral(f1 * de * om)
    if derivatives == "parts":
        Bs = integral(f1 * (vx * Apy - vy * Apx))
        fxx = f2 * vx * vx + f1 * mass[..., 0, 0]
        fxy = f2 * vx * vy + f1 * mass[..., 0, 1]
        Bm = 0.5 * integral(fxx * gyx - fxy * gxx)
    else:
        b = H0.reciprocal  # square lattice: mesh axes are k_x, k_y

        def dk(F, axis):
            return periodic_derivative(F, np.linalg.norm(b[axis]), axis=axis)

        om1 = dk(Apy, 0) - dk(Apx, 1)
        om2 = -0.5 * (dk(dk(gyx, 0), 0) - dk(dk(gxx, 0), 1))
        Bs, Bm = -integral(f * om1), -integral(f * om2)
    dn = integral(g.curvature[..., KX, X] * f + f1 * de)
    return HelicalSlope(A=A / q, B_shift=Bs / q, B_metric=Bm / q, total=(A + Bs + Bm) / q, dn_dq=dn / q)


# ----------------------------------------------------------------------------- pumps (V9b)
def pump_exact(pump, k, cycles: int = 1, steps_per_cycle: int = 2000, band: int = 0):
    """Exact (time-dependent Schrödinger) pumped current of a filled band of H(k, t).

    Each Bloch state ψ_k starts in band ``band`` at t = 0 and is propagated with the exponential
    midpoint rule, U = exp(−i H(k, t + dt/2) dt) (ħ = 1; second order in dt). The number current
    is j(t) = ∫dk/2π ⟨ψ_k|∂_kH|ψ_k⟩ (k-midpoints ``k``, uniform, spanning the zone).
    ``pump`` is a ``kinetic.pump.PumpModel``. Returns (t (steps+1,), j (steps+1,), pumped
    electrons (steps+1,) by the trapezoid rule), all internal units (ħ/eV, 1/(ħ/eV)).
    """
    k = np.asarray(k, float)[:, None]
    dk = (k[-1, 0] - k[0, 0]) / (len(k) - 1)
    T = pump.period
    n = cycles * steps_per_cycle
    dt = T / steps_per_cycle
    tex = pump.texture

    def at(t):
        return tex.evaluate(np.full(k.shape, t), k)

    H0 = at(0.0)[0]
    psi = np.linalg.eigh(H0)[1][..., band]  # (nk, nb)
    t = np.arange(n + 1) * dt
    j = np.empty(n + 1)

    def current(ti, psi):
        dHk = at(ti)[1][..., 1, :, :]
        return np.einsum("ki,kij,kj->", psi.conj(), dHk, psi).real * dk / (2 * np.pi)

    j[0] = current(0.0, psi)
    for i in range(n):
        w, V = np.linalg.eigh(tex.hamiltonian(np.full(k.shape, t[i] + dt / 2), k))
        c = np.einsum("kji,kj->ki", V.conj(), psi) * np.exp(-1j * w * dt)
        psi = np.einsum("kij,kj->ki", V, c)
        j[i + 1] = current(t[i + 1], psi)
    pumped = np.concatenate([[0.0], np.cumsum(0.5 * (j[1:] + j[:-1]) * dt)])
    return t, j, pumped
