"""MD snapshots of any composition: read them, name their trajectories, split train / held-out by trajectory.

Formats (through ``ase.io``): extended XYZ (``.extxyz``, ``.xyz``; every frame, ``info`` and per-atom arrays
kept), LAMMPS text dumps (``.lammpstrj``, ``.dump``; every frame), LAMMPS data files (``.data``, ``.lmp``), ASE
trajectories (``.traj``), one POSCAR / CIF, or a folder of such files (read in name order). LAMMPS files carry
type numbers, not elements: ``species=["Si", "O"]`` names type 1, 2, ...

Frames of one MD run are correlated, so a held-out set must hold whole runs. Each frame gets
``info["trajectory"]``: the first of ``info["quench"]``, ``info["trajectory"]``, ``info["topology"]`` it has, else
the file it came from.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols
from ase.io import read

#: ``info`` keys that name the MD run a frame belongs to, in order of preference
TRAJECTORY_KEYS = ("quench", "trajectory", "topology")
#: suffix -> ``ase.io`` format for the files this module reads
FORMATS = {".extxyz": "extxyz", ".xyz": "extxyz", ".lammpstrj": "lammps-dump-text", ".dump": "lammps-dump-text",
           ".data": "lammps-data", ".lmp": "lammps-data", ".traj": "traj", ".vasp": "vasp", ".poscar": "vasp",
           ".cif": "cif"}
_LAMMPS = ("lammps-dump-text", "lammps-data")


def _format_of(path: Path) -> str:
    if path.suffix.lower() in FORMATS:
        return FORMATS[path.suffix.lower()]
    if path.name.upper().startswith(("POSCAR", "CONTCAR")):
        return "vasp"
    raise ValueError(f"{path}: unknown structure format; expected one of {sorted(FORMATS)} or a POSCAR / CONTCAR")


def _species_numbers(species: list[str] | None) -> list[int] | None:
    if species is None:
        return None
    bad = [s for s in species if s not in atomic_numbers]
    if bad:
        raise ValueError(f"species {bad} are not chemical symbols (e.g. ['Si', 'O'] for LAMMPS types 1, 2)")
    return [atomic_numbers[s] for s in species]


def read_file(path: str | Path, species: list[str] | None = None) -> list[Atoms]:
    """Every frame of one file, wrapped into its cell, each with ``info["source"]`` (the file name) and
    ``info["frame"]`` (its index in the file) unless already there.

    Raises ``ValueError`` for a LAMMPS file without ``species`` (its types are numbers, not elements), a frame
    without a 3-D cell, or an unknown format.
    """
    path = Path(path)
    fmt = _format_of(path)
    numbers = _species_numbers(species)
    if fmt in _LAMMPS and numbers is None:
        raise ValueError(f"{path}: a LAMMPS file gives atom types, not elements: pass species (e.g. ['Si', 'O'] "
                         "for types 1, 2; --species Si,O on the command line)")
    if fmt == "lammps-data":
        frames = [read(path, format=fmt, atom_style="atomic", Z_of_type=dict(enumerate(numbers, start=1)))]
    elif fmt == "lammps-dump-text":
        frames = read(path, index=":", format=fmt, specorder=[chemical_symbols[z] for z in numbers])
    else:
        frames = read(path, index=":", format=fmt)
    frames = frames if isinstance(frames, list) else [frames]
    for k, atoms in enumerate(frames):
        if atoms.cell.rank < 3:
            raise ValueError(f"{path} frame {k}: no 3-D periodic cell (MD snapshots need their box)")
        atoms.pbc = True
        atoms.wrap()
        atoms.info.setdefault("source", path.name)
        atoms.info.setdefault("frame", k)
    return frames


def load_structures(path: str | Path, species: list[str] | None = None) -> list[Atoms]:
    """All frames of a structure file, or of every structure file in a folder (name order; other files skipped).

    Each frame has ``info["trajectory"]`` (see module doc) and ``info["name"]`` (``trajectory:frame``).
    Raises ``FileNotFoundError`` for a missing path or a folder without structure files.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no structure file or folder at {path}")
    if path.is_dir():
        files = [p for p in sorted(path.iterdir()) if p.is_file() and _known(p)]
        if not files:
            raise FileNotFoundError(f"no structure files in {path} (expected {sorted(FORMATS)} or POSCARs)")
    else:
        files = [path]
    frames = [a for p in files for a in read_file(p, species)]
    for atoms in frames:
        trajectory = next((atoms.info[k] for k in TRAJECTORY_KEYS if k in atoms.info), atoms.info["source"])
        atoms.info["trajectory"] = str(trajectory)
        atoms.info["name"] = f"{atoms.info['trajectory']}:{atoms.info['frame']}"
    return frames


def _known(path: Path) -> bool:
    try:
        _format_of(path)
    except ValueError:
        return False
    return True


def split_by_trajectory(frames: list[Atoms], held_out: float | list[str] = 0.2) -> tuple[list[Atoms], list[Atoms]]:
    """(train, held-out) with every trajectory wholly on one side.

    ``held_out``: a fraction of the trajectories (every k-th in sorted order, k = round(1 / fraction), at least
    one when there are two or more; none of a single trajectory), or the list of trajectory ids to hold out.
    """
    ids = sorted({a.info["trajectory"] for a in frames})
    if isinstance(held_out, (list, tuple, set)):
        unknown = sorted(set(held_out) - set(ids))
        if unknown:
            raise ValueError(f"trajectories {unknown} to hold out are not in the data (it has {ids[:8]}...)")
        held = set(held_out)
    else:
        if not 0 <= held_out < 1:
            raise ValueError(f"held_out must be a fraction in [0, 1) or a list of trajectory ids, got {held_out}")
        held = set()
        if held_out > 0 and len(ids) > 1:
            k = max(2, round(1 / held_out))
            held = set(ids[k - 1::k]) or {ids[-1]}
    return ([a for a in frames if a.info["trajectory"] not in held],
            [a for a in frames if a.info["trajectory"] in held])


def composition_of(frames: list[Atoms]) -> dict[str, float]:
    """Atom fraction per element over all ``frames`` (symbols in atomic-number order)."""
    counts = Counter(int(z) for a in frames for z in a.numbers)
    total = sum(counts.values())
    return {chemical_symbols[z]: counts[z] / total for z in sorted(counts)}


def species_of(frames: list[Atoms]) -> list[int]:
    """Sorted atomic numbers present in ``frames``."""
    return sorted({int(z) for a in frames for z in np.unique(a.numbers)})
