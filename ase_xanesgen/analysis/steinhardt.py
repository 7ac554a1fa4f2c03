"""Steinhardt bond-orientational order q_l per atom (freud)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from matscipy.neighbours import neighbour_list

from ..checks import check_count, check_positive
from ..data.datasets import CC_BOND_CUTOFF
from ._common import check_cell, repeat_to_width, warn_unless_carbon
from ._freud import freud_system

#: first search radius (Å) for the ``num_neighbors`` nearest neighbours; it grows until every atom has them
NEAREST_REACH = 3.0


def kth_neighbour_distance(atoms: Atoms, k: int, start: float = NEAREST_REACH) -> float:
    """Largest distance (Å, periodic images included) from an atom to its ``k``-th nearest neighbour.

    Sizes freud's supercell for a ``num_neighbors`` query: with a fixed 3 Å reach, fcc Pb (a = 6 Å, 12 neighbours
    at 4.24 Å) was searched in a cell too small and gave q4 0.342 / q6 0.491 instead of 0.191 / 0.575.
    """
    radius = start
    while True:
        i, d = neighbour_list("id", atoms, radius)
        counts = np.bincount(i, minlength=len(atoms))
        if counts.min() >= k:
            order = np.lexsort((d, i))  # by atom, then by distance
            first = np.cumsum(counts) - counts
            return float(d[order][first + k - 1].max())
        radius *= 1.5


def steinhardt(
    atoms: Atoms,
    l: Sequence[int] = (4, 6),  # noqa: E741 - the usual name of the degree
    *,
    cutoff: float = CC_BOND_CUTOFF,
    num_neighbors: int | None = None,
) -> dict[int, np.ndarray]:
    """Per-atom q_l for every degree in ``l``: ``{l: [n_atoms]}``, dimensionless in [0, 1].

    Neighbours are those closer than ``cutoff`` (Å), or the ``num_neighbors`` nearest if given.
    Atoms without neighbours get NaN. For four tetrahedral neighbours (diamond)
    q4 = 0.509175 and q6 = 0.628539. Takes one structure (a list: call it per structure).
    """
    import freud  # slow to import: loaded only where an analysis needs it

    check_cell(atoms)
    warn_unless_carbon([atoms], "steinhardt")
    degrees = [int(x) for x in l]
    if num_neighbors is None:
        query, reach = {"r_max": check_positive(cutoff, "cutoff", "A")}, cutoff
    else:
        num_neighbors = check_count(num_neighbors, "num_neighbors")
        query = {"num_neighbors": num_neighbors}
        reach = kth_neighbour_distance(atoms, num_neighbors)
    order = freud.order.Steinhardt(l=degrees)
    # freud's radius must stay below half the cell width: small cells are repeated (same per-atom values)
    big, _ = repeat_to_width(atoms, 2.0 * reach + 0.1)
    order.compute(freud_system(big), neighbors=query)
    values = np.asarray(order.particle_order, dtype=float)[: len(atoms)].reshape(len(atoms), len(degrees))
    return {deg: values[:, k].copy() for k, deg in enumerate(degrees)}
