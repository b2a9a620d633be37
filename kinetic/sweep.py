"""``kinetic sweep``: a response table over a μ × T × τ grid, split over MPI ranks, resumable.

``kinetic sweep RUN.toml --param mu=-1:1:41 --param T=10,100,300 [--param tau=5,10]
[--out FILE.csv] [--resume] [--quiet]``

* ``--param NAME=SPEC`` replaces one axis of the run file's [physics]: NAME is ``mu`` (eV),
  ``T`` or ``temperature`` (K) or ``tau`` (fs); SPEC is ``start:stop:num`` (inclusive linspace,
  ``num`` an integer ≥ 1) or a comma list ``v1,v2,...``. Values equal to 10 significant digits
  (the table's precision) are one grid point; the output is sorted whatever the spec order.
* Work is split in *point-blocks*, one per temperature (holding every μ and τ of that T: τ
  only rescales, and all μ share one k-space integration). The ranks are grouped into
  sub-communicators (``comm.Split``); for homogeneous tables each group is one rank. Blocks go
  round-robin to the groups; each computes its blocks with :func:`kinetic.table.compute_table`
  on a copy of the run configuration restricted to the block, and sends the rows to rank 0.
* Rank 0 prints one progress line per completed block with an ETA (unless ``quiet``), writes a
  checkpoint of the completed points every ``checkpoint_s`` seconds, and at the end ONE merged
  tidy table in the ``kinetic table`` format (same metadata lines, plus a ``sweep:`` line), rows
  sorted by (T, τ, μ, quantity in run-file order, component): the file is identical on 1 and N
  ranks apart from its ``command:`` line. Every write goes to a temporary name and is renamed.
* ``resume``: if the output exists and its metadata shows the same run file (sha256), model,
  lattice and k-mesh, the (μ, T, τ) points already in it are not recomputed and its rows are
  kept; a table from another run file is refused (ConfigError) and left untouched. A sweep that
  was killed leaves its last checkpoint, which ``--resume`` continues.

Errors raised while computing on any rank (e.g. a mesh too coarse for the lowest T) are sent to
rank 0, which stops the other ranks after their current block; every rank then raises the same
error and nothing more is written.
"""
from __future__ import annotations

import contextlib
import csv
import difflib
import io
import math
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from kinetic import errors, table
from kinetic.config import RunConfig, load_run
from kinetic.errors import ConfigError, KineticError
from kinetic.models.loader import build_model
from kinetic.presets import apply_preset, available_presets, load_preset  # noqa: F401 (API)

AXES = ("mu", "T", "tau")  # canonical axis names
ALIASES = {"mu": "mu", "T": "T", "temperature": "T", "tau": "tau"}
UNITS = {"mu": "eV", "T": "K", "tau": "fs"}
FORM = ("NAME=start:stop:num (inclusive linspace, num an integer ≥ 1) or NAME=v1,v2,... "
        "with NAME one of mu (eV), T or temperature (K), tau (fs)")
MAX_AXIS = 100_000  # values per axis (a typo like 1:2:1000000000 must not allocate 8 GB)
CHECKPOINT_S = 60.0
TAG_BLOCK, TAG_ABORT = 7101, 7102
_TABLE_PROGRESS = "kinetic: T = "  # compute_table's own per-T line, replaced by ours


