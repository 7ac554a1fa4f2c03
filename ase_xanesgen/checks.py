"""Checks of user-given numbers and structures, and warnings pointed at the user's line.

A bad number (1.5 steps, a NaN weight, a negative ``fmax``) or structure (a NaN position, no 3-D cell) should fail
at the call with its name in the message, not deep inside torch, matscipy or quippy; a warning should name the
caller's line, not a line of the package.
"""

from __future__ import annotations

import math
import os
import sys
import warnings

import numpy as np
from ase import Atoms

_PACKAGE = os.path.dirname(os.path.realpath(__file__))


def warn_caller(message: str, category: type[Warning] = UserWarning, skip: tuple[str, ...] = ()) -> None:
    """``warnings.warn`` at the first frame outside the package (and outside the folders ``skip``, e.g. ASE's
    calculator code between a user's ``get_property`` and our ``calculate``): a public function reaches the same
    warning at different depths (``generate``, ``generate_batch``, ``fill``; ``read_spectrum`` alone or inside a
    guide), and a fixed ``stacklevel`` points into the package for some. Called from the package alone (no frame
    outside it), the outermost frame is named."""
    inside = (_PACKAGE + os.sep, *skip)
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and os.path.realpath(frame.f_code.co_filename).startswith(inside):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def whole_number(value, name: str) -> int:
    """``value`` as an int if it is a whole number (``3``, ``np.int64(3)``, ``3.0``), else a clear error: ``int()``
    alone would turn ``1.7`` into 1."""
    try:
        whole = int(value)
        ok = not isinstance(value, bool) and whole == value
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    return whole


def check_count(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int if it is a whole number >= ``minimum`` (``n``, ``steps``, ``bins``; 0 for
    ``max_restarts``), else a clear error instead of a failure deep inside torch."""
    try:
        count = whole_number(value, name)
    except TypeError:
        count = minimum - 1
    if count < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return count


def _finite(value) -> float | None:
    """``value`` as a finite float, or None (NaN, inf, not a number; a string too: ``"0.1"`` would pass ``float``
    and fail later, deep inside numpy or ASE)."""
    if isinstance(value, (str, bytes)):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _shown(value) -> str:
    """``value`` for a message: numbers as printed (``nan``, not ``np.float64(nan)``), anything else quoted."""
    return repr(value) if isinstance(value, (str, bytes)) or value is None else str(value)


def check_positive(value, name: str, unit: str = "") -> float:
    """``value`` as a float if it is finite and > 0 (a cut-off, a density, ``fmax``): a zero cut-off gives empty,
    not wrong-looking, statistics, and NaN passes every ``<`` test unnoticed."""
    number = _finite(value)
    if number is None or number <= 0:
        raise ValueError(f"{name} must be > 0{' ' + unit if unit else ''}, got {_shown(value)}")
    return number


def check_non_negative(value, name: str, unit: str = "") -> float:
    """``value`` as a float if it is finite and >= 0 (a guide's weight, ``zeta``, a broadening): NaN or inf would
    only surface as a crash deep inside sampling."""
    number = _finite(value)
    if number is None or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0{' ' + unit if unit else ''}, got {_shown(value)}")
    return number


def check_fraction(value, name: str, low_closed: bool = False) -> float:
    """``value`` as a float if it lies in ``(0, 1)`` (``[0, 1)`` with ``low_closed``): diffusion times such as
    ``t_restart`` or a guide's ``t_min``."""
    number = _finite(value)
    if number is None or not (0.0 <= number if low_closed else 0.0 < number) or number >= 1.0:
        raise ValueError(f"{name} must lie in {'[' if low_closed else '('}0, 1), got {_shown(value)}")
    return number


def check_structure(atoms, name: str = "atoms", *, periodic: bool = False, empty_ok: bool = False) -> Atoms:
    """``atoms`` itself if it is an ``ase.Atoms`` with a finite 3-D cell of non-zero volume and finite positions
    (with ``periodic``: also periodic in all three directions; unless ``empty_ok``: holding atoms).

    ``name`` starts the messages (``"atoms"``, ``"template"``, ``"structure #1 (C216)"``). A NaN cell would end
    deep in ASE's cell reduction, in matscipy's neighbour search (a hang) or in quippy (every atom at its isolated
    energy), so it is refused here.

    Raises:
        TypeError: not an ``ase.Atoms``.
        ValueError: no atoms, a NaN or inf cell or position, no 3-D cell, partly or not periodic (``periodic``).
    """
    if not isinstance(atoms, Atoms):
        raise TypeError(f"{name} must be an ase.Atoms, got {type(atoms).__name__}")
    if not empty_ok and len(atoms) == 0:
        raise ValueError(f"{name} is empty: it has no atoms")
    if not np.all(np.isfinite(atoms.cell.array)):
        raise ValueError(f"{name} has a non-finite (NaN or inf) cell: {atoms.cell.array.tolist()}")
    if not np.all(np.isfinite(atoms.positions)):
        raise ValueError(f"{name} has non-finite (NaN or inf) positions")
    if atoms.cell.rank < 3 or abs(atoms.cell.volume) < 1e-6:
        raise ValueError(f"{name} has no 3-D cell (cell {atoms.cell.array.tolist()}): a periodic structure needs "
                         "one (e.g. atoms.center(vacuum=6.0) for a cluster)")
    if periodic and not atoms.pbc.all():
        raise ValueError(f"{name} is not periodic in all directions (pbc={atoms.pbc.tolist()})")
    return atoms
