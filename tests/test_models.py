"""Tests for kinetic.models: catalogue, Wannier90 I/O, textures.

Every check compares with an independent answer: finite differences of H, closed-form spectra,
physics.md reference numbers (V5 metric integrals and Chern numbers, V10 ring gap), exact
diagonalization of midpoint-rule lattices (V12), or a round trip through files.
"""
from __future__ import annotations

import numpy as np
import pytest

from kinetic.errors import ModelError
from kinetic.models import (
    CATALOGUE,
    HBAR2_2ME,
    PAULI,
    MatrixTightBinding,
    as_profile,
    dirac1d_texture,
    get_model,
    helical,
    homogeneous,
    landau_shift,
    midpoint_lattice,
    read_hr,
    read_tb,
    rice_mele_ring,
    texture,
    write_hr,
    write_tb,
)
from kinetic.models.catalogue import Haldane, QWZHelical
from kinetic.models.texture import Linear, Sine, TanhWall, param_derivatives
from kinetic.models.wannier90 import Wannier90Model, load

RNG = np.random.default_rng(20260322)

# ----------------------------------------------------------------------------- helpers
C6 = {-3: -1 / 60, -2: 9 / 60, -1: -45 / 60, 1: 45 / 60, 2: -9 / 60, 3: 1 / 60}


def fd(f, z, i, h=1e-3):
    """6th-order central difference of f along component i of the last axis of z."""
    e = np.zeros(z.shape[-1])
    e[i] = h
    return sum(c * f(z + j * e) for j, c in C6.items()) / h


def fd_scalar(f, v, h=1e-3):
    return sum(c * f(v + j * h) for j, c in C6.items()) / h


def herm_err(H):
    return np.max(np.abs(H - np.swapaxes(H, -1, -2).conj()))


def random_matrix_tb(nb=3, dim=3, seed=1):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(nb, nb)) + 1j * rng.normal(size=(nb, nb))
    hops = {}
    for R in [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, -1, 0), (0, 2, 1)][: 5 if dim == 3 else 0]:
        hops[R] = 0.3 * (rng.normal(size=(nb, nb)) + 1j * rng.normal(size=(nb, nb)))
    lattice = np.array([[1.0, 0.1, 0.0], [0.3, 1.2, 0.0], [0.1, -0.2, 0.9]])
    return MatrixTightBinding((A + A.conj().T) / 2, hops, lattice, name="random_tb")


def perturbed(cls):
    """An instance with generic (non-default) parameters."""
    p = {}
    for n, v in cls.defaults.items():
        u = RNG.uniform(-1, 1)
        p[n] = v * (1 + 0.3 * u) if n in ("m_eff", "a") else v + 0.37 * (1 + abs(v)) * u
    return cls(**p)


def zoo():
    models = []
    for cls in CATALOGUE.values():
        models += [cls(), perturbed(cls)]
    models += [Haldane(convention="I", M=0.3, phi=1.1), QWZHelical(q=0.4), random_matrix_tb()]
    return models


ZOO = zoo()
IDS = [f"{m.name}-{i}" for i, m in enumerate(ZOO)]


def random_k(model, n=7):
    return RNG.uniform(-2.5, 2.5, size=(n, model.dim))


# ============================================================================ catalogue
def test_registry_and_errors():
    assert {"parabolic1d", "parabolic2d", "parabolic3d", "cosine1d", "cosine2d", "cosine3d", "dirac2d", "qwz",
            "haldane", "rice_mele", "dirac1d", "qwz_helical"} == set(CATALOGUE)
    for name, cls in CATALOGUE.items():
        m = get_model(name)
        assert m.name == name and isinstance(m, cls)
    with pytest.raises(ModelError, match=r"unknown model 'qwzz' \(did you mean 'qwz'\?\); allowed: .*haldane"):
        get_model("qwzz")
    with pytest.raises(ModelError, match="unknown parameter 'mass'; allowed: m, tilt, v"):
        get_model("dirac2d", mass=1.0)
    with pytest.raises(ModelError, match="convention"):
        Haldane(convention="III")
    with pytest.raises(ModelError, match=r"k must have shape \(\.\.\., 2\)"):
        get_model("qwz").hamiltonian(np.zeros(3))
    with pytest.raises(ModelError, match=r"no hoppings\(\); only lattice models"):
        write_hr(get_model("dirac2d"), "/nonexistent/x_hr.dat")


