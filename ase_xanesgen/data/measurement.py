"""The model of a measurement between the DFT-trained spectra and a measured carbon K-edge NEXAFS scan.

A measured scan differs from a cell-mean DFT spectrum in ways that have nothing to do with the bonding:

- a pre-edge background (other edges, detector, substrate): a line fitted below 280 eV is subtracted;
- an arbitrary intensity scale: the scan is normalised to its edge jump (mean over ``POST_EDGE`` = 1);
- core-hole lifetime and instrument broadening that grows above the edge: a Gaussian of FWHM
  ``w(E) = w0 + slope * max(E - BROADENING_ONSET, 0)`` (eV, on top of the DFT's 0.2 eV), as in FEFF/XSpectra;
- the atomic continuum: an arctan edge step of height ``h`` at ``E_step`` (eV), width ``gamma`` (eV);
- an energy offset ``delta`` (eV; a feature at DFT energy ``E`` is measured at ``E + delta``) and a constant;
- C-H and C=O resonances at 287-289 eV that pure a-C lacks: the window ``EXCLUDE`` is left out of the fit.

``model(E) = sum_k a_k [B_w C_k](E - delta) + h * step(E; E_step, gamma) + c`` with the per-density CN2 / CN3 / CN4
components ``C_k`` (``data.components.stratified_spectra``), non-negative weights ``a_k`` (a class's fraction: its
weights' sum over all) and ``h``, solved by
non-negative least squares inside a bounded least-squares fit of ``(delta, w0, slope, E_step, gamma)``. The noise
model is white noise of one level, estimated from the scan's point-to-point scatter. Uncertainties come from a
bootstrap: noise re-drawn at that level, the residual added back in blocks with random signs, and the fit window's
ends moved. :func:`fit_spectrum` returns it all as a :class:`SpectrumFit`; :func:`simulate_scan` makes the
forward direction (a DFT spectrum as such a scan) for tests, benchmarks and examples.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os

import numpy as np
from scipy.optimize import least_squares, nnls

from ..checks import whole_number
from .components import KEYS, shipped_graphite_spectrum, shipped_stratified_spectra
from .datasets import N_ENERGY
from .grid import DE, energy_grid, validate_spectrum
from .resampling import PRE_EDGE_END, PRE_EDGE_SLOPE_SPAN, _cell_means, pre_edge
from .spectra_io import _as_energy, _ascending, read_spectrum

#: energy (eV) above which the broadening grows (the C K-edge ionisation threshold, ~290 eV)
BROADENING_ONSET = 290.0
#: the window (eV) whose mean after the pre-edge line is the edge jump (set to 1 by the normalisation)
POST_EDGE = (305.0, 315.0)
#: default fit range (eV) of a measured scan, and the window left out of it: C-H sigma* / Rydberg (287.5-288 eV) and
#: C=O pi* (288.5-289 eV) resonances. The step's rise above 289 eV stays in: with 287-290 eV left out, the step's
#: position and width traded against the fractions (errors up to 0.07 on the held-out cells, 0.03 with 287-289)
FIT_RANGE = (281.0, 315.0)
EXCLUDE = ((287.0, 289.0),)
#: bounds of the nonlinear parameters: offset (eV), w0 (eV FWHM), slope (eV/eV), step energy (eV), step width (eV)
PARAMETERS = ("energy_offset", "broadening", "broadening_slope", "edge_step_energy", "edge_step_width")
LOWER = np.array([-2.5, 0.0, 0.0, 288.5, 0.3])
UPPER = np.array([2.5, 3.0, 0.5, 292.5, 3.0])
#: Gaussian priors (mean, standard deviation) of the same: typical NEXAFS calibration, resolution, lifetime growth
#: and continuum onset. A nuisance parameter moves from its prior only where the data demand it, so the components'
#: own misfit (they are not the exact basis of a cell) is not absorbed by broadening or step into wrong fractions
START = np.array([0.0, 0.5, 0.1, 290.5, 1.0])
PRIOR_SIGMA = np.array([0.7, 0.5, 0.1, 0.7, 0.5])
#: the residual's scale (edge jumps) below which the noise is not trusted: the components' own misfit on DFT cells
MODEL_SIGMA = 0.02
#: offsets (eV) tried before the local fit (the misfit over the offset has local minima)
OFFSET_SCAN = np.arange(-2.5, 2.51, 0.25)
#: the scan must reach into the pi* region (eV) and past the sigma* region
PI_STAR_REGION = (284.0, 286.5)
SIGMA_STAR_END = 300.0
#: an edge jump below this many standard errors of the post-edge mean (or below one point's noise) is no edge: pure
#: noise, a blank, a wrong channel
MIN_EDGE_SNR = 10.0
#: relative misfit (RMS residual over RMS data, fit window) above which a fit is called poor; the held-out DFT cells
#: as experiment-like scans fit at 0.003-0.01 (``benchmarks/measured_spectra.py``); two 30 % K L-edge peaks at
#: 297-300 eV on d2.5_4 give 0.065, graphite and diamond 0.10-0.12
MEASURED_POOR_FIT = 0.04
#: a fraction's uncertainty above this makes the fractions unreliable for guidance
MAX_UNCERTAINTY = 0.15
#: the components' own error (1 sigma, fraction units): held-out DFT cells as scans with the true nuisance parameters
#: unmix within 0.01-0.05 on the per-density components; added in quadrature to the bootstrap spread
BASIS_SIGMA = 0.03
#: the reported uncertainty is this many standard deviations (a ~95 % interval)
COVERAGE_SIGMAS = 2.0
#: windows (eV) of the classic pi*-based sp2 estimate: pi* area over an area above the C-H window
PI_STAR_WINDOW = (284.0, 286.5)
SIGMA_WINDOW = (290.0, 310.0)
#: FWHM (eV) of the resolution floor of the broadening operator (the DFT spectra's own grid; keeps the kernel sampled)
FLOOR_FWHM = 0.2
#: where the edges of other elements lie (eV), for the message on a scan far from the carbon K-edge
OTHER_EDGES = (("a boron K-edge (~188 eV)", 170.0, 215.0), ("a calcium L-edge (~350 eV)", 340.0, 365.0),
               ("an N K-edge (~400 eV)", 380.0, 440.0), ("a titanium L-edge (~455 eV)", 445.0, 480.0),
               ("an O K-edge (~530 eV)", 515.0, 580.0), ("an F K-edge (~685 eV)", 670.0, 720.0))
#: step (eV) of the fine axis the broadening acts on (a quarter of a grid step)
FINE_STEP = 0.1


@functools.cache
def _fine_axis() -> tuple[np.ndarray, np.ndarray]:
    """A fine energy axis (eV) reaching 10 eV past the model grid, and the matrix ``[m, 100]`` that interpolates a
    model-grid spectrum onto it (zero below the grid, the last value above: the DFT spectra start at zero and end
    decaying slowly)."""
    grid = energy_grid()
    fine = np.arange(grid[0] - 10.0, grid[-1] + 10.0, FINE_STEP)
    eye = np.eye(N_ENERGY)
    interp = np.stack([np.interp(fine, grid, eye[k], left=0.0, right=eye[k][-1]) for k in range(N_ENERGY)], axis=1)
    interp.setflags(write=False)
    return fine, interp


def broadening_width(energy: np.ndarray, broadening: float, slope: float) -> np.ndarray:
    """Extra FWHM (eV) at DFT energies ``energy``: ``broadening + slope * max(energy - BROADENING_ONSET, 0)``."""
    return broadening + slope * np.maximum(np.asarray(energy, dtype=float) - BROADENING_ONSET, 0.0)


def response_matrix(energy: np.ndarray, energy_offset: float, broadening: float, slope: float) -> np.ndarray:
    """``[n, 100]``: a model-grid DFT spectrum as measured at ``energy`` (``[n]`` eV): moved up by ``energy_offset``
    (eV) and broadened by a Gaussian of FWHM ``broadening_width`` (in quadrature with ``FLOOR_FWHM``), rows
    normalised so a flat spectrum stays flat."""
    fine, interp = _fine_axis()
    source = np.asarray(energy, dtype=float) - energy_offset
    fwhm = np.sqrt(broadening_width(source, broadening, slope) ** 2 + FLOOR_FWHM**2)
    sigma = fwhm / math.sqrt(8.0 * math.log(2.0))
    kernel = np.exp(-0.5 * ((fine[None, :] - source[:, None]) / sigma[:, None]) ** 2)
    kernel /= kernel.sum(axis=1, keepdims=True)
    return kernel @ interp


def edge_step(energy: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Arctan step from 0 to 1 at ``centre`` (eV), ``width`` (eV) wide, at ``energy`` (eV)."""
    return 0.5 + np.arctan((np.asarray(energy, dtype=float) - centre) / width) / np.pi


