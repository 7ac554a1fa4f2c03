"""Scattering weights of the elements for total (neutron or X-ray) pair distribution functions.

Neutron: coherent scattering lengths b (fm; V. F. Sears, Neutron News 3, 26 (1992)). X-ray: the atomic number Z
(the form factor at Q = 0; weighting pairs by Z_i Z_j is the usual approximation of an X-ray PDF).
"""

from __future__ import annotations

import numpy as np
from ase.data import chemical_symbols

#: coherent neutron scattering lengths (fm) of the elements this package's models know, and their common partners
NEUTRON_B = {"H": -3.739, "Li": -1.90, "B": 5.30, "C": 6.646, "N": 9.36, "O": 5.803, "Na": 3.63, "Mg": 5.375,
             "Al": 3.449, "Si": 4.1491, "P": 5.13, "S": 2.847, "Ca": 4.70, "Ti": -3.438, "Fe": 9.45, "Ge": 8.185}
WEIGHTINGS = ("neutron", "xray", "number")


def scattering_weights(numbers: np.ndarray | list[int], weighting: str = "neutron") -> np.ndarray:
    """Per-atom weights ``[n]``: neutron scattering length (fm), atomic number (``"xray"``) or 1 (``"number"``).

    Raises ``ValueError`` for an unknown weighting or an element without a tabulated neutron length.
    """
    numbers = np.asarray(numbers, dtype=int)
    if weighting == "number":
        return np.ones(len(numbers))
    if weighting == "xray":
        return numbers.astype(float)
    if weighting != "neutron":
        raise ValueError(f"unknown weighting {weighting!r}: expected one of {WEIGHTINGS}")
    missing = sorted({chemical_symbols[z] for z in numbers} - set(NEUTRON_B))
    if missing:
        raise ValueError(f"no neutron scattering length for {missing}; known: {sorted(NEUTRON_B)}")
    return np.array([NEUTRON_B[chemical_symbols[z]] for z in numbers])
