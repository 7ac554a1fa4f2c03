"""ASE cell and positions as a freud system (box, points)."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ._common import check_cell


def freud_system(atoms: Atoms):
    """``(freud.box.Box, points [n_atoms, 3] float32 Å)`` for a periodic ``atoms``.

    freud wants an upper-triangular box centred on the origin; the box is built from the cell's
    lengths and angles and the points from fractional coordinates, so any ASE cell orientation
    (including a left-handed one, which becomes its mirror image) keeps all distances.
    """
    import freud  # slow to import: loaded only where an analysis needs it

    cellpar = check_cell(atoms).cell.cellpar()
    box = freud.box.Box.from_box_lengths_and_angles(*cellpar[:3], *np.radians(cellpar[3:]))
    return box, box.make_absolute(atoms.get_scaled_positions(wrap=True))
