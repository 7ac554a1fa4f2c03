"""Distances between the structure metrics of generated and reference structures."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from scipy.stats import wasserstein_distance

from ._common import finite_mean
from .metrics import StructureMetrics, measure

Structures = Atoms | Sequence[Atoms] | StructureMetrics


def _wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    return float(wasserstein_distance(a, b)) if a.size and b.size else float("nan")


def compare(generated: Structures, reference: Structures, **measure_kwargs) -> dict[str, float]:
    """Per-metric distances (all >= 0, 0 for identical input) between two structures or ensembles.

    Either side may be ``Atoms``, a list of them, or :class:`StructureMetrics` from :func:`measure`
    (``measure_kwargs`` such as ``cutoff`` are passed to it). Keys and units:

    - ``density``: |Δ| g/cm3; ``CN<=1`` ... ``CN>=5``: |Δ| of hybridisation fractions;
    - ``rdf_l1``: ∫|Δg(r)| dr in Å; ``rdf_first_peak``: |Δ| Å;
    - ``angle_mean``: |Δ| degrees; ``angle_wasserstein``: degrees;
    - ``q4_wasserstein``, ``q6_wasserstein``: dimensionless; ``voronoi_wasserstein``: Å^3;
    - ``rings_l1``: sum over ring sizes of |Δ rings per atom|.

    Wasserstein distances (earth mover's, scipy) compare the pooled per-atom or per-angle samples.
    """
    gen, ref = (
        x if isinstance(x, StructureMetrics) else measure(x, **measure_kwargs) for x in (generated, reference)
    )
    if gen.r.shape != ref.r.shape or not np.allclose(gen.r, ref.r):
        raise ValueError("generated and reference RDFs are on different r grids: measure both with the same rmax/bins")
    out = {"density": abs(gen.density - ref.density)}
    out.update({key: abs(gen.hybridisation[key] - ref.hybridisation[key]) for key in gen.hybridisation})
    n = max(len(gen.rings), len(ref.rings))
    rings_gen, rings_ref = (np.pad(x.rings, (0, n - len(x.rings))) / x.n_atoms for x in (gen, ref))
    out.update(
        rdf_l1=float(np.sum(np.abs(gen.g - ref.g)) * (gen.r[1] - gen.r[0])),
        rdf_first_peak=abs(gen.rdf_peak - ref.rdf_peak),
        angle_mean=abs(finite_mean(gen.angles) - finite_mean(ref.angles)),
        angle_wasserstein=_wasserstein(gen.angles, ref.angles),
        q4_wasserstein=_wasserstein(gen.q4, ref.q4),
        q6_wasserstein=_wasserstein(gen.q6, ref.q6),
        voronoi_wasserstein=_wasserstein(gen.voronoi, ref.voronoi),
        rings_l1=float(np.abs(rings_gen - rings_ref).sum()),
    )
    return {key: float(value) for key, value in out.items()}
