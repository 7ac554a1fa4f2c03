"""Guide towards a cell-mean carbon K-edge spectrum with the (differentiable) XANES network."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch_geometric.nn import global_mean_pool

from ..checks import check_fraction, check_non_negative, warn_caller
from ..data.calibration import prepare_target
from ..data.measurement import SpectrumFit, fit_spectrum
from ..data.spectra_io import read_spectrum
from ..data.unmixing import Measurement, measurement_for, unmix_warned
from ..diffusion.samplers import System
from ..nn.checkpoint import load_spectrum_model
from ..nn.spectrum import SpectrumNet, spectra_of
from .base import Guide, guide_graph
from .coordination import CoordinationGuide
from .ring_strain import RingStrainGuide

#: weight of the unmixed coordination term in ``spectrum_guide`` (``benchmarks/guidance_sweep.py``: at 0.5 the
#: CN shift matches weight 1 within the seed spread, with cells up to 0.17 eV/atom lower in GAP energy)
DEFAULT_COORDINATION_WEIGHT = 0.5
#: weight of the ring-strain term in ``spectrum_guide`` (8 cells: 0.35 leaves the sp3-rich cells 0.17 eV/atom
#: above MD, at 0.75 and 1 they move less than half-way; 0.5 keeps both targets' shifts, lower energies)
DEFAULT_RING_STRAIN_WEIGHT = 0.5


class XANESGuide(Guide):
    """Relative L2 distance ``|M(F(x0)) - y| / |y|`` of each cell's mean spectrum, as measured, to the target ``y``.

    Args:
        target: ``[100]`` on the model grid, or intensities on ``energy`` (eV), an ``(energy, intensity)`` pair, or
            a spectrum file.
        measurement: ``"auto"`` (default): a file or a scan with energies is ``"measured"``, a model-grid array
            ``"dft"``. Measured: the scan is fitted by the measurement model (``data.measurement.fit_spectrum``,
            kept as ``self.fit``); ``y`` is the normalised scan on the model grid (0 where the scan does not reach)
            and ``M`` applies the fitted scale, offset, broadening, edge step and constant, compared on the fitted
            points only (the C-H window left out). DFT-like: ``y`` is resampled and area-normalised to the a-C
            training scale (``data.spectra.prepare_target``) and ``M`` is the identity.
        subtract_edge_step: (DFT-like only) remove a measurement's edge step from the target first
            (``data.unmixing.subtract_edge_step``); the measurement model fits the step instead.
        model: spectrum network (default: shipped).
        weight: relative weight when guides are summed.

    Raises ``ValueError`` on a bad target (see ``prepare_target`` and ``fit_spectrum``), and for
    ``subtract_edge_step`` with a measured target.
    """

    def __init__(self, target: np.ndarray | str | os.PathLike | tuple[np.ndarray, np.ndarray],
                 energy: np.ndarray | None = None, model: SpectrumNet | str | Path | None = None,
                 weight: float = 1.0, subtract_edge_step: bool = False, measurement: Measurement = "auto"):
        self.fit: SpectrumFit | None = None
        if measurement_for(target, energy, measurement) == "measured":
            if subtract_edge_step:
                raise ValueError("subtract_edge_step is for a DFT-like target (measurement='dft'): the measurement "
                                 "model fits the edge step of a measured scan")
            self.fit = fit_spectrum(target, energy)
            response, offset = self.fit.response()
            self.response = torch.as_tensor(response, dtype=torch.float32)
            self.offset = torch.as_tensor(offset, dtype=torch.float32)
            self.mask = torch.as_tensor(self.fit.mask, dtype=torch.float32)
            self.target = np.where(np.isfinite(self.fit.data), self.fit.data, 0.0)
        else:
            self.target = prepare_target(target, energy, subtract_edge_step=subtract_edge_step)
        self.model = load_spectrum_model(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.weight = check_non_negative(weight, "weight")

    @classmethod
    def from_file(cls, path: str | os.PathLike, **kwargs) -> "XANESGuide":
        """A guide from a measured two-column (energy eV, intensity) file."""
        energy, intensity = read_spectrum(path)
        return cls(intensity, energy, **kwargs)

    def __repr__(self) -> str:
        return f"XANESGuide(weight={self.weight}{', measured' if self.fit is not None else ''})"

    def mean_spectra(self, pos: torch.Tensor, system: System) -> torch.Tensor:
        """Cell-mean spectra ``[B, 100]``, differentiable in ``pos``."""
        self.model.to(pos.device)
        spectra = spectra_of(self.model, pos, system.z, system.cell, system.batch,
                             guide_graph(pos, system, self.model.cutoff))
        return global_mean_pool(spectra, system.batch, size=system.num_graphs)

    def residual(self, x0: torch.Tensor, system: System) -> torch.Tensor:
        y = torch.as_tensor(self.target, dtype=x0.dtype, device=x0.device)
        predicted = self.mean_spectra(x0, system)
        if self.fit is None:
            return (predicted - y).norm(dim=1) / y.norm()
        mask = self.mask.to(x0)
        measured = predicted @ self.response.to(x0).T + self.offset.to(x0)
        return ((measured - y) * mask).norm(dim=1) / (y * mask).norm()


def spectrum_guide(target: np.ndarray | str | os.PathLike | tuple[np.ndarray, np.ndarray],
                   energy: np.ndarray | None = None, *,
                   coordination_weight: float = DEFAULT_COORDINATION_WEIGHT, coordination_t_min: float = 0.0,
                   coordination_tolerance: float = 0.0,
                   ring_strain_weight: float = DEFAULT_RING_STRAIN_WEIGHT,
                   model: SpectrumNet | str | Path | None = None, subtract_edge_step: bool = False,
                   measurement: Measurement = "auto") -> Guide:
    """Guide to a spectrum and to the bonding it implies: ``XANESGuide`` plus a ``CoordinationGuide`` towards
    the CN2/CN3/CN4 fractions unmixed from the same spectrum (``data.unmixing``), plus a ``RingStrainGuide``.

    The spectrum network alone can match a spectrum with too little change in bonding (many local motifs
    give similar cell means); the unmixed fractions pin the sp / sp2 / sp3 balance the spectrum reports.
    ``coordination_weight=0`` gives the plain ``XANESGuide``; ``coordination_t_min`` switches the coordination term
    off below that diffusion time (it then shapes the bonding while it forms, not the final bond lengths: fewer
    strained sites, a smaller CN shift; docs/guidance.md); ``coordination_tolerance`` is the distance from the
    unmixed fractions within which its pull fades (:class:`CoordinationGuide`). The ring-strain term
    (``ring_strain_weight``, 0: off) comes with the coordination term and keeps it from closing three-membered
    rings, its cheapest way to raise CN (docs/guidance.md).

    ``measurement`` as for :class:`XANESGuide`: a measured scan (a file, or intensities with energies) is read
    through the measurement model, and its fractions come from the same fit. When that fit is unreliable (a poor
    misfit or fractions known worse than ``data.measurement.MAX_UNCERTAINTY``) the coordination term is left out,
    with a warning that says why: the spectrum term alone guides.
    """
    check_non_negative(coordination_weight, "coordination_weight")
    check_non_negative(ring_strain_weight, "ring_strain_weight")
    check_fraction(coordination_t_min, "coordination_t_min", low_closed=True)  # also when the coordination term is off
    check_non_negative(coordination_tolerance, "coordination_tolerance")
    guide = XANESGuide(target, energy, model=model, subtract_edge_step=subtract_edge_step, measurement=measurement)
    if coordination_weight == 0:
        return guide
    if guide.fit is None:  # the target is prepared (and its calibration warned about) once, above
        fractions = unmix_warned(guide.target, advice="consider coordination_weight=0 (--coordination-weight 0: the "
                                 "spectrum alone guides)").fractions
    elif guide.fit.reliable:
        fractions = guide.fit.fractions
    else:
        warn_caller(f"the coordination term is left out of the guide: {guide.fit.reason}; the spectrum term alone "
                    "guides")
        return guide
    guide = guide + CoordinationGuide(fractions, weight=coordination_weight, t_min=coordination_t_min,
                                      tolerance=coordination_tolerance)
    return guide + RingStrainGuide(weight=ring_strain_weight) if ring_strain_weight else guide
