"""Library of spectra on the model grid and of measured scans: the public names, each defined in the module of its
job and importable from here.

- ``data.grid``: the energy grid (``E0``, ``DE``, :func:`energy_grid`), :func:`validate_spectrum`,
  :func:`normalise`, :func:`broaden`, pi* measures, :func:`store_spectra`;
- ``data.spectra_io``: :func:`read_spectrum` (files of energy and intensity columns);
- ``data.resampling``: :func:`resample` onto the grid, the pre-edge (:func:`subtract_pre_edge`);
- ``data.calibration``: :func:`prepare_target` (a guidance target read as DFT-like) and :func:`check_calibration`;
- ``data.measurement``: the model of a measurement (NEXAFS normalisation, broadening, edge step, offset) that
  measured scans are fitted with (:func:`fit_spectrum`).
"""

from __future__ import annotations

from .calibration import check_calibration, prepare_target
from .grid import (AC_MEAN_AREA, DE, DE_STD, E0, E0_STD, MEASURED_NEG_TOL, NEG_TOL, PI_STAR_WINDOW, NormMethod,
                   broaden, energy_grid, normalise, pi_star_intensity, pi_star_peak, store_spectra, validate_spectrum,
                   window_peak)
from .components import EDGE_STEP_TOL
from .resampling import (LATE_PRE_EDGE_END, LATE_START_SPAN, LATEST_SCAN_START, PRE_EDGE_END, PRE_EDGE_SLOPE_SPAN,
                         PRE_EDGE_TOL, pre_edge, pre_edge_level, resample, subtract_pre_edge)
from .spectra_io import SCAN_JITTER, read_spectrum

__all__ = ["AC_MEAN_AREA", "DE", "DE_STD", "E0", "E0_STD", "EDGE_STEP_TOL", "LATE_PRE_EDGE_END", "LATE_START_SPAN",
           "LATEST_SCAN_START", "MEASURED_NEG_TOL", "NEG_TOL", "NormMethod", "PI_STAR_WINDOW", "PRE_EDGE_END",
           "PRE_EDGE_SLOPE_SPAN", "PRE_EDGE_TOL", "SCAN_JITTER", "broaden", "check_calibration", "energy_grid",
           "normalise", "pi_star_intensity", "pi_star_peak", "pre_edge", "pre_edge_level", "prepare_target",
           "read_spectrum", "resample", "store_spectra", "subtract_pre_edge", "validate_spectrum", "window_peak"]
