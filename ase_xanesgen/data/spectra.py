"""Carbon K-edge spectrum utilities: the model's energy grid, reading, resampling, normalising, validating.

The model predicts spectra on ``N_ENERGY = 100`` points. The shared data carry no energy axis; the linear
axis ``E(i) = E0 + DE * i`` (eV) below was fitted to three anchor features of the reference crystals
(``benchmarks/calibrate_energy.py``, ``docs/energy_calibration.md``). Intensities follow the a-C training
files (per-atom rows sum to ``AC_MEAN_AREA`` ~ 22 over the 100 points); the diamond/graphite reference
files are on another scale (rows sum to ~0.45), so compare spectra only after :func:`normalise`.

Shapes: a spectrum is ``[n_E]``; per-atom spectra are ``[n_atoms, n_E]``; energies are ``[n_E]`` in eV.
"""

from __future__ import annotations

import codecs
import math
import os
import re
from pathlib import Path
from typing import Literal

import numpy as np
from ase import Atoms
from scipy.ndimage import gaussian_filter1d

from ase_xanesgen.data.datasets import N_ENERGY

from ..checks import check_non_negative, warn_caller
from .peaks import parabolic_peak

#: Energy of grid point 0 (eV). Least-squares fit to graphite pi* (285.4 eV), graphite sigma* (291.7 eV) and
#: diamond second-gap dip (302.4 eV) at sub-grid indices 27.195, 43.652, 67.883 of the reference cell means.
E0: float = 273.763
#: Grid step (eV per point), same fit. Residuals +0.23, -0.38, +0.15 eV.
DE: float = 0.4196
#: 1-sigma standard errors of the fit (1 degree of freedom: rough). Dropping one anchor moves DE over
#: 0.383-0.442 eV/point, which is the more honest spread; see docs/energy_calibration.md.
E0_STD: float = 0.79
DE_STD: float = 0.016
#: Mean area (sum over the 100 points) of the 5400 per-atom a-C training spectra (std 0.47; cell means
#: 21.93-22.54). Guidance targets are scaled to it (``benchmarks/calibrate_energy.py`` prints it).
AC_MEAN_AREA: float = 22.094
#: Energy window (eV) of the pi* (sp/sp2) peak used for the scalar per-atom ``<key>_pi_star`` array.
PI_STAR_WINDOW: tuple[float, float] = (284.0, 286.5)
#: Negative intensities down to ``-NEG_TOL * max|y|`` are rounding noise and clipped to 0; below, an error.
NEG_TOL: float = 1e-6
#: The same for a measured scan (:func:`resample`): a background-subtracted scan dips below zero with its noise.
MEASURED_NEG_TOL: float = 0.02
#: an edge step (the arctan fitted by :func:`~ase_xanesgen.data.unmixing.unmix_prepared`) above this fraction of a
#: target's maximum warns: the 25 DFT a-C cell means fit 0.0103 at most (they have no continuum step), a 5 % step
#: reads as 0.037-0.055, a 30 % one as 0.23-0.26 (the level is over the stepped target's own maximum)
EDGE_STEP_TOL: float = 0.04

NormMethod = Literal["area", "edge", "max"]


def energy_grid() -> np.ndarray:
    """The model's energy axis ``[100]`` in eV (``E0 + DE * i``), strictly increasing."""
    return E0 + DE * np.arange(N_ENERGY, dtype=float)


