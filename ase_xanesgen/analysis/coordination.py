"""Coordination numbers and sp/sp2/sp3 (CN2/CN3/CN4) fractions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from ..data.datasets import CC_BOND_CUTOFF, coordination_counts
from ._common import as_structures, check_cell, warn_unless_carbon

#: Keys of :func:`hybridisation_fractions`; CN2/CN3/CN4 are sp/sp2/sp3.
HYBRIDISATION_KEYS = ("CN<=1", "CN2", "CN3", "CN4", "CN>=5")


def coordination_numbers(atoms: Atoms, cutoff: float = CC_BOND_CUTOFF) -> np.ndarray:
    """Neighbours within ``cutoff`` (Å, periodic, matscipy) of every atom: int ``[n_atoms]``."""
    warn_unless_carbon([check_cell(atoms)], "coordination_numbers")
    return coordination_counts(atoms, cutoff)


def fractions_from_counts(cn: np.ndarray) -> dict[str, float]:
    """Fractions of ``cn`` ``[n_atoms]`` under :data:`HYBRIDISATION_KEYS` (they sum to 1)."""
    cn = np.asarray(cn)
    if cn.size == 0:
        raise ValueError("no coordination numbers given")
    masks = (cn <= 1, cn == 2, cn == 3, cn == 4, cn >= 5)
    return {key: float(np.mean(mask)) for key, mask in zip(HYBRIDISATION_KEYS, masks)}


def hybridisation_fractions(
    atoms_or_list: Atoms | Sequence[Atoms], cutoff: float = CC_BOND_CUTOFF
) -> dict[str, float]:
    """Fraction of atoms with CN<=1, 2 (sp), 3 (sp2), 4 (sp3), >=5, over all atoms of all structures."""
    structures = as_structures(atoms_or_list)
    warn_unless_carbon(structures, "hybridisation_fractions")
    cn = np.concatenate([coordination_counts(a, cutoff) for a in structures])
    return fractions_from_counts(cn)
