"""Shortest-path ring statistics (matscipy, Franzblau's definition)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from ..data.datasets import CC_BOND_CUTOFF
from ._common import as_structures


def ring_statistics(
    atoms_or_list: Atoms | Sequence[Atoms], cutoff: float = CC_BOND_CUTOFF, maxlength: int = 12
) -> np.ndarray:
    """Number of shortest-path rings by size, summed over structures: int ``[maxlength + 1]``.

    Element n counts n-membered rings (bonds shorter than ``cutoff`` Å). The search stops at
    ``maxlength`` atoms, which keeps large or sparse networks fast.
    """
    from matscipy.rings import ring_statistics as _franzblau

    total = np.zeros(maxlength + 1, dtype=int)
    for atoms in as_structures(atoms_or_list):
        counts = np.asarray(_franzblau(atoms, cutoff, maxlength=maxlength))
        total[: len(counts)] += counts[: maxlength + 1]
    return total
