"""Per-atom GAP energies and a quick energetic sanity check of carbon structures, through quippy.

The potential is a GAP xml file read by quippy's ``Potential`` (an ASE calculator; no ``quip`` binary). Which
file is used, in order: the ``potential`` argument, the ``XANESGEN_GAP`` environment variable, the small carbon
GAP shipped with the package (``ase_xanesgen/weights/gap/carbon_gap.xml``, fitted to CHGNet energies and forces by
``benchmarks/fit_gap.py``; model card in ``docs/gap.md``). GAP-17 or GAP-20 files work the same way.

quippy is imported only when a potential is loaded, so ``import ase_xanesgen`` stays fast.

Example::

    from ase_xanesgen.frontends.gap import GAPChecker, gap_energies

    e_i = gap_energies(atoms)                    # [n_atoms] eV, shipped GAP
    report = GAPChecker("Carbon_GAP_20.xml").check(atoms, relax_steps=50)
"""

from __future__ import annotations

import functools
import os
import re
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import numpy as np
from ase import Atoms

from ..checks import check_count, check_positive, check_structure
from ..data.datasets import CARBON

#: Environment variable naming a GAP xml used when no ``potential`` argument is given.
GAP_ENV_VAR = "XANESGEN_GAP"

_Z_SINGLE = re.compile(r"\bZ[0-9]?\s*=\s*([0-9]+)")
_Z_LIST = re.compile(r"\b(?:Z|species_Z)\s*=\s*\{([0-9\s]*)\}")


def shipped_potential() -> Path:
    """Path of the carbon GAP shipped with the package."""
    return Path(str(resources.files("ase_xanesgen.weights").joinpath("gap", "carbon_gap.xml")))


def resolve_potential(potential: str | os.PathLike | None = None) -> Path:
    """The GAP xml to use: ``potential``, else ``$XANESGEN_GAP``, else :func:`shipped_potential`.

    Raises:
        FileNotFoundError: the chosen path does not exist (the message says where it came from).
        ValueError: the chosen path is not a regular file.
    """
    if potential is not None:
        path, source = Path(potential), "potential argument"
    elif os.environ.get(GAP_ENV_VAR):
        path, source = Path(os.environ[GAP_ENV_VAR]), f"${GAP_ENV_VAR}"
    else:
        path, source = shipped_potential(), "shipped default"
    path = path.expanduser()
    if not path.exists():
        raise FileNotFoundError(f"GAP potential file not found: {path} (from {source})")
    if not path.is_file():
        raise ValueError(f"GAP potential {path} (from {source}) is not a file")
    return path.resolve()


def gap_species(path: str | os.PathLike) -> frozenset[int] | None:
    """Atomic numbers the GAP descriptors in the xml ``path`` act on; ``None`` if a descriptor is species-agnostic.

    Streams the file (GAP-20 files are large) and reads only ``<descriptor>`` elements.

    Raises:
        ValueError: the file cannot be read, is not XML, or holds no GAP descriptor.
    """
    path = Path(path)
    species: set[int] = set()
    agnostic = False
    n_descriptors = 0
    try:
        for _, elem in ET.iterparse(path, events=("end",)):
            if elem.tag == "descriptor":
                n_descriptors += 1
                text = elem.text or ""
                found = {int(z) for z in _Z_SINGLE.findall(text)}
                for group in _Z_LIST.findall(text):
                    found.update(int(z) for z in group.split())
                found.discard(0)  # Z=0 is QUIP's wildcard
                if found:
                    species.update(found)
                else:
                    agnostic = True
            elem.clear()
    except ET.ParseError as err:
        raise ValueError(f"GAP potential {path} is not a valid XML file: {err}") from err
    except OSError as err:
        raise ValueError(f"cannot read GAP potential {path}: {err}") from err
    if n_descriptors == 0:
        raise ValueError(f"{path} holds no GAP <descriptor>: not a GAP potential xml")
    return None if agnostic else frozenset(species)


def _import_potential():
    try:
        from quippy.potential import Potential
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("GAP energies need quippy: pip install quippy-ase") from err
    return Potential