@pytest.mark.parametrize("model", ZOO, ids=IDS)
def test_hermitian_and_k_derivatives(model):
    k = random_k(model)
    H, Hk, Hkk = model.hamiltonian(k), model.dh_dk(k), model.d2h_dk2(k)
    nb, d = model.nb, model.dim
    assert H.shape == (7, nb, nb) and Hk.shape == (7, d, nb, nb) and Hkk.shape == (7, d, d, nb, nb)
    scale = 1 + np.max(np.abs(H))
    assert herm_err(H) < 1e-14 * scale and herm_err(Hk) < 1e-13 * scale and herm_err(Hkk) < 1e-13 * scale
    for i in range(d):
        assert np.max(np.abs(Hk[:, i] - fd(model.hamiltonian, k, i))) < 1e-10 * scale
        for j in range(d):
            num = fd(lambda z: fd(model.hamiltonian, z, j), k, i)  # from H alone
            assert np.max(np.abs(Hkk[:, i, j] - num)) < 1e-7 * scale
            assert np.max(np.abs(Hkk[:, i, j] - fd(lambda z: model.dh_dk(z)[:, j], k, i))) < 1e-10 * scale
    # batch shapes and parameter broadcasting: params of shape (4, 1) against k of shape (4, 7, d)
    if model.defaults:
        n0 = next(iter(model.defaults))
        vals = model.params[n0] * (1 + 0.1 * np.arange(4))[:, None]
        Hb = model.hamiltonian(np.broadcast_to(k, (4, 7, d)), {n0: vals})
        assert Hb.shape == (4, 7, nb, nb)
        assert np.allclose(Hb[2], model.hamiltonian(k, {n0: vals[2, 0]}), atol=1e-14)


@pytest.mark.parametrize("model", [m for m in ZOO if getattr(m, "analytic_params", ())],
                         ids=[i for i, m in zip(IDS, ZOO) if getattr(m, "analytic_params", ())])
def test_parameter_derivatives(model):
    k = random_k(model, 5)
    p = model.p()
    dH, dHk, d2H = model.dh_dparam(k, p)
    names = model.analytic_params
    scale = 1 + np.max(np.abs(model.hamiltonian(k)))

    def with_(n, v, m=None, w=None):
        q = dict(p)
        q[n] = v
        if m is not None:
            q[m] = w
        return q

    for n in names:
        num = fd_scalar(lambda v: model.hamiltonian(k, with_(n, v)), p[n])
        assert np.max(np.abs(dH[n] - num)) < 1e-10 * scale, n
        numk = fd_scalar(lambda v: model.dh_dk(k, with_(n, v)), p[n])
        assert np.max(np.abs(dHk[n] - numk)) < 1e-10 * scale, n
        for m in names:
            num2 = fd_scalar(lambda w: model.dh_dparam(k, with_(m, w))[0][n], p[m])
            got = d2H.get(tuple(sorted((n, m))), 0.0)
            assert np.max(np.abs(got - num2)) < 1e-9 * scale, (n, m)


@pytest.mark.parametrize("model", [m for m in ZOO if m.lattice is not None],
                         ids=[i for i, m in zip(IDS, ZOO) if m.lattice is not None])
def test_periodicity(model):
    k = random_k(model)
    G = model.reciprocal
    assert np.allclose(model.lattice @ G.T, 2 * np.pi * np.eye(model.dim), atol=1e-13)
    for n in ([1, 0, 0][: model.dim], [0, 1, 0][: model.dim], [2, -1, 3][: model.dim]):
        g = np.asarray(n) @ G
        H0, H1 = model.hamiltonian(k), model.hamiltonian(k + g)
        if getattr(model, "convention", "II") == "I":  # H(k+G) = W† H(k) W, W = diag(e^{iG·τ})
            w = np.exp(1j * model.centres @ g)
            H1 = w[:, None] * H1 * w.conj()[None, :]
        assert np.max(np.abs(H1 - H0)) < 1e-12 * (1 + np.max(np.abs(H0)))


