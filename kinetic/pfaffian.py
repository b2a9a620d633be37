"""Exactly divergence-free phase-space fluxes in 4-D from the Pfaffian form (pure numpy).

In the 2x+2k phase space ξ = (x, y, k_x, k_y) (axes 0..3, physics.md §3.2, §5.2; ħ = e = 1)

    D ξ̇_a = Σ_b κ_ab ∂_b ε̃,     κ_ab = ½ Σ_cd ε_abcd ω_cd     (ε_1234 = +1),

and κ is antisymmetric. Because dω = 0 (Bianchi), Σ_b κ_ab ∂_b ε̃ = Σ_b ∂_b Ψ_ab with the
antisymmetric potential Ψ_ab = κ_ab ε̃. The finite-volume scheme stores Ψ_ab on the
codimension-2 faces of the mesh (corners along a and b, centres along the other two axes) and
takes the flux through a face ⊥ a (corner along a, centres elsewhere) as

    Φ_a = Σ_{b≠a} (V / h_a h_b) Δ_b Ψ_ab         (V = h_x h_y h_kx h_ky, integrated over the face).

The discrete divergence Σ_a Δ_a Φ_a / h_a … = Σ_ab Δ_a Δ_b Ψ_ab (…) vanishes identically
(antisymmetric Ψ, commuting differences): Liouville's theorem holds to round-off for any
curvature, and Φ_a → D ξ̇_a · face area with second-order accuracy (the Bianchi identity only
enters the consistency, not the conservation). In the reductions this is the stream function
of the 2-D layouts: y-independent textures give the 1x2k fluxes, homogeneous bands the 0x2k
ones (``kinetic.problem4``).

A uniform transport potential V = E·x (not periodic) enters as κ_ab ∂_b V = κ_ab E_b, taken
with κ averaged over the two b-positions of each face (translation invariant, so a face shared
by two ranks or across a periodic x-boundary gets one flux); this part is divergence-free to
truncation order only where κ varies along the face (physics.md §5.5, 2D/3D).
"""
from __future__ import annotations

import itertools

import numpy as np

#: pairs (a, b), a < b, of the 4 phase-space axes (x, y, k_x, k_y)
PAIRS = tuple(itertools.combinations(range(4), 2))


def levi_civita4() -> np.ndarray:
    """ε_abcd (4, 4, 4, 4), ε_0123 = +1."""
    eps = np.zeros((4,) * 4)
    for perm in itertools.permutations(range(4)):
        inv = sum(perm[i] > perm[j] for i in range(4) for j in range(i + 1, 4))
        eps[perm] = -1.0 if inv % 2 else 1.0
    return eps


EPS4 = levi_civita4()


def dual(omega: np.ndarray) -> np.ndarray:
    """κ_ab = ½ Σ_cd ε_abcd ω_cd for antisymmetric ω (..., 4, 4); D ξ̇_a = Σ_b κ_ab ∂_b ε̃."""
    return 0.5 * np.einsum("abcd,...cd->...ab", EPS4, omega)


def face_fluxes(psi: dict, h) -> list:
    """Face fluxes Φ_a, a = 0..3, from Ψ_ab on the codimension-2 grids.

    psi[(a, b)] (a < b): Ψ_ab with n_a + 1 and n_b + 1 points along axes a and b (corners),
    n_c along the others (centres); trailing axes (bands) are carried along. h: the four
    spacings. Returns Φ_a with n_a + 1 points along a and n_c along the others (the flux
    through each face ⊥ a, integrated over the face, positive towards +a)."""
    vol = float(np.prod(h))
    out = [0.0] * 4
    for (a, b), P in psi.items():
        w = vol / (h[a] * h[b])
        out[a] = out[a] + w * np.diff(P, axis=b)
        out[b] = out[b] - w * np.diff(P, axis=a)  # Ψ_ba = −Ψ_ab
    return out


def divergence(fluxes) -> np.ndarray:
    """Net outflow of each cell: Σ_a [Φ_a(+) − Φ_a(−)] (cells along every axis)."""
    return sum(np.diff(F, axis=a) for a, F in enumerate(fluxes))