def check_atoms(atoms: Atoms, species: frozenset[int] | None = None) -> None:
    """Raise ``TypeError`` / ``ValueError`` unless ``atoms`` can be given a periodic energy: an ``Atoms`` with atoms,
    a finite 3-D cell, finite positions and (``species``) only atomic numbers the potential covers."""
    check_structure(atoms)
    if species is not None:
        unknown = sorted(set(atoms.numbers.tolist()) - species)
        if unknown:
            raise ValueError(f"atoms contains atomic numbers {unknown} that the potential does not cover "
                             f"({sorted(species)})")


def _closest_pair(atoms: Atoms, within: float = 1.0) -> str:
    """``": closest pair ..."`` naming the two nearest atoms (periodic) when closer than ``within`` A: atoms on one
    spot are the usual reason GAP returns NaN energies, and the bare error did not say which."""
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, within)
    if not len(d):
        return f" (no two atoms closer than {within} A)"
    k = int(np.argmin(d))
    return f": closest pair atoms {min(i[k], j[k])} and {max(i[k], j[k])}, {d[k]:.3g} A apart (atoms on one spot?)"


def _check_relax(relax_steps, fmax) -> tuple[int, float]:
    """``relax_steps`` a whole number >= 0 and ``fmax`` > 0 eV/A: ASE's FIRE takes 1.5 steps or a negative fmax
    without complaint."""
    return check_count(relax_steps, "relax_steps", minimum=0), check_positive(fmax, "fmax", "eV/A")


