"""The install checks itself: MPI-less PETSc is refused, the real one has MPI, units agree."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kinetic import units
from kinetic.errors import ToolchainError
from kinetic.toolchain import petsc_conf_header, petsc_defines, require_mpi

ROOT = Path(__file__).resolve().parents[1]


def fake_petsc(tmp_path, mpiuni: bool) -> Path:
    inc = tmp_path / "petsc" / "include"
    inc.mkdir(parents=True)
    (inc / "petscversion.h").write_text(
        "#define PETSC_VERSION_MAJOR 3\n#define PETSC_VERSION_MINOR 26\n")
    (inc / "petscconf.h").write_text(
        "#define PETSC_HAVE_MPIUNI 1\n" if mpiuni else "#define PETSC_HAVE_MPI_INIT_THREAD 1\n")
    return tmp_path / "petsc"


def test_units_selfcheck():
    units.check()


def test_mpiuni_is_refused(tmp_path):
    d = fake_petsc(tmp_path, mpiuni=True)
    with pytest.raises(ToolchainError, match="WITHOUT MPI"):
        require_mpi(petsc_defines(petsc_conf_header(str(d))), str(d))
    require_mpi(petsc_defines(petsc_conf_header(str(fake_petsc(tmp_path / "b", False)))), "b")


def test_setup_refuses_mpi_less_petsc_dir(tmp_path):
    """`make setup` with PETSC_DIR at an MPI-less PETSc fails and says how to fix it."""
    d = fake_petsc(tmp_path, mpiuni=True)
    env = dict(os.environ, PETSC_DIR=str(d), PETSC_ARCH="", VENV=sys.prefix)
    res = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert "WITHOUT MPI" in res.stderr and "Fix:" in res.stderr


def test_installed_petsc_has_mpi():
    pytest.importorskip("petsc4py")
    from kinetic.toolchain import petsc_config

    conf = petsc_config()
    assert conf["mpi"] is True
    assert conf["scalar"] == "real" and conf["precision"] == "double"