def validate_spectrum(y: np.ndarray, n: int | None = N_ENERGY, *, name: str = "spectrum",
                      neg_tol: float = NEG_TOL, energy: np.ndarray | None = None) -> np.ndarray:
    """Check ``y`` (``[n]`` or ``[m, n]``) is finite, non-negative and has ``n`` points on its last axis.

    ``n=None`` skips the length check. Returns a float copy with small negative noise (above
    ``-neg_tol * max|y|``) clipped to 0. Raises ``ValueError`` naming the problem; with ``energy`` (``[n]`` eV)
    it says where a negative dip lies in eV, which a user can find in a plot (an index he cannot).
    """
    y = np.array(y, dtype=float)
    if y.ndim not in (1, 2) or y.shape[-1] == 0:
        raise ValueError(f"{name}: expected shape [n_E] or [n_spectra, n_E], got {y.shape}")
    if n is not None and y.shape[-1] != n:
        raise ValueError(f"{name}: has {y.shape[-1]} energy points, expected {n} (resample onto the model grid)")

    def index(flat: int) -> int | tuple[int, ...]:
        k = np.unravel_index(flat, y.shape)
        return int(k[0]) if y.ndim == 1 else tuple(int(v) for v in k)

    bad = ~np.isfinite(y)
    if bad.any():
        raise ValueError(f"{name}: contains {int(bad.sum())} NaN/inf value(s), first at index "
                         f"{index(int(np.argmax(bad)))}")
    peak = float(np.abs(y).max())
    if y.min() < -neg_tol * peak:
        k = index(int(np.argmin(y)))
        where = f"index {k}" if energy is None else f"{float(np.asarray(energy)[np.atleast_1d(k)[-1]]):.2f} eV"
        if energy is not None and y.ndim == 2:
            where += f" of spectrum {k[0]}"
        raise ValueError(
            f"{name}: negative intensity {y.min():.3g} ({y.min() / peak:.1%} of the maximum |y|, tolerance "
            f"{neg_tol:.2g}) at {where}. A raw scan still carries its background: subtract the pre-edge "
            "(data.spectra.subtract_pre_edge, xanesgen generate --subtract-background). A scan already "
            "background-subtracted dips with its noise: smooth it, or clip it at 0 before use")
    return np.clip(y, 0.0, None)


def _check_energy(energy: np.ndarray, n: int) -> np.ndarray:
    """``energy`` as a float ``[n]`` array, finite and strictly increasing (for arrays that must stay aligned with
    their intensities; :func:`read_spectrum` and :func:`resample` first sort a scan with :func:`_ascending`)."""
    energy = _as_energy(energy, n)
    if not np.all(np.isfinite(energy)):
        raise ValueError("energy: contains NaN/inf")
    if n < 2:
        raise ValueError("energy: need at least two points")
    steps = np.diff(energy)
    if np.any(steps <= 0):
        k = int(np.argmax(steps <= 0))
        down = " (a down-scan: reverse it)" if energy[-1] < energy[0] else ""
        raise ValueError(f"energy: not strictly increasing (E[{k}]={energy[k]:g} eV, E[{k + 1}]={energy[k + 1]:g} eV)"
                         f"{down}")
    return energy


#: a scan may step back by up to this fraction of its median step: readback jitter of the monochromator around
#: a set point, sorted away. A longer step back is refused: two sweeps or overlapping regions in one file, which
#: sorting would silently merge
SCAN_JITTER: float = 0.1


