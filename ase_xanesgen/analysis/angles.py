"""Bond-angle distribution: all j-i-k angles between bonds of each centre i."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from matscipy.neighbours import neighbour_list

from ..checks import check_positive
from ..data.datasets import CC_BOND_CUTOFF
from ._common import as_structures, density_histogram, warn_unless_carbon


def _angles_one(atoms: Atoms, cutoff: float) -> np.ndarray:
    i, bond = neighbour_list("iD", atoms, cutoff)  # sorted by i; bond: [n_bonds, 3] Å
    cn = np.bincount(i, minlength=len(atoms))
    first = np.cumsum(cn) - cn  # index of each centre's first bond
    out = []
    for a in range(cn.max(initial=0)):
        for b in range(a + 1, cn.max(initial=0)):
            centres = np.flatnonzero(cn > b)
            u, v = bond[first[centres] + a], bond[first[centres] + b]  # [n_centres, 3]
            cos = np.einsum("ij,ij->i", u, v) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
            out.append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    return np.concatenate(out) if out else np.zeros(0)


def bond_angles(atoms_or_list: Atoms | Sequence[Atoms], cutoff: float = CC_BOND_CUTOFF) -> np.ndarray:
    """Every angle between two bonds (length < ``cutoff`` Å) sharing a centre, in degrees.

    A centre with CN bonds contributes CN (CN - 1) / 2 angles; structures are concatenated.
    Returns ``[n_angles]`` in [0, 180] degrees, grouped by bond pair, not by centre.
    """
    check_positive(cutoff, "cutoff", "A")
    structures = as_structures(atoms_or_list)
    warn_unless_carbon(structures, "bond_angles")
    return np.concatenate([_angles_one(a, cutoff) for a in structures])


def angle_histogram(angles: np.ndarray, *, bin_width: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Normalised histogram of ``angles`` (degrees) on [0, 180]: centres ``[n]`` deg, density ``[n]`` 1/deg."""
    edges = np.linspace(0.0, 180.0, int(round(180.0 / bin_width)) + 1)
    return 0.5 * (edges[1:] + edges[:-1]), density_histogram(angles, edges)
