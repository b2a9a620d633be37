"""Checkpoint/restart of transient `kinetic run`s (kinetic/checkpoint.py).

A run is "killed" by raising from the TS monitor a few steps after a checkpoint was written; the
restart must end with the same f and time series as an uninterrupted run (fixed-step SSP, so the
step boundaries coincide), refuse changed inputs, and work on another number of ranks.
"""
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from kinetic.errors import ConfigError

# 1x1k Rice–Mele ring in an AC field: x and k both matter, so the natural <-> global ordering of
# a 2-rank DMDA is exercised; dt = 0.05 fs < the CFL step 0.10 fs.
RING = """
[model]
name = "rice_mele"
[texture]
builtin = "rice_mele_ring"
[mesh]
k = [32]
x = { n = 16, length = 16.0 }
[physics]
temperature = 300.0
tau = 5.0
mu = 0.0
electric_field = [3e8]
field_time = { kind = "ac", omega = 2.0 }
[solver]
mode = "transient"
t_end = 1.0
ts_type = "ssp"
dt = 0.05
checkpoint = { every_steps = 4 }
"""
QUIET = dict(say=lambda m: None)


class Killed(Exception):
    pass


@pytest.fixture
def kill_at(monkeypatch):
    """kill_at(step): the next runs raise Killed from the TS monitor once ``step`` is reached."""
    from kinetic.solvers import Transport

    original = Transport.transient

    def arm(step):
        def transient(self, f0, t_end, monitor=None, **kw):
            def mon(i, t, u):
                monitor(i, t, u)
                if i == step:
                    raise Killed(f"killed at step {i}")
            return original(self, f0, t_end, monitor=mon, **kw)

        monkeypatch.setattr(Transport, "transient", transient)
    yield arm
    monkeypatch.setattr(Transport, "transient", original)


def _interrupt(run_file, out, kill_at, step=10):
    from kinetic.run import run

    kill_at(step)
    with pytest.raises(Exception) as info:
        run(run_file, out=out, **QUIET)
    assert isinstance(info.value, Killed) or isinstance(info.value.__cause__, Killed)
    kill_at(-1)  # disarm


def _table(path):
    with open(path) as fh:
        return list(csv.reader(fh))


def assert_same_result(a: Path, b: Path, rtol=1e-12):
    fa, fb = np.load(a / "fields.npz")["f"], np.load(b / "fields.npz")["f"]
    assert fa.shape == fb.shape
    np.testing.assert_allclose(fb, fa, rtol=0, atol=rtol)
    ta, tb = _table(a / "timeseries.csv"), _table(b / "timeseries.csv")
    assert ta[0] == tb[0] and len(ta) == len(tb)
    va = np.array([[float(x) for x in r] for r in ta[1:]])
    vb = np.array([[float(x) for x in r] for r in tb[1:]])
    np.testing.assert_allclose(vb, va, rtol=rtol, atol=1e-300)
    da, db = _table(a / "diagnostics.csv"), _table(b / "diagnostics.csv")
    assert da[0] == db[0] and len(da) == len(db)
    va = np.array([[float(x) for x in r] for r in da[1:]])
    vb = np.array([[float(x) for x in r] for r in db[1:]])
    np.testing.assert_array_equal(vb[:, 0], va[:, 0])  # steps
    np.testing.assert_allclose(vb[:, 1:4], va[:, 1:4], rtol=rtol)  # t, dt, particles
    np.testing.assert_allclose(vb[:, 4], va[:, 4], rtol=0, atol=rtol)  # drift (not wall_s)


