"""`make bench`: measured figures, written to bench/results.json and printed as a table.

Run from the repository root: ``python -m bench``. Each figure is measured in this run;
nothing is quoted from elsewhere.
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("results.json")


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def stream_triad(n=20_000_000):
    """Memory bandwidth of a = b + s*c (numpy, one core), GB/s counting 3 arrays moved."""
    b = np.random.rand(n)
    c = np.random.rand(n)
    a = np.empty_like(b)

    def triad():
        np.multiply(c, 1.5, out=a)
        np.add(a, b, out=a)  # numpy needs two passes: 5 arrays of traffic

    t = best_of(triad, 5)
    return 5 * 8 * n / t / 1e9


def geometry_throughput(npts=1_000_000):
    """(points x bands)/s of band_geometry for the 2-band Haldane model."""
    from kinetic.geometry import band_geometry
    from kinetic.models.catalogue import get_model

    model = get_model("haldane", t1=1.0, t2=0.1, phi=np.pi / 2, M=0.2)
    rng = np.random.default_rng(0)
    k = rng.uniform(-4, 4, size=(npts, 2))

    def run():
        band_geometry(model.hamiltonian(k), model.dh_dk(k), None, n_x=0)

    t = best_of(run, 2)
    return npts * model.nb / t, t


def table_time(n=600, nmu=61):
    """Wall time of a 61-mu AHC + Drude table of the Haldane model at n x n k-points."""
    from kinetic.config import ModelSpec, RunConfig
    from kinetic.models.catalogue import get_model
    from kinetic.table import compute_table

    model = get_model("haldane", t1=1.0, t2=0.1, phi=np.pi / 2, M=0.2)
    cfg = RunConfig(path=Path("bench"), sha256="", model=ModelSpec(name="haldane"), k=(n, n),
                    kmax=None, temperatures_K=(300.0,), taus_fs=(10.0,),
                    mus_eV=tuple(np.linspace(-3, 3, nmu)), quantities=("ahc", "drude"))
    t0 = time.perf_counter()
    rows = compute_table(cfg, model)
    return time.perf_counter() - t0, len(rows)


def main():
    res = {"machine": platform.processor() or platform.machine(), "date": time.strftime("%F %T")}
    res["stream_triad_GBps"] = stream_triad()
    thr, t = geometry_throughput()
    res["geometry_points_bands_per_s"] = thr
    res["geometry_1e6_points_s"] = t
    tt, nrows = table_time()
    res["table_61mu_600x600_ahc_drude_s"] = tt
    res["table_rows"] = nrows
    RESULTS.write_text(json.dumps(res, indent=2) + "\n")
    w = max(map(len, res))
    for key, val in res.items():
        print(f"{key:<{w}}  {val:.4g}" if isinstance(val, float) else f"{key:<{w}}  {val}")
    print(f"written: {RESULTS}")


if __name__ == "__main__":
    main()
