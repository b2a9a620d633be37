# kinetic — the project's commands. `make setup` is idempotent; every target depends on it.
SHELL   := /bin/bash
VENV    ?= .venv
PY      := $(VENV)/bin/python
KINETIC := $(VENV)/bin/kinetic
NP      ?= 2
MPIEXEC ?= $(shell test -x $(VENV)/bin/mpiexec && echo $(VENV)/bin/mpiexec || echo mpiexec)
STAMP   := $(VENV)/.kinetic-setup
OUT     ?= out
# one BLAS thread per MPI rank (kinetic info warns otherwise); override from the environment
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
PYTEST  := $(PY) -m pytest -p no:cacheprovider

.PHONY: setup test test-serial test-mpi test-slow demo bench info clean distclean tables sweep-haldane sweep-esaki-tsu runs

$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh
	@touch $@

setup:
	VENV=$(VENV) bash scripts/setup.sh
	@touch $(STAMP)

info: $(STAMP)
	$(MPIEXEC) -n $(NP) $(KINETIC) info

## make test: serial suite, then the MPI suite on 2 ranks (fails if either fails)
test: test-serial test-mpi

test-serial: $(STAMP)
	$(PYTEST) -q -m "not mpi and not slow"

test-mpi: $(STAMP)
	$(MPIEXEC) -n 2 scripts/rank0.sh $(PYTEST) -q --with-mpi -m "mpi and not slow" \
	  || { echo "MPI suite failed; rank 1 report: .mpi-rank1.log"; exit 1; }

## long convergence studies, kept out of `make test` but never out of the record
test-slow: $(STAMP)
	$(PYTEST) -q -m "slow and not mpi"

## the main job on its embedded defaults: a response table + plot, and a texture run on 2 ranks
demo: $(STAMP)
	@mkdir -p $(OUT)
	$(MPIEXEC) -n $(NP) $(KINETIC) info
	$(KINETIC) table runs/haldane_table.toml --out $(OUT)/haldane_table.csv
	$(KINETIC) plot $(OUT)/haldane_table.csv --quantity ahc --component xy --vs mu
	$(MPIEXEC) -n 2 $(KINETIC) run runs/ring_goldstone_wilczek.toml --out $(OUT)/ring_goldstone_wilczek
	$(MPIEXEC) -n 2 $(KINETIC) run runs/esaki_tsu_bloch.toml --out $(OUT)/esaki_tsu_bloch
	$(KINETIC) plot $(OUT)/esaki_tsu_bloch
	$(KINETIC) plot $(OUT)/ring_goldstone_wilczek
	@echo "demo outputs:"; ls -1 $(OUT) $(OUT)/*/

## μ × T sweep of the Haldane table on $(NP) ranks (SWEEP_FLAGS=--resume continues a killed one)
sweep-haldane: $(STAMP)
	@mkdir -p $(OUT)
	$(MPIEXEC) -n $(NP) $(KINETIC) sweep runs/haldane_table.toml --param mu=-3:3:121 \
	  --param T=100,300,600,1000 --out $(OUT)/haldane_sweep.csv $(SWEEP_FLAGS)

## Esaki–Tsu curve j(E) of runs/esaki_tsu_steady.toml: 41 steady states (5e7–5e10 V/m, log-spaced) on $(NP) ranks
ESAKI_TSU_E = $(shell python3 -c "print(','.join(f'{5e7*10**(i/13.333333):.4g}' for i in range(41)))")
sweep-esaki-tsu: $(STAMP)
	@mkdir -p $(OUT)
	$(MPIEXEC) -n $(NP) $(KINETIC) sweep runs/esaki_tsu_steady.toml --param E=$(ESAKI_TSU_E) \
	  --out $(OUT)/esaki_tsu_sweep.csv $(SWEEP_FLAGS)
	$(KINETIC) plot $(OUT)/esaki_tsu_sweep.csv --quantity current --vs E

## every table and sweep under runs/
tables: sweep-haldane sweep-esaki-tsu
	$(KINETIC) table runs/haldane_table.toml --out $(OUT)/haldane_table.csv
	$(KINETIC) table runs/wannier90_haldane_table.toml --out $(OUT)/wannier90_haldane_table.csv
	$(KINETIC) table runs/helical_hall_table.toml --out $(OUT)/helical_hall_table.csv
	$(KINETIC) plot $(OUT)/helical_hall_table.csv --quantity texture_hall \
	  --component first_order,shift,metric,semiclassical,exact --out $(OUT)/helical_hall_slope.png

## every kinetic run under runs/ (NP ranks)
runs: $(STAMP)
	@for r in ring_goldstone_wilczek esaki_tsu_bloch magnetotransport metric_polarization_wall thouless_pump rice_mele_ring_density textured_chern_hall; do \
	  $(MPIEXEC) -n $(NP) $(KINETIC) run runs/$$r.toml --out $(OUT)/$$r --quiet || exit 1; \
	  $(KINETIC) plot $(OUT)/$$r || exit 1; done

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(OUT) .pytest_cache .mpi-rank*.log bench/results.json
	find . -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
