"""The sp / sp2 / sp3 components and their non-negative fit to a spectrum on the model grid.

The cell-mean spectrum is, to first order, the CN-weighted mean of per-coordination spectra, so non-negative least
squares on the mean DFT spectra of 2-, 3- and 4-coordinated carbons (training split only) returns CN2 / CN3 / CN4
(their weights over their sum). Two non-negative nuisance columns ride along, an arctan edge step at 290 eV and a
constant. Also here: the energy-offset estimate against the per-density DFT spectra, the edge-step level and the
poor-fit message, which the calibration checks (``data.calibration``) and the unmixing (``data.unmixing``) share.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import NamedTuple

import numpy as np
from ase import Atoms
from scipy.optimize import nnls

from ..checks import warn_caller
from .datasets import coordination_counts, density_of
from .grid import broaden, energy_grid

#: coordination classes of the components, in order
KEYS = ("CN2", "CN3", "CN4")
COMPONENTS_FILE = "cn_spectra.npz"
#: mean spectra of the training cells per density (0.1 g/cm3), the extra basis of :func:`estimate_energy_shift`
DENSITY_SPECTRA_FILE = "density_spectra.csv"
#: per-density CN components (the basis of a measured scan's fit, ``data.measurement``)
STRATIFIED_FILE = "cn_density_spectra.npz"
#: a CN class of one density enters that basis with at least this many atoms (fewer: its mean is noise)
MIN_CLASS_ATOMS = 30
#: the mean DFT spectrum of graphite (reference scale), the reference of the pi*-based sp2 estimate
GRAPHITE_SPECTRUM_FILE = "graphite_spectrum.csv"
#: broadening (eV FWHM) of the DFT spectra that :func:`dft_onset_level` allows a measurement
ONSET_BROADENING = 2.0
#: relative misfit above which an unmixing is reported as unreliable (DFT a-C cells: 0.03-0.09)
POOR_FIT = 0.15
#: centre and width (eV) of the arctan edge step fitted alongside the components (the C K-edge continuum onset)
EDGE_STEP_ENERGY = 290.0
EDGE_STEP_WIDTH = 1.0
#: shifts (eV) of the target's energies tried by :func:`estimate_energy_shift`: +-this, in ``SHIFT_STEP`` steps
MAX_ENERGY_SHIFT = 2.5
SHIFT_STEP = 0.05
#: an estimated energy offset beyond this (eV) warns (:func:`energy_offset`): the 25 DFT cell means give 0.05 at most
#: (also 0.6 eV broader with 0.3 % noise), 0.3 with their own density left out of the basis (3.5 g/cm3)
ENERGY_SHIFT_TOL = 0.4
#: ... and only when it lowers the misfit by more than this fraction (1 - best / unshifted): offsets of 0.6-2 eV on
#: the DFT cell means lower it by 0.68-0.96 (0.23 and more with their density left out); diamond's -0.6 eV by 0.05
SHIFT_GAIN_TOL = 0.2
#: an edge step (the arctan fitted by :func:`~ase_xanesgen.data.components.unmix_prepared`) above this fraction of a
#: target's maximum warns: the 25 DFT a-C cell means fit 0.0103 at most (they have no continuum step), a 5 % step
#: reads as 0.037-0.055, a 30 % one as 0.23-0.26 (the level is over the stepped target's own maximum)
EDGE_STEP_TOL: float = 0.04


class Unmixing(NamedTuple):
    """One fit of a model-grid target: fractions, relative misfit, and the fitted edge step and constant (in the
    target's units: the step's height above its pre-edge, the constant everywhere)."""

    fractions: dict[str, float]
    misfit: float
    edge_step: float
    constant: float


def coordination_spectra(cells: list[Atoms]) -> np.ndarray:
    """``[3, 100]`` mean per-atom spectra (``arrays["xanes"]``) of the 2-, 3- and 4-coordinated carbons."""
    spectra = np.concatenate([a.arrays["xanes"] for a in cells])
    cn = np.concatenate([coordination_counts(a) for a in cells])
    missing = [k for k, c in zip(KEYS, (2, 3, 4)) if not np.any(cn == c)]
    if missing:
        raise ValueError(f"no atoms with {missing} in these cells: cannot build their component spectra")
    return np.stack([spectra[cn == c].mean(axis=0) for c in (2, 3, 4)])


def stratified_spectra(cells: list[Atoms]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mean per-atom spectra ``[k, 100]`` of each CN class (2, 3, 4) at each density (0.1 g/cm3) holding at least
    ``MIN_CLASS_ATOMS`` such atoms, their class index into ``KEYS`` ``[k]`` and their density ``[k]`` (g/cm3).

    A two-fold carbon of a 1.5 g/cm3 network absorbs unlike one of a 2.5 g/cm3 one (other neighbours, other bond
    lengths), so one mean per class is not the exact basis of a cell mean: the held-out cells as experiment-like
    scans unmix within 0.02-0.05 on this basis, 0.02-0.08 on the three class means."""
    density = np.array([round(density_of(a), 1) for a in cells])
    spectra, classes, levels = [], [], []
    for d in np.unique(density):
        group = [a for a, g in zip(cells, density) if g == d]
        per_atom = np.concatenate([a.arrays["xanes"] for a in group])
        cn = np.concatenate([coordination_counts(a) for a in group])
        for k, c in enumerate((2, 3, 4)):
            if np.sum(cn == c) >= MIN_CLASS_ATOMS:
                spectra.append(per_atom[cn == c].mean(axis=0))
                classes.append(k)
                levels.append(d)
    return np.array(spectra), np.array(classes), np.array(levels)


