"""Shared input handling for the analysis functions: validation and normalised histograms."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from ..checks import check_structure, warn_caller
from ..geometry import face_distances, reduced_cell


def label(atoms: Atoms, index: int | None = None) -> str:
    """Short name of a structure for error messages: ``info["name"]``, else index and formula."""
    name = atoms.info.get("name")
    if name:
        return repr(name)
    where = f"#{index} " if index is not None else ""
    return f"structure {where}({atoms.get_chemical_formula()})"


def check_cell(atoms: Atoms, index: int | None = None) -> Atoms:
    """``atoms``, fully periodic with a finite 3-D cell and finite positions, named in errors by :func:`label`
    (:func:`..checks.check_structure`; a NaN gave silent garbage in Voronoi/Steinhardt and a hang in matscipy)."""
    if not isinstance(atoms, Atoms):
        raise TypeError(f"expected one ase.Atoms, got {type(atoms).__name__}")
    return check_structure(atoms, label(atoms, index), periodic=True)


def as_structures(atoms_or_list: Atoms | Sequence[Atoms]) -> list[Atoms]:
    """One ``Atoms`` or a non-empty sequence of them, each checked by :func:`check_cell`, as a list."""
    if isinstance(atoms_or_list, Atoms):
        return [check_cell(atoms_or_list)]
    structures = list(atoms_or_list)
    if not structures:
        raise ValueError("empty list of structures: nothing to analyse")
    return [check_cell(atoms, k) for k, atoms in enumerate(structures)]


def warn_unless_carbon(structures: Sequence[Atoms], what: str) -> None:
    """Warn (not raise: the numbers are still defined) when ``what`` is asked of non-carbon structures, whose
    defaults (C-C bond cut-off, peak window) do not fit; :func:`~.metrics.measure` refuses them outright."""
    others = sorted({s for atoms in structures for s in atoms.get_chemical_symbols()} - {"C"})
    if others:
        warn_caller(f"{what}: structures hold {others}; the defaults (C-C bonds) are for carbon")


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
    ``width`` (Å), and the number of copies. The first ``len(atoms)`` atoms of the result are the original ones, in
    their order (wrapped into the reduced cell below, so possibly moved by lattice vectors).

    For statistics that go wrong in small cells: freud needs a neighbour radius below half the width, and a
    shortest-path ring must not meet its own periodic image. A cell that needs repeating is Minkowski-reduced first
    (same lattice): the 216-atom cell d2.5_1 written with vectors b + 2a, c + 2b took 90 copies instead of 8 (22 s
    for rings instead of 0.5 s).
    """
    if np.all(face_distances(atoms) >= width - 1e-9):
        return atoms, 1
    reduced = atoms.copy()
    reduced.set_cell(reduced_cell(atoms), scale_atoms=False)
    reduced.wrap()
    reps = np.maximum(1, np.ceil(width / face_distances(reduced) - 1e-9)).astype(int)
    return (reduced if reps.prod() == 1 else reduced.repeat(tuple(reps))), int(reps.prod())