def test_spectra_closed_forms():
    assert HBAR2_2ME == pytest.approx(3.80998, abs=1e-5)
    k3 = RNG.uniform(-3, 3, (9, 3))
    for d in (1, 2, 3):
        m = get_model(f"parabolic{d}d", m_eff=0.067, e0=0.1)
        assert np.allclose(m.hamiltonian(k3[:, :d])[:, 0, 0], 3.80998211 * np.sum(k3[:, :d] ** 2, -1) / 0.067 + 0.1)
        c = get_model(f"cosine{d}d", t=0.7, e0=-0.2, a=2.5)
        assert np.allclose(c.hamiltonian(k3[:, :d])[:, 0, 0], -0.2 - 1.4 * np.cos(2.5 * k3[:, :d]).sum(-1), atol=1e-14)
    k = RNG.uniform(-2, 2, (9, 2))
    dirac = get_model("dirac2d", v=1.3, m=-0.4, tilt=0.2)
    E = np.sqrt(1.69 * np.sum(k**2, -1) + 0.16)
    assert np.allclose(np.linalg.eigvalsh(dirac.hamiltonian(k)), 0.2 * k[:, :1] + np.stack([-E, E], -1), atol=1e-13)
    # V2 reference point: v = 1, m = 0.5, k = (0.3, 0.4) -> lower band -0.707107
    assert np.linalg.eigvalsh(get_model("dirac2d").hamiltonian([0.3, 0.4]))[0] == pytest.approx(-0.7071068, abs=1e-7)
    q = get_model("qwz", M=-0.7, t=1.2, a=1.5)
    dv = np.stack([np.sin(1.5 * k[:, 0]), np.sin(1.5 * k[:, 1]), -0.7 + np.cos(1.5 * k[:, 0]) + np.cos(1.5 * k[:, 1])])
    h = 1.2 * np.linalg.norm(dv, axis=0)
    assert np.allclose(np.linalg.eigvalsh(q.hamiltonian(k)), np.stack([-h, h], -1), atol=1e-13)
    k1 = RNG.uniform(-3, 3, (9, 1))
    rm = get_model("rice_mele", t1=0.8, t2=1.3, Delta=0.4, V=0.1, t3=0.3, phi3=0.7)
    h = np.sqrt(0.16 + np.abs(0.8 + 1.3 * np.exp(-1j * k1[:, 0])) ** 2)
    e0 = 0.1 + 0.3 * np.sin(k1[:, 0] + 0.7)
    assert np.allclose(np.linalg.eigvalsh(rm.hamiltonian(k1)), np.stack([e0 - h, e0 + h], -1), atol=1e-13)
    d1 = get_model("dirac1d", v=0.9, m=0.6, theta=1.2, V=-0.3)
    E = np.sqrt(0.81 * k1[:, 0] ** 2 + 0.36)
    assert np.allclose(np.linalg.eigvalsh(d1.hamiltonian(k1)), np.stack([-0.3 - E, -0.3 + E], -1), atol=1e-13)
    # V12: qwz_helical at q = 0 is QWZ(M=1) + d0 = 0.35 cos kx + 0.25 sin kx + 0.3 cos ky
    d0 = 0.35 * np.cos(k[:, 0]) + 0.25 * np.sin(k[:, 0]) + 0.3 * np.cos(k[:, 1])
    Hh = QWZHelical().hamiltonian(k)
    assert np.allclose(Hh, get_model("qwz", M=1.0).hamiltonian(k) + d0[:, None, None] * np.eye(2), atol=1e-14)


def _lower_band_geometry(model, n=120):
    """(1/2π)∫tr g and the FHS Chern number of the lower band (sum over states, physics.md §2)."""
    B = model.reciprocal
    u = (np.arange(n) + 0.5) / n
    k = u[:, None, None] * B[0] + u[None, :, None] * B[1]
    e, w = np.linalg.eigh(model.hamiltonian(k))
    Hk = model.dh_dk(k)
    v01 = np.einsum("...a,...iab,...b->...i", w[..., 0].conj(), Hk, w[..., 1])
    trg = np.sum(np.abs(v01) ** 2, -1) / (e[..., 1] - e[..., 0]) ** 2
    trg_int = trg.mean() * abs(np.linalg.det(B)) / (2 * np.pi)
    m = 30  # Fukui–Hatsugai–Suzuki, plaquettes k1 then k2, C = −(1/2π) Σ arg(...)
    u = np.arange(m) / m
    k = u[:, None, None] * B[0] + u[None, :, None] * B[1]
    v = np.linalg.eigh(model.hamiltonian(k))[1][..., 0]
    if getattr(model, "convention", "II") == "I":  # the BZ torus needs periodic vectors: go to convention II
        v = v * np.exp(1j * k @ model.centres.T)

    def link(a, b):
        return np.sum(a.conj() * b, -1)

    v2, v3, v4 = np.roll(v, -1, 0), np.roll(np.roll(v, -1, 0), -1, 1), np.roll(v, -1, 1)
    F = np.angle(link(v, v2) * link(v2, v3) * link(v3, v4) * link(v4, v))
    return trg_int, -F.sum() / (2 * np.pi)


def test_v5_chern_numbers_and_metric():
    """physics.md V5: QWZ and Haldane lower-band Chern numbers and (1/2π)∫tr g."""
    trg, C = _lower_band_geometry(get_model("qwz", M=1.0))
    assert trg == pytest.approx(1.425124, abs=2e-5) and C == pytest.approx(-1, abs=1e-6)
    trg, C = _lower_band_geometry(get_model("qwz", M=-1.0))
    assert trg == pytest.approx(1.425124, abs=2e-5) and C == pytest.approx(1, abs=1e-6)
    trg, C = _lower_band_geometry(Haldane(convention="I", M=0.0))
    assert trg == pytest.approx(1.182677, abs=2e-5) and C == pytest.approx(-1, abs=1e-6)
    trg, C = _lower_band_geometry(Haldane(convention="I", M=1.0))
    assert trg == pytest.approx(0.678504, abs=2e-5) and C == pytest.approx(0, abs=1e-6)
    # convention II (orbitals at the origin): same Chern number, different metric (see report)
    trg, C = _lower_band_geometry(Haldane(convention="II", M=0.0))
    assert C == pytest.approx(-1, abs=1e-6) and trg == pytest.approx(1.737185, abs=2e-5)


