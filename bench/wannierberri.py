"""WannierBerri side of the issue #7 table comparison: AHC + Ohmic (Drude) of a _tb.dat model.

Run with a python that has wannierberri (an optional, separately installed package; kinetic does
not depend on it; its non-tetrahedron Fermi-level binning needs numba, from wannierberri's
``default`` extra)::

    /tmp/wbenv/bin/python bench/wannierberri.py [--nk 600] [--repeat 2] [--values]

Prints one JSON line (prefixed ``BENCH_JSON `` with ``--bench-prefix``, as bench/__main__.py
reads it). ``wall_s`` is the wall time of what a WannierBerri user runs to get the table: reading
the _tb.dat file (System_R.from_tb_dat), the Grid, the two static calculators, ``wannierberri.run``
and taking the 61 values out of the result (the smoothing is lazy in WannierBerri: ``dataSmooth``
is timed). Python start-up and the import of wannierberri are not timed (kinetic's figure does
not time them either); with ``--repeat`` the best run is reported (the later runs do not pay
numba's JIT compilation). Serial: OMP/OpenBLAS/MKL threads = 1, ``parallel=False`` (no ray).

WannierBerri settings (chosen to compute what kinetic's table computes, and no more):

* model: System_R.from_tb_dat(runs/haldane_tb.dat), Hamiltonian only. The file's position
  matrix elements are all zero (orbitals at the cell origin, so Bloch conventions I and II
  coincide) and the Berry curvature is the Hamiltonian ("internal") part alone, which is what
  kinetic computes: AA_R is not read and the calculators get ``kwargs_formula={"external_terms":
  False}`` (the external terms would add exact zeros at extra cost);
* k-mesh: Grid(NKdiv=(1, 1, 1), NKFFT=(nk, nk, 1), use_symmetry=False): one FFT block of
  nk x nk points, Γ-centred, the same points as kinetic's mesh (``--nkfft`` splits it into
  blocks: 100 x 100 blocks took the same time); no symmetrisation (use_irred_kpt=False,
  symmetrize=False), no adaptive refinement (adpt_num_iter=0);
* calculators: ``calculators.static.AHC`` (Fermi sea, −e²/ħ ∫ Ω f) and
  ``calculators.static.Ohmic_FermiSurf`` (−e²τ/ħ² ∫ v v f′ for τ = 1 fs), tetra=False;
* temperature: WannierBerri's static calculators integrate at T = 0 on an equally spaced
  Fermi-level grid (each state binned to the first grid level above its energy; the
  Fermi-surface term a central difference of that cumulative sum) and apply T afterwards as a
  convolution with −f′ (FermiDiracSmoother). To reproduce kinetic's finite-T table the grid is
  the 61 μ refined ``--refine`` times (default 50: 2-meV step) and padded by the smoother's
  support each side; the 61 μ are exact grid points. The smoother's support is ±``--maxde``
  k_BT, 30 here: WannierBerri's default 8 drops the −f′ tails beyond 8 k_BT (weight 7e-4) and
  then differs from the exact Fermi function by up to 1e-4 e²/h in σ_xy and by 1-100% in the
  exponentially small Drude values deep in gaps. ``--refine 1 --temperature 0`` is the bare
  61-level T = 0 run (WannierBerri's cheapest table; not the finite-T table).

Units: WannierBerri returns 3D conductivities (S/m) per cell volume; the _tb.dat cell has
c = 1 Å along z, so the sheet conductance is value × c (S). AHC: σ_xy = ε_xyz O_z = O_z. Ohmic:
per τ = 1 fs, multiplied by ``--tau`` (fs). kinetic: drude σ = (e²τ/ħ²) ∫ (−f′) v v, ahc σ_xy =
−(e²/ħ) ∫ f Ω_xy, in S for a 2D model, spin degeneracy 1 — the same quantities, same signs.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# serial: one BLAS/OpenMP thread (set before numpy is imported)
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import numpy as np  # noqa: E402

# run as a script, this file's directory is sys.path[0] and `import wannierberri` would import
# this file itself: drop it so that the installed package is found
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

ROOT = Path(__file__).resolve().parent.parent
ANGSTROM = 1e-10


@contextlib.contextmanager
def quiet(enabled=True):
    """Silence everything written to fds 1 and 2 (WannierBerri prints with cprint and logs)."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def efermi_grid(mus, refine, kT, maxde):
    """Equally spaced Fermi levels containing every μ of ``mus`` (equally spaced) exactly,
    ``refine`` points per μ step, extended by the smoother's support (maxde k_BT) + 1 step
    each side. Returns (grid, indices of the μ in it)."""
    mus = np.asarray(mus, float)
    dmu = mus[1] - mus[0] if len(mus) > 1 else 0.1
    dE = dmu / refine
    pad = int(np.ceil(maxde * kT / dE)) + 1 if kT > 0 else 0
    n = (len(mus) - 1) * refine + 1 + 2 * pad
    grid = mus[0] + (np.arange(n) - pad) * dE
    idx = pad + refine * np.arange(len(mus))
    grid[idx] = mus  # the table's μ exactly (no rounding drift)
    return grid, idx