# ----------------------------------------------------------------------------- the grid
def parse_param(text: str, *, aliases=ALIASES, units=UNITS, form=FORM,
                positive=("T", "tau")) -> tuple[str, tuple[float, ...], str]:
    """``"mu=-1:1:41"`` -> ``("mu", values, "-1:1:41")``; ConfigError naming the flag otherwise.
    ``aliases`` maps accepted names to axes (solver sweeps add fields), ``positive`` the axes
    that must be > 0."""

    def bad(problem: str) -> ConfigError:
        return ConfigError(f"--param {text!r}: {problem}; allowed: {form}")

    if not isinstance(text, str) or "=" not in text:
        raise bad("expected NAME=SPEC")
    name, spec = (s.strip() for s in text.split("=", 1))
    if name not in aliases:
        lower = {k.lower(): k for k in aliases}
        low = name.lower()
        near = ([lower[low]] if low in lower
                else [v for k, v in lower.items() if len(low) > 1 and k.startswith(low)]
                or [lower[m] for m in difflib.get_close_matches(low, lower, n=1, cutoff=0.5)])
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise bad(f"unknown parameter {name!r}{hint}")
    axis = aliases[name]
    if not spec:
        raise bad(f"no values after '{name}='")

    def number(field: str, what: str) -> float:
        field = field.strip()
        if not field:
            raise bad(f"empty {what}")
        try:
            v = float(field)
        except ValueError:
            raise bad(f"{what} {field!r} is not a number") from None
        if not math.isfinite(v):
            raise bad(f"{what} {field!r} must be finite")
        return v

    if ":" in spec:
        parts = spec.split(":")
        if len(parts) != 3:
            raise bad(f"a range has 3 fields start:stop:num, got {len(parts)}")
        start, stop = number(parts[0], "start"), number(parts[1], "stop")
        num = parts[2].strip()
        if not re.fullmatch(r"[0-9]+", num) or int(num) < 1:
            raise bad(f"num {num!r} must be an integer ≥ 1")
        if int(num) > MAX_AXIS:
            raise bad(f"num {num} exceeds {MAX_AXIS} values per axis")
        values = tuple(float(v) for v in np.linspace(start, stop, int(num)))
    else:
        fields = spec.split(",")
        if len(fields) > MAX_AXIS:
            raise bad(f"{len(fields)} values exceed {MAX_AXIS} per axis")
        values = tuple(number(f, f"value {i + 1}") for i, f in enumerate(fields))
    if axis in positive:
        for v in values:
            if not v > 0:
                raise bad(f"{name} must be > 0 ({units[axis]}), got {v:g}")
    return axis, values, spec


def _round(v: float) -> float:
    """The value as the table stores it (10 significant digits); -0 -> 0."""
    return float(f"{v:.10g}") + 0.0


def point_key(mu: float, T: float, tau: float) -> tuple[float, float, float]:
    """Identity of a grid point, at the precision of the table's mu_eV, T_K, tau_fs columns."""
    return _round(mu), _round(T), _round(tau)


def _unique_sorted(values) -> tuple[float, ...]:
    seen = {}
    for v in values:
        seen.setdefault(_round(v), v)
    return tuple(seen[k] for k in sorted(seen))


@dataclass(frozen=True)
class Grid:
    """The μ, T, τ axes of a sweep (sorted, unique) and how each was specified."""

    mus: tuple[float, ...]
    temps: tuple[float, ...]
    taus: tuple[float, ...]
    specs: dict  # axis -> the --param SPEC text, or None when it comes from the run file

    @property
    def npoints(self) -> int:
        return len(self.mus) * len(self.temps) * len(self.taus)

    def describe(self) -> str:
        parts = []
        for axis, vals in zip(AXES, (self.mus, self.temps, self.taus)):
            spec = self.specs.get(axis)
            parts.append(f"{axis}={spec}" if spec is not None
                         else f"{axis}=run file ({len(vals)} value{'s' * (len(vals) != 1)})")
        return ("; ".join(parts) + f"; grid {len(self.mus)} mu x {len(self.temps)} T x "
                f"{len(self.taus)} tau = {self.npoints} points")


def make_grid(cfg: RunConfig, params=()) -> Grid:
    """The sweep grid: the run file's [physics] axes, each replaceable by one ``--param``."""
    axes = {"mu": cfg.mus_eV, "T": cfg.temperatures_K, "tau": cfg.taus_fs}
    specs, given = {}, {}
    for text in params:
        axis, values, spec = parse_param(text)
        if axis in given:
            raise ConfigError(f"--param {text!r}: axis {axis} is already given by --param "
                              f"{given[axis]!r}; give each of mu, T, tau at most once")
        given[axis], axes[axis], specs[axis] = text, values, spec
    return Grid(mus=_unique_sorted(axes["mu"]), temps=_unique_sorted(axes["T"]),
                taus=_unique_sorted(axes["tau"]), specs=specs)


