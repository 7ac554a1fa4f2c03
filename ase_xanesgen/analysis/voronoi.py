"""Voronoi cell volume per atom (freud / voro++)."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ._freud import freud_system


def voronoi_volumes(atoms: Atoms) -> np.ndarray:
    """Volume of each atom's periodic Voronoi cell: ``[n_atoms]`` Å^3, summing to the cell volume."""
    import freud  # slow to import: loaded only where an analysis needs it

    voronoi = freud.locality.Voronoi()
    voronoi.compute(freud_system(atoms))
    return np.asarray(voronoi.volumes, dtype=float).copy()
