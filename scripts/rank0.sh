#!/usr/bin/env bash
# mpiexec -n N scripts/rank0.sh CMD...: rank 0 prints to the terminal, rank r>0 to .mpi-rank<r>.log
rank=${PMI_RANK:-${OMPI_COMM_WORLD_RANK:-${SLURM_PROCID:-0}}}
if [ "$rank" = 0 ]; then exec "$@"; fi
exec "$@" >".mpi-rank$rank.log" 2>&1
