"""User-facing errors. The CLI prints them on one line, without a traceback, and exits 2."""


class KineticError(Exception):
    """A user error: bad run file, missing file, unphysical parameter, unresolvable mesh.

    The message names the key, the bad value and what is allowed.
    """

    exit_code = 2


class ConfigError(KineticError):
    """A run file, mesh preset or command-line value is invalid."""


class ModelError(KineticError):
    """A model cannot be built or read (unknown name, corrupt Wannier90 file, bad parameter)."""


class DegeneracyError(KineticError):
    """Bands are (nearly) degenerate where a single-band quantity divides by their gap."""


class ToolchainError(KineticError):
    """PETSc/MPI installation is unusable (e.g. PETSc built without MPI)."""