def simulate_scan(spectrum: np.ndarray, energy: np.ndarray | None = None, *, energy_offset: float = -0.3,
                  broadening: float = 0.6, broadening_slope: float = 0.15, edge_step_height: float = 0.4,
                  edge_step_energy: float = 290.5, edge_step_width: float = 1.0,
                  background: tuple[float, float] = (0.1, -0.002), noise: float = 0.005, scale: float = 1000.0,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A model-grid DFT spectrum ``[100]`` as a measured scan: ``(energy [n] eV, intensity [n])``.

    Default ``energy``: 270.7-320.7 eV in 0.2 eV steps. The spectrum is moved by ``energy_offset`` (eV), broadened
    by ``broadening`` + ``broadening_slope`` per eV above ``BROADENING_ONSET`` (FWHM, eV), given an arctan edge
    step of ``edge_step_height`` times its maximum at ``edge_step_energy`` (eV, ``edge_step_width`` wide), a
    background ``b0 + b1 * (E - 270)`` (``background``, in units of the spectrum's maximum), white noise of
    ``noise`` times the maximum (``seed``), and multiplied by ``scale``. Raises ``ValueError`` on a bad spectrum.
    """
    y = validate_spectrum(spectrum, name="spectrum")
    if y.ndim != 1:
        raise ValueError(f"spectrum: expected one spectrum of shape ({N_ENERGY},), got {y.shape}")
    energy = np.arange(270.7, 320.7 + 1e-9, 0.2) if energy is None else np.asarray(energy, dtype=float)
    peak = float(y.max())
    clean = response_matrix(energy, energy_offset, broadening, broadening_slope) @ y
    clean += edge_step_height * peak * edge_step(energy, edge_step_energy, edge_step_width)
    clean += peak * (background[0] + background[1] * (energy - 270.0))
    rng = np.random.default_rng(seed)
    return energy, scale * (clean + noise * peak * rng.standard_normal(energy.shape))


@dataclasses.dataclass
class SpectrumFit:
    """A measured scan fitted by the measurement model (:func:`fit_spectrum`).

    Attributes:
        fractions: CN2 / CN3 / CN4 (sp / sp2 / sp3), summing to 1.
        uncertainty: per key, the half-width of a ~95 % interval (``COVERAGE_SIGMAS`` standard deviations of the
            bootstrap spread and the components' own error ``BASIS_SIGMA``, in quadrature).
        nuisance: fitted ``energy_offset`` (eV), ``broadening`` (eV FWHM at the edge), ``broadening_slope``
            (eV/eV), ``edge_step_energy`` and ``edge_step_width`` (eV), ``edge_step`` and ``constant`` (in edge
            jumps), ``scale`` (sum of the component weights, edge jumps per a-C training-scale unit), and from the
            normalisation ``edge_jump`` (raw units), ``pre_edge_slope`` (raw units per eV), ``noise`` (edge jumps).
        misfit: RMS residual over RMS data within the fit window.
        pi_star_sp2: the classic pi* estimate and its uncertainty: the pi* area over the ``SIGMA_WINDOW`` area,
            step and constant removed, over graphite's under the same model: the sp2 fraction when all else is sp3;
            an sp carbon has two pi* orbitals, so it estimates ``2 CN2 + CN3`` (:meth:`SpectrumFit.pi_bonds`).
        reliable: False when the misfit exceeds ``MEASURED_POOR_FIT`` or an uncertainty ``MAX_UNCERTAINTY``;
            ``reason`` says which.
        energy: ``[100]`` model-grid energies (eV); ``data``, ``model`` ``[100]`` (edge jumps, NaN where the scan
            does not reach); ``components`` ``[3, 100]`` each component's weighted contribution; ``mask`` ``[100]``
            the points fitted.
    """

    fractions: dict[str, float]
    uncertainty: dict[str, float]
    nuisance: dict[str, float]
    misfit: float
    pi_star_sp2: tuple[float, float]
    reliable: bool
    reason: str
    energy: np.ndarray
    data: np.ndarray
    model: np.ndarray
    components: np.ndarray
    mask: np.ndarray
    _theta: np.ndarray = dataclasses.field(repr=False)

    def response(self) -> tuple[np.ndarray, np.ndarray]:
        """``(R [100, 100], b [100])``: a model-grid DFT mean spectrum ``y`` (a-C training scale) as this scan
        measures it on the grid is ``R @ y + b`` (the fitted scale, offset and broadening in ``R``; step and
        constant in ``b``), in edge jumps."""
        offset, broadening, slope, centre, width = self._theta
        grid = energy_grid()
        r = self.nuisance["scale"] * response_matrix(grid, offset, broadening, slope)
        b = self.nuisance["edge_step"] * edge_step(grid, centre, width) + self.nuisance["constant"]
        return r, b

    def pi_bonds(self) -> float:
        """``2 CN2 + CN3`` of the unmixed fractions: pi orbitals per atom against graphite's one, what the pi*
        estimate measures."""
        return 2.0 * self.fractions["CN2"] + self.fractions["CN3"]

    def summary(self) -> str:
        """The fit as lines of text (fractions with uncertainty, the pi* estimate, nuisance parameters, misfit)."""
        names = {"CN2": "sp  (CN2)", "CN3": "sp2 (CN3)", "CN4": "sp3 (CN4)"}
        lines = [f"{names[k]}: {v:.3f} +- {self.uncertainty[k]:.3f}" for k, v in self.fractions.items()]
        pi, pi_err = self.pi_star_sp2
        lines.append(f"pi* estimate (pi* {PI_STAR_WINDOW[0]:g}-{PI_STAR_WINDOW[1]:g} eV over {SIGMA_WINDOW[0]:g}-"
                     f"{SIGMA_WINDOW[1]:g} eV, against graphite): {pi:.3f} +- {pi_err:.3f}, the sp2 fraction if there "
                     f"is no sp; from the unmixing 2 sp + sp2 = {self.pi_bonds():.3f}")
        n = self.nuisance
        lines += [f"energy offset {n['energy_offset']:+.2f} eV (features at DFT energy + offset), broadening "
                  f"{n['broadening']:.2f} eV FWHM + {n['broadening_slope']:.3f} eV/eV above {BROADENING_ONSET} eV",
                  f"edge step {n['edge_step']:.3f} at {n['edge_step_energy']:.2f} eV (width "
                  f"{n['edge_step_width']:.2f} eV), constant {n['constant']:+.3f} (edge jumps), edge jump "
                  f"{n['edge_jump']:.4g} (raw units), pre-edge slope {n['pre_edge_slope']:.3g} per eV, noise "
                  f"{n['noise']:.4f}",
                  f"misfit {self.misfit:.3f} (RMS residual over RMS data in the fit window; poor above "
                  f"{MEASURED_POOR_FIT})"]
        if not self.reliable:
            lines.append(f"unreliable: {self.reason}")
        return "\n".join(lines)


def _other_edge(energy: np.ndarray) -> str | None:
    """The name of another absorption edge whose region holds the middle of the scan, if any."""
    middle = 0.5 * (energy[0] + energy[-1])
    for name, low, high in OTHER_EDGES:
        if low <= middle <= high:
            return name
    return None


def check_scan(energy: np.ndarray) -> None:
    """Refuse a scan (sorted energies, eV) that is no carbon K-edge scan or misses its pi* / sigma* regions,
    naming the problem (``ValueError``)."""
    other = _other_edge(energy)
    if other is not None:
        raise ValueError(f"the scan covers {energy[0]:.1f}-{energy[-1]:.1f} eV: this looks like {other}, not the "
                         "carbon K-edge (pi* at 285.4 eV, scans of ~270-320 eV)")
    if energy[-1] < PI_STAR_REGION[0] or energy[0] > SIGMA_STAR_END:
        hint = ""
        if 0.0 < energy[0] and energy[-1] < 1.0:
            hint = ": these look like keV, multiply by 1000"
        elif -50.0 < energy[0] and energy[-1] < 100.0:
            hint = ": these look relative to the edge, add the absolute edge energy (~284 eV at the pi* onset)"
        raise ValueError(f"the scan covers {energy[0]:.2f}-{energy[-1]:.2f} eV, not the carbon K-edge (pi* at "
                         f"285.4 eV){hint}")
    if energy[0] > PI_STAR_REGION[0] - 1.0:
        raise ValueError(f"the scan starts at {energy[0]:.2f} eV, after the pi* onset (~284 eV): it misses the pi* "
                         f"region ({PI_STAR_REGION[0]:g}-{PI_STAR_REGION[1]:g} eV), which tells sp2 from sp3; scan "
                         "from below 280 eV (and check the energy calibration: graphite pi* at 285.4 eV)")
    if energy[-1] < SIGMA_STAR_END:
        raise ValueError(f"the scan stops at {energy[-1]:.2f} eV and misses the sigma* region (to {SIGMA_STAR_END} "
                         "eV) and the edge jump: scan to 315 eV or beyond")


def noise_level(energy: np.ndarray, intensity: np.ndarray) -> float:
    """White-noise level (intensity units) of a scan from its point-to-point scatter: the median absolute second
    difference over 0.6745 (a robust standard deviation), over sqrt(6) (the second difference of white noise has
    variance 6 sigma^2). Features wider than a few steps hardly enter."""
    d2 = np.diff(intensity, 2)
    return float(np.median(np.abs(d2 - np.median(d2))) / 0.6745 / math.sqrt(6.0))


def normalise_scan(energy: np.ndarray, intensity: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """NEXAFS normalisation of a sorted scan: the pre-edge line (below ``PRE_EDGE_END`` eV; a constant when the
    pre-edge spans less than ``PRE_EDGE_SLOPE_SPAN`` eV) subtracted, then divided by the edge jump (the mean over
    ``POST_EDGE``, or over what the scan holds of it). Returns the normalised intensities and
    ``{"edge_jump", "pre_edge_slope", "noise"}`` (noise in edge jumps per point of the scan). Raises ``ValueError``
    when no edge rises above the noise."""
    pre = pre_edge(energy)
    span = energy[pre][-1] - energy[0] if pre.sum() >= 3 else 0.0
    if span < 1.0:
        raise ValueError(f"need at least 1 eV (3 points) of the scan before the pi* onset (below {PRE_EDGE_END} eV) "
                         f"to fit the pre-edge; it starts at {energy[0]:.2f} eV")
    degree = 1 if span >= PRE_EDGE_SLOPE_SPAN else 0
    line = np.polyfit(energy[pre], intensity[pre], degree)
    flat = intensity - np.polyval(line, energy)
    post = (energy >= POST_EDGE[0]) & (energy <= POST_EDGE[1])
    if post.sum() < 3:
        post = energy >= energy[-1] - 5.0
    jump = float(flat[post].mean())
    noise = noise_level(energy, intensity)
    if not jump > max(MIN_EDGE_SNR * noise / math.sqrt(post.sum()), noise):
        raise ValueError(f"no carbon K-edge rises above the noise: the edge jump (mean over {POST_EDGE[0]:g}-"
                         f"{POST_EDGE[1]:g} eV after the pre-edge line) is {jump:.3g} against a point-to-point noise "
                         f"of {noise:.3g}: pure noise, a blank or the wrong detector channel?")
    return flat / jump, {"edge_jump": jump, "pre_edge_slope": float(line[0]) if degree else 0.0,
                         "noise": noise / jump}


def on_grid(energy: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """A sorted scan on the model grid ``[100]``: cell means where the scan is finer than the grid, linear
    interpolation where it is as coarse, NaN outside the scan."""
    grid = energy_grid()
    cell = np.gradient(grid)
    local = np.interp(grid, 0.5 * (energy[1:] + energy[:-1]), np.diff(energy))
    out = np.where(local < 0.75 * cell, _cell_means(energy, intensity, grid, 0.5 * cell),
                   np.interp(grid, energy, intensity))
    return np.where((grid >= energy[0] - 0.5 * cell) & (grid <= energy[-1] + 0.5 * cell), out, np.nan)


def fit_mask(grid_data: np.ndarray, fit_range: tuple[float, float] = FIT_RANGE,
             exclude: tuple[tuple[float, float], ...] = EXCLUDE) -> np.ndarray:
    """The model-grid points fitted: within ``fit_range`` (eV), outside every ``exclude`` window, with data."""
    grid = energy_grid()
    mask = (grid >= fit_range[0]) & (grid <= fit_range[1]) & np.isfinite(grid_data)
    for low, high in exclude:
        mask &= ~((grid >= low) & (grid <= high))
    return mask


class _Problem:
    """The variable-projection fit on the model grid: nonlinear ``theta`` outside, NNLS for the weights inside."""

    def __init__(self, y: np.ndarray, mask: np.ndarray, components: np.ndarray, classes: np.ndarray, sigma: float):
        self.grid = energy_grid()
        self.y, self.mask, self.components, self.classes, self.sigma = y, mask, components, classes, sigma
        self.k = len(components)

    def fractions(self, w: np.ndarray) -> np.ndarray:
        """CN2 / CN3 / CN4 fractions ``[3]`` from the weights of :meth:`solve`."""
        cn = np.bincount(self.classes, weights=w[:self.k], minlength=len(KEYS))
        if not cn.sum() > 0:
            raise ValueError("the scan matches no mix of the sp / sp2 / sp3 components (all weights 0)")
        return cn / cn.sum()

    def nuisance(self, w: np.ndarray) -> tuple[float, float]:
        """The step height and the constant from the weights of :meth:`solve`."""
        return float(w[self.k]), float(w[self.k + 1] - w[self.k + 2])

    def objective(self, theta: np.ndarray, y: np.ndarray | None, mask: np.ndarray | None) -> np.ndarray:
        """Residuals over ``sigma`` and the prior terms."""
        return np.concatenate([self.solve(theta, y, mask)[1] / self.sigma, (theta - START) / PRIOR_SIGMA])

    def columns(self, theta: np.ndarray) -> np.ndarray:
        """``[k + 2, 100]``: the measured components, the edge step, a constant."""
        offset, broadening, slope, centre, width = theta
        measured = self.components @ response_matrix(self.grid, offset, broadening, slope).T
        return np.vstack([measured, edge_step(self.grid, centre, width), np.ones_like(self.grid)])

    def solve(self, theta: np.ndarray, y: np.ndarray | None = None, mask: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """The weights ``[k + 3]`` (components, step, constant up, constant down) and the residual on the mask."""
        y = self.y if y is None else y
        mask = self.mask if mask is None else mask
        cols = self.columns(theta)[:, mask]
        cols = np.vstack([cols, -cols[-1:]])  # a constant of either sign
        w, _ = nnls(cols.T, y[mask], maxiter=50 * cols.shape[0])
        return w, cols.T @ w - y[mask]

    def fit(self, starts: list[np.ndarray], y: np.ndarray | None = None, mask: np.ndarray | None = None
            ) -> np.ndarray:
        """The best ``theta`` from bounded least squares started at each of ``starts``."""
        best, cost = starts[0], np.inf
        for start in starts:
            result = least_squares(self.objective, np.clip(start, LOWER, UPPER),
                                   args=(y, mask), bounds=(LOWER, UPPER), x_scale=np.array([0.3, 0.3, 0.05, 0.5, 0.3]),
                                   diff_step=1e-3, max_nfev=200)
            if result.cost < cost:
                best, cost = result.x, result.cost
        return best

    def starts(self, y: np.ndarray | None = None, mask: np.ndarray | None = None, keep: int = 3) -> list[np.ndarray]:
        """Starting points: the ``keep`` best offsets of ``OFFSET_SCAN`` at the default other parameters."""
        scored = []
        for offset in OFFSET_SCAN:
            theta = START.copy()
            theta[0] = offset
            scored.append((float(np.sum(self.objective(theta, y, mask) ** 2)), offset))
        return [np.r_[offset, START[1:]] for _, offset in sorted(scored)[:keep]]


def pi_star_ratio(energy: np.ndarray, y: np.ndarray) -> float:
    """The pi* area (``PI_STAR_WINDOW``) over the ``SIGMA_WINDOW`` area of ``y`` on ``energy`` (eV)."""
    pi = (energy >= PI_STAR_WINDOW[0]) & (energy <= PI_STAR_WINDOW[1])
    sigma = (energy >= SIGMA_WINDOW[0]) & (energy <= SIGMA_WINDOW[1])
    return float(np.nansum(y[pi]) / np.nansum(y[sigma]))


def _pi_star_estimate(problem: _Problem, theta: np.ndarray, w: np.ndarray, y: np.ndarray) -> float:
    """The pi* ratio of ``y`` (step and constant removed) over graphite's under ``theta``: pi orbitals per atom."""
    offset, broadening, slope, centre, width = theta
    grid = problem.grid
    step, constant = problem.nuisance(w)
    clean = y - step * edge_step(grid, centre, width) - constant
    graphite = response_matrix(grid, offset, broadening, slope) @ shipped_graphite_spectrum()
    return pi_star_ratio(grid, clean) / pi_star_ratio(grid, graphite)


def fit_spectrum(target: str | os.PathLike | tuple[np.ndarray, np.ndarray], energy: np.ndarray | None = None, *,
                 columns: tuple[int, int] | None = None, fit_range: tuple[float, float] = FIT_RANGE,
                 exclude: tuple[tuple[float, float], ...] = EXCLUDE, n_bootstrap: int = 30, seed: int = 0,
                 components: np.ndarray | None = None) -> SpectrumFit:
    """Fit a measured carbon K-edge scan with the measurement model and the sp / sp2 / sp3 components.

    Args:
        target: a spectrum file (:func:`~ase_xanesgen.data.spectra_io.read_spectrum`, ``columns`` as there), an
            ``(energy eV, intensity)`` pair, or intensities ``[n]`` with ``energy`` ``[n]`` (eV).
        fit_range: energies (eV) fitted; ``exclude``: windows (eV) left out (default the C-H / C=O region
            287-289 eV; ``()`` fits it).
        n_bootstrap: bootstrap replicates for the uncertainties (noise, residual blocks, window ends); 0 gives the
            components' own error only. ``seed`` seeds them.
        components: ``[3, 100]`` CN2 / CN3 / CN4 spectra (default: the shipped per-density CN components).

    Returns:
        :class:`SpectrumFit`.

    Raises:
        ValueError: a scan of another edge (an N K-edge near 400 eV, ...), one that misses the pi* or sigma* region,
            one with no edge above its noise (pure noise), NaN/inf values, mismatched shapes, an empty fit window,
            a negative ``n_bootstrap``.
    """
    n_bootstrap = whole_number(n_bootstrap, "n_bootstrap")
    if n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be 0 or more, got {n_bootstrap}")
    if isinstance(target, (str, os.PathLike)):
        if energy is not None:
            raise ValueError("pass energy only with an intensity array, not with a file")
        energy, intensity = read_spectrum(target, columns)
    elif isinstance(target, tuple):
        if energy is not None or len(target) != 2:
            raise ValueError("target tuple must be (energy, intensity), without energy=")
        energy, intensity = target
    else:
        if energy is None:
            raise ValueError("a measured scan needs its energies (eV): fit_spectrum(intensity, energy); a spectrum on "
                             "the model grid is DFT-like: unmix it with data.unmixing.unmix_coordination")
        intensity = target
    intensity = np.array(intensity, dtype=float)
    if intensity.ndim != 1 or not np.all(np.isfinite(intensity)):
        raise ValueError(f"intensity: expected one finite spectrum [n], got shape {intensity.shape} (or NaN/inf)")
    energy, intensity = _ascending(_as_energy(energy, len(intensity)), intensity)
    check_scan(energy)
    flat, norm = normalise_scan(energy, intensity)
    y = on_grid(energy, flat)
    mask = fit_mask(y, fit_range, exclude)
    if mask.sum() < 20:
        raise ValueError(f"the fit window {fit_range} eV less {exclude} holds {int(mask.sum())} model-grid points "
                         "of the scan: need 20 or more")
    if components is None:
        comp, classes = shipped_stratified_spectra()
    else:
        comp, classes = np.asarray(components, dtype=float), np.arange(len(KEYS))
        if comp.shape != (len(KEYS), N_ENERGY):
            raise ValueError(f"components must have shape ({len(KEYS)}, {N_ENERGY}), got {comp.shape}")
    # the noise on the grid: the scan's per-point noise averaged over the points in a grid cell
    per_cell = max(1.0, DE / float(np.median(np.diff(energy))))
    noise = norm["noise"] / math.sqrt(per_cell)
    problem = _Problem(np.nan_to_num(y), mask, comp, classes, max(noise, MODEL_SIGMA))
    theta = problem.fit(problem.starts())
    w, residual = problem.solve(theta)
    fractions = problem.fractions(w)
    step, constant = problem.nuisance(w)
    misfit = float(np.linalg.norm(residual) / np.linalg.norm(problem.y[mask]))
    pi_star = _pi_star_estimate(problem, theta, w, problem.y)

    fitted = problem.columns(theta).T @ np.r_[w[:problem.k + 1], constant]
    samples, pi_samples = [], []
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(mask)
    for _ in range(n_bootstrap):
        signs = np.repeat(rng.choice([-1.0, 1.0], size=len(idx) // 8 + 1), 8)[:len(idx)]
        y_star = fitted.copy()
        y_star[idx] += signs * residual + noise * rng.standard_normal(len(idx))
        low = fit_range[0] + rng.uniform(0.0, 1.0)
        high = fit_range[1] - rng.uniform(0.0, 5.0)
        moved = tuple((a + rng.uniform(-0.5, 0.5), b + rng.uniform(-0.5, 0.5)) for a, b in exclude)
        mask_star = fit_mask(y, (low, high), moved)
        th = problem.fit([theta], y_star, mask_star)
        w_star, _ = problem.solve(th, y_star, mask_star)
        samples.append(problem.fractions(w_star))
        pi_samples.append(_pi_star_estimate(problem, th, w_star, y_star))
    spread = np.std(samples, axis=0) if n_bootstrap > 1 else np.zeros(len(KEYS))
    sigma = np.sqrt(spread**2 + BASIS_SIGMA**2)
    uncertainty = {k: float(COVERAGE_SIGMAS * s) for k, s in zip(KEYS, sigma)}
    pi_err = float(COVERAGE_SIGMAS * np.std(pi_samples)) if n_bootstrap > 1 else 0.0

    reasons = []
    if misfit > MEASURED_POOR_FIT:
        reasons.append(f"the measurement model fits poorly (misfit {misfit:.3f} > {MEASURED_POOR_FIT}): the scan is "
                       "no broadened mix of the a-C components (contamination outside the excluded window, another "
                       "material, a curved background?)")
    worst = max(uncertainty, key=uncertainty.get)
    if uncertainty[worst] > MAX_UNCERTAINTY:
        reasons.append(f"the fractions are poorly determined ({worst} +- {uncertainty[worst]:.2f} > "
                       f"{MAX_UNCERTAINTY})")
    nuisance = dict(zip(PARAMETERS, map(float, theta)))
    nuisance.update(edge_step=step, constant=constant, scale=float(w[:problem.k].sum()), **norm)
    model = np.where(np.isfinite(y), fitted, np.nan)
    measured = w[:problem.k, None] * problem.columns(theta)[:problem.k]
    contributions = np.stack([measured[classes == k].sum(axis=0) for k in range(len(KEYS))])
    return SpectrumFit({k: float(v) for k, v in zip(KEYS, fractions)}, uncertainty, nuisance, misfit,
                       (float(pi_star), pi_err), not reasons, "; ".join(reasons), problem.grid, y, model,
                       contributions, mask, theta)
