"""Readers for the shared amorphous-carbon data set (POSCAR cells + per-atom DFT XANES).

Layout (see ``../shared/data/a-C/README.md``): ``train/structures/NAME.vasp`` and ``train/xanes/NAME.txt``
(216 rows x 100 columns, row i = atom i), plus ``reference/{diamond,graphite}.vasp`` and ``*_xanes.csv``.
Spectra are stored in ``atoms.arrays["xanes"]`` with shape ``[n_atoms, 100]`` on the a-C intensity scale.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read
from matscipy.neighbours import neighbour_list

from ..checks import check_positive
from ..geometry import density_of

N_ENERGY = 100
#: C-C bond cut-off (Angstrom) used for coordination numbers throughout the project.
CC_BOND_CUTOFF = 1.85
#: atomic number of carbon, the element of the shipped models
CARBON = 6


def default_data_dir() -> Path:
    """``$XANESGEN_DATA`` if set, else ``../shared/data/a-C`` beside the project checkout or the CWD."""
    env = os.environ.get("XANESGEN_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for root in (here.parents[2], Path.cwd()):
        candidate = root.parent / "shared" / "data" / "a-C"
        if candidate.is_dir():
            return candidate
    return Path.cwd().parent / "shared" / "data" / "a-C"


def read_spectra_txt(path: str | Path, n_atoms: int | None = None) -> np.ndarray:
    """Per-atom spectra ``[n_atoms, 100]`` from a whitespace (``.txt``) or comma (``.csv`` with header) file."""
    path = Path(path)
    if path.suffix == ".csv":
        spectra = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    else:
        spectra = np.loadtxt(path, ndmin=2)
    if spectra.shape[1] != N_ENERGY:
        raise ValueError(f"{path}: expected {N_ENERGY} energy points per row, got {spectra.shape[1]}")
    if n_atoms is not None and spectra.shape[0] != n_atoms:
        raise ValueError(f"{path}: {spectra.shape[0]} spectra for {n_atoms} atoms")
    if not np.all(np.isfinite(spectra)):
        raise ValueError(f"{path}: spectra contain NaN or inf")
    return spectra


def _with_spectra(atoms: Atoms, xanes_path: Path | None) -> Atoms:
    if xanes_path is not None and xanes_path.exists():
        atoms.arrays["xanes"] = read_spectra_txt(xanes_path, len(atoms))
    atoms.wrap()
    return atoms


def load_cell(name: str, data_dir: str | Path | None = None) -> Atoms:
    """One training cell by name (e.g. ``"d2.0_1"``) with its spectra in ``arrays["xanes"]``."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    path = root / "train" / "structures" / f"{name}.vasp"
    if not path.exists():
        raise FileNotFoundError(f"no cell {name!r} under {root / 'train' / 'structures'}")
    atoms = read(path, format="vasp")
    atoms.info["name"] = name
    return _with_spectra(atoms, root / "train" / "xanes" / f"{name}.txt")


def load_dataset(data_dir: str | Path | None = None, *, with_spectra: bool = True) -> list[Atoms]:
    """All training cells, sorted by name, each with ``info["name"]``, ``info["density"]`` (g/cm3)."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    struct_dir = root / "train" / "structures"
    if not struct_dir.is_dir():
        raise FileNotFoundError(
            f"a-C data not found at {root}: pass --data / data_dir or set XANESGEN_DATA"
        )
    cells = []
    for path in sorted(struct_dir.glob("*.vasp")):
        atoms = read(path, format="vasp")
        atoms.info["name"] = path.stem
        xanes = root / "train" / "xanes" / f"{path.stem}.txt" if with_spectra else None
        cells.append(_with_spectra(atoms, xanes))
    if not cells:
        raise FileNotFoundError(f"no *.vasp cells in {struct_dir}")
    for atoms in cells:
        atoms.info["density"] = density_of(atoms)
    return cells


def load_reference(name: str, data_dir: str | Path | None = None) -> Atoms:
    """``"diamond"`` or ``"graphite"`` with its spectra (reference intensity scale) in ``arrays["xanes"]``."""
    if name not in ("diamond", "graphite"):
        raise ValueError(f"unknown reference {name!r}: expected 'diamond' or 'graphite'")
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    atoms = read(root / "reference" / f"{name}.vasp", format="vasp")
    atoms.info["name"] = name
    return _with_spectra(atoms, root / "reference" / f"{name}_xanes.csv")


def coordination_counts(atoms: Atoms, cutoff: float = CC_BOND_CUTOFF) -> np.ndarray:
    """Number of neighbours within ``cutoff`` for every atom (periodic)."""
    check_positive(cutoff, "bond cut-off", "Angstrom")

    i = neighbour_list("i", atoms, cutoff)
    return np.bincount(i, minlength=len(atoms))


def topology_groups(cells: list[Atoms]) -> dict[tuple, list[Atoms]]:
    """Group snapshots of one MD topology: same density (0.1 g/cm3) and identical CN histogram.

    The shared cells of one density are mostly snapshots of one network; cells that share the
    key are treated as one sample when splitting.
    """
    groups: dict[tuple, list[Atoms]] = defaultdict(list)
    for atoms in cells:
        hist = tuple(np.bincount(coordination_counts(atoms), minlength=7)[:7].tolist())
        groups[(round(density_of(atoms), 1), hist)].append(atoms)
    return dict(groups)


def split_by_topology(cells: list[Atoms]) -> tuple[list[Atoms], list[Atoms]]:
    """(train, validation): per density with several topologies, its smallest group is held out.

    Densities with a single topology stay in training (holding them out would be a
    leave-one-density-out test, reported separately).
    """
    by_density: dict[float, list[tuple]] = defaultdict(list)
    groups = topology_groups(cells)
    for key in groups:
        by_density[key[0]].append(key)
    held = set()
    for keys in by_density.values():
        if len(keys) > 1:
            # smallest group; ties broken by the largest cell name, so the choice is deterministic
            key = min(keys, key=lambda k: (len(groups[k]), [-ord(c) for c in max(a.info["name"] for a in groups[k])]))
            held.update(a.info["name"] for a in groups[key])
    train = [a for a in cells if a.info["name"] not in held]
    val = [a for a in cells if a.info["name"] in held]
    return train, val
