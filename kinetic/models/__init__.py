"""Bloch Hamiltonians H(k) and phase-space models H(x, k).

- ``base``: the ``Model`` interface (shapes, units, Bloch convention II).
- ``catalogue``: closed-form models (``CATALOGUE``, ``get_model``) and ``MatrixTightBinding``.
- ``wannier90``: ``_hr.dat`` / ``_tb.dat`` reading and writing, ``Wannier90Model``.
- ``texture``: x-dependent models (``PhaseSpaceModel``, profiles, Landau, helical, V9/V10).
"""
from kinetic.models.base import PAULI, Model, TwoBandModel
from kinetic.models.catalogue import CATALOGUE, HBAR2_2ME, MatrixTightBinding, get_model
from kinetic.models.texture import (
    PROFILES,
    PhaseSpaceModel,
    Profile,
    as_profile,
    dirac1d_texture,
    helical,
    homogeneous,
    landau_shift,
    midpoint_lattice,
    rice_mele_ring,
    texture,
)
from kinetic.models.wannier90 import Wannier90Model, load as load_wannier90, read_hr, read_tb, write_hr, write_tb

__all__ = [
    "PAULI", "Model", "TwoBandModel", "CATALOGUE", "HBAR2_2ME", "MatrixTightBinding", "get_model",
    "PROFILES", "PhaseSpaceModel", "Profile", "as_profile", "dirac1d_texture", "helical", "homogeneous",
    "landau_shift", "midpoint_lattice", "rice_mele_ring", "texture", "Wannier90Model", "load_wannier90",
    "read_hr", "read_tb", "write_hr", "write_tb",
]
