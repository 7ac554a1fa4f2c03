"""A measured scan onto the model grid: coverage checks, cell-mean resampling, the pre-edge and its background."""

from __future__ import annotations

import numpy as np

from .grid import MEASURED_NEG_TOL, energy_grid, validate_spectrum
from .spectra_io import _as_energy, _ascending, _check_energy

#: latest first energy (eV) of a scan whose missing pre-edge may be filled: the C K-edge pi* onset is at ~284 eV
LATEST_SCAN_START = 283.0


#: end (eV) of the pre-edge region, 3 eV below the pi* onset: there the DFT a-C cell means hold < 1e-6 of their
#: maximum, and < 1e-4 broadened by 2 eV (a broad measured pi* tail reaches 282 eV)
PRE_EDGE_END = 280.0


#: pre-edge level (mean intensity below ``PRE_EDGE_END`` over the maximum) above which a measured target warns
PRE_EDGE_TOL = 0.03


#: the pre-edge of a scan starting late (after ``PRE_EDGE_END - 2``) is its first 2 eV, up to this energy at most
LATE_PRE_EDGE_END = 282.0


#: a scan starting later still (282-283 eV, zero-padded below) has its first this many eV judged as its pre-edge
LATE_START_SPAN = 0.5


def pre_edge(energy: np.ndarray, end: float = PRE_EDGE_END) -> np.ndarray:
    """Mask of the pre-edge points of a scan: below ``end``, or for a scan starting later than ``end - 2`` eV its
    first 2 eV (up to ``LATE_PRE_EDGE_END``: closer to a broadened pi* tail, but a scan from 280 eV has no other)."""
    energy = np.asarray(energy, dtype=float)
    return energy < min(max(end, energy[0] + 2.0), max(end, LATE_PRE_EDGE_END))


def pre_edge_level(energy: np.ndarray, intensity: np.ndarray) -> float | None:
    """Mean intensity of a measured spectrum over its :func:`pre_edge`, over its maximum; ``None`` when fewer than
    three points lie there. The DFT cell means the models learned sit below 1e-6 under 280 eV."""
    intensity = np.asarray(intensity, dtype=float)
    pre = pre_edge(energy)
    if pre.sum() < 3 or not intensity.max() > 0:
        return None
    return float(intensity[pre].mean() / intensity.max())


#: shortest pre-edge (eV) whose slope is fitted; a shorter one gives its mean only (a slope from a few eV of
#: noisy points, extrapolated 35 eV up, adds more error than it removes: 0.03 in CN2 from 5 eV at 0.5 % noise)
PRE_EDGE_SLOPE_SPAN = 8.0


def subtract_pre_edge(energy: np.ndarray, intensity: np.ndarray, end: float = PRE_EDGE_END) -> np.ndarray:
    """``intensity`` minus the straight line fitted to its :func:`pre_edge` (below ``end`` eV), clipped at 0.

    The usual first step of NEXAFS normalisation (a pre-edge line, as in Athena): a measurement carries a
    background (other edges, the detector, the substrate) that the DFT spectra lack, and left in, it reads as
    intensity everywhere: after area normalisation the pi* share drops and the unmixed sp2 fraction with it.
    A pre-edge shorter than ``PRE_EDGE_SLOPE_SPAN`` gives a constant instead of a line (a sloped background then
    stays in part: scan from 272 eV or lower for the line). A background that curves (a decaying one, as in
    electron-yield data) is not a line: its unmixed fractions stay ~0.05 off either way. The edge step (the
    atomic continuum above ~290 eV) stays; the DFT spectra lack that too.
    """
    intensity = _one_spectrum(intensity)  # a raw scan: negative noise is fine here
    energy = _check_energy(energy, len(intensity))
    pre = pre_edge(energy, end)
    span = energy[pre][-1] - energy[0] if pre.any() else 0.0
    if pre.sum() < 3 or span < 1.0:
        raise ValueError(f"need the scan to cover at least 1 eV (3 points) before the pi* onset to fit the "
                         f"pre-edge (below {max(end, LATE_PRE_EDGE_END)} eV); it starts at {energy[0]:.2f} eV")
    degree = 1 if span >= PRE_EDGE_SLOPE_SPAN else 0
    return np.clip(intensity - np.polyval(np.polyfit(energy[pre], intensity[pre], degree), energy), 0.0, None)


def _coverage_problem(energy: np.ndarray, grid: np.ndarray, tol: float, pre_edge: float | None) -> str | None:
    """Why a scan ``energy`` (sorted, eV) does not cover ``grid`` to within ``tol``, leading with what is wrong:
    no overlap at all (a unit or reference problem), else the end or start it misses; ``None`` when it covers."""
    missing_low = energy[0] > grid[0] + tol and pre_edge is None
    missing_high = energy[-1] < grid[-1] - tol
    if not (missing_low or missing_high):
        return None
    covers = f"spectrum covers {energy[0]:.2f}-{energy[-1]:.2f} eV"
    span = f"{grid[0]:.2f}-{grid[-1]:.2f} eV"
    if energy[-1] < grid[0] or energy[0] > grid[-1]:
        hint = "check its energy axis"
        if 0.0 < energy[0] and energy[-1] < 1.0:
            hint = "these look like keV: multiply by 1000"
        elif -50.0 < energy[0] and energy[-1] < 100.0:
            hint = "these look relative to the edge: add the absolute edge energy (~284 eV at the pi* onset)"
        return (f"{covers}, outside the model grid's {span}: energies must be in eV on the absolute scale "
                f"(graphite pi* at 285.4 eV); {hint}")
    problems = []
    if missing_high:
        problems.append(f"it stops short of the model grid's end: the scan must reach {grid[-1] - tol:.2f} eV")
    if missing_low:
        problems.append(f"it starts after the model grid's first point: the scan must start by {grid[0] + tol:.2f} "
                        f"eV, or pass pre_edge=0.0 for a background-subtracted scan starting by {LATEST_SCAN_START} eV")
    return f"{covers}: {'; '.join(problems)} (the model grid spans {span}, tolerance {tol:.2f} eV)"


