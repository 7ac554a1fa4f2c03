"""Checks of user-given numbers, and warnings pointed at the user's line.

A bad number (1.5 steps, a NaN weight, a negative ``fmax``) should fail at the call with its name in the message,
not deep inside torch, matscipy or quippy; a warning should name the caller's line, not a line of the package.
"""

from __future__ import annotations

import math
import os
import sys
import warnings

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