def compute(tb, nk, nkfft, mus, T_K, tau_fs, refine, maxde, log_dir):
    import wannierberri as wb
    from wannierberri import calculators
    from wannierberri.smoother import FermiDiracSmoother

    wb.configure_logging(logfile=os.path.join(log_dir, "wannierberri.log"),
                         outfile=os.path.join(log_dir, "wannierberri.out"), console_level=None)
    t0 = time.perf_counter()
    kT = T_K * 8.617333262e-5  # eV (the smoother converts T itself, with the same constant)
    Ef, idx = efermi_grid(mus, refine, kT, maxde)
    smoother = FermiDiracSmoother(Ef, T_K, maxdE=maxde) if T_K > 0 else None
    system = wb.System_R.from_tb_dat(tb_file=str(tb), berry=False)
    div = nk // nkfft
    grid = wb.Grid(system, NKdiv=(div, div, 1), NKFFT=(nkfft, nkfft, 1), use_symmetry=False)
    common = dict(Efermi=Ef, tetra=False, smoother=smoother, print_comment=False,
                  kwargs_formula={"external_terms": False})
    calcs = {"ahc": calculators.static.AHC(**common),
             "ohmic": calculators.static.Ohmic_FermiSurf(**common)}
    result = wb.run(system, grid=grid, calculators=calcs, adpt_num_iter=0, use_irred_kpt=False,
                    symmetrize=False, parallel=False, fout_name=os.path.join(log_dir, "wb"),
                    print_progress_step_time=1e9)
    ahc = result.results["ahc"].dataSmooth[idx]  # (nmu, 3): O_x, O_y, O_z in S/m
    ohm = result.results["ohmic"].dataSmooth[idx]  # (nmu, 3, 3) in S/m per fs
    wall = time.perf_counter() - t0
    c = abs(system.real_lattice[2, 2]) * ANGSTROM  # cell height (m): 3D S/m -> sheet S
    return wall, {"ahc_xy_S": (ahc[:, 2] * c).tolist(),
                  "drude_xx_S": (ohm[:, 0, 0] * c * tau_fs).tolist(),
                  "drude_yy_S": (ohm[:, 1, 1] * c * tau_fs).tolist(),
                  "drude_xy_S": (ohm[:, 0, 1] * c * tau_fs).tolist(),
                  "n_efermi": len(Ef), "efermi_step_eV": float(Ef[1] - Ef[0]),
                  "nkfft": [int(v) for v in grid.FFT], "nkdiv": [int(v) for v in grid.div],
                  "version": wb.__version__}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tb", default=str(ROOT / "runs" / "haldane_tb.dat"))
    ap.add_argument("--nk", type=int, default=600, help="k-points per reciprocal vector")
    ap.add_argument("--nkfft", type=int, default=0,
                    help="FFT block per direction (divides --nk; default --nk, i.e. NKdiv = 1)")
    ap.add_argument("--mu", type=float, nargs=3, default=(-3.0, 3.0, 61),
                    metavar=("START", "STOP", "NUM"), help="μ grid (eV), inclusive")
    ap.add_argument("--temperature", type=float, default=300.0, help="K")
    ap.add_argument("--tau", type=float, default=10.0, help="fs")
    ap.add_argument("--refine", type=int, default=50,
                    help="Fermi-level grid points per μ step (finite-T smoothing resolution)")
    ap.add_argument("--maxde", type=float, default=30.0,
                    help="FermiDiracSmoother support ±maxde k_BT (WannierBerri's default: 8)")
    ap.add_argument("--repeat", type=int, default=1, help="report the best of this many runs")
    ap.add_argument("--values", action="store_true", help="include the 61 values per quantity")
    ap.add_argument("--bench-prefix", action="store_true", help="prefix the line BENCH_JSON")
    ap.add_argument("--verbose", action="store_true", help="do not silence WannierBerri")
    a = ap.parse_args(argv)
    a.tb = str(Path(a.tb).resolve())  # the runs chdir to a scratch directory
    a.nkfft = a.nkfft or a.nk
    if a.nk % a.nkfft:
        ap.error(f"--nkfft {a.nkfft} does not divide --nk {a.nk}")
    mus = np.linspace(a.mu[0], a.mu[1], int(a.mu[2]))
    with quiet(not a.verbose):
        import wannierberri  # noqa: F401  (its import prints; not timed)
    times = []
    with tempfile.TemporaryDirectory(prefix="kinetic-wb-") as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)  # WannierBerri writes result files and a _tmp_wb dir into the cwd
        try:
            for _ in range(a.repeat):
                with quiet(not a.verbose):
                    wall, vals = compute(a.tb, a.nk, a.nkfft, mus, a.temperature, a.tau,
                                         a.refine, a.maxde, tmp)
                times.append(wall)
        finally:
            os.chdir(cwd)
    out = {"wannierberri_version": vals.pop("version"), "wall_s": min(times),
           "wall_s_runs": times, "grid": [a.nk, a.nk, 1], "n_mu": len(mus),
           "mu_eV": [float(mus[0]), float(mus[-1])], "temperature_K": a.temperature,
           "tau_fs": a.tau, "smoother_maxdE_kT": a.maxde, "n_efermi": vals.pop("n_efermi"),
           "efermi_step_eV": vals.pop("efermi_step_eV"), "nkfft": vals.pop("nkfft"),
           "nkdiv": vals.pop("nkdiv"), "tb": str(a.tb), "omp_num_threads": 1,
           "settings": "System_R.from_tb_dat (Ham only); Grid NKdiv x NKFFT, no symmetry; "
                       "AHC + Ohmic_FermiSurf, tetra=False, external_terms=False; "
                       "FermiDiracSmoother(maxdE) on the Fermi-level grid; run(parallel=False, "
                       "use_irred_kpt=False, symmetrize=False, adpt_num_iter=0)"}
    if a.values:
        out["mu_list_eV"] = mus.tolist()
        out.update(vals)
    print(("BENCH_JSON " if a.bench_prefix else "") + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
