"""What the PETSc/MPI toolchain is, and a self-check that it is usable.

``python -m kinetic.toolchain --check`` ends ``make setup``: it fails unless PETSc was built
with MPI and ``mpiexec -n 2`` gives 2 ranks in ``PETSc.COMM_WORLD``. ``kinetic info`` prints
``describe()``.
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from kinetic.errors import ToolchainError

FIX_NO_MPI = (
    "Fix: unset PETSC_DIR/PETSC_ARCH and run `make setup` to build PETSc with MPI "
    "(the mpich wheel), or load a PETSc module built with MPI (configure without --with-mpi=0)."
)


def petsc_conf_header(petsc_dir: str, petsc_arch: str = "") -> Path | None:
    """Path of petscconf.h for an in-place (PETSC_DIR/PETSC_ARCH) or prefix installation."""
    for cand in (Path(petsc_dir, petsc_arch, "include"), Path(petsc_dir, "include")):
        if (cand / "petscconf.h").is_file():
            return cand / "petscconf.h"
    return None


def petsc_defines(header: Path) -> dict[str, str]:
    """The ``#define PETSC_...`` lines of petscconf.h as a dict."""
    out = {}
    for m in re.finditer(r"^#define\s+(PETSC_\w+)\s*(.*)$", header.read_text(), re.M):
        out[m.group(1)] = m.group(2).strip().strip('"')
    return out


def require_mpi(defines: dict[str, str], where: str) -> None:
    """Raise ToolchainError if petscconf.h says PETSc uses MPIUNI (no MPI)."""
    if "PETSC_HAVE_MPIUNI" in defines:
        raise ToolchainError(f"PETSc at {where} was built WITHOUT MPI (MPIUNI). {FIX_NO_MPI}")


def _petsc_location() -> tuple[str, str]:
    """(PETSC_DIR, PETSC_ARCH) of the PETSc that petsc4py loads."""
    try:  # the PyPI `petsc` wheel: petsc4py's recorded build-time dir may be a temp dir
        import petsc

        return petsc.get_petsc_dir(), ""
    except ImportError:
        import petsc4py

        conf = petsc4py.get_config()
        return conf["PETSC_DIR"], conf.get("PETSC_ARCH", "") or ""


def petsc_config() -> dict:
    """PETSc build facts: dir, arch, MPI, BLAS/LAPACK, scalar type, precision, index size."""
    import numpy as np
    from petsc4py import PETSc

    pdir, parch = _petsc_location()
    header = petsc_conf_header(pdir, parch)
    defines = petsc_defines(header) if header else {}
    blas = "unknown"
    for vars_file in (Path(pdir, parch, "lib/petsc/conf/petscvariables"),
                      Path(pdir, "lib/petsc/conf/petscvariables")):
        if vars_file.is_file():
            m = re.search(r"^BLASLAPACK_LIB\s*=\s*(.*)$", vars_file.read_text(), re.M)
            if m:
                blas = m.group(1).strip() or "(system default)"
            break
    scalar = np.dtype(PETSc.ScalarType)
    return {
        "petsc_dir": pdir,
        "petsc_arch": parch,
        "conf_header": str(header) if header else None,
        "mpi": "PETSC_HAVE_MPIUNI" not in defines if defines else None,
        "blaslapack": blas,
        "scalar": "complex" if scalar.kind == "c" else "real",
        "precision": {4: "single", 8: "double", 16: "quad"}.get(
            np.dtype(PETSc.RealType).itemsize, "?"),
        "index_bits": 8 * np.dtype(PETSc.IntType).itemsize,
    }