@dataclass(frozen=True)
class Block:
    """One unit of work: temperature T with the μ and τ still missing there."""

    index: int
    T: float
    mus: tuple[float, ...]
    taus: tuple[float, ...]
    keep: frozenset | None  # point keys to keep from the μ × τ rectangle (None: all)
    npoints: int

    def points(self) -> frozenset:
        """Keys of the points this block computes."""
        if self.keep is not None:
            return self.keep
        return frozenset(point_key(mu, self.T, tau) for mu in self.mus for tau in self.taus)


def plan_blocks(grid: Grid, present=frozenset()) -> list[Block]:
    """One block per temperature with missing points, in ascending T."""
    blocks = []
    for T in grid.temps:
        missing = [(mu, tau) for tau in grid.taus for mu in grid.mus
                   if point_key(mu, T, tau) not in present]
        if not missing:
            continue
        mus = tuple(mu for mu in grid.mus if any(m == mu for m, _ in missing))
        taus = tuple(tau for tau in grid.taus if any(t == tau for _, t in missing))
        keep = (None if len(missing) == len(mus) * len(taus)
                else frozenset(point_key(mu, T, tau) for mu, tau in missing))
        blocks.append(Block(len(blocks), T, mus, taus, keep, len(missing)))
    return blocks


# ----------------------------------------------------------------------------- tables on disk
def read_table(path) -> tuple[list[str], list[list]]:
    """Metadata lines (without ``# ``) and typed rows of a ``kinetic table``/``sweep`` CSV."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"table {str(path)!r}: cannot read ({exc})") from None
    meta, body = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            meta.append(line[1:].strip())
        elif line.strip():
            body.append((n, line))
    if not body or next(csv.reader([body[0][1]])) != table.HEADER:
        raise ConfigError(f"table {str(path)!r}: not a kinetic table (expected the header "
                          f"{','.join(table.HEADER)})")
    rows = []
    for n, line in body[1:]:
        fields = next(csv.reader([line]))
        try:
            if len(fields) != len(table.HEADER):
                raise ValueError(f"{len(fields)} fields")
            mu, T, tau, value, err = (float(fields[i]) for i in (0, 1, 2, 5, 7))
        except ValueError as exc:
            raise ConfigError(f"table {str(path)!r} line {n}: malformed row ({exc}): {line!r}") from None
        rows.append([mu, T, tau, fields[3], fields[4], value, fields[6], err])
    return meta, rows


def _meta_fields(lines) -> dict:
    return dict(m.groups() for m in (re.match(r"([A-Za-z0-9_]+): (.*)$", ln) for ln in lines) if m)


def _run_sha(meta_fields: dict) -> str | None:
    for key, pattern in (("sweep", r"run_file_sha256=([0-9a-f]{64})"),
                         ("model_sha256", r"^run file ([0-9a-f]{64})$")):
        m = re.search(pattern, meta_fields.get(key, ""))
        if m:
            return m.group(1)
    return None


RESUME_CHECKED = ("model", "model_sha256", "dimension", "lattice_A", "mesh_k")


def resume_rows(path, cfg: RunConfig, model) -> list[list]:
    """Rows of an existing table if it was computed from this run file, model and mesh."""
    meta, rows = read_table(path)
    theirs = _meta_fields(meta)
    mine = _meta_fields(table.metadata(cfg, model, ""))
    refuse = ("; refusing to merge into or overwrite it: give another --out, or drop --resume "
              "to recompute from scratch")
    sha = _run_sha(theirs)
    if sha is None:
        raise ConfigError(f"--resume {str(path)!r}: the table's metadata holds no run-file "
                          f"sha256 (not written by kinetic sweep), so it cannot be checked{refuse}")
    if sha != cfg.sha256:
        raise ConfigError(f"--resume {str(path)!r}: the table was computed from run file "
                          f"{theirs.get('run_file', '?')} (sha256 {sha[:12]}…), not from "
                          f"{cfg.path} (sha256 {cfg.sha256[:12]}…){refuse}")
    for key in RESUME_CHECKED:
        if theirs.get(key) != mine[key]:
            raise ConfigError(f"--resume {str(path)!r}: its {key} is {theirs.get(key)!r} but "
                              f"this run has {mine[key]!r}{refuse}")
    return rows


def complete_points(rows, quantities) -> set:
    """Keys of the points that have rows for every quantity."""
    have = {}
    for r in rows:
        have.setdefault(point_key(r[0], r[1], r[2]), set()).add(r[3])
    need = set(quantities)
    return {key for key, qs in have.items() if need <= qs}


def sort_rows(rows, quantities) -> list[list]:
    """Stable sort by (T, τ, μ, quantity in run-file order); components keep their order."""
    order = {q: i for i, q in enumerate(quantities)}
    return sorted(rows, key=lambda r: (_round(r[1]), _round(r[2]), _round(r[0]),
                                       order.get(r[3], len(order)), r[3] if r[3] not in order else ""))


def sweep_metadata(cfg: RunConfig, model, grid: Grid, rows, command: str, done: int | None) -> list[str]:
    """``kinetic table`` metadata for the rows' T and τ, plus the ``sweep:`` line."""
    temps = sorted({_round(r[1]) for r in rows}) or [_round(t) for t in grid.temps]
    taus = sorted({_round(r[2]) for r in rows}) or [_round(t) for t in grid.taus]
    meta = table.metadata(replace(cfg, temperatures_K=tuple(temps), taus_fs=tuple(taus)), model,
                          command)
    line = f"sweep: {grid.describe()}; run_file_sha256={cfg.sha256}"
    if done is not None:
        line += (f"; PARTIAL checkpoint: {done} of {grid.npoints} grid points done, continue "
                 "with kinetic sweep --resume")
    return meta + [line]


