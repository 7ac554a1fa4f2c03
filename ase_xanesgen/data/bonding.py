"""Bond rules per species pair: what counts as a bond, the coordination each species should have, and how close
two atoms may come. The sampler's restart cycles re-noise atoms that break them (``diffusion.defects``).

:data:`CARBON_RULES` is the amorphous-carbon rule (C-C bonds < 1.85 A, carbons with CN 2-4, no pair closer than
1.1 A). :func:`learn_bond_rules` reads the rules of any material off its MD snapshots; a checkpoint stores them
in its meta (``meta["bond_rules"]``, :meth:`BondRules.to_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations_with_replacement

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols, covalent_radii

#: pair distance (A) below which two atoms count as a clash when no rule names their pair
DEFAULT_MIN_DISTANCE = 1.1


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a <= b else (b, a)


@dataclass(frozen=True)
class BondRules:
    """Bonding of a material, keyed by atomic numbers.

    Attributes:
        bond_cutoffs: ``{(z1, z2): r}`` (z1 <= z2): two such atoms closer than r (A) are bonded; pairs absent
            never bond (Si-Si and O-O in silica).
        coordination: ``{z: (low, high)}``: an atom of species z with fewer than ``low`` or more than ``high``
            bonds is a defect; species absent have no coordination rule.
        min_distances: ``{(z1, z2): r}``: two such atoms closer than r (A) are a clash; pairs absent use
            ``default_min_distance``.
    """

    bond_cutoffs: dict[tuple[int, int], float]
    coordination: dict[int, tuple[int, int]] = field(default_factory=dict)
    min_distances: dict[tuple[int, int], float] = field(default_factory=dict)
    default_min_distance: float = DEFAULT_MIN_DISTANCE

    def __post_init__(self) -> None:
        for name in ("bond_cutoffs", "min_distances"):
            table = {_pair(*k): float(v) for k, v in getattr(self, name).items()}
            bad = {k: v for k, v in table.items() if not v > 0}
            if bad:
                raise ValueError(f"{name} must be positive distances (A), got {bad}")
            object.__setattr__(self, name, table)
        coordination = {int(z): (int(lo), int(hi)) for z, (lo, hi) in self.coordination.items()}
        bad = {chemical_symbols[z]: v for z, v in coordination.items() if not 0 <= v[0] <= v[1]}
        if bad:
            raise ValueError(f"coordination ranges must be 0 <= low <= high, got {bad}")
        object.__setattr__(self, "coordination", coordination)

    def cutoff(self, a: int, b: int) -> float | None:
        """Bond cut-off (A) of the pair, or None when it does not bond."""
        return self.bond_cutoffs.get(_pair(a, b))

    def min_distance(self, a: int, b: int) -> float:
        return self.min_distances.get(_pair(a, b), self.default_min_distance)

    @property
    def radius(self) -> float:
        """The largest distance any rule looks at (A): the neighbour-search radius."""
        return max([*self.bond_cutoffs.values(), *self.min_distances.values(), self.default_min_distance])

    def to_dict(self) -> dict:
        """JSON-like dict with element symbols (``{"bond_cutoffs": {"O-Si": 2.0}, ...}``)."""
        def name(p: tuple[int, int]) -> str:
            return "-".join(chemical_symbols[z] for z in p)

        return {"bond_cutoffs": {name(p): r for p, r in self.bond_cutoffs.items()},
                "coordination": {chemical_symbols[z]: list(v) for z, v in self.coordination.items()},
                "min_distances": {name(p): r for p, r in self.min_distances.items()},
                "default_min_distance": self.default_min_distance}

    @classmethod
    def from_dict(cls, d: dict) -> "BondRules":
        def pair(key: str) -> tuple[int, int]:
            a, b = key.split("-")
            return _pair(atomic_numbers[a], atomic_numbers[b])

        return cls({pair(k): v for k, v in d["bond_cutoffs"].items()},
                   {atomic_numbers[s]: tuple(v) for s, v in d.get("coordination", {}).items()},
                   {pair(k): v for k, v in d.get("min_distances", {}).items()},
                   d.get("default_min_distance", DEFAULT_MIN_DISTANCE))

    def describe(self) -> str:
        """One line, e.g. ``bonds O-Si < 2.05 A; CN O 2, Si 4``."""
        d = self.to_dict()
        bonds = ", ".join(f"{k} < {v:g} A" for k, v in d["bond_cutoffs"].items()) or "none"
        cn = ", ".join(f"{s} {lo}" if lo == hi else f"{s} {lo}-{hi}" for s, (lo, hi) in d["coordination"].items())
        return f"bonds {bonds}; CN {cn or 'free'}"


#: the amorphous-carbon rule of the shipped a-C prior: C-C bonds < 1.85 A, carbons with CN 2-4
CARBON_RULES = BondRules({(6, 6): 1.85}, {6: (2, 4)})


def _pair_distances(frames: list[Atoms], a: int, b: int, rmax: float) -> tuple[np.ndarray, int]:
    """Distances (A) from atoms of species a to atoms of b within ``rmax``, and the number of a atoms."""
    from matscipy.neighbours import neighbour_list

    out, centres = [], 0
    for atoms in frames:
        i, j, d = neighbour_list("ijd", atoms, rmax)
        z = atoms.numbers
        out.append(d[(z[i] == a) & (z[j] == b)])
        centres += int((z == a).sum())
    return np.concatenate(out), centres


def learn_bond_rules(frames: list[Atoms], *, coordination: dict[str, tuple[int, int]] | None = None,
                     min_fraction: float = 0.05, max_frames: int = 40) -> BondRules:
    """Bond rules read off MD snapshots.

    A pair bonds when its shortest-distance peak lies below 1.3 x the sum of covalent radii; its cut-off is the
    first minimum of the pair-distance histogram (0.02 A bins, 0.1 A smoothing) within 1 A beyond that peak,
    rounded up to 0.05 A. A species' coordination range spans the bond counts held by at least ``min_fraction``
    of its atoms (``coordination={"Si": (4, 4)}`` overrides it). A pair's clash distance is its shortest
    distance in the data less 0.1 A, rounded down to 0.05 A. Uses the first ``max_frames`` frames.

    Raises ``ValueError`` for no frames.
    """
    from scipy.ndimage import gaussian_filter1d

    if not frames:
        raise ValueError("no frames to learn bond rules from")
    frames = frames[:max_frames]
    species = sorted({int(z) for a in frames for z in a.numbers})
    cutoffs, min_distances = {}, {}
    for a, b in combinations_with_replacement(species, 2):
        covalent = covalent_radii[a] + covalent_radii[b]
        rmax = 1.3 * covalent + 1.0
        d, _ = _pair_distances(frames, a, b, rmax)
        if d.size == 0:
            continue
        min_distances[(a, b)] = round(float(np.floor((d.min() - 0.1) / 0.05) * 0.05), 2)
        edges = np.arange(0.0, rmax + 0.02, 0.02)
        hist = gaussian_filter1d(np.histogram(d, edges)[0].astype(float) / edges[1:] ** 2, 5.0)
        r = 0.5 * (edges[1:] + edges[:-1])
        peak = int(np.argmax(np.where(r < 1.3 * covalent + 0.3, hist, -1.0)))  # a true maximum, not the window's edge
        if hist[peak] <= 0 or r[peak] >= 1.3 * covalent:
            continue
        window = np.flatnonzero((r > r[peak]) & (r < r[peak] + 1.0))
        first_min = window[np.argmax(np.diff(hist[window]) > 0)] if np.any(np.diff(hist[window]) > 0) else window[-1]
        cutoffs[(a, b)] = round(float(np.ceil(r[first_min] / 0.05) * 0.05), 2)
    rules = BondRules(cutoffs, {}, min_distances)
    learned = {}
    for z in species:
        counts = np.concatenate([bond_counts(atoms, rules)[atoms.numbers == z] for atoms in frames])
        hist = np.bincount(counts) / counts.size
        common = np.flatnonzero(hist >= min_fraction)
        if common.size and any(rules.cutoff(z, other) for other in species):
            learned[z] = (int(common.min()), int(common.max()))
    for symbol, value in (coordination or {}).items():
        if symbol not in atomic_numbers or atomic_numbers[symbol] not in species:
            raise ValueError(f"coordination given for {symbol!r}, which is not in the data "
                             f"({[chemical_symbols[z] for z in species]})")
        learned[atomic_numbers[symbol]] = tuple(value)
    return BondRules(cutoffs, learned, min_distances)


def bond_counts(atoms: Atoms, rules: BondRules) -> np.ndarray:
    """Bonds per atom under ``rules`` (periodic): int ``[n_atoms]``."""
    from matscipy.neighbours import neighbour_list

    if not rules.bond_cutoffs:
        return np.zeros(len(atoms), dtype=int)
    i, j, d = neighbour_list("ijd", atoms, max(rules.bond_cutoffs.values()))
    z = atoms.numbers
    table = np.zeros((119, 119))
    for (a, b), r in rules.bond_cutoffs.items():
        table[a, b] = table[b, a] = r
    return np.bincount(i[d < table[z[i], z[j]]], minlength=len(atoms))
