"""Calibrate the energy axis of the 100-point XANES grid and the a-C intensity scale.

The shared data give spectra on 100 points without energies. We locate three features in the
cell-mean reference spectra by parabolic (three-point) interpolation and fit E(i) = E0 + dE * i
by least squares to their experimental energies (see ``../shared/data/a-C/README.md``):

- graphite pi* peak        -> 285.4 eV
- graphite sigma* peak     -> 291.7 eV
- diamond second-gap dip   -> 302.4 eV

It also prints the mean area (sum over the 100 points) of the a-C training spectra, the constant
``AC_MEAN_AREA`` that ``prepare_target`` scales guidance targets to. The printed numbers are the ones
hard-coded in ``ase_xanesgen/data/spectra.py``; the script checks that they agree.

Usage: ``python benchmarks/calibrate_energy.py [--data ../shared/data/a-C]``
"""

from __future__ import annotations

import argparse

import numpy as np

from ase_xanesgen.data import spectra
from ase_xanesgen.data.datasets import load_dataset, load_reference
from ase_xanesgen.data.peaks import parabolic_peak

# (name, reference, kind, search window of grid indices, experimental energy in eV)
ANCHORS = (
    ("graphite pi*", "graphite", "max", (20, 35), 285.4),
    ("graphite sigma*", "graphite", "max", (38, 50), 291.7),
    ("diamond 2nd-gap dip", "diamond", "min", (60, 75), 302.4),
)


def parabolic_extremum(y: np.ndarray, kind: str, window: tuple[int, int]) -> float:
    """Sub-grid index of the max/min of ``y`` inside ``window`` (three-point parabola through the extremum)."""
    lo, hi = window
    k, position = parabolic_peak(np.arange(len(y), dtype=float), y if kind == "max" else -y, np.arange(lo, hi))
    if not lo < k < hi - 1:
        raise RuntimeError(f"extremum at window edge (index {k}); widen the window {window}")
    return position


def fit_axis(index: np.ndarray, energy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares (E0, dE), their standard errors and the residuals (eV)."""
    design = np.column_stack([np.ones_like(index), index])
    coef, *_ = np.linalg.lstsq(design, energy, rcond=None)
    resid = energy - design @ coef
    dof = len(index) - 2
    s2 = float(resid @ resid) / dof if dof > 0 else np.nan
    cov = s2 * np.linalg.inv(design.T @ design)
    return coef, np.sqrt(np.diag(cov)), resid


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="a-C data folder (default: ../shared/data/a-C)")
    args = parser.parse_args(argv)

    means = {name: load_reference(name, args.data).arrays["xanes"].mean(axis=0) for name in ("graphite", "diamond")}
    index = np.array([parabolic_extremum(means[ref], kind, win) for _, ref, kind, win, _ in ANCHORS])
    energy = np.array([e for *_, e in ANCHORS])
    (e0, de), (se0, sde), resid = fit_axis(index, energy)

    print("anchor                 index     E_exp (eV)  E_fit (eV)  residual (eV)")
    for (name, *_), i, e, r in zip(ANCHORS, index, energy, resid):
        print(f"{name:<20s} {i:8.3f}   {e:9.2f}  {e - r:10.3f}  {r:+8.3f}")
    print(f"least squares: E0 = {e0:.4f} +- {se0:.3f} eV, dE = {de:.5f} +- {sde:.4f} eV/point (1 dof)")
    design = np.column_stack([np.ones(3), index])
    s2 = float(resid @ resid)  # 1 dof
    cov = s2 * np.linalg.inv(design.T @ design)
    for label, i in (("grid start", 0.0), ("pi* anchor", index[0]), ("grid end", 99.0)):
        v = np.array([1.0, i])
        print(f"1-sigma energy uncertainty at {label} (index {i:.1f}): {np.sqrt(v @ cov @ v):.2f} eV")
    print(f"rms residual {np.sqrt(np.mean(resid**2)):.3f} eV; grid spans {e0:.2f} .. {e0 + 99 * de:.2f} eV")

    # leave-one-out (two-point lines) and pi*-pinned variant, as a systematic spread
    for drop in range(3):
        keep = [k for k in range(3) if k != drop]
        (a, b), _, _ = fit_axis(index[keep], energy[keep])
        print(f"without {ANCHORS[drop][0]:<20s}: E0 = {a:.3f} eV, dE = {b:.4f} eV/point")
    de_pin = np.sum((index[1:] - index[0]) * (energy[1:] - energy[0])) / np.sum((index[1:] - index[0]) ** 2)
    print(f"pi* pinned at 285.4 eV: E0 = {energy[0] - de_pin * index[0]:.3f} eV, dE = {de_pin:.4f} eV/point")

    cells = load_dataset(args.data)
    rows = np.concatenate([a.arrays["xanes"] for a in cells])
    areas = rows.sum(axis=1)
    cell_areas = np.array([a.arrays["xanes"].mean(axis=0).sum() for a in cells])
    ref_areas = {k: v.sum() for k, v in means.items()}
    print(f"a-C per-atom area (sum of 100 points): mean {areas.mean():.4f}, std {areas.std():.4f} ({len(rows)} atoms)")
    print(f"a-C cell-mean area: mean {cell_areas.mean():.4f}, min {cell_areas.min():.4f}, max {cell_areas.max():.4f}")
    print("reference cell-mean areas: " + ", ".join(f"{k} {v:.4f}" for k, v in ref_areas.items()))

    ok = (
        abs(spectra.E0 - e0) < 5e-4
        and abs(spectra.DE - de) < 5e-5
        and abs(spectra.AC_MEAN_AREA - areas.mean()) < 5e-3
    )
    print(f"module constants E0={spectra.E0}, DE={spectra.DE}, AC_MEAN_AREA={spectra.AC_MEAN_AREA}: "
          + ("agree" if ok else "DIFFER - update ase_xanesgen/data/spectra.py"))


if __name__ == "__main__":
    main()