class GAPChecker:
    """One loaded GAP potential: per-atom energies and a summary check of carbon structures.

    Args:
        potential: GAP xml path (default: ``$XANESGEN_GAP``, then the shipped carbon GAP).
        args_str: extra quippy ``Potential`` init string (default: ``""``, read it from the file).

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable or non-GAP file, or a GAP whose descriptors do not cover carbon.
        ImportError: quippy is not installed.
    """

    def __init__(self, potential: str | os.PathLike | None = None, *, args_str: str = "") -> None:
        self.path = resolve_potential(potential)
        self.species = gap_species(self.path)
        if self.species is not None and CARBON not in self.species:
            raise ValueError(
                f"GAP potential {self.path} has no carbon: its descriptors cover Z={sorted(self.species)}"
            )
        Potential = _import_potential()
        try:  # QUIP finds separate sparseX files (GAP-17/GAP-20) beside the xml
            self.calculator = Potential(args_str=args_str, param_filename=str(self.path))
        except RuntimeError as err:
            raise ValueError(f"quippy could not load GAP potential {self.path}: {err}") from err
        self.calculator.set_default_properties(["energy"])  # forces only when asked (relaxation)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(potential={str(self.path)!r})"

    def energies(self, atoms: Atoms) -> np.ndarray:
        """Per-atom energies ``[n_atoms]`` in eV; they sum to the total potential energy.

        ``atoms`` is not modified (a copy carries the calculator).
        """
        return self._evaluate(atoms)[0]

    def _evaluate(self, atoms: Atoms) -> tuple[np.ndarray, float]:
        check_atoms(atoms, self.species)
        work = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        work.calc = self.calculator
        local = np.asarray(work.get_potential_energies(), dtype=float).copy()  # [n_atoms] eV
        total = float(work.get_potential_energy())  # same calculation, from the cache
        if local.shape != (len(atoms),) or not np.all(np.isfinite(local)):
            raise RuntimeError(f"GAP {self.path} returned non-finite or mis-shaped per-atom energies"
                               f"{_closest_pair(work)}")
        return local, total

    def check(
        self,
        atoms: Atoms,
        *,
        relax_steps: int = 0,
        fmax: float = 0.05,
        n_sigma: float = 3.0,
        min_excess: float = 0.1,
        energy_threshold: float | None = None,
    ) -> dict:
        """Summary of the per-atom GAP energies, high-energy atoms flagged, optional short relaxation.

        An atom is flagged when its energy exceeds ``mean + max(n_sigma * std, min_excess)`` or, if given,
        the absolute ``energy_threshold`` (eV).

        Args:
            atoms: periodic structure with a 3-D cell.
            relax_steps: FIRE steps on a copy at fixed cell (default: 0, no relaxation).
            fmax: FIRE convergence criterion in eV/Å (default: 0.05).
            n_sigma: flag threshold in standard deviations above the mean (default: 3.0).
            min_excess: smallest excess over the mean, in eV, that is flagged (default: 0.1).
            energy_threshold: absolute per-atom energy in eV above which atoms are flagged (default: None).

        Returns:
            dict with ``potential`` (path), ``n_atoms``, ``energy`` (total, eV), ``energy_mean``,
            ``energy_std``, ``energy_min``, ``energy_max`` (eV/atom), ``threshold`` (eV), ``high_energy``
            (list of atom indices), ``energies`` ([n_atoms] eV), and with ``relax_steps > 0`` also
            ``relax``: ``steps``, ``converged``, ``fmax_initial``, ``fmax_final`` (eV/Å),
            ``energy_mean_initial``, ``energy_mean_final`` (eV/atom), ``displacement_max``,
            ``displacement_mean`` (Å, minimum image), ``displacements`` ([n_atoms] Å), ``positions``
            ([n_atoms, 3] Å, relaxed).
        """
        relax_steps, fmax = _check_relax(relax_steps, fmax)
        local, total = self._evaluate(atoms)
        mean, std = float(local.mean()), float(local.std())
        threshold = mean + max(n_sigma * std, min_excess)
        if energy_threshold is not None:
            threshold = min(threshold, float(energy_threshold))
        report = {
            "potential": str(self.path),
            "n_atoms": len(atoms),
            "energy": total,
            "energy_mean": mean,
            "energy_std": std,
            "energy_min": float(local.min()),
            "energy_max": float(local.max()),
            "threshold": threshold,
            "high_energy": np.flatnonzero(local > threshold).tolist(),
            "energies": local,
        }
        if relax_steps > 0:
            report["relax"] = self._relax(atoms, relax_steps, fmax)
        return report

    def _relax(self, atoms: Atoms, steps: int, fmax: float) -> dict:
        from ase.geometry import find_mic
        from ase.optimize import FIRE

        work = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        work.calc = self.calculator
        f0 = float(np.linalg.norm(work.get_forces(), axis=1).max())
        e0 = float(work.get_potential_energy()) / len(work)
        opt = FIRE(work, logfile=None)
        converged = bool(opt.run(fmax=fmax, steps=steps))
        disp, dist = find_mic(work.positions - atoms.positions, atoms.cell, atoms.pbc)  # [n_atoms, 3], [n_atoms]
        return {
            "steps": int(opt.nsteps),
            "converged": converged,
            "fmax_initial": f0,
            "fmax_final": float(np.linalg.norm(work.get_forces(), axis=1).max()),
            "energy_mean_initial": e0,
            "energy_mean_final": float(work.get_potential_energy()) / len(work),
            "displacement_max": float(dist.max()),
            "displacement_mean": float(dist.mean()),
            "displacements": dist,
            "positions": work.positions.copy(),
        }


@functools.lru_cache(maxsize=4)
def _cached_checker(path: str, mtime_ns: int, size: int) -> GAPChecker:
    return GAPChecker(path)


def get_checker(potential: str | os.PathLike | None = None) -> GAPChecker:
    """A :class:`GAPChecker` for ``potential``, reused while the file is unchanged (up to 4 files kept)."""
    path = resolve_potential(potential)
    stat = path.stat()
    return _cached_checker(str(path), stat.st_mtime_ns, stat.st_size)


def gap_energies(atoms: Atoms, potential: str | os.PathLike | None = None) -> np.ndarray:
    """Per-atom GAP energies ``[n_atoms]`` in eV (they sum to the total energy).

    Args:
        atoms: periodic structure with a 3-D cell, species covered by the potential.
        potential: GAP xml path (default: ``$XANESGEN_GAP``, then the shipped carbon GAP).
    """
    return get_checker(potential).energies(atoms)


def gap_check(atoms: Atoms, potential: str | os.PathLike | None = None, **kwargs) -> dict:
    """:meth:`GAPChecker.check` with the potential resolved as in :func:`gap_energies`."""
    return get_checker(potential).check(atoms, **kwargs)
