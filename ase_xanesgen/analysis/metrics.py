"""All structure metrics of one structure or an ensemble, computed once (input to compare and reports)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ..data.datasets import CC_BOND_CUTOFF
from ..geometry import density_of
from ._common import as_structures
from .angles import bond_angles
from .coordination import coordination_numbers, fractions_from_counts
from .rdf import rdf, rdf_first_peak
from .rings import ring_statistics
from .steinhardt import steinhardt
from .voronoi import voronoi_volumes


@dataclass(frozen=True)
class StructureMetrics:
    """Pooled metrics of an ensemble of structures (per-atom arrays are concatenated).

    Attributes:
        n_structures, n_atoms: ensemble size (atoms summed over structures).
        density: pooled mass density (all mass over all volume), g/cm3.
        coordination: ``[n_atoms]`` int, neighbours within ``cutoff``.
        hybridisation: fractions under ``HYBRIDISATION_KEYS`` (CN2/CN3/CN4 = sp/sp2/sp3).
        r, g: ``[n_bins]`` RDF bin centres (Å) and g(r).
        rdf_peak: first-peak position, Å.
        angles: ``[n_angles]`` bond angles, degrees.
        q4, q6: ``[n_atoms]`` Steinhardt order (NaN for atoms without neighbours).
        voronoi: ``[n_atoms]`` Voronoi volumes, Å^3.
        rings: ``[ring_maxlength + 1]`` int, shortest-path rings by size.
        cutoff: bond cut-off used, Å.
    """

    n_structures: int
    n_atoms: int
    density: float
    coordination: np.ndarray
    hybridisation: dict[str, float]
    r: np.ndarray
    g: np.ndarray
    rdf_peak: float
    angles: np.ndarray
    q4: np.ndarray
    q6: np.ndarray
    voronoi: np.ndarray
    rings: np.ndarray
    cutoff: float


def measure(
    atoms_or_list: Atoms | Sequence[Atoms],
    *,
    cutoff: float = CC_BOND_CUTOFF,
    rmax: float = 6.0,
    bins: int = 300,
    ring_maxlength: int = 12,
) -> StructureMetrics:
    """Compute every metric of ``atoms_or_list`` (see :class:`StructureMetrics`); lengths in Å."""
    structures = as_structures(atoms_or_list)
    for k, atoms in enumerate(structures):
        if set(atoms.get_chemical_symbols()) - {"C"}:
            name = atoms.info.get("name", f"structure {k}")
            raise ValueError(f"{name} holds {sorted(set(atoms.get_chemical_symbols()))}: these statistics (C-C bonds, "
                             "sp/sp2/sp3) are for carbon structures")
    cn = np.concatenate([coordination_numbers(a, cutoff) for a in structures])
    q = [steinhardt(a, (4, 6), cutoff=cutoff) for a in structures]
    r, g = rdf(structures, rmax=rmax, bins=bins)
    return StructureMetrics(
        n_structures=len(structures),
        n_atoms=int(sum(len(a) for a in structures)),
        density=float(np.average([density_of(a) for a in structures],  # pooled mass / pooled volume
                                 weights=[a.get_volume() for a in structures])),
        coordination=cn,
        hybridisation=fractions_from_counts(cn),
        r=r,
        g=g,
        rdf_peak=rdf_first_peak(structures),
        angles=bond_angles(structures, cutoff),
        q4=np.concatenate([x[4] for x in q]),
        q6=np.concatenate([x[6] for x in q]),
        voronoi=np.concatenate([voronoi_volumes(a) for a in structures]),
        rings=ring_statistics(structures, cutoff, maxlength=ring_maxlength),
        cutoff=float(cutoff),
    )
