"""Shared input handling for the analysis functions: validation and normalised histograms."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from ..data.datasets import face_distances


def label(atoms: Atoms, index: int | None = None) -> str:
    """Short name of a structure for error messages: ``info["name"]``, else index and formula."""
    name = atoms.info.get("name")
    if name:
        return repr(name)
    where = f"#{index} " if index is not None else ""
    return f"structure {where}({atoms.get_chemical_formula()})"


def check_cell(atoms: Atoms, index: int | None = None) -> Atoms:
    """Raise ``ValueError`` unless ``atoms`` is fully periodic with a 3-D cell of positive volume."""
    if not isinstance(atoms, Atoms):
        raise TypeError(f"expected ase.Atoms, got {type(atoms).__name__}")
    if atoms.cell.rank < 3 or abs(atoms.cell.volume) < 1e-12:
        raise ValueError(f"{label(atoms, index)} has no 3-D cell: the analysis is periodic and needs one")
    if not atoms.pbc.all():
        raise ValueError(f"{label(atoms, index)} is not periodic in all directions (pbc={atoms.pbc.tolist()})")
    if len(atoms) == 0:
        raise ValueError(f"{label(atoms, index)} has no atoms")
    return atoms


def as_structures(atoms_or_list: Atoms | Sequence[Atoms]) -> list[Atoms]:
    """One ``Atoms`` or a non-empty sequence of them, each checked by :func:`check_cell`, as a list."""
    if isinstance(atoms_or_list, Atoms):
        return [check_cell(atoms_or_list)]
    structures = list(atoms_or_list)
    if not structures:
        raise ValueError("empty list of structures: nothing to analyse")
    return [check_cell(atoms, k) for k, atoms in enumerate(structures)]


def density_histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Probability density ``[len(edges) - 1]`` of ``values`` on ``edges`` (integrates to 1; zeros if empty).

    Values outside the edges are dropped, NaN values ignored.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    counts, _ = np.histogram(values, edges)
    total = counts.sum()
    if total == 0:
        return np.zeros(len(edges) - 1)
    return counts / (total * np.diff(edges))


def finite_mean(values: np.ndarray) -> float:
    """Mean of the finite entries of ``values``; NaN if there are none."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def repeat_to_width(atoms: Atoms, width: float) -> tuple[Atoms, int]:
    """``atoms`` repeated along each cell vector until every distance between opposite cell faces is at least
    ``width`` (Å), and the number of copies. The first ``len(atoms)`` atoms of the result are the original ones.

    For statistics that go wrong in small cells: freud needs a neighbour radius below half the width, and a
    shortest-path ring must not meet its own periodic image.
    """
    reps = np.maximum(1, np.ceil(width / face_distances(atoms) - 1e-9)).astype(int)
    return (atoms if reps.prod() == 1 else atoms.repeat(tuple(reps))), int(reps.prod())
