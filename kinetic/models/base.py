"""The model interface: Bloch Hamiltonians H(k; p) on batches of points.

Internal units: energies eV, lengths Å, k in 1/Å, ħ = 1 (see ``kinetic.units``).
Shapes: points first, matrix indices last.

- ``k``: (..., dim) wave vectors in 1/Å (Cartesian).
- parameters ``p``: a mapping name -> float or array broadcastable against ``k.shape[:-1]``;
  this is how textures make a parameter depend on x (see ``kinetic.models.texture``).
- ``hamiltonian(k, p)``: (..., nb, nb) complex Hermitian.
- ``dh_dk(k, p)``: (..., dim, nb, nb), analytic ∂H/∂k_i.
- ``d2h_dk2(k, p)``: (..., dim, dim, nb, nb), analytic ∂²H/∂k_i∂k_j.

Bloch convention (physics.md §1.1, "convention II"): H(k + G) = H(k), all orbitals at the cell
origin, unless a model says otherwise in its docstring.
"""
from __future__ import annotations

import abc
from typing import Mapping

import numpy as np

from kinetic.errors import ModelError

# Pauli matrices σ0, σx, σy, σz: shape (4, 2, 2)
PAULI = np.array(
    [[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=complex
)


class Model(abc.ABC):
    """A Bloch Hamiltonian with analytic k-derivatives.

    Subclasses set the class attributes ``name``, ``nb``, ``dim`` and ``defaults`` (parameter
    name -> default value, in eV / Å / rad) and implement the three evaluation methods.
    ``Model(**params)`` overrides defaults; an unknown parameter raises ``ModelError``.
    """

    name: str = "model"
    nb: int = 1  # number of bands
    dim: int = 1  # dimension of k
    spin_degeneracy: int = 1  # explicit; never a hidden factor 2
    defaults: dict = {}

    def __init__(self, **params):
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ModelError(
                f"model {self.name!r}: unknown parameter {unknown[0]!r}; "
                f"allowed: {', '.join(sorted(self.defaults)) or '(none)'}"
            )
        self.params = {**self.defaults, **params}

    @property
    def lattice(self) -> np.ndarray | None:
        """(dim, dim) primitive vectors as rows, in Å; None for a continuum model."""
        return None

    @property
    def reciprocal(self) -> np.ndarray | None:
        """(dim, dim) reciprocal vectors b_i as rows (a_i · b_j = 2π δ_ij), in 1/Å."""
        a = self.lattice
        return None if a is None else 2 * np.pi * np.linalg.inv(a).T

    def p(self, overrides: Mapping | None = None) -> dict:
        """Parameters with overrides applied."""
        out = dict(self.params)
        if overrides:
            out.update(overrides)
        return out

    @abc.abstractmethod
    def hamiltonian(self, k: np.ndarray, p: Mapping | None = None) -> np.ndarray:
        """H(k): (..., nb, nb)."""

    @abc.abstractmethod
    def dh_dk(self, k: np.ndarray, p: Mapping | None = None) -> np.ndarray:
        """∂H/∂k_i: (..., dim, nb, nb)."""

    @abc.abstractmethod
    def d2h_dk2(self, k: np.ndarray, p: Mapping | None = None) -> np.ndarray:
        """∂²H/∂k_i∂k_j: (..., dim, dim, nb, nb)."""


class TwoBandModel(Model):
    """H = d0·1 + d·σ. Subclasses implement ``dvec`` returning (d, ∂d, ∂²d)."""

    @abc.abstractmethod
    def dvec(self, k: np.ndarray, p: Mapping) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(d, dd, d2d) with shapes (..., 4), (..., dim, 4), (..., dim, dim, 4); d = (d0, dx, dy, dz)."""

    def hamiltonian(self, k, p=None):
        d, _, _ = self.dvec(np.asarray(k, float), self.p(p))
        return np.einsum("...a,aij->...ij", d, PAULI)

    def dh_dk(self, k, p=None):
        _, dd, _ = self.dvec(np.asarray(k, float), self.p(p))
        return np.einsum("...a,aij->...ij", dd, PAULI)

    def d2h_dk2(self, k, p=None):
        _, _, d2d = self.dvec(np.asarray(k, float), self.p(p))
        return np.einsum("...a,aij->...ij", d2d, PAULI)