# ----------------------------------------------------------------------------- MPI plumbing
class _SerialComm:
    """Stand-in for an MPI communicator of one rank (mpi4py not installed)."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def Dup(self):
        return self

    def Split(self, color=0, key=0):
        return self

    def Free(self):
        pass

    def bcast(self, obj, root=0):
        return obj


def _world(comm):
    if comm is not None:
        return comm
    try:
        from mpi4py import MPI
    except ImportError:
        return _SerialComm()
    return MPI.COMM_WORLD


def _pending(comm, tag: int, source=None, polls: int = 4) -> bool:
    """Whether a message is waiting. MPI_Iprobe may answer False until the progress engine has
    run (MPICH: the first call after a long computation does), so poll a few times."""
    kw = {"tag": tag} if source is None else {"tag": tag, "source": source}
    return any(comm.iprobe(**kw) for _ in range(polls))


def _pack(exc: BaseException) -> tuple:
    return type(exc).__name__, str(exc), isinstance(exc, KineticError)


def _unpack(payload: tuple, rank: int) -> Exception:
    name, msg, user = payload
    cls = getattr(errors, name, None)
    if user and isinstance(cls, type) and issubclass(cls, KineticError):
        return cls(msg)
    return RuntimeError(f"kinetic sweep failed on rank {rank}: {name}: {msg}")


def _say(msg: str) -> None:
    print(f"kinetic: {msg}", file=sys.stderr, flush=True)


def compute_block(cfg: RunConfig, model, block: Block) -> list[list]:
    """Rows of one block: ``compute_table`` on ``cfg`` restricted to the block's points."""
    sub = replace(cfg, temperatures_K=(block.T,), taus_fs=block.taus, mus_eV=block.mus)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stderr(buf):
            rows = table.compute_table(sub, model)
    finally:  # pass anything but compute_table's per-T progress line through
        for line in buf.getvalue().splitlines():
            if not line.startswith(_TABLE_PROGRESS):
                print(line, file=sys.stderr)
    if block.keep is not None:
        rows = [r for r in rows if point_key(r[0], r[1], r[2]) in block.keep]
    return rows


