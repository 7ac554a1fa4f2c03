"""Guidance targets from DFT-like or measured spectra, and the checks that warn where a target looks unlike the
DFT spectra on this energy axis: a pre-edge background, an energy offset, an edge step."""

from __future__ import annotations

import os

import numpy as np

from ..checks import warn_caller
from .components import EDGE_STEP_TOL, calibration_findings, dft_onset_level
from .components import subtract_edge_step as remove_edge_step
from .datasets import N_ENERGY
from .grid import AC_MEAN_AREA, energy_grid, normalise, validate_spectrum
from .resampling import (LATE_START_SPAN, PRE_EDGE_END, PRE_EDGE_TOL, _measured_scan, _resample_sorted,
                         pre_edge_level)
from .spectra_io import read_spectrum

def check_calibration(spectrum: np.ndarray) -> list[str]:
    """What in a target ``[100]`` on the model grid looks unlike the DFT spectra on this energy axis: an energy
    offset (:func:`~ase_xanesgen.data.unmixing.energy_offset`) or an edge step above ``EDGE_STEP_TOL`` of its
    maximum (judged after undoing the offset, which a step fit would partly absorb). Messages, empty when nothing
    is found; :func:`prepare_target` warns with them."""
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


def _late_start_level(energy: np.ndarray, intensity: np.ndarray) -> tuple[float, float]:
    """Mean intensity over the first ``LATE_START_SPAN`` eV of a scan, over its maximum, and the most the DFT
    spectra reach there (:func:`~ase_xanesgen.data.unmixing.dft_onset_level`): from 282 eV on, the pi* onset."""
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
        y = remove_edge_step(y)
    for problem in check_calibration(y):
        warn_caller(f"the target spectrum: {problem}")
    return normalise(y, "area") * AC_MEAN_AREA