def _cell_means(energy: np.ndarray, intensity: np.ndarray, grid: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Mean of the linear interpolant of ``intensity`` on ``energy`` over ``[g - h, g + h]`` around each grid point,
    ``h`` = ``half`` narrowed to the scan's range on both sides (a window cut on one side only would shift the mean
    by the slope there), exact through its cumulative integral; the point value where nothing is left of it."""
    slope = np.diff(intensity) / np.diff(energy)
    area = np.concatenate([[0.0], np.cumsum(0.5 * (intensity[1:] + intensity[:-1]) * np.diff(energy))])

    def integral(x: np.ndarray) -> np.ndarray:
        j = np.clip(np.searchsorted(energy, x, side="right") - 1, 0, len(energy) - 2)
        dx = x - energy[j]
        return area[j] + intensity[j] * dx + 0.5 * slope[j] * dx**2

    h = np.minimum(half, np.minimum(grid - energy[0], energy[-1] - grid))
    safe = np.where(h > 0, h, 1.0)
    return np.where(h > 0, (integral(grid + safe) - integral(grid - safe)) / (2 * safe),
                    np.interp(grid, energy, intensity))


def resample(
    energy: np.ndarray, intensity: np.ndarray, grid: np.ndarray | None = None, *, pre_edge: float | None = None
) -> np.ndarray:
    """``intensity [n]`` on ``energy [n]`` (eV) onto ``grid`` (default the model grid): ``[len(grid)]``.

    Where the scan is finer than the grid (its local step below 3/4 of the grid's), a grid point takes the mean of the
    scan's linear interpolant over its cell (``[g - DE/2, g + DE/2]``), so the scan's noise averages out as it
    would in a coarser measurement (a point sample keeps all of it: 0.05 eV steps at 1 % noise left 0.9 % on the
    grid, 0.4 % averaged). The cell adds a box of one grid step (FWHM ~0.3 eV in quadrature) to the resolution, a
    small price next to a measured 0.5-1 eV. Where the scan is as coarse as the grid or coarser, grid points take
    its linear interpolation. The scan is sorted first (:func:`_ascending`).

    The input must cover the grid to within half a grid step at both ends, else ``ValueError``. A measured
    scan that starts late (but by ``LATEST_SCAN_START``, before the pi* onset) may instead pass ``pre_edge``
    (e.g. ``0.0`` for a background-subtracted pre-edge): grid points below the scan then take that value.
    Negative values down to ``MEASURED_NEG_TOL`` of the maximum *after* the averaging (noise on a
    background-subtracted scan) are clipped to 0; a deeper dip is an error naming its energy.
    """
    return _resample_sorted(*_measured_scan(energy, intensity), grid, pre_edge)


def _measured_scan(energy: np.ndarray, intensity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A measured ``(energy, intensity)`` checked (one finite spectrum, energies to match) and sorted up
    (:func:`_ascending`)."""
    intensity = _one_spectrum(intensity)
    return _ascending(_as_energy(energy, len(intensity)), intensity)


def _one_spectrum(intensity: np.ndarray) -> np.ndarray:
    """``intensity`` as one finite float spectrum ``[n]`` of a measured scan, else ``ValueError``."""
    intensity = np.array(intensity, dtype=float)
    if intensity.ndim != 1 or not np.all(np.isfinite(intensity)):
        raise ValueError(f"intensity: expected one finite spectrum [n], got shape {intensity.shape} (or NaN/inf)")
    return intensity


def _resample_sorted(energy: np.ndarray, intensity: np.ndarray, grid: np.ndarray | None,
                     pre_edge: float | None) -> np.ndarray:
    """:func:`resample` of a scan already checked and sorted (``prepare_target`` sorts it once)."""
    grid = energy_grid() if grid is None else _check_energy(grid, len(np.asarray(grid)))
    tol = 0.5 * float(np.min(np.diff(grid)))
    problem = _coverage_problem(energy, grid, tol, pre_edge)
    if problem:
        raise ValueError(problem)
    missing_low = energy[0] > grid[0] + tol
    if missing_low and energy[0] > LATEST_SCAN_START:
        raise ValueError(
            f"spectrum starts at {energy[0]:.2f} eV, after the pi* onset (~284 eV): filling below it with the "
            f"pre-edge would invent the pi* region; scans must start by {LATEST_SCAN_START} eV (check the energy "
            "calibration: graphite pi* at 285.4 eV)"
        )
    cell = np.gradient(grid)  # the width each grid point stands for
    local_step = np.interp(grid, 0.5 * (energy[1:] + energy[:-1]), np.diff(energy))
    # finer by a margin: a scan on the grid itself keeps its values, whatever the last bits of its steps
    out = np.where(local_step < 0.75 * cell, _cell_means(energy, intensity, grid, 0.5 * cell),
                   np.interp(grid, energy, intensity))
    if missing_low:
        out[grid < energy[0]] = validate_spectrum(np.array([pre_edge]), n=1, name="pre_edge")[0]
    return validate_spectrum(out, n=None, name="intensity", neg_tol=MEASURED_NEG_TOL, energy=grid)
