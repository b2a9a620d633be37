"""Test configuration: PETSc never sees pytest's argv.

MPI tests are marked ``@pytest.mark.mpi(min_size=2)`` (pytest-mpi) and run by
``mpirun -n 2 scripts/rank0.sh python -m pytest --with-mpi -m mpi`` (rank 1 reports to
.mpi-rank1.log); the serial run deselects them.
"""
import os
import sys

try:  # mpi4py first (it loads the MPI library), then PETSc with an empty argv
    import mpi4py.MPI  # noqa: F401
    import petsc4py

    petsc4py.init([sys.argv[0]])
    HAVE_PETSC = True
except ImportError:  # the pure-numpy layers are testable without PETSc, but never in CI
    if os.environ.get("CI"):
        raise
    HAVE_PETSC = False


def pytest_collection_modifyitems(config, items):
    import pytest

    if HAVE_PETSC:
        return
    skip = pytest.mark.skip(reason="petsc4py not installed (run `make setup`)")
    for item in items:
        if "petsc" in item.fixturenames:
            item.add_marker(skip)


def pytest_configure(config):
    """Under mpirun each rank gets its own pytest temp root, so ranks never clean each other's."""
    if not HAVE_PETSC:
        return
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    if comm.Get_size() > 1 and not config.option.basetemp:
        import os
        import tempfile

        config.option.basetemp = os.path.join(
            tempfile.gettempdir(), f"pytest-kinetic-{os.getuid()}-{os.getppid()}-rank{comm.Get_rank()}")
