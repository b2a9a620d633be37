"""Scaling model for clusters (issue #7): ``python -m bench.scaling_model [results.json]``.

Prints the markdown tables of bench/SCALING.md: memory and halo volume per rank and the
predicted weak and strong scaling of a steady solve from 1 to 1024 ranks for the 4-D layout
(2x+2k: phase space (x, y, k_x, k_y), k_y folded into the dof, DMDA 3-D decomposition over
(x, y, k_x)), from a simple model calibrated on the measured figures of ``make bench``
(bench/results.json) and the assumptions in ASSUMED (stated in SCALING.md). Nothing here runs
PETSc; the model is arithmetic on measured rates.
"""
from __future__ import annotations

import json
import math
import sys
from itertools import product
from pathlib import Path

RESULTS = Path(__file__).with_name("results.json")

ASSUMED = {
    # cluster node and network
    "ranks_per_node": 64,
    "node_mem_bw_per_core_GBps": 5.0,   # STREAM per core with all cores busy (~320 GB/s / 64)
    "net_latency_s": 2e-6,              # per message (MPI over InfiniBand HDR)
    "nic_bw_GBps": 25.0,                # per node (200 Gb/s), shared by its ranks
    "allreduce_stage_s": 2e-6,          # per log2(p) stage
    # 4-D discretisation
    "nb": 2,                            # bands
    "nnz_2d": 5, "nnz_4d": 9,           # first-order upwind stencil: 1 + 2 d
    "orderings_2d": 2, "orderings_4d": 8,   # sweep orderings to cover all flow orthants: 2^(d-1)
    "halo_exchanges_per_iteration": 2,  # Krylov MatMult + the preconditioner's global residual
    "allreduces_per_iteration": 2,      # GMRES: the batched VecMDot and one VecNorm
    "iteration_growth_per_doubling": 0.25,  # pessimistic column: 1x2k measured 8 -> 10 on 1 -> 2
}


def measured(path=RESULTS) -> dict:
    """Per-unknown rates and memory of the 2-D reference problem at 2M unknowns (make bench)."""
    r = json.loads(Path(path).read_text())
    st, raw = r["steady"]["runs"], r["raw_runs"]
    one, two = st["np1_2M_default"], st["np2_2M_default"]
    U = one["unknowns"]
    b = one["breakdown_pct_of_incl_assembly"]
    base = raw["steady_np1_2M_default"]["memory_estimate_base_MB"] * 1e6
    mm2 = r["matmult"]["2rank"]["in_steady_solve_kernels"]
    return {
        "U": U, "its": one["iterations"], "its_2rank": two["iterations"],
        "T1": one["incl_assembly_s"], "T2": two["incl_assembly_s"],
        "T1_1M": st["np1_1M_default"]["incl_assembly_s"],
        "T2_2Mweak": st["np2_2Mweak_default"]["incl_assembly_s"],
        "U_2Mweak": st["np2_2Mweak_default"]["unknowns"], "U_1M": st["np1_1M_default"]["unknowns"],
        # seconds per unknown (per rank) of one Krylov iteration / of assembly + PC set-up
        "t_it_1": one["ksp_iterations_s"] / one["iterations"] / U,
        "t_set_1": (one["incl_assembly_s"] - one["ksp_iterations_s"]) / U,
        "t_it_2": two["ksp_iterations_s"] / two["iterations"] / (U / 2),
        "t_set_2": (two["incl_assembly_s"] - two["ksp_iterations_s"]) / (U / 2),
        "sweep_fraction": b["MatSOR_total"] / (b["pc_apply"] + b["krylov_rest"]),
        # achieved bandwidth per core in the 2-rank solve (MatMult and sweeps)
        "bw_core_GBps": 0.5 * 0.5 * (mm2["MatMult_GBps"] + mm2["MatSOR_GBps"]),
        "B_fields": (max(one["rss_MB_per_rank_before_solve"]) * 1e6 - base) / U,
        "B_solve": (max(one["peak_rss_MB_per_rank"]) * 1e6 - base) / U,
        "B_build": (max(one["peak_rss_MB_per_rank_build"]) * 1e6 - base) / U,
        "base_B": base,
        "wall_1x2k": [st["np1_1x2k2M_default"]["iterations"],
                      st["np2_1x2k2M_default"]["iterations"]],
    }


