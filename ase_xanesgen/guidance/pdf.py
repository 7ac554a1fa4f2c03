"""Guides towards a target pair distribution: the radial distribution function g(r) (``RDFGuide``) or the reduced
pair distribution function G(r) of total scattering (``PDFGuide``), from Gaussian-smoothed, differentiable pair
distances."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..checks import check_non_negative, check_positive
from ..data.scattering import WEIGHTINGS, scattering_weights
from ..diffusion.samplers import System
from ..graph.neighbours import edge_vectors
from .base import Guide, guide_graph


def smoothed(r: np.ndarray, g: np.ndarray, centres: np.ndarray, smear: float, power: int = 2) -> np.ndarray:
    """``g`` as the guides see a structure at ``centres``: ``int g(r') (r'/r)^power K(r - r') dr'`` with the
    normalised Gaussian ``K`` of width ``smear``: each pair's Gaussian is divided by the shell area at the centre,
    not at the pair (``power`` 2 for g(r), 1 for G(r), whose ``1/r`` is the same area times ``r``). Summed on a grid
    of ``smear / 10`` over the target's range; near its ends the kernel is renormalised to the part inside it."""
    fine = np.arange(r[0], r[-1] + smear / 20, smear / 10)
    kernel = np.exp(-0.5 * ((centres[:, None] - fine) / smear) ** 2)
    return (kernel * (fine / centres[:, None]) ** power) @ np.interp(fine, r, g) / kernel.sum(1)


class RDFGuide(Guide):
    """Relative L2 distance between the smoothed g(r) of each cell and a target ``g`` on ``r`` (Angstrom).

    Pairs contribute Gaussians of width ``smear`` (Angstrom), normalised like ``ase_xanesgen.analysis.rdf`` (ideal
    gas -> 1), on ``bins`` points in ``[r_min, r_max]``. ``smooth_target`` (default) smooths the target by the same
    kernel, so a histogram g(r) (``analysis.rdf`` of an MD cell) is compared like with like: an MD cell meets its own
    g(r) within 0.007 (0.19 against the unsmoothed target, which also narrows the bonds of guided cells). ``False``
    for a target that is already the smoothed g(r) (``RDFGuide.rdf`` of a cell). Near the ends of the target's range
    the kernel is cut: give a target reaching a few ``smear`` past ``[r_min, r_max]``.

    Several elements: ``weighting`` weights each pair by the product of the atoms' neutron scattering lengths
    (``"neutron"``, default), atomic numbers (``"xray"``) or 1 (``"number"``), divided by the cell's mean weight
    squared: the total g(r) a diffraction experiment measures, ``sum_ab c_a c_b w_a w_b g_ab / <w>^2``
    (``analysis.species.total_rdf``). One element: every weighting gives the plain g(r).
    """

    #: name of the target in messages; the power of ``r'/r`` in :func:`smoothed`
    QUANTITY, POWER = "g(r)", 2

    def __init__(self, r: np.ndarray, g: np.ndarray, *, r_min: float = 1.0, r_max: float = 4.0, bins: int = 60,
                 smear: float = 0.05, weight: float = 1.0, smooth_target: bool = True, weighting: str = "neutron"):
        name = type(self).__name__
        if weighting not in WEIGHTINGS:
            raise ValueError(f"{name}: unknown weighting {weighting!r}: expected one of {WEIGHTINGS}")
        self.weighting = weighting
        r, g = np.asarray(r, dtype=float), np.asarray(g, dtype=float)
        if r.ndim != 1 or r.shape != g.shape or len(r) < 2:
            raise ValueError(f"{name}: r and {self.QUANTITY} must be 1-D arrays of one length, got {r.shape} and "
                             f"{g.shape}")
        if not (np.all(np.isfinite(g)) and np.all(np.isfinite(r))):
            raise ValueError(f"{name}: target contains NaN or inf")
        if not 0 < r_min < r_max:
            raise ValueError(f"{name}: need 0 < r_min < r_max, got {r_min} and {r_max} A")
        if np.any(np.diff(r) <= 0) or r[0] > r_min or r[-1] < r_max:
            raise ValueError(f"{name}: r must increase and cover [{r_min}, {r_max}] A")
        self.check_values(g)
        check_positive(smear, f"{name}: smear", "A")
        self.centres = torch.linspace(r_min, r_max, bins)
        centres = self.centres.double().numpy()
        target = smoothed(r, g, centres, smear, self.POWER) if smooth_target else np.interp(centres, r, g)
        if not np.any(target):
            raise ValueError(f"{name}: the target {self.QUANTITY} is zero on [{r_min}, {r_max}] A")
        self.target = torch.tensor(target, dtype=torch.float32)
        self.r_max, self.smear, self.weight = r_max, smear, check_non_negative(weight, "weight")

    def check_values(self, g: np.ndarray) -> None:
        if np.any(g < 0):
            raise ValueError("RDFGuide: g(r) has negative values (a reduced PDF G(r) goes to PDFGuide)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(r_max={self.r_max}, weight={self.weight})"

    def rdf(self, pos: torch.Tensor, system: System) -> torch.Tensor:
        """Smoothed g(r) ``[B, bins]`` of each cell, differentiable in ``pos``."""
        edge_index, shifts = guide_graph(pos, system, self.r_max + 4 * self.smear)
        d = edge_vectors(pos, system.cell, system.batch, edge_index, shifts).norm(dim=-1)
        centres = self.centres.to(pos)
        kernel = torch.exp(-0.5 * ((d[:, None] - centres) / self.smear) ** 2) / (self.smear * math.sqrt(2 * math.pi))
        count = system.atom_counts.to(pos)
        norm = number_density(system).to(pos) * count
        if self.weighting != "number" and len(torch.unique(system.z)) > 1:
            w = self.atom_weights(system).to(pos)
            kernel = kernel * (w[edge_index[0]] * w[edge_index[1]])[:, None]
            mean_w = pos.new_zeros(system.num_graphs).index_add_(0, system.batch, w) / count
            norm = norm * mean_w**2
        per_graph = pos.new_zeros(system.num_graphs, len(centres)).index_add_(0, system.batch[edge_index[0]], kernel)
        return per_graph / norm[:, None] / (4 * math.pi * centres**2)

    def atom_weights(self, system: System) -> torch.Tensor:
        """Scattering weight ``[N]`` of every atom (``data.scattering``; ``ValueError`` naming an element without
        a tabulated neutron length)."""
        z = system.z.cpu().numpy()
        table = np.zeros(119)
        for number in np.unique(z):
            table[number] = scattering_weights([number], self.weighting)[0]
        return torch.as_tensor(table[z], dtype=torch.float32)

    def profile(self, pos: torch.Tensor, system: System) -> torch.Tensor:
        """What the target is compared with, ``[B, bins]``."""
        return self.rdf(pos, system)

    def residual(self, x0: torch.Tensor, system: System) -> torch.Tensor:
        target = self.target.to(x0)
        return (self.profile(x0, system) - target).norm(dim=1) / target.norm()


def number_density(system: System) -> torch.Tensor:
    """Atoms per cubic Angstrom of each cell ``[B]``."""
    return system.atom_counts.to(system.cell.dtype) / torch.linalg.det(system.cell).abs()


class PDFGuide(RDFGuide):
    """Relative L2 distance to a target reduced pair distribution function ``G(r) = 4 pi r rho (g(r) - 1)`` (1/A^2),
    the Fourier transform of a total-scattering structure factor (X-ray or neutron: ``weighting``, which matters for
    several elements only), with ``rho`` each cell's number density.

    Same smoothing and arguments as :class:`RDFGuide`. The smoothed target leaves out a term ``4 pi rho smear^2 / r``
    of the cell's G(r) (below 0.006 A^-2 for carbon up to 3.5 g/cm3 at the default smear, against peaks of 10-20;
    a target starting exactly at ``r_min`` biases the first bin by ~0.1, see :class:`RDFGuide`). Termination
    ripples of a measured G(r) (finite Q range) are not modelled: cut the target's ``r_min`` above them or damp them
    first.
    """

    QUANTITY, POWER = "G(r)", 1

    def check_values(self, g: np.ndarray) -> None:  # G(r) goes negative below the first peak: any finite value
        pass

    def profile(self, pos: torch.Tensor, system: System) -> torch.Tensor:
        centres = self.centres.to(pos)
        rho = number_density(system).to(pos)[:, None]
        return 4 * math.pi * centres * rho * (self.rdf(pos, system) - 1)
