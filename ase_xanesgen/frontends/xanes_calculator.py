"""``XANESCalculator``: per-atom carbon K-edge spectra as an ASE property, from a graph network."""

from __future__ import annotations

import os
from pathlib import Path

import ase.calculators.calculator
import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.data import chemical_symbols

from ..checks import check_structure, warn_caller
from ..data.spectra import energy_grid, store_spectra
from ..device import resolve_device
from ..graph.neighbours import edge_vectors, radius_graph_pbc
from ..nn.checkpoint import load_spectrum_model
from ..nn.spectrum import SpectrumNet, spectra_of

#: ASE's calculator code, between a user's ``get_property`` and ``calculate``: warnings skip it too
_ASE_CALCULATORS = os.path.dirname(os.path.realpath(ase.calculators.calculator.__file__)) + os.sep


#: the closest C-C pair of the 25 training cells is 1.19 A apart (diamond 1.54, graphite 1.42): below this, broken
MIN_DISTANCE = 0.9


def warn_unphysical(pos: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor,
                    graph: tuple[torch.Tensor, torch.Tensor], cutoff: float) -> None:
    """Warn (the spectra are still returned) for geometry no training cell resembles: atoms closer than
    ``MIN_DISTANCE`` (also to their own periodic images) or atoms with no neighbour within ``cutoff``. Read off
    the spectrum network's own ``graph`` (``edge_index``, ``unit_shifts``), so no second neighbour list."""
    edge_index, shifts = graph
    problems = []
    if edge_index.shape[1]:
        closest = float(edge_vectors(pos.detach(), cell, batch, edge_index, shifts).norm(dim=-1).min())
        if closest < MIN_DISTANCE:
            problems.append(f"atoms {closest:.2f} A apart (below {MIN_DISTANCE} A)")
    isolated = pos.shape[0] - int(torch.unique(edge_index[0]).numel())
    if isolated:
        problems.append(f"{isolated} atom(s) with no neighbour within {cutoff} A")
    if problems:
        warn_caller(f"XANESCalculator: {'; '.join(problems)}: no training structure looks like this, the spectra "
                    "are an extrapolation", skip=(_ASE_CALCULATORS,))


class XANESCalculator(Calculator):
    """Carbon K-edge XANES of every atom (``"xanes"``, ``[N, 100]``) and of the cell (``"xanes_mean"``, ``[100]``).

    Intensities are on the scale of the shared a-C DFT training files; ``energy_grid`` gives the calibrated
    axis in eV (``docs/energy_calibration.md``). The network is differentiable in positions, so the same
    model steers generation (``ase_xanesgen.guidance.XANESGuide``).

    Args:
        model: a ``SpectrumNet``, a checkpoint path, or ``None`` for the shipped weights.
        device: ``'cpu'``, ``'cuda'``...; default CUDA when available.
    """

    implemented_properties = ("xanes", "xanes_mean")

    def __init__(self, model: SpectrumNet | str | Path | None = None, *, device: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.device = resolve_device(device)
        self.model = load_spectrum_model(model).to(self.device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @property
    def energy_grid(self) -> np.ndarray:
        """``[100]`` eV."""
        return energy_grid()

    @property
    def species(self) -> list[int]:
        """Atomic numbers the model knows."""
        return self.model.model_args["species"]

    def calculate(self, atoms: Atoms | None = None, properties=("xanes",), system_changes=all_changes) -> None:
        """ASE's hook: fills ``results["xanes"]`` ``[N, 100]`` and ``results["xanes_mean"]`` ``[100]``. Raises
        ``ValueError`` for an empty structure, species the model does not know, or a cell that is not 3-D
        periodic."""
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        check_structure(atoms, "XANESCalculator: the structure", periodic=True)
        unknown = sorted({chemical_symbols[z] for z in atoms.numbers if z not in self.species})
        if unknown:
            raise ValueError(f"XANESCalculator: species {unknown} not known to the model "
                             f"(trained for {[chemical_symbols[z] for z in self.species]})")
        # wrapped into the cell in float64 first: float32 keeps ~7 digits, so an atom 1e4 A out (a long MD run's
        # unwrapped positions) would lose 1e-3 A; the periodic graph is the same for wrapped positions
        pos = torch.tensor(atoms.get_positions(wrap=True), dtype=torch.float32, device=self.device)
        with torch.no_grad():
            spectra = self.predict_tensor(pos, atoms)
        spectra = spectra.cpu().numpy().astype(float)
        self.results["xanes"] = spectra
        self.results["xanes_mean"] = spectra.mean(axis=0)

    def predict_tensor(self, pos: torch.Tensor, atoms: Atoms) -> torch.Tensor:
        """Differentiable per-atom spectra ``[N, 100]`` of ``pos [N, 3]`` in the cell of ``atoms`` (with a warning
        for unphysical geometry, :func:`warn_unphysical`)."""
        cell = torch.tensor(np.asarray(atoms.cell), dtype=pos.dtype, device=pos.device)[None]
        z = torch.tensor(atoms.numbers, dtype=torch.long, device=pos.device)
        batch = torch.zeros(len(atoms), dtype=torch.long, device=pos.device)
        graph = radius_graph_pbc(pos.detach(), cell, batch, self.model.cutoff)
        warn_unphysical(pos, cell, batch, graph, self.model.cutoff)
        return spectra_of(self.model, pos, z, cell, batch, graph)

    def annotate(self, atoms: Atoms) -> Atoms:
        """Compute and store the spectra in ``atoms.arrays`` (extxyz keeps them; ``ase gui`` colours by
        ``xanes_pi_star``); returns ``atoms``."""
        return store_spectra(atoms, self.get_property("xanes", atoms))
