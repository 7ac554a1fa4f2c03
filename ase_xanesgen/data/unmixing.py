"""Coordination fractions from a carbon K-edge spectrum by linear unmixing into sp / sp2 / sp3 components.

The classic reading of a-C XANES (the pi* share gives the sp2 fraction) made quantitative: the cell-mean
spectrum is, to first order, the CN-weighted mean of per-coordination spectra, so non-negative least squares
on the mean DFT spectra of 2-, 3- and 4-coordinated carbons (training split only) returns CN2 / CN3 / CN4
(``data.components``). A DFT-like spectrum (on the model grid, no energy axis) is unmixed as it is, with an arctan
edge step and a constant riding along: on the held-out DFT cells this recovers the fractions within 0.05
(``tests/test_unmixing.py``; all 25 cells within 0.08). A measured scan (a file, or intensities with their
energies) is fitted through the model of the measurement (``data.measurement``: pre-edge line, edge-jump
normalisation, broadening growing above the edge, edge step, energy offset, the C-H window left out).

    python -m ase_xanesgen.data.unmixing [--data ../shared/data/a-C]   # rebuild the shipped components
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Literal

import numpy as np

from ..checks import warn_caller
from .calibration import prepare_target
from .components import (COMPONENTS_FILE, DENSITY_SPECTRA_FILE, EDGE_STEP_ENERGY, EDGE_STEP_WIDTH,
                         ENERGY_SHIFT_TOL, GRAPHITE_SPECTRUM_FILE, KEYS, POOR_FIT, SHIFT_GAIN_TOL, STRATIFIED_FILE,
                         Unmixing,
                         calibration_findings, coordination_spectra, density_spectra, dft_onset_level,
                         edge_step_columns, edge_step_level, energy_offset, estimate_energy_shift, likely_causes,
                         poor_fit_message, shifted, shipped_coordination_spectra, shipped_density_spectra,
                         shipped_graphite_spectrum, shipped_stratified_spectra, stratified_spectra, subtract_edge_step,
                         unmix_prepared, unmix_warned)
from .datasets import load_dataset, load_reference, split_by_topology
from .measurement import SpectrumFit, fit_spectrum

__all__ = ["COMPONENTS_FILE", "DENSITY_SPECTRA_FILE", "EDGE_STEP_ENERGY", "EDGE_STEP_WIDTH", "ENERGY_SHIFT_TOL",
           "GRAPHITE_SPECTRUM_FILE", "KEYS", "POOR_FIT", "SHIFT_GAIN_TOL", "STRATIFIED_FILE", "Measurement", "Unmixing",
           "calibration_findings", "coordination_spectra", "density_spectra", "dft_onset_level", "edge_step_columns",
           "edge_step_level", "energy_offset", "estimate_energy_shift", "likely_causes", "measurement_for",
           "poor_fit_message", "shifted", "shipped_coordination_spectra", "shipped_density_spectra",
           "shipped_graphite_spectrum", "shipped_stratified_spectra", "stratified_spectra",
           "subtract_edge_step", "unmix_coordination", "unmix_prepared", "unmix_warned"]

#: how a target is read: ``"auto"`` (a file or intensities with energies: ``"measured"``; a model-grid array:
#: ``"dft"``), ``"measured"`` (:func:`~ase_xanesgen.data.measurement.fit_spectrum`), ``"dft"`` (as it is)
Measurement = Literal["auto", "measured", "dft"]


def measurement_for(target, energy, measurement: Measurement) -> str:
    """``"measured"`` or ``"dft"``: how ``target`` (with ``energy``) is read under ``measurement``."""
    if measurement not in ("auto", "measured", "dft"):
        raise ValueError(f"measurement must be 'auto', 'measured' or 'dft', got {measurement!r}")
    if measurement != "auto":
        return measurement
    has_axis = isinstance(target, (str, os.PathLike, tuple)) or energy is not None
    return "measured" if has_axis else "dft"


def unmix_coordination(target: np.ndarray | str | os.PathLike | tuple[np.ndarray, np.ndarray],
                       energy: np.ndarray | None = None, *, components: np.ndarray | None = None,
                       return_residual: bool = False, measurement: Measurement = "auto",
                       return_fit: bool = False) -> dict[str, float] | tuple[dict[str, float], float] | SpectrumFit:
    """CN2 / CN3 / CN4 fractions (non-negative, summing to 1) whose mixed components best match ``target``.

    ``target`` is a model-grid array ``[100]``, intensities ``[n]`` on ``energy`` ``[n]`` (eV), an ``(energy,
    intensity)`` pair, or a file. ``measurement`` (``"auto"``): a file or a scan with energies is read as measured
    and fitted through the measurement model (:func:`~ase_xanesgen.data.measurement.fit_spectrum`: normalisation,
    broadening, edge step, offset, C-H window out; it warns when the fit is unreliable and says why); a model-grid
    array is read as DFT-like (``"dft"``: brought to the a-C area scale by ``prepare_target``, whose calibration
    warnings come from there, and unmixed with an edge step and a constant; above ``POOR_FIT`` it warns).
    ``return_residual`` also returns the relative L2 misfit (DFT-like: 0.03-0.09 on the DFT cells; measured: the
    fit window's). ``return_fit`` returns the whole :class:`~ase_xanesgen.data.measurement.SpectrumFit` (measured
    only: fractions with uncertainties, nuisance parameters, the pi* estimate). Raises ``ValueError`` on bad input
    (NaN, wrong shapes, another edge, a scan missing the pi* region, pure noise).
    """
    if measurement_for(target, energy, measurement) == "measured":
        fit = fit_spectrum(target, energy, components=components)
        if not fit.reliable:
            warn_caller(f"the unmixed fractions ({', '.join(f'{k} {v:.2f}' for k, v in fit.fractions.items())}) may "
                        f"mislead: {fit.reason}")
        if return_fit:
            return fit
        return (fit.fractions, fit.misfit) if return_residual else fit.fractions
    if return_fit:
        raise ValueError("return_fit needs a measured scan (measurement='measured' and an energy axis)")
    fit = unmix_warned(prepare_target(target, energy), components)
    return (fit.fractions, fit.misfit) if return_residual else fit.fractions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="a-C data folder (default ../shared/data/a-C)")
    args = parser.parse_args(argv)
    train, _ = split_by_topology(load_dataset(args.data))
    out = Path(__file__).resolve().parents[1] / "weights"
    np.savez(out / COMPONENTS_FILE, spectra=coordination_spectra(train), keys=np.array(KEYS),
             cells=np.array([a.info["name"] for a in train]))
    levels, spectra = density_spectra(train)
    np.savetxt(out / DENSITY_SPECTRA_FILE, np.column_stack([levels, spectra]), delimiter=",", fmt="%.9g",
               header="density g/cm3, then the mean DFT spectrum (100 model-grid points) of the training cells "
               "at that density (python -m ase_xanesgen.data.unmixing)")
    spectra, classes, levels = stratified_spectra(train)
    np.savez(out / STRATIFIED_FILE, spectra=spectra, classes=classes, densities=levels)
    graphite = load_reference("graphite", args.data).arrays["xanes"].mean(axis=0)
    np.savetxt(out / GRAPHITE_SPECTRUM_FILE, graphite, delimiter=",", fmt="%.9g",
               header="mean DFT spectrum of graphite (100 model-grid points, reference scale; python -m "
               "ase_xanesgen.data.unmixing)")
    print(f"wrote {out / COMPONENTS_FILE}, {out / DENSITY_SPECTRA_FILE}, {out / STRATIFIED_FILE} and "
          f"{out / GRAPHITE_SPECTRUM_FILE} from "
          f"{len(train)} training cells and the graphite reference")


if __name__ == "__main__":
    main()