def blas_threads() -> int | None:
    """Threads numpy's BLAS will use (threadpoolctl), or None if unknown."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    n = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
    return max(n) if n else None


def describe() -> list[tuple[str, str]]:
    """(label, value) rows for ``kinetic info``; collective over PETSc.COMM_WORLD."""
    import mpi4py
    import numpy
    import petsc4py
    import scipy
    from mpi4py import MPI
    from petsc4py import PETSc

    import kinetic

    conf = petsc_config()
    size = PETSc.COMM_WORLD.getSize()
    threads = blas_threads()
    cores = os.cpu_count() or 1
    rows = [
        ("kinetic", kinetic.__version__),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("numpy", numpy.__version__),
        ("scipy", scipy.__version__),
        ("mpi4py", mpi4py.__version__),
        ("petsc4py", petsc4py.__version__),
        ("PETSc", "%d.%d.%d" % PETSc.Sys.getVersion()),
        ("PETSC_DIR", conf["petsc_dir"] + (f"  PETSC_ARCH={conf['petsc_arch']}" if conf["petsc_arch"] else "")),
        ("MPI library", MPI.Get_library_version().splitlines()[0].strip()),
        ("MPI standard", "%d.%d" % MPI.Get_version()),
        ("PETSc with MPI", {True: "yes", False: "NO (MPIUNI)", None: "unknown"}[conf["mpi"]]),
        ("BLAS/LAPACK", conf["blaslapack"]),
        ("scalar type", f"{conf['scalar']}, {conf['precision']} precision"),
        ("index size", f"{conf['index_bits']}-bit"),
        ("ranks", str(size)),
        ("BLAS threads", "unknown" if threads is None else str(threads)),
        ("cores", str(cores)),
    ]
    if threads is not None and threads * size > cores:
        rows.append(("WARNING", f"BLAS threads x ranks = {threads}x{size} > {cores} cores: "
                                "oversubscribed; set OMP_NUM_THREADS=1 (or OPENBLAS_NUM_THREADS=1)"))
    if conf["mpi"] is False:
        rows.append(("WARNING", "PETSc has no MPI: parallel runs are impossible. " + FIX_NO_MPI))
    return rows


def mpiexec() -> str:
    """The mpiexec that belongs to this environment (the venv's mpich wheel first)."""
    cand = Path(sys.prefix, "bin", "mpiexec")
    if cand.exists():
        return str(cand)
    found = shutil.which("mpiexec") or shutil.which("mpirun")
    if not found:
        raise ToolchainError("no mpiexec/mpirun found on PATH: load your MPI module or run `make setup`")
    return found


_PROBE = ("import mpi4py.MPI, petsc4py; petsc4py.init([]); from petsc4py import PETSc; "
          "c = PETSc.COMM_WORLD; s = c.tompi4py().allreduce(1); "
          "PETSc.Sys.Print('ranks', c.getSize(), s)")


def check(nproc: int = 2) -> list[str]:
    """Fail (ToolchainError) unless PETSc has MPI and mpiexec -n 2 gives 2 ranks."""
    try:
        import mpi4py.MPI  # noqa: F401  (mpi4py first: it loads the MPI library)
        import petsc4py
    except ImportError as exc:
        raise ToolchainError(f"cannot import MPI/PETSc bindings: {exc}. Run `make setup`.") from exc
    pdir, parch = _petsc_location()
    header = petsc_conf_header(pdir, parch)
    if header is None:
        raise ToolchainError(f"cannot find petscconf.h under PETSC_DIR={pdir} PETSC_ARCH={parch}")
    require_mpi(petsc_defines(header), pdir)
    cmd = [mpiexec(), "-n", str(nproc), sys.executable, "-c", _PROBE]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired as exc:
        raise ToolchainError(f"`{' '.join(cmd[:3])} ...` hung for 180 s") from exc
    want = f"ranks {nproc} {nproc}"
    if res.returncode != 0 or want not in res.stdout:
        raise ToolchainError(
            f"`mpiexec -n {nproc}` did not give {nproc} ranks in PETSc.COMM_WORLD "
            f"(got {res.stdout.strip()!r}, exit {res.returncode}; stderr: {res.stderr.strip()[-400:]}). "
            "PETSc, mpi4py and mpiexec must come from the same MPI."
        )
    petsc4py.init([])
    from petsc4py import PETSc

    return [f"PETSc {'%d.%d.%d' % PETSc.Sys.getVersion()} at {pdir} has MPI",
            f"{cmd[0]} -n {nproc}: PETSc.COMM_WORLD has {nproc} ranks"]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["--check"]:
        print("usage: python -m kinetic.toolchain --check", file=sys.stderr)
        return 2
    try:
        for line in check():
            print("toolchain:", line)
    except ToolchainError as exc:
        print(f"toolchain: ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