@dataclass
class SweepResult:
    path: Path
    grid_points: int  # points in the grid
    computed_points: int  # points computed by this call
    reused_points: int  # grid points found in the resumed table
    rows: int  # rows written
    blocks: int
    seconds: float


class _Root:
    """Rank 0's bookkeeping: block rows, progress lines, checkpoints, the first error."""

    def __init__(self, share: dict, tell, checkpoint_s):
        self.blocks = {b.index: b for bs in share.values() for b in bs}
        self.rows = {}  # block index -> rows
        self.covered = set()  # blocks computed, failed or skipped
        self.todo = sum(b.npoints for b in self.blocks.values())
        self.done, self.busy = 0, 0.0  # points done, and the compute seconds they took
        self.left = {r: sum(b.npoints for b in bs) for r, bs in share.items()}  # per leader
        self.tell, self.checkpoint_s = tell, checkpoint_s
        self.write = None  # write(partial: bool), set by the caller
        self.error = None  # (rank, payload, rank 0's own exception or None)
        self.t0 = self.last_write = time.perf_counter()
        self.seen = dict.fromkeys(share, self.t0)  # leader -> time of its last report

    def fail(self, rank: int, payload: tuple, exc: BaseException | None = None) -> None:
        if self.error is None:
            self.error = (rank, payload, exc)

    def add(self, msg: dict) -> None:
        """A message from a group leader (or rank 0 itself): rows, an error, skipped blocks."""
        self.covered.update(msg.get("skipped", ()))
        if "block" not in msg:
            return
        b = self.blocks[msg["block"]]
        self.covered.add(b.index)
        if "error" in msg:
            self.fail(msg["rank"], msg["error"])
            return
        self.rows[b.index] = msg["rows"]
        self.done += b.npoints
        now = time.perf_counter()
        saved = ""
        if (self.error is None and self.checkpoint_s is not None and self.done < self.todo
                and now - self.last_write >= self.checkpoint_s):
            try:
                self.write(partial=True)
                saved = "; checkpoint saved"
            except Exception as exc:  # noqa: BLE001  (raised on every rank)
                self.fail(0, _pack(exc), exc)
        self.busy += msg["seconds"]
        self.left[msg["rank"]] -= b.npoints
        self.seen[msg["rank"]] = now
        elapsed = now - self.t0
        eta = self.eta(now)
        self.tell(f"sweep block {len(self.rows)}/{len(self.blocks)}: T = {b.T:g} K, {b.npoints} "
                  f"points ({len(b.mus)} mu x {len(b.taus)} tau) on rank {msg['rank']} in "
                  f"{msg['seconds']:.2f} s; {self.done}/{self.todo} points, "
                  f"{elapsed:.1f} s elapsed, ETA {eta:.1f} s{saved}")

    def eta(self, now: float) -> float:
        """Seconds to go: the slowest leader's remaining points at the mean cost per point,
        less the time it has already spent on its current block."""
        per_point = self.busy / self.done
        return max(max(0.0, n * per_point - (now - self.seen[r]) * (n > 0))
                   for r, n in self.left.items())

    @property
    def finished(self) -> bool:
        return len(self.covered) == len(self.blocks)


# ----------------------------------------------------------------------------- the sweep
def output_path(cfg: RunConfig, out=None) -> Path:
    """--out, else [output] table, else the run file name with .csv (as ``kinetic table``)."""
    return Path(out) if out else (cfg.table or cfg.path.with_suffix(".csv"))


def _check_output(out: Path) -> None:
    table.check_output(out, "--out", ".csv")