# ============================================================================ Wannier90
def _assert_same_model(a, b, tol=1e-14):
    k = RNG.uniform(-3, 3, (11, a.dim))
    assert a.dim == b.dim and a.nb == b.nb
    scale = 1 + np.max(np.abs(a.hamiltonian(k)))
    assert np.max(np.abs(a.hamiltonian(k) - b.hamiltonian(k))) < tol * scale
    assert np.max(np.abs(a.dh_dk(k) - b.dh_dk(k))) < 10 * tol * scale
    assert np.max(np.abs(a.d2h_dk2(k) - b.d2h_dk2(k))) < 100 * tol * scale


@pytest.mark.parametrize("model", [get_model("qwz", M=0.7, t=1.1), Haldane(M=0.2, phi=0.9, t2=0.15),
                                   get_model("rice_mele", t3=0.2, phi3=0.4, V=0.1), get_model("cosine3d", a=1.7),
                                   get_model("cosine1d"), random_matrix_tb(), QWZHelical(q=0.3)],
                         ids=lambda m: m.name)
def test_wannier90_round_trip(model, tmp_path):
    write_tb(model, tmp_path / "m_tb.dat")
    write_hr(model, tmp_path / "m_hr.dat")
    from_tb = load(tmp_path / "m_tb.dat")
    from_hr = Wannier90Model(read_hr(tmp_path / "m_hr.dat"), lattice=model.lattice)
    for w in (from_tb, from_hr):
        assert w.dim == model.dim  # dimension detection (1D / 2D / 3D)
        assert np.allclose(w.lattice, model.lattice, atol=1e-15)
        _assert_same_model(model, w)


def test_wannier90_convention_I(tmp_path):
    hal = Haldane(convention="I", M=0.3, phi=0.7)
    write_tb(hal, tmp_path / "hal_tb.dat")
    w = load(tmp_path / "hal_tb.dat", convention="I")
    assert np.allclose(w.centres, hal.centres, atol=1e-15)
    _assert_same_model(hal, w)
    _assert_same_model(Haldane(convention="II", M=0.3, phi=0.7), load(tmp_path / "hal_tb.dat"))
    with pytest.raises(ModelError, match="convention 'I' needs orbital centres"):
        Wannier90Model(read_hr(_write(tmp_path / "x_hr.dat", HR_1D)), convention="I")


def _w90_hr(entries, deg):
    """A 1-orbital 1D _hr.dat in Wannier90's fixed layout (15I5 degeneracies, 5I5 2F12.6)."""
    out = [" written on  1Jan2026 at 00:00:00", f"{1:12d}", f"{len(entries):12d}"]
    out += ["".join(f"{d:5d}" for d in deg[i:i + 15]) for i in range(0, len(deg), 15)]
    out += [f"{r:5d}    0    0    1    1{v:12.6f}{0.0:12.6f}" for r, v in entries]
    return "\n".join(out) + "\n"


HR_1D = _w90_hr([(r, {-1: -1.0, 0: 0.5, 1: -1.0}.get(r, 0.0)) for r in range(-8, 9)], [1] * 17)


def _write(path, text):
    path.write_text(text)
    return path


def test_wannier90_fixed_format_and_degeneracy(tmp_path):
    """A file in Wannier90's own fixed-width layout (6 decimals, 15 degeneracies per line)."""
    m = load(_write(tmp_path / "chain_hr.dat", HR_1D), lattice=[[2.0]])
    assert m.dim == 1 and m.nb == 1 and m.lattice[0, 0] == 2.0
    k = np.linspace(-2, 2, 9)[:, None]
    assert np.allclose(m.hamiltonian(k)[:, 0, 0], 0.5 - 2 * np.cos(2 * k[:, 0]), atol=1e-15)
    # degeneracy weights: H(k) = Σ_R e^{ikR} H_R / deg_R (here deg = 2 at R = ±2 and ±8)
    vals = {-8: 0.4, -2: 0.3, -1: -1.0, 0: 0.5, 1: -1.0, 2: 0.3, 8: 0.4}
    deg = [2 if abs(r) in (2, 8) else 1 for r in range(-8, 9)]
    m = load(_write(tmp_path / "deg_hr.dat", _w90_hr([(r, vals.get(r, 0.0)) for r in range(-8, 9)], deg)))
    ref = 0.5 - 2 * np.cos(k[:, 0]) + 0.3 * np.cos(2 * k[:, 0]) + 0.4 * np.cos(8 * k[:, 0])
    assert np.allclose(m.hamiltonian(k)[:, 0, 0], ref, atol=1e-15)


