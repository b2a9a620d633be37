"""The one place where internal units meet SI.

Internal units (physics.md §1.4 with a = 1 Å, t = 1 eV): energy eV, length Å, wave vector 1/Å,
and ħ = e = k_B = 1. Derived internal units:

========================  ==========================  =========================
quantity                  internal unit               SI value
========================  ==========================  =========================
time                      ħ/eV                        0.658212 fs
temperature (k_B T)       eV                          11604.5 K
electric field            eV/(e Å) = V/Å              1e10 V/m
magnetic field            ħ/(e Å²)                    6.58212e4 T
conductivity, d dims      e²/ħ · Å^(2-d)              2.434135e-4 S · Å^(2-d)
2nd-order χ, d dims       e³/(ħ eV) · Å^(3-d)         2.434135e-4 S/V · Å^(3-d)
========================  ==========================  =========================

Run files and tables use eV, Å, 1/Å, fs, K, V/m, T and SI conductivities; every conversion
goes through this module.
"""
from __future__ import annotations

import math

from scipy import constants as C

HBAR = C.hbar  # J s
E_CHARGE = C.e  # C
K_B = C.k  # J/K
ANGSTROM = 1e-10  # m

TIME_FS = HBAR / E_CHARGE * 1e15  # one internal time unit in fs (0.658212)
KELVIN_PER_EV = E_CHARGE / K_B  # 11604.5 K per eV
FIELD_V_PER_M = 1.0 / ANGSTROM  # one internal field unit (V/Å) in V/m
TESLA = HBAR / (E_CHARGE * ANGSTROM**2)  # one internal magnetic-field unit in T
E2_HBAR = E_CHARGE**2 / HBAR  # S
E2_H = E_CHARGE**2 / C.h  # S


def fs_to_internal(t_fs):
    """Time in fs -> internal units of ħ/eV."""
    return t_fs / TIME_FS


def internal_to_fs(t):
    return t * TIME_FS


def kelvin_to_ev(T_K):
    """Temperature in K -> k_B T in eV."""
    return T_K / KELVIN_PER_EV


def ev_to_kelvin(kT):
    return kT * KELVIN_PER_EV


def field_to_internal(E_V_per_m):
    """Electric field in V/m -> internal V/Å."""
    return E_V_per_m / FIELD_V_PER_M


def tesla_to_internal(B_T):
    """Magnetic field in T -> internal ħ/(e Å²)."""
    return B_T / TESLA


def conductivity_si(dim: int) -> tuple[float, str]:
    """(factor, unit): internal linear conductivity e²/ħ·Å^(2-d) -> SI in d dimensions."""
    unit = {1: "S*m", 2: "S", 3: "S/m"}[dim]
    return E2_HBAR * ANGSTROM ** (2 - dim), unit


def chi_si(dim: int) -> tuple[float, str]:
    """(factor, unit): internal 2nd-order conductivity (j = χ E E) -> SI in d dimensions."""
    unit = {1: "A*m^2/V^2", 2: "A*m/V^2", 3: "A/V^2"}[dim]
    return E2_HBAR * ANGSTROM ** (3 - dim), unit


def density_si(dim: int) -> tuple[float, str]:
    """(factor, unit): internal number density 1/Å^d -> SI 1/m^d."""
    return ANGSTROM ** (-dim), {1: "1/m", 2: "1/m^2", 3: "1/m^3"}[dim]


def length_power_si(power: int) -> tuple[float, str]:
    """(factor, unit) for a quantity with internal unit Å^power (e.g. Berry curvature dipole)."""
    if power == 0:
        return 1.0, "1"
    return ANGSTROM**power, "m" if power == 1 else f"m^{power}"


def check() -> None:
    """Self-check against the numbers quoted in physics.md; raises AssertionError."""
    assert math.isclose(TIME_FS, 0.658212, rel_tol=1e-6), TIME_FS
    # conductance quantum 2e²/h = 7.748091729e-5 S (CODATA, exact since 2019). physics.md's
    # "e²/ħ = 2.43405e-4 S" is 3.5e-5 low; the exact value is 2.434135e-4 S.
    assert math.isclose(2 * E2_H, 7.748091729e-5, rel_tol=1e-9), E2_H
    assert math.isclose(E2_HBAR, 2.434135e-4, rel_tol=1e-6), E2_HBAR
    assert math.isclose(E2_H * 2 * math.pi, E2_HBAR, rel_tol=1e-14)
    assert math.isclose(FIELD_V_PER_M, 1e10)
    assert math.isclose(KELVIN_PER_EV, 11604.518, rel_tol=1e-6), KELVIN_PER_EV
    # one flux quantum h/e through 1 Å² is 2π internal units (physics.md §1.4)
    assert math.isclose(C.h / E_CHARGE / ANGSTROM**2 / TESLA, 2 * math.pi, rel_tol=1e-12)
