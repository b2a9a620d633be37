#!/usr/bin/env bash
# make setup: a project-local venv with an MPI-enabled PETSc/petsc4py/mpi4py toolchain.
# Idempotent. PETSc wheels are built once into a per-user cache outside the checkout and
# reused by every later setup (a fresh clone, CI). See README "Installation".
#
# Environment (all optional):
#   PYTHON                   interpreter for the venv (default python3)
#   VENV                     venv directory (default .venv)
#   PETSC_DIR / PETSC_ARCH   use this PETSc (cluster module) instead of building one
#   MPICC                    use this MPI compiler wrapper (your own MPI) instead of the mpich wheel
#   PETSC_CONFIGURE_OPTIONS  PETSc configure options for the sdist build
#   KINETIC_CACHE            wheel cache (default ${XDG_CACHE_HOME:-~/.cache}/kinetic)
set -euo pipefail

PETSC_VERSION=3.26.1
MPICH_VERSION=5.0.2
MPI4PY_VERSION=4.1.2
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
CACHE=${KINETIC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kinetic}
DEFAULT_OPTS="--with-fc=0 --with-cxx=0 --with-x=0 --with-blaslapack-lib=-lopenblas"

t0=$(date +%s)
for tool in cc make; do
    command -v "$tool" >/dev/null || { printf 'setup: ERROR: %s not found: install a C compiler and make (Debian/Ubuntu: apt-get install build-essential)\n' "$tool" >&2; exit 1; }
done
say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }
elapsed() { echo $(( $(date +%s) - t0 ))s; }

# --- 1. venv -----------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    say "creating venv $VENV with $($PYTHON --version 2>&1)"
    "$PYTHON" -m venv "$VENV" || die "could not create a venv with $PYTHON (install python3-venv)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
else
    say "venv $VENV exists"