def _corrupt_cases(tmp_path):
    good = tmp_path / "good_tb.dat"
    write_tb(get_model("qwz"), good)
    lines = good.read_text().splitlines()
    hr = HR_1D.splitlines()
    return {
        "empty_hr.dat": ("", r"unexpected end of file after line 0; expected a header line"),
        "short_hr.dat": ("\n".join(hr[:12]), r"unexpected end of file after line 12; expected 'R1 R2 R3 m n Re Im'"),
        "float_hr.dat": ("\n".join(hr[:6] + ["   -7    0    0    1    1    0.0.0    0.000000"] + hr[7:]),
                         r"line 7: expected 'R1 R2 R3 m n Re Im'; cannot parse"),
        "nw_hr.dat": ("\n".join(hr[:1] + ["  two"] + hr[2:]), r"line 2: expected num_wann \(integers\)"),
        "index_hr.dat": ("\n".join(hr[:6] + ["   -7    0    0    2    1    0.000000    0.000000"] + hr[7:]),
                         r"line 7: orbital indices \(2, 1\) out of range 1..1"),
        "cols_hr.dat": ("\n".join(hr[:6] + ["   -7    0    0    1    1    0.000000"] + hr[7:]),
                        r"line 7: expected 'R1 R2 R3 m n Re Im' \(7 numbers\); got 6"),
        "deg_hr.dat": ("\n".join(hr[:3] + [hr[3].replace("    1", "    0", 1)] + hr[4:]),
                       r"line 4: degeneracies must be >= 1"),
        "dupR_hr.dat": ("\n".join(hr[:6] + [hr[5]] + hr[7:]), r"line 7: duplicate entry R = \(-8, 0, 0\)"),
        "herm_hr.dat": ("\n".join(hr[:14] + ["    1    0    0    1    1   -0.900000    0.000000"] + hr[15:]),
                        r"H\(R\) != H\(-R\)\^†"),
        "lat_tb.dat": ("\n".join(lines[:2] + ["1.0 0.0"] + lines[3:]), r"line 3: expected lattice vector a2"),
        "trunc_tb.dat": ("\n".join(lines[:-3]), r"unexpected end of file after line \d+; expected 'm n x_re"),
        "pos_tb.dat": ("\n".join(lines[:-1] + ["    2    2  0.0 0.0 0.0"]),
                       rf"line {len(lines)}: expected 'm n x_re x_im y_re y_im z_re z_im' \(8 numbers\); got 5"),
        "rblock_tb.dat": ("\n".join(lines[:8] + ["    0    0"] + lines[9:]), r"line 9: expected an R vector"),
    }


def test_wannier90_errors(tmp_path):
    with pytest.raises(ModelError, match=r"missing_hr.dat: file not found"):
        read_hr(tmp_path / "missing_hr.dat")
    with pytest.raises(ModelError, match="not a regular file"):
        read_tb(tmp_path)
    cases = _corrupt_cases(tmp_path)
    for fname, (text, pattern) in cases.items():
        path = _write(tmp_path / fname, text)
        with pytest.raises(ModelError, match=pattern) as info:
            load(path)
        assert fname in str(info.value), (fname, str(info.value))
    (tmp_path / "bin_hr.dat").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ModelError, match="cannot read as text"):
        read_hr(tmp_path / "bin_hr.dat")
    with pytest.raises(ModelError, match="dim=1 not allowed"):
        load(tmp_path / "good_tb.dat", dim=1)
    with pytest.raises(ModelError, match=r"lattice must have shape \(3, 3\) or \(2, 2\); got \(2, 3\)"):
        load(tmp_path / "good_tb.dat", lattice=np.ones((2, 3)))
    with pytest.raises(ModelError, match=r"centres must have shape \(2, 3\) or \(2, 2\)"):
        load(tmp_path / "good_tb.dat", centres=np.zeros(2))
    assert load(_write(tmp_path / "plain_hr.dat", HR_1D)).lattice_source.startswith("default identity")
    assert load(tmp_path / "good_tb.dat").lattice_source == "file"
    with pytest.raises(ModelError, match="onsite matrix is not Hermitian"):
        MatrixTightBinding([[0, 1], [0, 0]], {(1,): np.eye(2)})
    with pytest.raises(ModelError, match=r"hopping \[1, 0\] has shape \(3, 3\); expected \(2, 2\)"):
        MatrixTightBinding(np.eye(2), {(1, 0): np.eye(3)})


# ============================================================================ textures
def _check_phase_space(pm, x, k, tol1=1e-9, tol2=1e-8):
    """dH and d2H of a PhaseSpaceModel against finite differences of H and dH in every coordinate."""
    H, dH, d2H = pm.evaluate(x, k, order=2)
    H1, dH1 = pm.evaluate(x, k, order=1)
    dx, n = pm.dim_x, pm.dim_x + pm.dim
    assert dH.shape == H.shape[:-2] + (n,) + H.shape[-2:] and d2H.shape == H.shape[:-2] + (n, n) + H.shape[-2:]
    assert np.array_equal(H, H1) and np.allclose(dH, dH1, atol=1e-15)
    assert herm_err(H) < 1e-13 and herm_err(dH) < 1e-12 and herm_err(d2H) < 1e-11
    batch = H.shape[:-2]
    xi = np.concatenate([np.broadcast_to(x, batch + (dx,)), np.broadcast_to(k, batch + (pm.dim,))], -1)
    split = (lambda z: (z[..., :dx], z[..., dx:]))
    scale = 1 + np.max(np.abs(H))
    for a in range(n):
        num = fd(lambda z: pm.hamiltonian(*split(z)), xi, a)
        assert np.max(np.abs(dH[..., a, :, :] - num)) < tol1 * scale, ("dH", a)
        numd = fd(lambda z: pm.evaluate(*split(z), order=1)[1], xi, a)
        assert np.max(np.abs(d2H[..., a, :, :, :] - numd)) < tol2 * scale, ("d2H", a)
    assert np.allclose(d2H, np.swapaxes(d2H, -3, -4), atol=1e-12 * scale)
    return H, dH, d2H


