"""Cell geometry of ASE ``Atoms``: mass density and how thin a periodic lattice is. Lengths in Angstrom."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.cell import Cell
from ase.geometry import minkowski_reduce
from ase.units import _amu


def density_of(atoms: Atoms) -> float:
    """Mass density of ``atoms`` in g/cm3 (masses from ``atoms.get_masses()``, volume from its cell).

    Raises:
        ValueError: the cell has no volume.
    """
    volume = atoms.get_volume()
    if volume <= 0:
        raise ValueError("atoms have no cell volume")
    return float(atoms.get_masses().sum() * _amu * 1e3 / (volume * 1e-24))


def face_distances(atoms: Atoms | Cell) -> np.ndarray:
    """``[3]`` distances (Å) between opposite faces of the cell (of ``atoms`` or a ``Cell``): how far an atom is
    from its own periodic images across each face, so how small a cell is for a given cut-off."""
    cell = atoms.cell if isinstance(atoms, Atoms) else atoms
    return 1.0 / np.linalg.norm(cell.reciprocal(), axis=1)


def reduced_cell(atoms: Atoms) -> Cell:
    """The Minkowski-reduced cell of ``atoms``: the same lattice with the shortest, most orthogonal vectors."""
    return Cell(minkowski_reduce(atoms.cell.complete())[0])


def lattice_thickness(atoms: Atoms) -> float:
    """The smallest distance (Å) between opposite faces of the Minkowski-reduced cell: how thin the lattice is,
    whichever cell vectors describe it (a 12 Å cube written with sheared vectors has thin faces, not a thin
    lattice)."""
    return float(face_distances(reduced_cell(atoms)).min())