fi
VENV=$(cd "$VENV" && pwd)
PIP=("$VENV/bin/python" -m pip install -q)
pyver=$("$VENV/bin/python" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')

# --- 1b. a user's PETSc (cluster module) must have MPI ------------------------------------
if [ -n "${PETSC_DIR:-}" ]; then
    [ -f "$PETSC_DIR/include/petscversion.h" ] || die "PETSC_DIR=$PETSC_DIR has no include/petscversion.h: is it a PETSc installation?"
    conf="$PETSC_DIR/${PETSC_ARCH:-}/include/petscconf.h"
    [ -f "$conf" ] || conf="$PETSC_DIR/include/petscconf.h"
    if grep -q 'define PETSC_HAVE_MPIUNI' "$conf" 2>/dev/null; then
        die "PETSc at PETSC_DIR=$PETSC_DIR was built WITHOUT MPI (MPIUNI): kinetic needs MPI. Fix: load a PETSc module built with MPI, or unset PETSC_DIR PETSC_ARCH and run make setup again to build PETSc with MPI."
    fi
    say "using PETSC_DIR=$PETSC_DIR PETSC_ARCH=${PETSC_ARCH:-}"
fi

# --- 2. MPI --------------------------------------------------------------------------------
if [ -n "${PETSC_DIR:-}" ] || [ -n "${MPICC:-}" ]; then
    mpicc=${MPICC:-$(command -v mpicc || true)}
    [ -n "$mpicc" ] || die "PETSC_DIR is set but no mpicc on PATH: load your cluster's MPI module (the one PETSc was built with) or set MPICC"
    mpi_id="user-$(printf '%s' "$("$mpicc" -show 2>/dev/null || echo "$mpicc")" | sha256sum | cut -c1-8)"
    if ! "$VENV/bin/python" -c 'import mpi4py' 2>/dev/null; then
        say "building mpi4py against your MPI ($mpicc)"
        MPICC="$mpicc" "${PIP[@]}" --no-binary mpi4py "mpi4py==$MPI4PY_VERSION"
    fi
else
    mpi_id="mpich-$MPICH_VERSION"
    if ! "$VENV/bin/python" -c 'import mpi4py, importlib.metadata as m; m.version("mpich")' 2>/dev/null; then
        say "installing MPI: mpich $MPICH_VERSION and mpi4py $MPI4PY_VERSION wheels"
        "${PIP[@]}" "mpich==$MPICH_VERSION" "mpi4py==$MPI4PY_VERSION"
    fi
    # PETSc is linked against this build-side copy of the same mpich wheel, kept in the cache
    # so the libraries' run paths stay valid whichever checkout's venv installs them.
    mpivenv="$CACHE/mpi/$mpi_id-$pyver"
    if [ ! -x "$mpivenv/bin/mpicc" ]; then
        rm -rf "$mpivenv" && "$PYTHON" -m venv "$mpivenv"
        "$mpivenv/bin/python" -m pip install -q "mpich==$MPICH_VERSION"
    fi
    mpicc="$mpivenv/bin/mpicc"
fi
say "MPI: $mpi_id"

# --- 3. PETSc + petsc4py -------------------------------------------------------------------
if [ -n "${PETSC_DIR:-}" ]; then
    ver=$(awk '/define PETSC_VERSION_(MAJOR|MINOR) /{printf "%s.", $3}' "$PETSC_DIR/include/petscversion.h")
    ver=${ver%.}
    if ! "$VENV/bin/python" -c 'import petsc4py' 2>/dev/null; then
        say "building petsc4py $ver.* against PETSC_DIR=$PETSC_DIR PETSC_ARCH=${PETSC_ARCH:-}"
        "${PIP[@]}" --no-cache-dir "petsc4py==$ver.*"
    fi
else
    # ldconfig lives in /sbin for non-root users; read its listing whole (no SIGPIPE under pipefail)
    ldc=$(command -v ldconfig || echo /sbin/ldconfig)
    libs=$("$ldc" -p 2>/dev/null || true)
    if ! grep -q 'libopenblas\.so ' <<<"$libs" && [ -z "${PETSC_CONFIGURE_OPTIONS:-}" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            say "BLAS/LAPACK: installing libopenblas-dev with apt-get"
            (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev) >/dev/null \
                || die "apt-get install libopenblas-dev failed"
        else
            die "no OpenBLAS found. Install it (Debian/Ubuntu: sudo apt-get install libopenblas-dev; Fedora: sudo dnf install openblas-devel) or set PETSC_CONFIGURE_OPTIONS to point PETSc at your BLAS/LAPACK, e.g. --with-blaslapack-dir=..."
        fi
    fi
    opts=${PETSC_CONFIGURE_OPTIONS:-$DEFAULT_OPTS}
    key="petsc-$PETSC_VERSION-$pyver-$mpi_id-$(printf '%s' "$opts" | sha256sum | cut -c1-8)"
    wheels="$CACHE/wheels/$key"
    if ! ls "$wheels"/petsc4py-*.whl >/dev/null 2>&1; then
        say "building PETSc $PETSC_VERSION + petsc4py into $wheels (10-20 min, once per machine)"
        say "  PETSC_CONFIGURE_OPTIONS=$opts"
        mkdir -p "$CACHE/wheels"
        tmp=$(mktemp -d "$CACHE/wheels/.build-XXXXXX")
        log="$tmp/build.log"
        # PETSc finds MPI only through MPICC / mpicc on PATH; --no-cache-dir so pip never reuses
        # a wheel built with other options; petsc4py's isolated build env takes the fresh petsc
        # wheel from --find-links instead of building PETSc a second time.
        if ! ( export PATH="$(dirname "$mpicc"):$PATH" MPICC="$mpicc" PETSC_CONFIGURE_OPTIONS="$opts"
               unset PETSC_DIR PETSC_ARCH
               "$VENV/bin/python" -m pip wheel --no-cache-dir --no-deps -w "$tmp" "petsc==$PETSC_VERSION" &&
               "$VENV/bin/python" -m pip wheel --no-cache-dir --no-deps -w "$tmp" --find-links "$tmp" \
                   --only-binary petsc "petsc4py==$PETSC_VERSION" ) >"$log" 2>&1; then
            tail -n 40 "$log" >&2
            die "PETSc build failed; full log: $log"
        fi
        # never cache a PETSc that came out without MPI
        if "$VENV/bin/python" -c 'import sys, zipfile; sys.exit(b"define PETSC_HAVE_MPIUNI" not in
zipfile.ZipFile(sys.argv[1]).read("petsc/include/petscconf.h"))' "$tmp"/petsc-"$PETSC_VERSION"-*.whl; then
            die "the PETSc build in $tmp came out WITHOUT MPI (MPICC=$mpicc); not cached"
        fi
        printf 'built %s\noptions: %s\nmpicc: %s\n' "$(date -u +%FT%TZ)" "$opts" "$mpicc" >"$tmp/BUILD_INFO"
        rm -rf "$wheels" && mv "$tmp" "$wheels"
        say "PETSc wheels built in $(elapsed)"
    else
        say "PETSc wheels cached in $wheels"
    fi
    if ! "$VENV/bin/python" -c 'import petsc4py' 2>/dev/null; then
        "${PIP[@]}" numpy
        "${PIP[@]}" --no-index --no-deps "$wheels/petsc-$PETSC_VERSION"-*.whl "$wheels/petsc4py-$PETSC_VERSION"-*.whl
    fi
fi

# --- 4. kinetic itself -------------------------------------------------------------------
say "installing kinetic (editable) with extras test, plot"
log=$(mktemp)
"${PIP[@]}" -e ".[test,plot]" >"$log" 2>&1 || { cat "$log" >&2; die "pip install -e . failed"; }
rm -f "$log"

# --- 5. self-check: PETSc has MPI and mpirun -n 2 gives 2 ranks ----------------------------
"$VENV/bin/python" -m kinetic.toolchain --check || die "toolchain self-check failed (see above)"
say "done in $(elapsed); activate with: source $VENV/bin/activate"
