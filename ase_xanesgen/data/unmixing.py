"""Coordination fractions from a carbon K-edge spectrum by linear unmixing into sp / sp2 / sp3 components.

The classic reading of a-C XANES (the pi* share gives the sp2 fraction) made quantitative: the cell-mean
spectrum is, to first order, the CN-weighted mean of per-coordination spectra, so non-negative least squares
on the mean DFT spectra of 2-, 3- and 4-coordinated carbons (training split only) with the fractions summing
to one returns CN2 / CN3 / CN4. On the held-out DFT cells this recovers the fractions within 0.07
(``tests/test_unmixing.py``). It assumes spectra on the DFT scale and energy axis (``prepare_target``). Extra
broadening matters little: the same spectra 1 eV (FWHM) broader unmix within 0.08 (2 eV: 0.10); a background or
an edge step the DFT spectra lack matters more.

    python -m ase_xanesgen.data.unmixing [--data ../shared/data/a-C]   # rebuild the shipped components
"""

from __future__ import annotations

import argparse
import os
from importlib import resources
from pathlib import Path

import numpy as np
from ase import Atoms
from scipy.optimize import nnls

from .datasets import coordination_counts, load_dataset, split_by_topology
from .spectra import prepare_target

#: coordination classes of the components, in order
KEYS = ("CN2", "CN3", "CN4")
COMPONENTS_FILE = "cn_spectra.npz"
#: relative misfit above which an unmixing is reported as unreliable (DFT a-C cells: 0.03-0.09)
POOR_FIT = 0.15


def coordination_spectra(cells: list[Atoms]) -> np.ndarray:
    """``[3, 100]`` mean per-atom spectra (``arrays["xanes"]``) of the 2-, 3- and 4-coordinated carbons."""
    spectra = np.concatenate([a.arrays["xanes"] for a in cells])
    cn = np.concatenate([coordination_counts(a) for a in cells])
    missing = [k for k, c in zip(KEYS, (2, 3, 4)) if not np.any(cn == c)]
    if missing:
        raise ValueError(f"no atoms with {missing} in these cells: cannot build their component spectra")
    return np.stack([spectra[cn == c].mean(axis=0) for c in (2, 3, 4)])


def shipped_coordination_spectra() -> np.ndarray:
    """The ``[3, 100]`` components shipped with the package (built from the training split)."""
    path = resources.files("ase_xanesgen.weights").joinpath(COMPONENTS_FILE)
    with resources.as_file(path) as p, np.load(p) as data:
        return data["spectra"]


def unmix_coordination(target: np.ndarray | str | os.PathLike, energy: np.ndarray | None = None, *,
                       components: np.ndarray | None = None, return_residual: bool = False
                       ) -> dict[str, float] | tuple[dict[str, float], float]:
    """CN2 / CN3 / CN4 fractions (non-negative, summing to 1) whose mixed components best match ``target``.

    ``target`` as for :func:`~ase_xanesgen.data.spectra.prepare_target` (model-grid array, intensities on
    ``energy``, or a file); it is brought to the a-C area scale first, like the guidance target. With
    ``return_residual`` also the relative L2 misfit of the mixture (0.03-0.09 on the DFT cells; well above
    ``POOR_FIT`` the spectrum is not a mix of these components and the fractions mean little).
    """
    y = prepare_target(target, energy)
    comp = shipped_coordination_spectra() if components is None else np.asarray(components, dtype=float)
    if comp.shape != (len(KEYS), y.shape[0]):
        raise ValueError(f"components must have shape ({len(KEYS)}, {y.shape[0]}), got {comp.shape}")
    penalty = 10.0 * np.linalg.norm(y)  # a heavy extra row holds the fractions' sum at 1
    a = np.vstack([comp.T, np.full(len(KEYS), penalty)])
    w, _ = nnls(a, np.append(y, penalty))
    w = w / w.sum()
    fractions = {k: float(v) for k, v in zip(KEYS, w)}
    if return_residual:
        return fractions, float(np.linalg.norm(comp.T @ w - y) / np.linalg.norm(y))
    return fractions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="a-C data folder (default ../shared/data/a-C)")
    args = parser.parse_args(argv)
    train, _ = split_by_topology(load_dataset(args.data))
    out = Path(__file__).resolve().parents[1] / "weights" / COMPONENTS_FILE
    np.savez(out, spectra=coordination_spectra(train), keys=np.array(KEYS),
             cells=np.array([a.info["name"] for a in train]))
    print(f"wrote {out} from {len(train)} training cells")


if __name__ == "__main__":
    main()
