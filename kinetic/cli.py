"""Command line: ``kinetic info | table | sweep | geometry | plot | run`` (also ``python -m kinetic``).

Arguments the subcommand does not know are PETSc options (``-ksp_type gmres -log_view``) and go
to ``petsc4py.init`` — only in commands that use PETSc. User errors (``KineticError``) print one
line on stderr and exit with code 2.
"""
from __future__ import annotations

import argparse
import sys

from kinetic.errors import KineticError


def _init_petsc(petsc_args: list[str]):
    import mpi4py.MPI  # noqa: F401  (mpi4py first: it loads the MPI library)
    import petsc4py

    petsc4py.init([sys.argv[0]] + petsc_args)
    from petsc4py import PETSc

    return PETSc


def cmd_info(args, petsc_args) -> int:
    PETSc = _init_petsc(petsc_args)
    from kinetic.toolchain import describe

    rows = describe()
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        PETSc.Sys.Print(f"{key:<{width}}  {value}")
    return 0


def _refuse_double_dash(command, petsc_args):
    """A mistyped --option must not vanish into PETSc's options database."""
    from kinetic.errors import ConfigError

    bad = [a for a in petsc_args if a.startswith("--")]
    if bad:
        raise ConfigError(f"kinetic {command}: unknown option {bad[0]!r} (PETSc options start "
                          "with one '-')")


def cmd_run(args, petsc_args) -> int:
    _refuse_double_dash("run", petsc_args)
    PETSc = _init_petsc(petsc_args)
    from kinetic.run import run

    run(args.run, out=args.out, say=lambda msg: PETSc.Sys.Print(msg), restart=args.restart,
        force=args.force, quiet=args.quiet)
    return 0


def cmd_table(args, petsc_args) -> int:
    from kinetic.table import run_table

    run_table(args.run, out=args.out, command=" ".join(["kinetic"] + sys.argv[1:]))
    return 0


def cmd_geometry(args, petsc_args) -> int:
    from kinetic.table import run_geometry

    run_geometry(args.run, out=args.out)
    return 0


def cmd_plot(args, petsc_args) -> int:
    from pathlib import Path

    from kinetic.errors import ConfigError
    from kinetic.plot import plot_run, plot_table

    if Path(args.table).is_dir():
        out = plot_run(args.table, out=args.out, fmt=args.format)
    else:
        if not args.quantity:
            raise ConfigError("kinetic plot TABLE.csv: --quantity is required (e.g. ahc, drude)")
        out = plot_table(args.table, args.quantity, args.component, vs=args.vs, out=args.out,
                         fmt=args.format)
    print(f"kinetic: wrote {out}", file=sys.stderr)
    return 0


def cmd_sweep(args, petsc_args) -> int:
    _refuse_double_dash("sweep", petsc_args)
    _init_petsc(petsc_args)
    from mpi4py import MPI

    from kinetic.solver_sweep import is_solver_run, run_solver_sweep
    from kinetic.sweep import run_sweep

    command = " ".join(["kinetic"] + sys.argv[1:])
    if is_solver_run(args.run):  # a `kinetic run` file: a grid of steady states
        run_solver_sweep(args.run, args.param, out=args.out, resume=args.resume,
                         quiet=args.quiet, comm=MPI.COMM_WORLD, command=command,
                         ranks_per_point=args.ranks_per_point)
        return 0
    run_sweep(args.run, args.param, out=args.out, resume=args.resume, quiet=args.quiet,
              checkpoint_s=args.checkpoint, comm=MPI.COMM_WORLD, command=command,
              ranks_per_point=args.ranks_per_point)
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line error contract: ``kinetic: error: ...``, exit code 2.

    (The subcommand parsers are made with the same class by ``add_subparsers``.)"""

    def error(self, message):
        import difflib
        import re

        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            near = difflib.get_close_matches(m.group(1), re.findall(r"'([^']*)'", m.group(2)), n=1)
            message += f" (did you mean {near[0]!r}?)" if near else ""
        if _rank() == 0:
            print(f"kinetic: error: {self.prog}: {message} (see {self.prog} --help)",
                  file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kinetic",
        description="Semiclassical Boltzmann transport with phase-space quantum geometry.",
        epilog="Unrecognised -options are passed to PETSc (e.g. -ksp_monitor -log_view).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="versions, PETSc/MPI configuration, ranks, BLAS threads")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("run", help="solve the kinetic equation on the (x, k) mesh of a run file")
    p.add_argument("run", help="run file (TOML)")
    p.add_argument("--out", help="output directory (default: output.dir or <run file stem>/)")
    p.add_argument("--restart", metavar="DIR",
                   help="continue a transient run from DIR/checkpoint.npz (same inputs only)")
    p.add_argument("--force", action="store_true",
                   help="run even if the memory estimate exceeds the available memory")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("table", help="homogeneous response table (CSV) from a run file")
    p.add_argument("run", help="run file (TOML)")
    p.add_argument("--out", help="output CSV (default: <run name>.csv next to the run file)")
    p.set_defaults(func=cmd_table)
    p = sub.add_parser("sweep", help="response table over a mu/T/tau grid, or steady states of a "
                                     "`kinetic run` file over mu/T/tau/E/B; split over MPI ranks")
    p.add_argument("run", help="run file (TOML): a table run file, or a `kinetic run` file")
    p.add_argument("--param", action="append", default=[], metavar="NAME=SPEC",
                   help="replace an axis of [physics]: NAME = mu (eV), T|temperature (K), tau (fs); "
                        "for `kinetic run` files also E|E_x, E_y (V/m), B (T); "
                        "SPEC = start:stop:num (inclusive) or v1,v2,...; repeatable")
    p.add_argument("--ranks-per-point", type=int, default=1, metavar="N",
                   help="ranks per sub-communicator solving one point/block (default 1)")
    p.add_argument("--out", help="output CSV (default: output.table or <run name>.csv)")
    p.add_argument("--resume", action="store_true",
                   help="keep the points already in --out (same run file) and compute the rest")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--checkpoint", type=float, default=60.0, metavar="SECONDS",
                   help="write the completed points every SECONDS (0: after every block)")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("geometry", help="band geometry fields on the k-mesh (.npz)")
    p.add_argument("run", help="run file (TOML)")
    p.add_argument("--out", required=True, help="output .npz")
    p.set_defaults(func=cmd_geometry)
    p = sub.add_parser("plot", help="plot a table quantity, or a `kinetic run` output directory")
    p.add_argument("table", help="a CSV table written by `kinetic table`, or a run directory")
    p.add_argument("--quantity", help="table quantity, e.g. ahc, drude, density")
    p.add_argument("--component", default="", help="e.g. xy (empty for scalars)")
    p.add_argument("--vs", default="mu", choices=["mu", "T", "tau", "E", "E_y", "B"],
                   help="x axis (E, E_y, B: sweeps of `kinetic run` files)")
    p.add_argument("--out", help="output file (default: next to the table)")
    p.add_argument("--format", default="png", help="png | pdf | svg")
    p.set_defaults(func=cmd_plot)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not rest[0].startswith("-"):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return args.func(args, rest)
    except KineticError as exc:
        if _rank() == 0:
            print(f"kinetic: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _rank() -> int:
    """This process's rank if MPI is already loaded, else 0 (errors print on rank 0 only)."""
    mpi = sys.modules.get("mpi4py.MPI")
    return mpi.COMM_WORLD.Get_rank() if mpi is not None and mpi.Is_initialized() else 0