def density_spectra(cells: list[Atoms]) -> tuple[np.ndarray, np.ndarray]:
    """Densities ``[k]`` (g/cm3, to 0.1) and the mean cell spectra ``[k, 100]`` of the cells at each."""
    density = np.array([round(density_of(a), 1) for a in cells])
    means = np.array([a.arrays["xanes"].mean(axis=0) for a in cells])
    levels = np.unique(density)
    return levels, np.stack([means[density == d].mean(axis=0) for d in levels])


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)  # cached: one caller must not change what the next one reads
    return array


@functools.cache
def shipped_coordination_spectra() -> np.ndarray:
    """The ``[3, 100]`` components shipped with the package (built from the training split); read once."""
    path = resources.files("ase_xanesgen.weights").joinpath(COMPONENTS_FILE)
    with resources.as_file(path) as p, np.load(p) as data:
        return _read_only(data["spectra"])


@functools.cache
def shipped_density_spectra() -> np.ndarray:
    """The ``[5, 100]`` per-density mean spectra shipped with the package (training split); read once."""
    text = resources.files("ase_xanesgen.weights").joinpath(DENSITY_SPECTRA_FILE).read_text()
    return _read_only(np.loadtxt(text.splitlines(), delimiter=",", ndmin=2)[:, 1:])


@functools.cache
def shipped_stratified_spectra() -> tuple[np.ndarray, np.ndarray]:
    """The shipped per-density CN components ``[k, 100]`` and their class indices ``[k]`` (:func:`stratified_spectra`
    of the training split); read once."""
    path = resources.files("ase_xanesgen.weights").joinpath(STRATIFIED_FILE)
    with resources.as_file(path) as p, np.load(p) as data:
        return _read_only(data["spectra"]), _read_only(data["classes"])


@functools.cache
def shipped_graphite_spectrum() -> np.ndarray:
    """The ``[100]`` mean DFT spectrum of graphite shipped with the package (reference intensity scale); read once."""
    text = resources.files("ase_xanesgen.weights").joinpath(GRAPHITE_SPECTRUM_FILE).read_text()
    return _read_only(np.loadtxt(text.splitlines(), delimiter=","))


def dft_onset_level(window: tuple[float, float], fwhm: float = ONSET_BROADENING) -> float:
    """The highest mean intensity over ``window`` (eV), over their maximum, of the per-density DFT spectra broadened
    by ``fwhm``: what a clean scan may hold there (above 282 eV the pi* onset of the sp-rich cells begins)."""
    energy = np.linspace(window[0], window[1], 11)
    spectra = broaden(shipped_density_spectra(), fwhm)
    return max(float(np.interp(energy, energy_grid(), y).mean() / y.max()) for y in spectra)


def edge_step_columns() -> np.ndarray:
    """``[2, 100]`` nuisance columns: an arctan step from 0 to 1 at ``EDGE_STEP_ENERGY``, and a constant 1."""
    grid = energy_grid()
    step = 0.5 + np.arctan((grid - EDGE_STEP_ENERGY) / EDGE_STEP_WIDTH) / np.pi
    return np.stack([step, np.ones_like(grid)])