def test_profiles():
    x = RNG.uniform(-6, 6, (13, 1))
    profs = [TanhWall(1.0, 2.5, -0.3, 0.8), Sine(0.2, 0.5, 7.0, 0.4), Linear(0.3, -0.2), as_profile(2.0),
             as_profile({"kind": "tanh_wall", "center": -1, "width": 1.5, "left": 1, "right": 2}),
             (1.0 + 0.4 * Sine(0, 1, 9.0)) * Sine(0, 1, 9.0, np.pi / 2) - TanhWall(0, 3, 0, 1) * 2.0]
    for pr in profs:
        v, g, h = pr(x)
        assert v.shape == (13,) and g.shape == (13, 1) and h.shape == (13, 1, 1)
        assert np.allclose(g[:, 0], fd(lambda z: pr(z)[0], x, 0), atol=1e-11)
        assert np.allclose(h[:, 0, 0], fd(lambda z: pr(z)[1][:, 0], x, 0), atol=1e-10)
    assert np.allclose(TanhWall(1.0, 2.5, -0.3, 0.8)(np.array([[1.0]]))[0], 0.25)
    x2 = RNG.uniform(-3, 3, (5, 2))
    pr = Linear(1.0, [0.5, -2.0]) * Sine(0, 1, 4.0, 0.3, axis=1)
    v, g, h = pr(x2)
    for a in range(2):
        assert np.allclose(g[:, a], fd(lambda z: pr(z)[0], x2, a), atol=1e-11)
        assert np.allclose(h[:, a], fd(lambda z: pr(z)[1], x2, a), atol=1e-10)
    with pytest.raises(ModelError, match="profile kind 'gauss' not allowed; allowed: constant, tanh_wall"):
        as_profile({"kind": "gauss"})
    with pytest.raises(ModelError, match="profile 'sine': bad arguments"):
        as_profile({"kind": "sine", "wavelength": 3})
    with pytest.raises(ModelError, match="must look like"):
        as_profile("os.system('ls')")
    with pytest.raises(ModelError, match="cannot import module 'no_such_module_xyz'"):
        as_profile("no_such_module_xyz:f")
    with pytest.raises(ModelError, match="unknown parameter 'mass'"):
        texture(get_model("dirac1d"), {"mass": 1.0})
    with pytest.raises(ModelError, match="profile of 'M' uses x axis 1; dim_x = 1"):
        texture(get_model("qwz"), {"M": 1.0 + Sine(0, 1, 3.0, axis=1)})