def run_sweep(run, params=(), out=None, *, resume: bool = False, quiet: bool = False,
              command: str = "kinetic sweep", comm=None, checkpoint_s: float | None = CHECKPOINT_S,
              ranks_per_point: int = 1, say=None) -> SweepResult:
    """Compute the table of run file ``run`` over the grid of ``params`` (``--param`` texts).

    Collective over ``comm`` (default: MPI COMM_WORLD, or serial without mpi4py); every rank
    returns the same :class:`SweepResult` or raises the same error. ``checkpoint_s``: seconds
    between checkpoints of the completed points (0: after every block, None: never).
    ``ranks_per_point``: ranks per sub-communicator (group); a homogeneous table uses one rank
    per group, so extra group members idle. ``say``: progress sink on rank 0 (default stderr).
    """
    world = _world(comm)
    cfg = load_run(run)
    grid = make_grid(cfg, params)
    full = replace(cfg, temperatures_K=grid.temps, taus_fs=grid.taus, mus_eV=grid.mus)
    model = build_model(cfg.model, cfg.path.parent)
    out = output_path(cfg, out)
    if not (isinstance(ranks_per_point, int) and ranks_per_point >= 1):
        raise ConfigError(f"ranks_per_point = {ranks_per_point!r}: expected an integer ≥ 1")
    work = world.Dup()  # private tag space for the progress/rows messages
    try:
        return _sweep(work, full, model, grid, out, resume, quiet, command, checkpoint_s,
                      ranks_per_point, say or _say)
    finally:
        work.Free()


