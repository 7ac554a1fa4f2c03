"""Peak positions of sampled curves (spectra on the energy grid, g(r) on its bins) between their samples."""

from __future__ import annotations

import numpy as np


def parabolic_peak(x: np.ndarray, y: np.ndarray, inside: np.ndarray) -> tuple[int, float]:
    """The largest ``y`` among the indices ``inside``: its index ``k``, and its position refined by a parabola
    through ``y[k - 1 : k + 2]`` on the evenly spaced ``x`` (``x[k]`` itself at an end of ``y`` or where the
    parabola does not open downwards). ``inside`` must not be empty."""
    k = int(inside[np.argmax(y[inside])])
    if k in (0, len(y) - 1):
        return k, float(x[k])
    a, b, c = y[k - 1], y[k], y[k + 1]
    curvature = a - 2 * b + c
    return k, float(x[k] + (0.5 * (a - c) / curvature * (x[1] - x[0]) if curvature < 0 else 0.0))