def _nnls(columns: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Non-negative weights of ``columns [k, n]`` best matching ``y [n]``, and the relative L2 misfit."""
    w, norm = nnls(columns.T, y)
    return w, float(norm / np.linalg.norm(y))


def unmix_prepared(y: np.ndarray, components: np.ndarray | None = None) -> Unmixing:
    """Unmix a target already on the model grid (``prepare_target``'s output), without checking it again."""
    comp = shipped_coordination_spectra() if components is None else np.asarray(components, dtype=float)
    if comp.shape != (len(KEYS), y.shape[0]):
        raise ValueError(f"components must have shape ({len(KEYS)}, {y.shape[0]}), got {comp.shape}")
    w, misfit = _nnls(np.vstack([comp, edge_step_columns()]), y)
    cn = w[:len(KEYS)]
    if not cn.sum() > 0:
        raise ValueError("the target matches no mix of the sp / sp2 / sp3 components (all weights 0)")
    fractions = {k: float(v) for k, v in zip(KEYS, cn / cn.sum())}
    return Unmixing(fractions, misfit, float(w[-2]), float(w[-1]))


def unmix_warned(y: np.ndarray, components: np.ndarray | None = None, advice: str = "") -> Unmixing:
    """:func:`unmix_prepared`, warning (:func:`poor_fit_message`, with ``advice``) when the misfit is above
    ``POOR_FIT``: the fractions of a spectrum that is no mix of the components mean little."""
    fit = unmix_prepared(y, components)
    if fit.misfit > POOR_FIT:
        warn_caller(poor_fit_message(fit.fractions, fit.misfit, y, advice))
    return fit


def shifted(y: np.ndarray, shift: float) -> np.ndarray:
    """A model-grid spectrum ``[100]`` with ``shift`` (eV) added to its energies, back on the grid (ends flat)."""
    grid = energy_grid()
    return np.interp(grid, grid + shift, y)


def estimate_energy_shift(y: np.ndarray) -> tuple[float, float]:
    """The shift (eV, within +-``MAX_ENERGY_SHIFT``) to add to a model-grid target's energies that best aligns
    it with the DFT spectra, and how much it lowers the misfit (1 - best / unshifted; 0: no shift helps).

    The misfit is that of a non-negative mix of the CN components, the per-density mean DFT spectra and the
    edge-step columns: the density spectra keep the denser cells' higher-lying sp3 edge from reading as an offset
    (with the CN components alone the 3.5 g/cm3 cell means want +0.3 eV). Unlike the pi* peak it works on
    sp3-rich spectra and with an edge step.
    """
    y = np.asarray(y, dtype=float)
    columns = np.vstack([shipped_coordination_spectra(), shipped_density_spectra(), edge_step_columns()])
    shifts = np.linspace(-MAX_ENERGY_SHIFT, MAX_ENERGY_SHIFT, 2 * round(MAX_ENERGY_SHIFT / SHIFT_STEP) + 1)
    misfits = np.array([_nnls(columns, shifted(y, s))[1] for s in shifts])
    unshifted = misfits[len(shifts) // 2]
    ties = np.flatnonzero(misfits <= misfits.min() * (1 + 1e-9) + 1e-15)  # a flat misfit: the smallest shift
    best = ties[np.argmin(np.abs(shifts[ties]))]
    return float(shifts[best]), float(1.0 - misfits[best] / unshifted) if unshifted > 0 else 0.0


def subtract_edge_step(y: np.ndarray) -> np.ndarray:
    """A model-grid target ``[100]`` less its fitted edge step and constant (:func:`unmix_prepared`), clipped at 0.

    The unmixed fractions need no such help; the spectrum term of the guide (``XANESGuide``) does: it compares the
    whole target with DFT-like predictions, which have no continuum step. The constant takes a flat background
    with it; a sloped one needs ``data.spectra.subtract_pre_edge`` first.
    """
    y = np.asarray(y, dtype=float)
    fit = unmix_prepared(y)
    return np.clip(y - np.array([fit.edge_step, fit.constant]) @ edge_step_columns(), 0.0, None)


def energy_offset(y: np.ndarray) -> float | None:
    """The shift (eV) to add to a model-grid target's energies when :func:`estimate_energy_shift` finds one beyond
    ``ENERGY_SHIFT_TOL`` that lowers the misfit by more than ``SHIFT_GAIN_TOL``; else ``None``."""
    shift, gain = estimate_energy_shift(y)
    return shift if abs(shift) > ENERGY_SHIFT_TOL and gain > SHIFT_GAIN_TOL else None


def edge_step_level(y: np.ndarray) -> float:
    """Height of the edge step fitted in a model-grid target (:func:`unmix_prepared`) over the target's maximum."""
    return unmix_prepared(y).edge_step / float(np.max(y))


def calibration_findings(y: np.ndarray) -> tuple[float | None, float]:
    """A model-grid target's energy offset (:func:`energy_offset`, ``None`` for none) and its edge step over its
    maximum (:func:`edge_step_level`), the step judged after undoing the offset, which a step fit would partly
    absorb: what ``data.spectra.check_calibration`` and :func:`likely_causes` report."""
    shift = energy_offset(y)
    return shift, edge_step_level(y if shift is None else shifted(y, shift))


def likely_causes(y: np.ndarray) -> list[str]:
    """What the calibration checks see in a model-grid target that spoils its fit, in short (for messages)."""
    causes = []
    shift, step = calibration_findings(y)
    if shift is not None:
        causes.append(f"an energy offset (shift its energies by {shift:+.2f} eV: --energy-shift)")
    if step > EDGE_STEP_TOL:
        causes.append("an edge step (--subtract-edge-step)")
    return causes


def poor_fit_message(fractions: dict[str, float], misfit: float, y: np.ndarray, advice: str = "") -> str:
    """The warning for a misfit above ``POOR_FIT``: the rounded fractions, the likelier causes the calibration
    checks see in the model-grid target ``y`` (:func:`likely_causes`), then ``advice`` (else, when causes are named)."""
    shown = ", ".join(f"{k} {v:.2f}" for k, v in fractions.items())
    causes = likely_causes(y)
    text = (f"the target spectrum is a poor mix of the sp/sp2/sp3 components (relative misfit {misfit:.2f} > "
            f"{POOR_FIT}): the unmixed fractions ({shown}) may mislead")
    if causes:
        text += f"; likelier causes than the bonding: {' and '.join(causes)}"
    if advice:
        text += f"; {'else ' if causes else ''}{advice}"
    return text