def _sweep(comm, cfg, model, grid, out, resume, quiet, command, checkpoint_s, per_group, say):
    rank, size = comm.Get_rank(), comm.Get_size()
    t_start = time.perf_counter()

    # rank 0: check the output, read the table to resume from, plan the blocks
    setup = old = None
    if rank == 0:
        try:
            _check_output(out)
            old = resume_rows(out, cfg, model) if resume and out.exists() else []
            blocks = plan_blocks(grid, complete_points(old, cfg.quantities))
            redo = set().union(*(b.points() for b in blocks))
            old = [r for r in old if point_key(r[0], r[1], r[2]) not in redo]
            setup = ("ok", blocks)
        except KineticError as exc:
            setup = ("error", _pack(exc))
    setup = comm.bcast(setup, root=0)
    if setup[0] == "error":
        raise _unpack(setup[1], 0)
    blocks = setup[1]

    # groups of ranks (sub-communicators); blocks go round-robin to the groups' leaders
    group = comm.Split(rank // per_group, rank)
    try:
        n_groups = (size + per_group - 1) // per_group
        share = {g * per_group: [b for b in blocks if b.index % n_groups == g] for g in range(n_groups)}
        mine = share.get(rank, []) if group.Get_rank() == 0 else []
        if rank != 0:
            got_abort = _worker(comm, cfg, model, mine)
            status, payload, stopped = comm.bcast(None, root=0)
            if rank in stopped and not got_abort:
                comm.recv(source=0, tag=TAG_ABORT)  # the stop signal sent after our last block
            if status == "error":
                raise _unpack(payload[1], payload[0])
            return payload
        tell = (lambda msg: None) if quiet else say
        todo = sum(b.npoints for b in blocks)
        reused = grid.npoints - todo
        tell(f"sweep: {grid.describe()}; {todo} to compute in {len(blocks)} block"
             f"{'s' * (len(blocks) != 1)} (one T each) on {n_groups} group"
             f"{'s' * (n_groups != 1)} of {per_group} rank{'s' * (per_group != 1)}"
             + (f"; {reused} reused from {out}" if resume else ""))
        return _root(comm, cfg, model, grid, out, command, checkpoint_s, tell, blocks, share, old,
                     t_start)
    finally:
        group.Free()


def _worker(comm, cfg, model, mine) -> bool:
    """A non-root group leader: compute its blocks, send each block's rows to rank 0.

    Before each block it checks for rank 0's stop signal (another rank failed). Returns
    whether that signal was received.
    """
    rank = comm.Get_rank()
    sends = []
    got_abort = False
    for j, b in enumerate(mine):
        if _pending(comm, TAG_ABORT, source=0):
            comm.recv(source=0, tag=TAG_ABORT)
            got_abort = True
            msg = {"rank": rank, "skipped": [x.index for x in mine[j:]]}
        else:
            t0 = time.perf_counter()
            try:
                msg = {"rank": rank, "block": b.index, "rows": compute_block(cfg, model, b),
                       "seconds": time.perf_counter() - t0}
            except Exception as exc:  # noqa: BLE001  (sent to rank 0, raised on every rank)
                msg = {"rank": rank, "block": b.index, "error": _pack(exc),
                       "skipped": [x.index for x in mine[j + 1:]]}
        sends.append(comm.isend(msg, dest=0, tag=TAG_BLOCK))
        if "rows" not in msg:
            break
    for req in sends:
        req.wait()
    return got_abort


def _root(comm, cfg, model, grid, out, command, checkpoint_s, tell, blocks, share, old,
          t_start) -> SweepResult:
    """Rank 0: compute its own blocks, collect the others', print progress, write the table."""
    reused = grid.npoints - sum(b.npoints for b in blocks)
    state = _Root(share, tell, checkpoint_s)

    def write(partial: bool) -> list:
        new = [r for i in sorted(state.rows) for r in state.rows[i]]
        rows = sort_rows(old + new, cfg.quantities)
        table.write_csv_atomic(out, sweep_metadata(cfg, model, grid, rows, command,
                                                   reused + state.done if partial else None), rows)
        state.last_write = time.perf_counter()
        return rows

    state.write = write
    parallel = comm.Get_size() > 1
    stopped, stops = set(), []

    def collect(wait: bool) -> None:
        """Receive the other leaders' messages (all of them if ``wait``); stop them on error."""
        while True:
            if state.error is not None:
                for r, bs in share.items():
                    if r != 0 and r not in stopped and not {b.index for b in bs} <= state.covered:
                        stopped.add(r)
                        stops.append(comm.isend(None, dest=r, tag=TAG_ABORT))
            if state.finished or not (wait or _pending(comm, TAG_BLOCK)):
                return
            state.add(comm.recv(tag=TAG_BLOCK))

    mine = share.get(0, [])
    for j, b in enumerate(mine):
        if state.error is not None:
            state.add({"rank": 0, "skipped": [x.index for x in mine[j:]]})
            break
        t0 = time.perf_counter()
        try:
            msg = {"rank": 0, "block": b.index, "rows": compute_block(cfg, model, b),
                   "seconds": time.perf_counter() - t0}
        except Exception as exc:  # noqa: BLE001  (raised on every rank)
            state.fail(0, _pack(exc), exc)
            msg = {"rank": 0, "skipped": [x.index for x in mine[j:]]}
        if parallel:  # the blocks the others finished meanwhile come first
            collect(wait=False)
        state.add(msg)
    if parallel:
        collect(wait=True)

    result = None
    if state.error is None:
        try:
            rows = write(partial=False)
            result = SweepResult(out, grid.npoints, state.done, reused, len(rows), len(blocks),
                                 time.perf_counter() - t_start)
            tell(f"sweep: wrote {len(rows)} rows "
                 f"({len({point_key(*r[:3]) for r in rows})} points) to {out} in "
                 f"{result.seconds:.2f} s")
        except Exception as exc:  # noqa: BLE001
            state.fail(0, _pack(exc), exc)
    outcome = ("ok", result, stopped) if state.error is None else ("error", state.error[:2], stopped)
    comm.bcast(outcome, root=0)
    for req in stops:
        req.wait()
    if state.error is not None:
        rank, payload, exc = state.error
        raise exc if exc is not None else _unpack(payload, rank)
    return result
