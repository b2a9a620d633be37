"""Uniform k-meshes over the Brillouin zone (or a box for continuum models).

A mesh is ``n = (n_1, ..., n_d)`` points along the reciprocal vectors b_i: k = Σ_i (j_i / n_i) b_i,
j_i = 0..n_i−1 (Γ included). For a continuum model the "zone" is the box [−kmax, kmax)^d with
cell-centred points. Integrals use the measure [dk] = d^dk/(2π)^d:
``∫[dk] F ≈ measure * mean(F)`` with ``measure = |BZ| / (2π)^d`` (1/Å^d).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kinetic.errors import ConfigError


@dataclass(frozen=True)
class KMesh:
    """k-points (shape (*n, d), 1/Å), the step vectors (d, d) and the [dk] measure (1/Å^d)."""

    n: tuple[int, ...]
    k: np.ndarray
    steps: np.ndarray  # row i: the k-step along mesh axis i (b_i / n_i or box step)
    measure: float

    @property
    def npoints(self) -> int:
        return int(np.prod(self.n))

    def coarse(self) -> "KMesh | None":
        """The every-other-point sub-mesh (n_i/2 along each axis) if all n_i are even."""
        if any(ni % 2 for ni in self.n):
            return None
        sl = tuple(slice(None, None, 2) for _ in self.n)
        return KMesh(tuple(ni // 2 for ni in self.n), self.k[sl], 2 * self.steps, self.measure)


def make_kmesh(n, reciprocal: np.ndarray | None, kmax: float | None = None) -> KMesh:
    """Uniform mesh with n points per reciprocal vector (lattice) or per box side (continuum)."""
    n = tuple(int(v) for v in n)
    d = len(n)
    if reciprocal is not None:
        b = np.asarray(reciprocal, float)
        frac = np.stack(np.meshgrid(*[np.arange(ni) / ni for ni in n], indexing="ij"), axis=-1)
        k = frac @ b
        steps = b / np.array(n)[:, None]
        measure = abs(np.linalg.det(b)) / (2 * np.pi) ** d
    else:
        if kmax is None or not kmax > 0:
            raise ConfigError("mesh.kmax: a continuum model needs kmax > 0 (1/Å), the half-width "
                              "of the k-box; e.g. kmax = 20.0")
        axes = [-kmax + (np.arange(ni) + 0.5) * (2 * kmax / ni) for ni in n]
        k = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
        steps = np.diag([2 * kmax / ni for ni in n])
        measure = (2 * kmax) ** d / (2 * np.pi) ** d
    return KMesh(n, k, steps, float(measure))