def _ascending(energy: np.ndarray, intensity: np.ndarray, *, name: str = "energy",
               lines: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One up-scan with distinct energies from a measured ``(energy [n], intensity [n])``.

    The direction is that of the ends (``sign(E[-1] - E[0])``), so a down-scan with one repeated point is still a
    down-scan; steps back within ``SCAN_JITTER`` are stable-sorted; repeated energies (the shared boundary point of
    a multi-region scan) are averaged, with a warning. A longer step back raises ``ValueError`` naming the pair
    (by ``lines`` of a file when given, else by index).
    """
    energy = np.asarray(energy, dtype=float)
    intensity = np.asarray(intensity, dtype=float)
    if not np.all(np.isfinite(energy)):
        raise ValueError(f"{name}: energy contains NaN/inf")
    if len(energy) < 2:
        raise ValueError(f"{name}: need at least two points")
    span = energy[-1] - energy[0]
    if span == 0:
        turn = energy[int(np.argmax(np.abs(energy - energy[0])))]
        raise ValueError(f"{name}: the scan starts and ends at {energy[0]:g} eV" + (
            f", turning at {turn:g} eV: not one monotonic scan (several sweeps in one file? keep one)"
            if turn != energy[0] else ": not a scan"))
    order = np.arange(len(energy)) if span > 0 else np.arange(len(energy))[::-1]
    steps = np.diff(energy[order])
    moving = np.abs(steps[steps != 0])
    back = np.flatnonzero(steps < -SCAN_JITTER * float(np.median(moving)))
    if back.size:
        p, q = sorted((int(order[back[0]]), int(order[back[0] + 1])))
        where = (lambda k: f"line {lines[k]}") if lines is not None else (lambda k: f"index {k}")
        raise ValueError(
            f"{name}: not one monotonic scan: it runs {'up' if span > 0 else 'down'} from {energy[0]:g} to "
            f"{energy[-1]:g} eV, but {energy[p]:g} eV ({where(p)}) is followed by {energy[q]:g} eV ({where(q)}). "
            "Several sweeps or overlapping regions in one file? Keep one sweep, or sort the rows if they are one "
            "spectrum (a repeated boundary point is fine: it is averaged)")
    order = order[np.argsort(energy[order], kind="stable")]
    energy, intensity = energy[order], intensity[order]
    unique, counts = np.unique(energy, return_counts=True)
    if len(unique) < len(energy):
        intensity = np.bincount(np.repeat(np.arange(len(unique)), counts), weights=intensity) / counts
        twice = unique[counts > 1]
        listed = ", ".join(f"{v:g}" for v in twice[:3]) + (" ..." if len(twice) > 3 else "")
        warn_caller(f"{name}: {len(twice)} energy point(s) measured more than once ({listed} eV; the shared "
                    "boundary of a multi-region scan?): their intensities are averaged")
    return unique, intensity


def _decode(raw: bytes, path: Path) -> str:
    """A spectrum file's text. UTF-8 with its BOM dropped (left in, it hid the first number, and a file without a
    header lost its first row); UTF-16 with a BOM (Windows exports); else Latin-1, in which every byte decodes (a
    ``µ`` in an instrument's comment): only the numbers matter, and they are ASCII in all three."""
    if raw[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        try:
            text = raw.decode("utf-16")
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: starts with a UTF-16 byte-order mark but is no UTF-16 text ({err.reason})"
                             ) from None
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
    if "\x00" in text:
        raise ValueError(f"{path}: holds NUL bytes: not a text file (or UTF-16 without a byte-order mark: save it "
                         "as UTF-8)")
    return text


def _decimal_commas(line: str) -> str:
    """A hint when ``line`` reads as numbers with decimal commas between other separators (``285,4\\t0,5``,
    ``285,4;0,5``), which the comma separator splits into twice the columns; else ``""``."""
    parts = [p for p in re.split(r"[;\s]+", line) if p]
    if len(parts) >= 2 and any("," in p for p in parts) and all(
            re.fullmatch(r"[-+]?\d+(,\d+)?([eE][-+]?\d+)?", p) for p in parts):
        return " (decimal commas? use points: 285.4, not 285,4)"
    return ""


def _fields(line: str) -> list[str]:
    """The fields of a line: whitespace, commas and semicolons all separate columns."""
    return [f for f in re.split(r"[,;\s]+", line) if f]


def _table(text: str, path: Path) -> tuple[np.ndarray, list[int], list[int], list[str]]:
    """The numeric rows of a spectrum file ``[rows, columns]``, their line numbers, the line numbers of the skipped
    header lines, and the fields of the last line (header or ``#`` comment) before the data: the column names,
    if any. Every data row must have as many columns as the first."""
    rows: list[list[float]] = []
    lines: list[int] = []
    header: list[int] = []
    labels: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line, _, comment = line.partition("#")
        line = line.strip()
        if not line:
            if not rows and comment.strip():
                labels = _fields(comment)
            continue
        fields = _fields(line)
        try:
            values = [float(f) for f in fields]
        except ValueError:
            if not rows:  # header line
                header.append(lineno)
                labels = fields
                continue
            raise ValueError(f"{path}:{lineno}: non-numeric value in {line!r}") from None
        hint = _decimal_commas(line)
        if hint:
            raise ValueError(f"{path}:{lineno}: {line!r} splits into {len(values)} columns{hint}")
        if rows and len(values) != len(rows[0]):
            raise ValueError(f"{path}:{lineno}: expected {len(rows[0])} columns as on line {lines[0]}, got "
                             f"{len(values)}")
        rows.append(values)
        lines.append(lineno)
    if not rows:
        raise ValueError(f"{path}: no numeric rows found")
    return np.array(rows), lines, header, labels


def _pick_columns(data: np.ndarray, columns: tuple[int, int] | None, path: Path,
                  labels: list[str]) -> tuple[int, int]:
    """The (energy, intensity) column indices: ``columns`` checked against the file, or ``(0, 1)`` for a
    two-column file; a file of more columns must name its choice (a guess would pick I0 or TEY unseen)."""
    n = data.shape[1]
    found = ", ".join(f"{k}: {name}" for k, name in enumerate(labels)) if len(labels) == n else f"0-{n - 1}"
    if columns is None:
        if n == 2:
            return 0, 1
        if n < 2:
            raise ValueError(f"{path}: expected 2 columns (energy, intensity), got {n}")
        raise ValueError(f"{path}: {n} columns ({found}), expected 2 columns (energy, intensity): choose them by "
                         "0-based index, read_spectrum(path, columns=(0, k)) or xanesgen generate --guide-columns 0,k")
    if len(columns) != 2 or any(not isinstance(c, (int, np.integer)) or not 0 <= c < n for c in columns) or \
            columns[0] == columns[1]:
        raise ValueError(f"{path}: columns {tuple(columns)} must be two different 0-based indices of its {n} columns "
                         f"({found})")
    return int(columns[0]), int(columns[1])


def read_spectrum(path: str | os.PathLike, columns: tuple[int, int] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Read a measured spectrum: energy (eV) and intensity columns.

    Columns may be separated by whitespace, commas or semicolons; ``#`` starts a comment; non-numeric
    lines before the data (a CSV header) are skipped, with a warning when there are several. A file of two columns
    is read as is; from one of more (a beamline's E, I0, TEY, TFY; ``xanesgen predict``'s CSV) ``columns``
    picks (energy, intensity) by 0-based index. UTF-8 (with or without a BOM), UTF-16 with a BOM and Latin-1 are
    read. The scan is sorted up (:func:`_ascending`: a down-scan reversed, repeated energies averaged with a
    warning, a scan that turns back refused). Returns ``(energy [n] eV, intensity [n])``, energies strictly
    increasing, intensities finite. They may dip below zero (noise on a raw scan): :func:`subtract_pre_edge` takes
    them so; :func:`resample` clips dips down to ``MEASURED_NEG_TOL`` of the maximum and refuses deeper ones.
    """
    path = Path(path)
    data, lines, header, labels = _table(_decode(path.read_bytes(), path), path)
    if len(header) > 1:
        warn_caller(f"{path}: skipped lines {header[0]}-{header[-1]} ({len(header)} non-numeric lines before the "
                    "data) as a header: check that none of them is a data row")
    e, i = _pick_columns(data, columns, path, labels)
    bad = ~np.isfinite(data[:, [e, i]]).all(axis=1)
    if bad.any():
        raise ValueError(f"{path}:{lines[int(np.argmax(bad))]}: NaN/inf value ({int(bad.sum())} such row(s))")
    return _ascending(data[:, e], data[:, i], name=str(path), lines=lines)


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


def _as_energy(energy: np.ndarray, n: int) -> np.ndarray:
    """``energy`` as a float ``[n]`` array matching ``n`` intensities (any order: :func:`_ascending` sorts it)."""
    energy = np.asarray(energy, dtype=float)
    if energy.shape != (n,):
        raise ValueError(f"energy: expected shape ({n},) to match the intensities, got {energy.shape}")
    return energy


def normalise(spectrum: np.ndarray, method: NormMethod = "area", *, tail: int = 10) -> np.ndarray:
    """Normalise ``[n_E]`` or ``[m, n_E]`` spectra along the energy axis.

    - ``"area"``: sum over the points = 1 (on a uniform grid, the integral / step); makes the a-C and
      reference scales comparable. Multiply by ``AC_MEAN_AREA`` for the a-C training scale.
    - ``"edge"``: mean of the last ``tail`` points (post-edge) = 1, the experimental edge-step convention.
      The DFT spectra decay above ~305 eV (no atomic background), so prefer "area" to compare with them.
    - ``"max"``: maximum = 1.
    """
    y = validate_spectrum(spectrum, n=None)
    if method == "area":
        scale = y.sum(axis=-1, keepdims=True)
    elif method == "edge":
        if not 0 < tail <= y.shape[-1]:
            raise ValueError(f"tail must be in 1..{y.shape[-1]}, got {tail}")
        scale = y[..., -tail:].mean(axis=-1, keepdims=True)
    elif method == "max":
        scale = y.max(axis=-1, keepdims=True)
    else:
        raise ValueError(f"unknown normalisation {method!r}: expected 'area', 'edge' or 'max'")
    if np.any(scale <= 0):
        raise ValueError(f"cannot {method}-normalise: spectrum is zero over the normalisation range")
    return y / scale


def broaden(spectra: np.ndarray, fwhm: float) -> np.ndarray:
    """``[..., 100]`` model-grid spectra convolved with a Gaussian of ``fwhm`` (eV) on top of their own width.

    The DFT spectra carry 0.2 eV of broadening; a measurement carries its instrument's resolution and more
    lifetime width. Broaden the model's spectra by about ``sqrt(fwhm_measured**2 - 0.2**2)`` before comparing
    them with a measurement by eye or by number. Gaussians add in quadrature: a peak of FWHM ``a`` comes out
    ``sqrt(a**2 + fwhm**2)`` wide. The ends are extended flat (``scipy.ndimage``, mode ``nearest``), so the area
    changes only by what lies within a few ``fwhm`` of the grid's ends.
    """
    y = validate_spectrum(spectra)
    fwhm = check_non_negative(fwhm, "fwhm", "eV")
    if fwhm == 0:
        return y.copy()
    return gaussian_filter1d(y, fwhm / math.sqrt(8 * math.log(2)) / DE, axis=-1, mode="nearest")


def _window(window: tuple[float, float]) -> np.ndarray:
    """Indices of the model-grid points within ``window`` (eV, ends included)."""
    grid = energy_grid()
    return np.flatnonzero((grid >= window[0]) & (grid <= window[1]))


def pi_star_intensity(spectra: np.ndarray, window: tuple[float, float] = PI_STAR_WINDOW) -> np.ndarray:
    """Integral (intensity x eV) of ``[..., 100]`` model-grid spectra over ``window`` (eV): ``[...]``."""
    return validate_spectrum(spectra)[..., _window(window)].sum(axis=-1) * DE


def window_peak(spectrum: np.ndarray, window: tuple[float, float]) -> tuple[int, float]:
    """The highest grid point of a model-grid spectrum ``[100]`` within ``window`` (eV, ends included): its index,
    and its energy refined by a parabola (:func:`~ase_xanesgen.data.peaks.parabolic_peak`)."""
    idx = _window(window)
    if not len(idx):
        raise ValueError(f"window {window} eV holds no grid point")
    return parabolic_peak(energy_grid(), spectrum, idx)


def pi_star_peak(spectrum: np.ndarray, window: tuple[float, float] = (283.5, 287.5), prominence: float = 0.05
                 ) -> float | None:
    """Energy (eV) of the pi* peak of a model-grid spectrum ``[100]`` (:func:`window_peak`); ``None`` without a
    distinct peak (the maximum on the window's edge, or a dip after it of less than ``prominence`` of its height
    before 289.5 eV), as in sp3-rich carbon."""
    window = (window[0], min(window[1], 289.0))
    idx = _window(window)
    if len(idx) < 3:
        raise ValueError(f"window {window} eV holds fewer than 3 grid points below 289 eV")
    k, energy = window_peak(spectrum, window)
    b = spectrum[k]
    dip = spectrum[k:np.searchsorted(energy_grid(), 289.5)].min()
    if k in (idx[0], idx[-1]) or b <= 0 or (b - dip) / b < prominence:
        return None
    return energy


def check_calibration(spectrum: np.ndarray) -> list[str]:
    """What in a target ``[100]`` on the model grid looks unlike the DFT spectra on this energy axis: an energy
    offset (:func:`~ase_xanesgen.data.unmixing.energy_offset`) or an edge step above ``EDGE_STEP_TOL`` of its
    maximum (judged after undoing the offset, which a step fit would partly absorb). Messages, empty when nothing
    is found; :func:`prepare_target` warns with them."""
    from .unmixing import calibration_findings  # unmixing imports this module

    problems: list[str] = []
    if not spectrum.max() > 0:
        return problems  # nothing to judge (prepare_target refuses an all-zero target)
    shift, step = calibration_findings(spectrum)
    if shift is not None:
        problems.append(
            f"its energy axis looks offset: the DFT a-C spectra match it best with its energies moved by {shift:+.2f} "
            "eV (an offset moves the unmixed sp / sp2 / sp3 fractions by ~0.1 per 0.5 eV). To align it with the DFT "
            "spectra (whichever axis is off: this one is uncertain by 0.4 eV near pi*), shift its energies by "
            f"{shift:+.2f} eV (xanesgen generate --energy-shift {shift:+.2f}; docs/energy_calibration.md)")
    if step > EDGE_STEP_TOL:
        problems.append(
            f"it holds an edge step of {step:.0%} of its maximum (an arctan at 290 eV fitted beside the sp / sp2 / "
            "sp3 components; DFT spectra have none; a background left rising across the edge reads alike): the "
            "unmixed fractions fit it out, the spectrum term does not. "
            "Subtract it: prepare_target(..., subtract_edge_step=True), data.unmixing.subtract_edge_step, or "
            "xanesgen generate --subtract-edge-step (docs/energy_calibration.md)")
    return problems


def store_spectra(atoms: Atoms, spectra: np.ndarray, key: str = "xanes") -> Atoms:
    """Store per-atom spectra ``[n_atoms, 100]`` on ``atoms`` so extxyz keeps them; returns ``atoms``.

    Writes ``arrays[key]`` (the spectra), ``arrays[key + "_pi_star"]`` (``[n_atoms]``, pi* integral, for
    colouring in ``ase gui``, which colours by scalar per-atom arrays) and ``info[key + "_mean"]`` (``[100]``).
    """
    y = validate_spectrum(spectra, name=key)
    if y.shape != (len(atoms), N_ENERGY):
        raise ValueError(f"{key}: expected shape ({len(atoms)}, {N_ENERGY}) for {len(atoms)} atoms, got {y.shape}")
    atoms.arrays[key] = y
    atoms.arrays[f"{key}_pi_star"] = pi_star_intensity(y)
    atoms.info[f"{key}_mean"] = y.mean(axis=0)
    return atoms


def _late_start_level(energy: np.ndarray, intensity: np.ndarray) -> tuple[float, float]:
    """Mean intensity over the first ``LATE_START_SPAN`` eV of a scan, over its maximum, and the most the DFT
    spectra reach there (:func:`~ase_xanesgen.data.unmixing.dft_onset_level`): from 282 eV on, the pi* onset."""
    from .unmixing import dft_onset_level  # unmixing imports this module

    first = energy <= energy[0] + LATE_START_SPAN
    level = float(intensity[first].mean() / intensity.max())
    return level, dft_onset_level((float(energy[0]), float(energy[0]) + LATE_START_SPAN))


def _background_message(where: str, level: float, fix: str) -> str:
    """The pre-edge warning: where the background was judged, its level over the maximum, how to remove it."""
    return (f"the spectrum's pre-edge ({where}) sits at {level:.1%} of its maximum, against < 1 % in the DFT "
            "spectra the models learned: a background that biases the target (the unmixed sp / sp2 / sp3 fractions "
            f"most). Subtract it first: {fix}")


def _pre_edge_warning(energy: np.ndarray | None, intensity: np.ndarray) -> str | None:
    """The warning for a background before the pi* onset, or ``None``. A model-grid target (``energy`` None) is
    judged on the grid's 15 points below ``PRE_EDGE_END``; a scan with too short a pre-edge for
    :func:`pre_edge_level` (one starting at 282-283 eV, padded with zero) by how far its first ``LATE_START_SPAN``
    eV rise above the DFT spectra's onset there."""
    energy = energy_grid() if energy is None else np.asarray(energy, dtype=float)
    intensity = np.asarray(intensity, dtype=float)
    if not intensity.max() > 0:
        return None  # prepare_target refuses an all-zero target
    level = pre_edge_level(energy, intensity)
    if level is not None:
        if level <= PRE_EDGE_TOL:
            return None
        return _background_message(f"below {PRE_EDGE_END} eV", level, "data.spectra.subtract_pre_edge(energy, "
                                   "intensity), or xanesgen generate --subtract-background")
    level, onset = _late_start_level(energy, intensity)
    if level - onset <= PRE_EDGE_TOL:
        return None
    return _background_message(f"its first {LATE_START_SPAN} eV, where the DFT spectra 2 eV broader reach {onset:.1%} "
                               "at most", level, "subtract_pre_edge needs 1 eV of scan before 282 eV, so scan from "
                               "272 eV or lower, or subtract the background in your own processing")


def prepare_target(
    target: np.ndarray | tuple[np.ndarray, np.ndarray] | str | os.PathLike,
    energy: np.ndarray | None = None,
    *,
    pre_edge: float | None = 0.0,
    subtract_edge_step: bool = False,
) -> np.ndarray:
    """A guidance target ``[100]`` on the model grid and the a-C training scale (area ``AC_MEAN_AREA``).

    ``target`` is a ``[100]`` model-grid spectrum, or intensities on ``energy`` (eV), or an
    ``(energy, intensity)`` pair, or a file for :func:`read_spectrum`. Off-grid input is resampled; a measured
    scan that starts after the grid's first point but by 283 eV takes ``pre_edge`` below its first point (as in
    :func:`resample`; ``0.0``, a background-subtracted pre-edge, by default; ``None`` refuses such a scan).
    ``subtract_edge_step`` removes a measurement's edge step first
    (:func:`~ase_xanesgen.data.unmixing.subtract_edge_step`). Warns about a pre-edge background, an energy offset
    or an edge step (:func:`check_calibration`).
    """
    if isinstance(target, (str, os.PathLike)):
        if energy is not None:
            raise ValueError("pass energy only with an intensity array, not with a file")
        energy, target = read_spectrum(target)
    elif isinstance(target, tuple):
        if energy is not None or len(target) != 2:
            raise ValueError("target tuple must be (energy, intensity), without energy=")
        energy, target = target
    if energy is None:
        y = validate_spectrum(target, name="target")
        if y.ndim != 1:
            raise ValueError(f"target: expected one spectrum of shape ({N_ENERGY},), got {y.shape}")
        background = _pre_edge_warning(None, y)
    else:
        energy, target = _measured_scan(energy, target)  # sorted once: the pre-edge check reads the scan's start
        y = _resample_sorted(energy, target, None, pre_edge)
        background = _pre_edge_warning(energy, target)
    if background:
        warn_caller(background)
    if subtract_edge_step:
        from .unmixing import subtract_edge_step as without_step  # unmixing imports this module

        y = without_step(y)
    for problem in check_calibration(y):
        warn_caller(f"the target spectrum: {problem}")
    return normalise(y, "area") * AC_MEAN_AREA
