"""The model's carbon K-edge energy grid and what works on spectra on it: validating, normalising, broadening,
pi* measures, storing per-atom spectra on ``Atoms``.

The model predicts spectra on ``N_ENERGY = 100`` points. The shared data carry no energy axis; the linear
axis ``E(i) = E0 + DE * i`` (eV) below was fitted to three anchor features of the reference crystals
(``benchmarks/calibrate_energy.py``, ``docs/spectra.md``). Intensities follow the a-C training
files (per-atom rows sum to ``AC_MEAN_AREA`` ~ 22 over the 100 points); the diamond/graphite reference
files are on another scale (rows sum to ~0.45), so compare spectra only after :func:`normalise`.

Shapes: a spectrum is ``[n_E]``; per-atom spectra are ``[n_atoms, n_E]``; energies are ``[n_E]`` in eV.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from ase import Atoms
from scipy.ndimage import gaussian_filter1d

from ..checks import check_non_negative
from .datasets import N_ENERGY
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
