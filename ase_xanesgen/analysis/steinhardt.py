"""Steinhardt bond-orientational order q_l per atom (freud)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from ..data.datasets import CC_BOND_CUTOFF
from ._common import repeat_to_width
from ._freud import freud_system

#: distance (Å) within which the ``num_neighbors`` nearest neighbours of a carbon lie, for sizing small cells
NEAREST_REACH = 3.0


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
    q4 = 0.509175 and q6 = 0.628539.
    """
    import freud

    degrees = [int(x) for x in l]
    query = {"num_neighbors": num_neighbors} if num_neighbors else {"r_max": cutoff}
    order = freud.order.Steinhardt(l=degrees)
    # freud's radius must stay below half the cell width: small cells are repeated (same per-atom values)
    big, _ = repeat_to_width(atoms, 2.0 * (cutoff if num_neighbors is None else NEAREST_REACH) + 0.1)
    order.compute(freud_system(big), neighbors=query)
    values = np.asarray(order.particle_order, dtype=float)[: len(atoms)].reshape(len(atoms), len(degrees))
    return {deg: values[:, k].copy() for k, deg in enumerate(degrees)}