def decompose(p, N):
    """(p_x, p_y, p_k) with product p minimising the halo cells of a rank (ties: PETSc-like)."""
    best = None
    for px, py in product(range(1, p + 1), repeat=2):
        if p % (px * py):
            continue
        pk = p // (px * py)
        if px > N[0] or py > N[1] or pk > N[2]:
            continue
        n = [math.ceil(N[i] / q) for i, q in enumerate((px, py, pk))]
        halo = sum(2 * (n[0] * n[1] * n[2] // n[i]) for i, q in enumerate((px, py, pk)) if q > 1)
        if best is None or halo < best[0]:
            best = (halo, (px, py, pk), n)
    return best


def model_4d(N, p, m, a=ASSUMED, growth=0.0):
    """Predicted steady solve of the 2x+2k problem with N = (N_x, N_y, N_kx, N_ky) cells on p
    ranks: time, its parts, memory and halo per rank."""
    nb = a["nb"]
    dof = nb * N[3]
    U = dof * N[0] * N[1] * N[2]
    halo_cells, grid, n = decompose(p, N[:3])
    Ur = dof * n[0] * n[1] * n[2]
    # compute rates: the measured 2-rank per-unknown times (both cores busy), scaled to a packed
    # node by the per-core bandwidth, to the 9-point stencil by the bytes per row (12 B per
    # nonzero + 4 B row pointer + 3 x 8 B vector traffic), and to 8 sweep orderings
    slow = max(1.0, m["bw_core_GBps"] / a["node_mem_bw_per_core_GBps"])
    rows = (12 * a["nnz_4d"] + 28) / (12 * a["nnz_2d"] + 28)
    f = m["sweep_fraction"]
    sweeps = (1 - f) + f * a["orderings_4d"] / a["orderings_2d"]
    t_it = m["t_it_2"] * slow * rows * sweeps
    t_set = m["t_set_2"] * slow * rows * (1 + (a["orderings_4d"] - a["orderings_2d"])
                                          / (2 * a["orderings_2d"]))
    its = m["its"] * (1 + growth * math.log2(p))
    halo_B = halo_cells * dof * 8
    msgs = 2 * sum(q > 1 for q in grid)
    nodes = math.ceil(p / a["ranks_per_node"])
    bw = (a["node_mem_bw_per_core_GBps"] if nodes == 1
          else a["nic_bw_GBps"] / min(p, a["ranks_per_node"])) * 1e9
    t_halo = msgs * a["net_latency_s"] + halo_B / bw if p > 1 else 0.0
    t_red = a["allreduce_stage_s"] * math.ceil(math.log2(p)) if p > 1 else 0.0
    per_it = (t_it * Ur + a["halo_exchanges_per_iteration"] * t_halo
              + a["allreduces_per_iteration"] * t_red)
    T = its * per_it + t_set * Ur
    # memory per unknown: geometry at build (kinetic.run's calibrated estimate for 4 coordinates),
    # fields (x2 for four face directions), solver (9-point AIJ 112 B/row per ordering copy,
    # SOR diagonal caches 24 B/row per ordering, 16 vectors of 8 B)
    from kinetic.run import GEOMETRY_FACTOR, GEOMETRY_FACTOR_2BAND, _geometry_bytes

    factor = GEOMETRY_FACTOR_2BAND if nb == 2 else GEOMETRY_FACTOR
    b_build = factor * _geometry_bytes(nb, 4) / nb
    b_fields = 2 * m["B_fields"]
    b_solver = a["orderings_4d"] * (112 + 24) + 16 * 8
    ghosts = halo_cells * dof * 8 * 4  # ghosted copies of f, f_ref and fluxes
    return {"p": p, "grid": grid, "local": n, "U_rank": Ur, "its": its, "T": T,
            "compute": its * t_it * Ur + t_set * Ur,
            "comm": its * (per_it - t_it * Ur), "halo_MB": halo_B / 1e6,
            "mem_solve_GB": (m["base_B"] + Ur * (b_fields + b_solver) + ghosts) / 1e9,
            "mem_build_GB": (m["base_B"] + Ur * b_build + ghosts) / 1e9,
            "U": U, "halo_fraction": halo_cells / (n[0] * n[1] * n[2])}


def table(rows, scaling):
    out = ["| ranks | grid (x,y,kx) | unknowns/rank | halo/rank/exchange | halo/owned | "
           "memory/rank solve (build) | its | time | comm share | efficiency |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    t1, u1 = rows[0]["T"], rows[0]["U_rank"]
    for r in rows:  # weak: unknowns per rank per second over 1 rank's (N rounds per axis)
        eff = (t1 / (r["p"] * r["T"]) if scaling == "strong"
               else (r["U_rank"] / r["T"]) / (u1 / t1))
        out.append(f"| {r['p']} | {'x'.join(map(str, r['grid']))} | {r['U_rank'] / 1e6:.3g} M | "
                   f"{r['halo_MB']:.3g} MB | {100 * r['halo_fraction']:.0f}% | "
                   f"{r['mem_solve_GB']:.2f} ({r['mem_build_GB']:.2f}) GB | {r['its']:.1f} | "
                   f"{r['T']:.3g} s | {100 * r['comm'] / r['T']:.1f}% | {100 * eff:.0f}% |")
    return "\n".join(out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    m = measured(argv[0] if argv else RESULTS)
    ps = [2 ** i for i in range(11)]
    print("## measured inputs (bench/results.json, 0x2k QWZ at 2 097 152 unknowns)\n")
    print(f"- iterations {m['its']} (1 rank), {m['its_2rank']} (2 ranks); 1x2k variant "
          f"{m['wall_1x2k'][0]} -> {m['wall_1x2k'][1]}")
    print(f"- per unknown and iteration: {1e9 * m['t_it_1']:.0f} ns (1 rank), "
          f"{1e9 * m['t_it_2']:.0f} ns per rank (2 ranks); assembly + set-up per unknown "
          f"{1e9 * m['t_set_1']:.0f} / {1e9 * m['t_set_2']:.0f} ns")
    print(f"- sweeps (MatSOR) share of the iterations {100 * m['sweep_fraction']:.0f}%; achieved "
          f"bandwidth per core in the 2-rank solve {m['bw_core_GBps']:.1f} GB/s")
    print(f"- memory per unknown: resident fields {m['B_fields']:.0f} B, solve peak "
          f"{m['B_solve']:.0f} B, build peak {m['B_build']:.0f} B (over the import RSS "
          f"{m['base_B'] / 1e6:.0f} MB)")
    T1, T2 = m["T1"], m["T2"]
    t_halo2 = 2 * (2 * 1024 * 2 * 8) / (ASSUMED["node_mem_bw_per_core_GBps"] * 1e9)
    print("\n## the 2-D reference problem, model vs measured (1 -> 2 ranks, this machine)\n")
    print("| | 1 rank | 2 ranks | efficiency |\n|---|---:|---:|---:|")
    print(f"| measured, strong (2.1 M unknowns) | {T1:.3f} s | {T2:.3f} s | "
          f"{100 * T1 / (2 * T2):.0f}% |")
    model2 = T1 / 2 + m["its"] * t_halo2 + 2 * m["its"] * ASSUMED["allreduce_stage_s"]
    print(f"| model, compute ∝ U/p at the 1-rank rate + halo + allreduce | {T1:.3f} s | "
          f"{model2:.3f} s | {100 * T1 / (2 * model2):.0f}% |")
    print(f"| measured, weak (1.0 M -> 2.0 M unknowns) | {m['T1_1M']:.3f} s | "
          f"{m['T2_2Mweak']:.3f} s | "
          f"{100 * m['U_2Mweak'] / m['U_1M'] / 2 * m['T1_1M'] / m['T2_2Mweak']:.0f}% |")
    N_strong = (64, 64, 64, 64)
    for growth, label in ((0.0, "iterations flat (measured 0x2k: 3 on 1 and 2 ranks)"),
                          (ASSUMED["iteration_growth_per_doubling"],
                           "iterations +25% per doubling of p (1x2k: 8 -> 10)")):
        print(f"\n## strong scaling, 2x+2k, N = 64 per axis, nb = 2 "
              f"({2 * 64 ** 4 / 1e6:.1f} M unknowns); {label}\n")
        print(table([model_4d(N_strong, p, m, growth=growth) for p in ps], "strong"))
        rows = []
        for p in ps:
            n = round((2 ** 21 * p / 2) ** 0.25)
            rows.append(model_4d((n, n, n, n), p, m, growth=growth))
        print(f"\n## weak scaling, 2x+2k, ~2.1 M unknowns per rank (N per axis "
              f"{round((2 ** 20) ** 0.25)} -> {round((2 ** 20 * 1024) ** 0.25)}, "
              f"{rows[-1]['U'] / 1e9:.2f} G unknowns on 1024 ranks); {label}\n")
        print(table(rows, "weak"))


if __name__ == "__main__":
    main()
