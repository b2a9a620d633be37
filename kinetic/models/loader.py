"""Build a model from a run file's [model] section (catalogue name or Wannier90 files)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kinetic.errors import ModelError


def build_model(spec, base: Path | None = None):
    """ModelSpec -> Model. A ``_tb.dat`` (lattice + orbital centres) wins over ``_hr.dat``."""
    if spec.name is not None:
        from kinetic.models.catalogue import get_model

        model = get_model(spec.name, **spec.params)
    else:
        from kinetic.models.wannier90 import Wannier90Model, read

        if spec.params:
            raise ModelError("model.params: a Wannier90 model takes no parameters; "
                             f"got {sorted(spec.params)}")
        path = spec.tb or spec.wannier90
        lattice = None if spec.lattice is None else np.array(spec.lattice, float)
        model = Wannier90Model(read(path), convention=spec.convention, lattice=lattice)
    model.spin_degeneracy = spec.spin_degeneracy
    return model
