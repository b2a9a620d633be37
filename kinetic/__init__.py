"""kinetic: semiclassical Boltzmann transport with phase-space quantum geometry.

Layers (lower never imports upper): models -> geometry -> semiclassics -> mesh -> operator
-> solvers -> observables/response -> io/cli. ``models`` and ``geometry`` are pure numpy.
"""
__version__ = "0.1.0"