def test_custom_profile_entry_point(tmp_path, monkeypatch):
    (tmp_path / "my_profiles.py").write_text(
        "import numpy as np\n"
        "def gauss(x, width=1.0):\n"
        "    u = x[..., 0] / width\n"
        "    v = np.exp(-u**2)\n"
        "    return v, -2*u/width*v, (4*u**2 - 2)/width**2*v\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    pr = as_profile({"kind": "custom", "entry_point": "my_profiles:gauss", "width": 2.0})
    x = RNG.uniform(-3, 3, (6, 1))
    v, g, h = pr(x)
    assert np.allclose(v, np.exp(-(x[:, 0] / 2) ** 2))
    assert np.allclose(g[:, 0], fd(lambda z: pr(z)[0], x, 0), atol=1e-11)
    tex = dirac1d_texture("my_profiles:gauss", Linear(0.1, 0.3))
    _check_phase_space(tex, x, RNG.uniform(-2, 2, (6, 1)))
    with pytest.raises(ModelError, match="has no function 'nope'"):
        as_profile("my_profiles:nope")


def test_textures_derivatives():
    x1 = RNG.uniform(-8, 8, (6, 1))
    # V9 Dirac texture: m(x) tanh wall, θ(x) linear, V(x) sine
    tex = dirac1d_texture(TanhWall(0.5, 3.0, 0.3, 0.9), Linear(0.2, 0.35), v=1.2, V=Sine(0.1, 0.2, 11.0))
    k1 = RNG.uniform(-2, 2, (6, 1))
    H, _, _ = _check_phase_space(tex, x1, k1)
    m, V = tex.profiles["m"](x1)[0], tex.profiles["V"](x1)[0]
    E = np.sqrt(1.44 * k1[:, 0] ** 2 + m**2)
    assert np.allclose(np.linalg.eigvalsh(H), np.stack([V - E, V + E], -1), atol=1e-14)
    # V10 ring (all parameters textured, analytic parameter derivatives)
    _check_phase_space(rice_mele_ring(40), RNG.uniform(0, 40, (6, 1)), RNG.uniform(-3, 3, (6, 1)))
    # 2D x on a 2D model, broadcasting x (4, 1, 2) against k (5, 2)
    tex2 = texture(get_model("cosine2d"), {"t": Linear(1.0, [0.1, -0.05]), "e0": Sine(0, 0.3, 5.0, axis=1)}, dim_x=2)
    H, dH, d2H = _check_phase_space(tex2, RNG.uniform(-2, 2, (4, 1, 2)), RNG.uniform(-3, 3, (5, 2)))
    assert H.shape == (4, 5, 1, 1) and dH.shape == (4, 5, 4, 1, 1)
    # finite-difference fallback (QWZ lattice constant 'a' has no analytic derivative) mixed with analytic M
    tex3 = texture(get_model("qwz"), {"a": Sine(1.0, 0.1, 13.0), "M": TanhWall(0, 4, -0.5, 1.5)})
    _check_phase_space(tex3, x1, RNG.uniform(-2, 2, (6, 2)), tol2=3e-8)


def test_fd_fallback_matches_analytic():
    class NoAnalytic(type(get_model("rice_mele"))):
        analytic_params = ()

    k, x = RNG.uniform(-3, 3, (8, 1)), RNG.uniform(0, 30, (8, 1))
    profiles = rice_mele_ring(30).profiles
    a = texture(get_model("rice_mele", phi3=0.7), profiles).evaluate(x, k, order=2)
    b = texture(NoAnalytic(phi3=0.7), {**profiles, "phi3": Sine(0.7, 0.2, 17.0)}).evaluate(x, k, order=2)
    c = texture(get_model("rice_mele"), {**profiles, "phi3": Sine(0.7, 0.2, 17.0)}).evaluate(x, k, order=2)
    assert np.max(np.abs(a[0] - b[0])) > 1e-3  # phi3 textured in b, c only
    for u, v, tol in zip(b, c, (1e-15, 1e-11, 1e-9)):
        assert np.max(np.abs(u - v)) < tol
    p = get_model("qwz").p({"M": 0.4})
    kk = RNG.uniform(-3, 3, (5, 2))
    dH, dHk, d2H = param_derivatives(get_model("qwz"), kk, p, ["a", "M", "t"])
    assert np.allclose(d2H[("M", "t")], PAULI[3]) and ("M", "M") not in d2H
    assert np.max(np.abs(d2H[("M", "a")])) < 1e-9  # M and a do not mix


def test_homogeneous():
    hal = Haldane()
    k = RNG.uniform(-3, 3, (5, 2))
    H, dH, d2H = homogeneous(hal).evaluate(None, k, order=2)
    assert np.array_equal(H, hal.hamiltonian(k)) and np.array_equal(dH, hal.dh_dk(k))
    assert np.array_equal(d2H, hal.d2h_dk2(k))
    with pytest.raises(ModelError, match=r"x must have shape \(\.\.\., 1\)"):
        rice_mele_ring(10).evaluate(np.zeros(3), np.zeros((3, 1)))


def test_landau_shift():
    """V13 texture route: H(x, k) = H0(k_x, k_y + Bx), ∂_x H = B ∂_{k_y} H0 exactly."""
    qwz, B = get_model("qwz", M=0.6), 0.37
    lan = landau_shift(qwz, B)
    x, k = RNG.uniform(-5, 5, (7, 1)), RNG.uniform(-3, 3, (7, 2))
    H, dH, d2H = _check_phase_space(lan, x, k)
    ks = k + np.stack([0 * x[:, 0], B * x[:, 0]], -1)
    assert np.array_equal(H, qwz.hamiltonian(ks))
    assert np.allclose(dH[:, 0], B * qwz.dh_dk(ks)[:, 1], rtol=0, atol=1e-15)
    assert np.allclose(d2H[:, 0, 0], B * B * qwz.d2h_dk2(ks)[:, 1, 1], rtol=0, atol=1e-15)
    with pytest.raises(ModelError, match="dim >= 2"):
        landau_shift(get_model("rice_mele"), B)


def _ring_spectra(L, q, ky, Sigma, shift=0.0):
    H0 = QWZHelical(Sigma=Sigma)
    e_lat = np.linalg.eigvalsh(midpoint_lattice(helical(H0, q, Sigma), L, k_perp=[ky]))
    kx = 2 * np.pi * (np.arange(L) + shift) / L
    kk = np.stack([kx, np.full(L, ky)], -1)

    def bands(model):
        return np.sort(np.linalg.eigvalsh(model.hamiltonian(kk)).ravel())

    return e_lat, bands(QWZHelical(Sigma=Sigma, q=q)), bands(QWZHelical(Sigma=Sigma, q=-q))


def test_helical_texture_equivalence():
    """V12: the midpoint-rule lattice of U(x)H0(k)U(x)† on a ring equals H'(k) exactly.

    U = exp(−iqxΣ/2) is single-valued on a ring of L cells for q = 4πn/L (U(L) = 1, periodic
    k_x = 2πj/L); for q = 2π(2n+1)/L, U(L) = −1 and the gauge-transformed ring is antiperiodic
    (k_x = 2π(j + 1/2)/L). The opposite sign T_x → e^{−iqΣ/4} T_x e^{−iqΣ/4} fails.
    """
    L = 24
    for Sigma in (QWZHelical.SIGMA, PAULI[3], (PAULI[2] + 0.3 * PAULI[1]) / np.sqrt(1.09)):
        for n, shift in ((1, 0.0), (2, 0.0), (1, 0.5)):
            q = (4 * np.pi * n if shift == 0 else 2 * np.pi * n) / L
            for ky in (0.3, -1.7):
                e_lat, e_plus, e_minus = _ring_spectra(L, q, ky, Sigma, shift)
                assert np.max(np.abs(e_lat - e_plus)) < 1e-12
                assert np.max(np.abs(e_lat - e_minus)) > 1e-2
    # corollary: the Weyl symbol of U(x̂)Ĥ0U(x̂)† is U(x) H'_{−q}(k) U(x)†; its lattice is H0 itself
    L, q, ky = 24, 4 * np.pi / 24, 0.8
    e_lat = np.linalg.eigvalsh(midpoint_lattice(helical(QWZHelical(q=-q), q, QWZHelical.SIGMA), L, k_perp=[ky]))
    kk = np.stack([2 * np.pi * np.arange(L) / L, np.full(L, ky)], -1)
    assert np.max(np.abs(e_lat - np.sort(np.linalg.eigvalsh(QWZHelical().hamiltonian(kk)).ravel()))) < 1e-12
    _check_phase_space(helical(QWZHelical(), 0.4, QWZHelical.SIGMA), RNG.uniform(-5, 5, (5, 1)),
                       RNG.uniform(-3, 3, (5, 2)))


def test_rice_mele_ring_v10():
    L = 64
    tex = rice_mele_ring(L)
    x, k = RNG.uniform(0, L, 9), RNG.uniform(-3, 3, 9)
    th = 2 * np.pi * x / L
    a = 1 + 0.4 * np.sin(th)
    t1, t2, D = 1 + a * 0.5 * np.cos(th), 1 - a * 0.5 * np.cos(th), a * 0.6 * np.sin(th)
    V, t3 = 0.4 * np.cos(th + 0.3), 0.3 * (1 + 0.5 * np.sin(th))
    off = t1 + t2 * np.exp(-1j * k)
    ref = np.array([[D + V, off], [off.conj(), -D + V]]).transpose(2, 0, 1) + \
        (t3 * np.sin(k + 0.7))[:, None, None] * np.eye(2)
    assert np.allclose(tex.hamiltonian(x[:, None], k[:, None]), ref, atol=1e-14)
    # (k, θ) Chern number of the lower band: −1 (FHS over the (k, x) torus, plaquettes k then x)
    n = 40
    kk, xx = np.meshgrid(2 * np.pi * np.arange(n) / n, L * np.arange(n) / n, indexing="ij")
    v = np.linalg.eigh(tex.hamiltonian(xx[..., None], kk[..., None]))[1][..., 0]

    def link(p, q):
        return np.sum(p.conj() * q, -1)

    v2, v4 = np.roll(v, -1, 0), np.roll(v, -1, 1)
    v3 = np.roll(v2, -1, 1)
    C = -np.angle(link(v, v2) * link(v2, v3) * link(v3, v4) * link(v4, v)).sum() / (2 * np.pi)
    assert C == pytest.approx(-1, abs=1e-8)
    # exact diagonalization of the midpoint-rule ring (L = 256): L − 1 states below a gap of 0.565
    L = 256
    e = np.linalg.eigvalsh(midpoint_lattice(rice_mele_ring(L), L))
    gaps = np.diff(e)
    assert np.argmax(gaps) == L - 2 and gaps[L - 2] == pytest.approx(0.565, abs=1e-3)


def test_midpoint_lattice_checks():
    with pytest.raises(ModelError, match="harmonics beyond range"):
        midpoint_lattice(dirac1d_texture(0.5, Linear(0, 0.1)), 16)
    with pytest.raises(ModelError, match="k_perp needs 1 components"):
        midpoint_lattice(helical(QWZHelical(), 0.5, PAULI[3]), 24)
    # a homogeneous chain on an open segment: the cosine band's open-chain spectrum
    tex = texture(get_model("cosine1d", t=1.0), {"e0": 0.0})
    e = np.linalg.eigvalsh(midpoint_lattice(tex, 10, periodic=False))
    assert np.allclose(e, np.sort(-2 * np.cos(np.pi * np.arange(1, 11) / 11)), atol=1e-13)