def test_killed_run_restarts_to_the_uninterrupted_result(tmp_path, kill_at):
    from kinetic.run import run

    p = tmp_path / "ring.toml"
    p.write_text(RING)
    full = run(p, out=tmp_path / "full", **QUIET)
    _interrupt(p, tmp_path / "o", kill_at, step=10)
    assert not (tmp_path / "o" / "summary.json").exists()
    with np.load(tmp_path / "o" / "checkpoint.npz", allow_pickle=False) as z:
        state = json.loads(str(z["state"]))
        assert z["f"].shape == (32, 16, 2)
    assert state["step"] == 8 and state["t_fs"] == pytest.approx(0.4)
    s = run(p, out=tmp_path / "o", restart=tmp_path / "o", **QUIET)
    assert s["solver"]["steps"] == full["solver"]["steps"] == 20
    assert s["solver"]["restarted_from"]["step"] == 8
    assert_same_result(tmp_path / "full", tmp_path / "o", rtol=1e-12)


def test_restart_refuses_changed_inputs(tmp_path, kill_at):
    """A modified run file, mesh preset or Wannier90 file changes the stamp: refused, naming
    both hashes."""
    from kinetic.models.catalogue import get_model
    from kinetic.models.wannier90 import write_hr
    from kinetic.run import run

    (tmp_path / "meshes").mkdir()
    (tmp_path / "meshes" / "small.toml").write_text("[mesh]\nk = [32]\n")
    write_hr(get_model("cosine1d", t=1.0), tmp_path / "c_hr.dat")
    text = (RING.replace('name = "rice_mele"\n[texture]\nbuiltin = "rice_mele_ring"',
                         'wannier90 = "c_hr.dat"\nlattice = [[1.0]]')
            .replace("k = [32]\nx = { n = 16, length = 16.0 }", 'preset = "small"')
            .replace('field_time = { kind = "ac", omega = 2.0 }\n', "").replace("0.05", "0.02"))
    p = tmp_path / "w.toml"
    p.write_text(text)
    _interrupt(p, tmp_path / "o", kill_at, step=6)
    stamp = json.loads(str(np.load(tmp_path / "o" / "checkpoint.npz")["state"]))["stamp"]

    def refused(what):
        with pytest.raises(ConfigError) as info:
            run(p, out=tmp_path / "r", restart=tmp_path / "o", **QUIET)
        msg = str(info.value)
        assert "\n" not in msg and stamp in msg and "unchanged inputs" in msg, (what, msg)
        assert f"(changed: {what})" in msg
        other = msg.split("hash to ")[1].split(" ")[0]
        assert len(other) == 64 and other != stamp
        assert not (tmp_path / "r" / "summary.json").exists()

    p.write_text(text.replace("tau = 5.0", "tau = 5.5"))
    refused("run_file, mesh_physics")
    p.write_text(text)
    (tmp_path / "meshes" / "small.toml").write_text("[mesh]\nk = [40]\n")
    refused("mesh_physics")
    (tmp_path / "meshes" / "small.toml").write_text("[mesh]\nk = [32]\n")
    write_hr(get_model("cosine1d", t=1.1), tmp_path / "c_hr.dat")
    refused("model_wannier90")
    write_hr(get_model("cosine1d", t=1.0), tmp_path / "c_hr.dat")
    s = run(p, out=tmp_path / "r", restart=tmp_path / "o" / "checkpoint.npz", **QUIET)
    assert s["solver"]["restarted_from"]["step"] == 4


