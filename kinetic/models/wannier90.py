"""Wannier90 tight-binding models: read/write ``seedname_hr.dat`` and ``seedname_tb.dat``.

File formats (as written by Wannier90's ``hamiltonian_write_hr`` / ``hamiltonian_write_tb`` in
``src/hamiltonian.F90``; checked against that source):

``_hr.dat``::

    header line
    num_wann
    nrpts
    ndegen(1..nrpts)                      15 integers per line
    R1 R2 R3 m n Re(H) Im(H)              nrpts*num_wann² lines, H_mn(R) = <0m|H|Rn> in eV

``_tb.dat``::

    header line
    a1 (3 reals, Å)
    a2
    a3
    num_wann
    nrpts
    ndegen(1..nrpts)                      15 integers per line
    [blank] R1 R2 R3, then num_wann² lines "m n Re(H) Im(H)"                 (nrpts blocks)
    [blank] R1 R2 R3, then num_wann² lines "m n Re x Im x Re y Im y Re z Im z" (nrpts blocks)
                                          <0m|r|Rn> in Å

Values are read by whitespace splitting (Wannier90's fixed-width fields are blank-separated for
all realistic magnitudes). Our writers use the same layout with 17 significant digits, so a
write/read round trip is exact to double precision.

Model (``Wannier90Model``): H(k) = Σ_R e^{i k·R_cart} H_R / ndegen_R with R_cart = R·A (rows of
A are the lattice vectors in Å), k Cartesian in 1/Å:

- ``convention="II"`` (default, project-wide; physics.md §1.1): orbitals at the cell origin,
  H(k+G) = H(k);
- ``convention="I"``: H_mn(k) = Σ_R e^{i k·(R_cart + τ_n − τ_m)} H_mn(R)/ndegen_R with orbital
  centres τ_n = Re <0n|r|0n> (the R = 0 diagonal of the position matrix from ``_tb.dat``, or given
  with ``centres=``). H_I(k) = V(k)† H_II(k) V(k), V = diag(e^{ik·τ}).

Dimension: if every R has R3 = 0 the model is 2D (k = (k_x, k_y), lattice = in-plane 2×2 block,
which requires a1, a2 in the xy plane); if also R2 = 0 it is 1D (k along a1, lattice [[|a1|]]).
``dim=`` overrides the detection (upwards only). ``_hr.dat`` carries no lattice: pass
``lattice=`` (Å, rows), otherwise the identity (1 Å cubic) is used — then k is in units of 1/cell.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from kinetic.errors import ModelError
from kinetic.fileio import atomic_write
from kinetic.models.base import Model


@dataclasses.dataclass
class Wannier90Data:
    """Raw content of a Wannier90 file.

    R : (nR, 3) int lattice vectors; deg : (nR,) int degeneracies; HR : (nR, nw, nw) complex
    <0m|H|Rn> in eV (not divided by deg); lattice : (3, 3) Å rows or None; pos : (nR, nw, nw, 3)
    complex <0m|r|Rn> in Å or None; header : str; path : str.
    """

    R: np.ndarray
    deg: np.ndarray
    HR: np.ndarray
    lattice: np.ndarray | None = None
    pos: np.ndarray | None = None
    header: str = ""
    path: str = ""

    @property
    def num_wann(self) -> int:
        return self.HR.shape[1]


# ----------------------------------------------------------------------------- reading
class _Lines:
    """Line cursor with 1-based line numbers and error messages naming file and line."""

    def __init__(self, path):
        self.path = str(path)
        p = Path(path)
        if not p.exists():
            raise ModelError(f"{self.path}: file not found (expected a Wannier90 file)")
        if not p.is_file():
            raise ModelError(f"{self.path}: not a regular file")
        try:
            self.lines = p.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelError(f"{self.path}: cannot read as text ({exc})") from None
        self.i = 0

    def error(self, what: str, line: int | None = None):
        n = self.i if line is None else line
        return ModelError(f"{self.path}, line {n}: {what}")

    def next(self, what: str, skip_blank: bool = False) -> list[str]:
        while True:
            if self.i >= len(self.lines):
                raise ModelError(f"{self.path}: unexpected end of file after line {len(self.lines)}; expected {what}")
            line = self.lines[self.i]
            self.i += 1
            if line.strip() or not skip_blank:
                return line.split()

    def ints(self, n: int, what: str, skip_blank=False) -> list[int]:
        tok = self.next(what, skip_blank)
        if len(tok) != n:
            raise self.error(f"expected {what} ({n} integer{'s' if n > 1 else ''}); got {' '.join(tok)!r}")
        try:
            return [int(t) for t in tok]
        except ValueError:
            raise self.error(f"expected {what} (integers); got {' '.join(tok)!r}") from None

    def numbers(self, n_int: int, n_float: int, what: str, skip_blank=False):
        tok = self.next(what, skip_blank)
        if len(tok) != n_int + n_float:
            raise self.error(f"expected {what} ({n_int + n_float} numbers); got {len(tok)}: {' '.join(tok)!r}")
        try:
            return [int(t) for t in tok[:n_int]], [float(t.replace("D", "E").replace("d", "e")) for t in tok[n_int:]]
        except ValueError:
            raise self.error(f"expected {what}; cannot parse {' '.join(tok)!r}") from None

    def degeneracies(self, nrpts: int) -> np.ndarray:
        deg: list[int] = []
        while len(deg) < nrpts:
            tok = self.next(f"{nrpts} degeneracies (15 per line)")
            try:
                vals = [int(t) for t in tok]
            except ValueError:
                raise self.error(f"expected degeneracy integers; got {' '.join(tok)!r}") from None
            if min(vals, default=1) < 1:
                raise self.error(f"degeneracies must be >= 1; got {min(vals)}")
            deg += vals
        if len(deg) != nrpts:
            raise self.error(f"expected {nrpts} degeneracies in total; got {len(deg)}")
        return np.array(deg)

    def count(self, what: str) -> int:
        (n,) = self.ints(1, what)
        if n < 1:
            raise self.error(f"{what} must be >= 1; got {n}")
        return n


def _index(c: _Lines, m: int, n: int, nw: int):
    if not (1 <= m <= nw and 1 <= n <= nw):
        raise c.error(f"orbital indices ({m}, {n}) out of range 1..{nw}")


def read_hr(path) -> Wannier90Data:
    """Read ``seedname_hr.dat``. Raises ``ModelError`` naming file, line and what was expected."""
    c = _Lines(path)
    header = " ".join(c.next("a header line"))
    nw = c.count("num_wann")
    nr = c.count("nrpts")
    deg = c.degeneracies(nr)
    index: dict = {}
    HR = np.zeros((nr, nw, nw), complex)
    seen = np.zeros((nr, nw, nw), bool)
    for _ in range(nr * nw * nw):
        ints, vals = c.numbers(5, 2, "'R1 R2 R3 m n Re Im'")
        r, m, n = tuple(ints[:3]), ints[3], ints[4]
        _index(c, m, n, nw)
        if r not in index:
            if len(index) == nr:
                raise c.error(f"more than nrpts = {nr} distinct R vectors")
            index[r] = len(index)
        j = index[r]
        if seen[j, m - 1, n - 1]:
            raise c.error(f"duplicate entry R = {r}, (m, n) = ({m}, {n})")
        seen[j, m - 1, n - 1] = True
        HR[j, m - 1, n - 1] = vals[0] + 1j * vals[1]
    if len(index) != nr:
        raise c.error(f"found {len(index)} distinct R vectors; nrpts = {nr}")
    R = np.array(list(index), dtype=int).reshape(nr, 3)
    return Wannier90Data(R=R, deg=deg, HR=HR, header=header, path=str(path))


def read_tb(path) -> Wannier90Data:
    """Read ``seedname_tb.dat`` (lattice, hoppings and position matrix elements)."""
    c = _Lines(path)
    header = " ".join(c.next("a header line"))
    lat = np.array([c.numbers(0, 3, f"lattice vector a{i + 1} (3 reals, Å)")[1] for i in range(3)])
    if abs(np.linalg.det(lat)) < 1e-12:
        raise c.error("lattice vectors are linearly dependent")
    nw = c.count("num_wann")
    nr = c.count("nrpts")
    deg = c.degeneracies(nr)
    R = np.zeros((nr, 3), int)
    HR = np.zeros((nr, nw, nw), complex)
    pos = np.zeros((nr, nw, nw, 3), complex)
    for block, (nval, what) in enumerate(((2, "'m n Re(H) Im(H)'"), (6, "'m n x_re x_im y_re y_im z_re z_im'"))):
        for j in range(nr):
            r = tuple(c.ints(3, "an R vector 'R1 R2 R3'", skip_blank=True))
            if block == 0:
                R[j] = r
            elif r != tuple(R[j]):
                raise c.error(f"position block {j + 1} has R = {r}; the Hamiltonian block {j + 1} has {tuple(R[j])}")
            seen = np.zeros((nw, nw), bool)
            for _ in range(nw * nw):
                (m, n), v = c.numbers(2, nval, what)
                _index(c, m, n, nw)
                if seen[m - 1, n - 1]:
                    raise c.error(f"duplicate entry (m, n) = ({m}, {n}) for R = {r}")
                seen[m - 1, n - 1] = True
                if block == 0:
                    HR[j, m - 1, n - 1] = v[0] + 1j * v[1]
                else:
                    pos[j, m - 1, n - 1] = np.array(v[0::2]) + 1j * np.array(v[1::2])
    if len({tuple(r) for r in R}) != nr:
        raise ModelError(f"{path}: repeated R vectors in the Hamiltonian blocks")
    return Wannier90Data(R=R, deg=deg, HR=HR, lattice=lat, pos=pos, header=header, path=str(path))


def read(path) -> Wannier90Data:
    """``read_tb`` for names ending in ``_tb.dat``, otherwise ``read_hr``."""
    return read_tb(path) if str(path).endswith("_tb.dat") else read_hr(path)


# ----------------------------------------------------------------------------- model
class Wannier90Model(Model):
    """Bloch Hamiltonian interpolated from Wannier90 hoppings (analytic k-derivatives).

    Parameters
    ----------
    data : Wannier90Data (from ``read_hr`` / ``read_tb``) or a path (dispatched by ``read``)
    convention : "II" (default, orbitals at origin) or "I" (phases with orbital centres)
    lattice : (3, 3) or (dim, dim) Å rows; overrides the file (required for meaningful Å units
        with ``_hr.dat``; default identity)
    centres : (nw, 3) or (nw, dim) Å; overrides the centres from ``_tb.dat``
    dim : force a dimension >= the detected one
    hermitian_tol : max |H_R − H_{−R}†| (eV) accepted (Wannier90 prints 6 decimals in _hr.dat)

    Shapes: k (..., dim); H (..., nw, nw); see ``kinetic.models.base``. Hermiticity is made exact
    by symmetrising H_R/deg_R ← (H_R/deg_R + H_{−R}†/deg_{−R})/2.
    """

    name = "wannier90"
    defaults: dict = {}

    def __init__(self, data, convention="II", lattice=None, centres=None, dim=None, hermitian_tol=1e-5):
        super().__init__()
        if not isinstance(data, Wannier90Data):
            data = read(data)
        self.data = data
        src = data.path or "Wannier90 data"
        if convention not in ("I", "II"):
            raise ModelError(f"{src}: convention {convention!r} not allowed; allowed: 'I', 'II'")
        self.convention = convention
        R, nw = np.asarray(data.R, int), data.num_wann
        self.nb = nw
        # dimension
        detected = 1 if np.all(R[:, 1:] == 0) else 2 if np.all(R[:, 2] == 0) else 3
        if dim is not None and not (detected <= int(dim) <= 3):
            raise ModelError(f"{src}: dim={dim} not allowed; the R vectors need dim >= {detected} (max 3)")
        self.dim = d = detected if dim is None else int(dim)
        # lattice (3x3 rows, Å)
        A3 = np.eye(3) if data.lattice is None else np.asarray(data.lattice, float)
        #: where the lattice came from: "file", "user" or "default identity (1 Å): k in 1/cell"
        self.lattice_source = "default identity (1 Å): k in 1/cell" if data.lattice is None else "file"
        if lattice is not None:
            self.lattice_source = "user"
            lat = np.asarray(lattice, float)
            if lat.shape == (d, d):
                A3 = np.eye(3)
                A3[:d, :d] = lat
            elif lat.shape == (3, 3):
                A3 = lat
            else:
                raise ModelError(f"{src}: lattice must have shape (3, 3) or ({d}, {d}); got {lat.shape}")
        self.lattice_3d = A3
        tau3 = np.zeros((nw, 3))
        if data.pos is not None:
            zero = np.flatnonzero(np.all(R == 0, axis=1))
            if zero.size:
                j = zero[0]
                tau3 = np.real(np.einsum("nnx->nx", data.pos[j])) / data.deg[j]
        if centres is not None:
            c = np.asarray(centres, float)
            if c.shape not in ((nw, 3), (nw, d)):
                raise ModelError(f"{src}: centres must have shape ({nw}, 3) or ({nw}, {d}); got {c.shape}")
            tau3 = np.zeros((nw, 3))
            tau3[:, : c.shape[1]] = c
        self._lat, self._tau = self._project(A3, tau3, d, src)
        if convention == "I" and data.pos is None and centres is None:
            raise ModelError(f"{src}: convention 'I' needs orbital centres (a _tb.dat file or centres=)")
        # Hermitian symmetrisation
        HRw = data.HR / data.deg[:, None, None]
        lookup = {tuple(r): j for j, r in enumerate(R)}
        sym = np.empty_like(HRw)
        for j, r in enumerate(R):
            jm = lookup.get(tuple(-r))
            if jm is None:
                raise ModelError(f"{src}: R = {tuple(r)} present but -R = {tuple(-r)} missing (H not Hermitian)")
            sym[j] = 0.5 * (HRw[j] + HRw[jm].conj().T)
        err = np.max(np.abs(sym - HRw)) * 2 if len(R) else 0.0
        if err > hermitian_tol:
            raise ModelError(f"{src}: H(R) != H(-R)^† (max deviation {err:.3g} eV > {hermitian_tol:g} eV)")
        self._R = R[:, :d]
        self._HR = sym
        self._Rc = self._R @ self._lat

    @staticmethod
    def _project(A3, tau3, d, src):
        if d == 3:
            return A3, tau3
        scale = np.max(np.abs(A3))
        if d == 2:
            if np.any(np.abs(A3[:2, 2]) > 1e-8 * scale):
                raise ModelError(f"{src}: 2D model but a1, a2 have z components {A3[:2, 2].tolist()}; "
                                 "rotate the lattice into the xy plane or pass dim=3")
            return A3[:2, :2].copy(), tau3[:, :2].copy()
        u = A3[0] / np.linalg.norm(A3[0])  # 1D: coordinate along a1
        return np.array([[np.linalg.norm(A3[0])]]), (tau3 @ u)[:, None]

    @property
    def lattice(self):
        return self._lat

    @property
    def centres(self):
        """(nw, dim) orbital centres in Å (used by convention I)."""
        return self._tau

    def _fourier(self, k, order):
        k = np.asarray(k, float)
        if k.ndim == 0 or k.shape[-1] != self.dim:
            raise ModelError(f"k must have shape (..., {self.dim}); got {k.shape}")
        batch, nw, d = k.shape[:-1], self.nb, self.dim
        ph = np.exp(1j * (k.reshape(-1, d) @ self._Rc.T))  # (P, nR)
        HRf = self._HR.reshape(len(self._R), -1)
        out = [(ph @ HRf).reshape(batch + (nw, nw))]
        if order >= 1:
            w = ph[:, :, None] * (1j * self._Rc)[None]  # (P, nR, d)
            out.append(np.einsum("prd,rm->pdm", w, HRf).reshape(batch + (d, nw, nw)))
        if order >= 2:
            RR = -self._Rc[:, :, None] * self._Rc[:, None, :]
            out.append(np.einsum("pr,rde,rm->pdem", ph, RR, HRf).reshape(batch + (d, d, nw, nw)))
        if self.convention == "I":
            out = self._to_convention_I(k, out)
        return out

    def _to_convention_I(self, k, out):
        """H_I = V† H V with V = diag(e^{ik·τ}); derivatives by the product rule."""
        v = np.exp(1j * (k @ self._tau.T))  # (..., nw)
        W = v.conj()[..., :, None] * v[..., None, :]
        D = 1j * (self._tau[None, :, :] - self._tau[:, None, :])  # (m, n, d): i(τ_n − τ_m)
        Dd = np.moveaxis(D, -1, 0)  # (d, m, n)
        H = out[0] * W
        res = [H]
        if len(out) > 1:
            Hk = out[1] * W[..., None, :, :]
            res.append(Hk + Dd * H[..., None, :, :])
        if len(out) > 2:
            Hkk = out[2] * W[..., None, None, :, :]
            cross = Dd[:, None] * Hk[..., None, :, :, :] + Dd[None, :] * Hk[..., :, None, :, :]
            res.append(Hkk + cross + Dd[:, None] * Dd[None, :] * H[..., None, None, :, :])
        return res

    def hamiltonian(self, k, p=None):
        return self._fourier(k, 0)[0]

    def dh_dk(self, k, p=None):
        return self._fourier(k, 1)[1]

    def d2h_dk2(self, k, p=None):
        return self._fourier(k, 2)[2]

    def hoppings(self, p=None):
        """(R (nR, dim) int, H_R/deg_R (nR, nw, nw)): H(k) = Σ_R H_R e^{ik·R} (convention II)."""
        return self._R.copy(), self._HR.copy()


def load(path, **kwargs) -> Wannier90Model:
    """Read a ``_hr.dat`` or ``_tb.dat`` file into a ``Wannier90Model`` (kwargs as the class)."""
    return Wannier90Model(read(path), **kwargs)


# ----------------------------------------------------------------------------- writing
def _tb_arrays(model, p):
    if not hasattr(model, "hoppings"):
        raise ModelError(f"model {getattr(model, 'name', model)!r} has no hoppings(); only lattice models can be written")
    R, HR = model.hoppings(p)
    R, HR = np.asarray(R, int), np.asarray(HR, complex)
    d = R.shape[1]
    R3 = np.zeros((len(R), 3), int)
    R3[:, :d] = R
    A3 = np.eye(3)
    lat = model.lattice
    if lat is None:
        raise ModelError(f"model {model.name!r} is a continuum model (no lattice); it cannot be written")
    A3[:d, :d] = lat
    tau3 = np.zeros((HR.shape[1], 3))
    if getattr(model, "centres", None) is not None:
        tau3[:, :d] = model.centres
    return R3, HR, A3, tau3


def _deg_lines(n):
    ones = ["    1"] * n
    return ["".join(ones[i : i + 15]) for i in range(0, n, 15)]


def write_hr(model, path, p=None, header="written by kinetic"):
    """Write a lattice model (anything with ``hoppings`` and ``lattice``) as ``seedname_hr.dat``.

    Degeneracies are 1; values carry 17 significant digits. The lattice is *not* part of the
    format (use ``write_tb`` or pass ``lattice=`` when reading back).
    """
    R3, HR, _, _ = _tb_arrays(model, p)
    nw = HR.shape[1]
    out = [header, f"{nw:12d}", f"{len(R3):12d}", *_deg_lines(len(R3))]
    for r, H in zip(R3, HR):
        for n in range(nw):
            for m in range(nw):
                out.append(f"{r[0]:5d}{r[1]:5d}{r[2]:5d}{m + 1:5d}{n + 1:5d} {H[m, n].real: .17e} {H[m, n].imag: .17e}")
    atomic_write(path, "\n".join(out) + "\n")


def write_tb(model, path, p=None, header="written by kinetic"):
    """Write a lattice model as ``seedname_tb.dat`` (lattice, hoppings, position matrix).

    Position matrix: <0m|r|Rn> = δ_R0 δ_mn τ_n with τ the model's ``centres`` (zero if absent),
    so a convention-I model is reproduced when read back with ``convention="I"``.
    """
    R3, HR, A3, tau3 = _tb_arrays(model, p)
    nw = HR.shape[1]
    out = [header, *(" ".join(f"{x: .17e}" for x in a) for a in A3), f"{nw:12d}", f"{len(R3):12d}",
           *_deg_lines(len(R3))]
    for r, H in zip(R3, HR):
        out += ["", f"{r[0]:5d}{r[1]:5d}{r[2]:5d}"]
        out += [f"{m + 1:5d}{n + 1:5d} {H[m, n].real: .17e} {H[m, n].imag: .17e}" for n in range(nw) for m in range(nw)]
    for r in R3:
        out += ["", f"{r[0]:5d}{r[1]:5d}{r[2]:5d}"]
        for n in range(nw):
            for m in range(nw):
                x = tau3[n] if (m == n and not r.any()) else np.zeros(3)
                out.append(f"{m + 1:5d}{n + 1:5d} " + " ".join(f"{c: .17e} {0.0: .17e}" for c in x))
    atomic_write(path, "\n".join(out) + "\n")
