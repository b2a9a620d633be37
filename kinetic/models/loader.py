"""Build a model from a run file's [model] section (catalogue name or Wannier90 files).

Errors name the run-file key: ``model.name``, ``model.params.<p>``, ``model.wannier90`` /
``model.tb`` (with the file, line and what was expected for a corrupt Wannier90 file)."""
from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np

from kinetic.errors import ModelError


def _catalogue_model(name, params):
    from kinetic.models.catalogue import CATALOGUE, get_model

    cls = CATALOGUE.get(name)
    if cls is None:
        near = difflib.get_close_matches(str(name), CATALOGUE, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ModelError(f"model.name = {name!r}: unknown model{hint}; allowed: "
                         f"{', '.join(sorted(CATALOGUE))}")
    allowed = sorted(getattr(cls, "defaults", {}) or {})
    for key in params:
        if key not in allowed:
            near = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ModelError(f"model.params.{key} = {params[key]!r}: unknown parameter {key!r} of "
                             f"model {name!r}{hint}; allowed: {', '.join(allowed) or '(none)'}")
    try:
        return get_model(name, **params)
    except ModelError as exc:
        raise ModelError(f"model.params = {params!r} of model {name!r}: {exc}") from None


def build_model(spec, base: Path | None = None):
    """ModelSpec -> Model. A ``_tb.dat`` (lattice + orbital centres) wins over ``_hr.dat``."""
    if spec.name is not None:
        model = _catalogue_model(spec.name, spec.params)
    else:
        from kinetic.models.wannier90 import Wannier90Model, read

        if spec.params:
            raise ModelError("model.params: a Wannier90 model takes no parameters; "
                             f"got {sorted(spec.params)}")
        key, path = ("model.tb", spec.tb) if spec.tb else ("model.wannier90", spec.wannier90)
        lattice = None if spec.lattice is None else np.array(spec.lattice, float)
        try:
            model = Wannier90Model(read(path), convention=spec.convention, lattice=lattice)
        except ModelError as exc:
            raise ModelError(f"{key} = {Path(path).name!r}: {exc}") from None
    model.spin_degeneracy = spec.spin_degeneracy
    return model