def test_restart_user_errors(tmp_path):
    from kinetic.run import run

    p = tmp_path / "ring.toml"
    p.write_text(RING)
    with pytest.raises(ConfigError, match="no checkpoint.npz found there"):
        run(p, out=tmp_path / "o", restart=tmp_path, **QUIET)
    (tmp_path / "checkpoint.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="not a readable kinetic checkpoint"):
        run(p, out=tmp_path / "o", restart=tmp_path, **QUIET)
    steady = tmp_path / "steady.toml"
    steady.write_text(RING.replace('mode = "transient"', 'mode = "steady"')
                      .replace("checkpoint = { every_steps = 4 }\n", "")
                      .replace('field_time = { kind = "ac", omega = 2.0 }\n', ""))
    with pytest.raises(ConfigError, match="only transient runs write checkpoints"):
        run(steady, out=tmp_path / "o", restart=tmp_path, **QUIET)


@pytest.mark.parametrize("spec,msg", [
    ("{ every_steps = 0 }", "solver.checkpoint.every_steps = 0: expected an integer ≥ 1"),
    ("{ every_steps = 2.5 }", "every_steps = 2.5"),
    ("{ every_minutes = -1 }", "solver.checkpoint.every_minutes = -1: must be > 0"),
    ("{ every_step = 3 }", "every_step"),
    ("{}", "expected { every_steps"),
    ("10", "expected { every_steps"),
])
def test_checkpoint_spec_errors(tmp_path, spec, msg):
    from kinetic.runfile import load_solver_run

    p = tmp_path / "r.toml"
    p.write_text(RING.replace("{ every_steps = 4 }", spec))
    with pytest.raises(ConfigError) as info:
        load_solver_run(p)
    assert msg in str(info.value) and "\n" not in str(info.value)


def test_checkpoint_needs_transient(tmp_path):
    from kinetic.runfile import load_solver_run

    p = tmp_path / "r.toml"
    p.write_text(RING.replace('mode = "transient"', 'mode = "steady"'))
    with pytest.raises(ConfigError, match="checkpoints are written by transient runs"):
        load_solver_run(p)


def test_checkpoint_every_minutes(tmp_path, kill_at):
    """A wall-clock cadence (here ~0: every step) writes checkpoints too; the file is complete
    (no .part left) and readable without pickle."""
    p = tmp_path / "ring.toml"
    p.write_text(RING.replace("{ every_steps = 4 }", "{ every_minutes = 1e-9 }"))
    _interrupt(p, tmp_path / "o", kill_at, step=7)
    with np.load(tmp_path / "o" / "checkpoint.npz", allow_pickle=False) as z:
        state = json.loads(str(z["state"]))
        series = json.loads(str(z["series"]))
    assert state["step"] == 7 and len(series) == 8 and series[0][0] == 0
    assert state["kinetic"] and state["ranks"] == 1
    assert [f.name for f in (tmp_path / "o").iterdir()] == ["checkpoint.npz"]


@pytest.mark.mpi(min_size=2)
def test_restart_across_rank_counts(tmp_path_factory, kill_at):
    """2 ranks: uninterrupted vs killed + restarted on 2 ranks; the 2-rank checkpoint restarted
    on 1 rank; a 1-rank checkpoint restarted on 2 ranks — all end at the uninterrupted result."""
    from petsc4py import PETSc

    from kinetic.run import run

    comm = PETSc.COMM_WORLD.tompi4py()
    d = Path(comm.bcast(str(tmp_path_factory.mktemp("ck")) if comm.rank == 0 else None))
    if comm.rank == 0:
        (d / "ring.toml").write_text(RING)
    comm.Barrier()
    p = d / "ring.toml"
    run(p, out=d / "full", **QUIET)
    _interrupt(p, d / "two", kill_at, step=10)
    s = run(p, out=d / "two", restart=d / "two", **QUIET)
    assert s["ranks"] == 2 and s["solver"]["restarted_from"]["step"] == 8
    err = None
    if comm.rank == 0:  # the 2-rank checkpoint (step 16 now) on one rank; then a 1-rank one
        try:
            one = run(p, out=d / "one", restart=d / "two", comm=PETSc.COMM_SELF, **QUIET)
            assert one["ranks"] == 1 and one["solver"]["restarted_from"]["step"] == 16
            kill_at(6)
            with pytest.raises(Exception):
                run(p, out=d / "serial", comm=PETSc.COMM_SELF, **QUIET)
            kill_at(-1)
        except BaseException as exc:  # tell rank 1, which would otherwise wait below
            err = repr(exc)
    err = comm.bcast(err)
    assert err is None, err
    back = run(p, out=d / "serial", restart=d / "serial", **QUIET)
    assert back["ranks"] == 2 and back["solver"]["restarted_from"]["step"] == 4
    if comm.rank == 0:
        for name in ("two", "one", "serial"):
            assert_same_result(d / "full", d / name, rtol=1e-12)
