"""JSON-ready report of generated vs reference metrics: summaries, distances and the figure's histograms."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._common import density_histogram, finite_mean
from .compare import compare
from .metrics import StructureMetrics

SIDES = ("generated", "reference")


def _summary(m: StructureMetrics, energies: np.ndarray | None) -> dict[str, Any]:
    out = {
        "n_structures": m.n_structures,
        "n_atoms": m.n_atoms,
        "density_g_cm3": m.density,
        "hybridisation": m.hybridisation,
        "rdf_first_peak_A": m.rdf_peak,
        "angle_mean_deg": finite_mean(m.angles),
        "angle_std_deg": float(np.std(m.angles)) if m.angles.size else math.nan,
        "q4_mean": finite_mean(m.q4),
        "q6_mean": finite_mean(m.q6),
        "voronoi_mean_A3": finite_mean(m.voronoi),
        "rings_per_atom": (m.rings / m.n_atoms).tolist(),
        "cutoff_A": m.cutoff,
    }
    if energies is not None:
        out.update(energy_mean_eV=finite_mean(energies), energy_std_eV=float(np.nanstd(energies)))
    return out


def _histograms(edges: np.ndarray, generated: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    return {
        "edges": edges,
        "generated": density_histogram(generated, edges),
        "reference": density_histogram(reference, edges),
    }


def _shared_edges(a: np.ndarray, b: np.ndarray, bins: int, lower: float | None = None) -> np.ndarray:
    both = np.concatenate([a, b])
    both = both[np.isfinite(both)]
    lo = lower if lower is not None else (both.min() if both.size else 0.0)
    hi = both.max() if both.size else lo + 1.0
    pad = 0.02 * (hi - lo) if hi > lo else 0.5
    return np.linspace(lo - (0.0 if lower is not None else pad), hi + pad, bins + 1)


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy arrays/scalars turned into lists/floats and NaN/inf into ``None``."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def build_report(
    generated: StructureMetrics,
    reference: StructureMetrics,
    *,
    energies: tuple[np.ndarray, np.ndarray] | None = None,
    bins: int = 60,
) -> dict[str, Any]:
    """Every number of the analysis figure, generated vs reference, as plain JSON types.

    Keys: ``generated``/``reference`` (summaries), ``distances`` (:func:`compare`) and ``panels``:
    ``coordination`` (fraction of atoms per CN), ``rdf`` (r in Å, g), and normalised histograms
    (``edges`` plus one density per side) for ``angles`` (deg), ``q4``, ``q6``, ``voronoi`` (Å^3) and,
    when ``energies`` (per-atom GAP energies in eV, generated then reference) are given, ``energy``.
    """
    m = dict(zip(SIDES, (generated, reference)))
    e = dict(zip(SIDES, energies)) if energies is not None else {}
    max_cn = max(6, *(int(x.coordination.max()) for x in m.values()))
    panels = {
        "coordination": {
            "cn": np.arange(max_cn + 1),
            **{s: np.bincount(x.coordination, minlength=max_cn + 1) / x.n_atoms for s, x in m.items()},
        },
        "rdf": {"r": generated.r, **{s: x.g for s, x in m.items()}},
        "angles": _histograms(np.linspace(0.0, 180.0, 91), generated.angles, reference.angles),
        "q4": _histograms(np.linspace(0.0, 1.0, 51), generated.q4, reference.q4),
        "q6": _histograms(np.linspace(0.0, 1.0, 51), generated.q6, reference.q6),
        "voronoi": _histograms(
            _shared_edges(generated.voronoi, reference.voronoi, bins, lower=0.0), generated.voronoi, reference.voronoi
        ),
    }
    if e:
        panels["energy"] = _histograms(_shared_edges(e["generated"], e["reference"], bins), e["generated"],
                                       e["reference"])
    report = {s: _summary(x, e.get(s)) for s, x in m.items()}
    report.update(distances=compare(generated, reference), panels=panels)
    return jsonable(report)
