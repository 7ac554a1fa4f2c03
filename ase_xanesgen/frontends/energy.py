"""Energy check of generated structures by any ASE calculator: the shipped GAP, or a DFT-trained judge.

The shipped GAP (``frontends.gap``) is fitted to labels of a DFT-trained potential and is fast; an independent
DFT-trained universal potential (CHGNet, SevenNet) is the stronger judge, since the GAP was fitted to one of
them. :func:`judge_calculator` builds those by name where their packages are installed (they are optional:
``pip install chgnet`` / ``pip install sevenn``, or ``pip install ase-xanesgen[judges]``; their weights ship
inside their wheels).

Example::

    from ase_xanesgen.frontends.energy import energy_check

    energy_check(atoms)                              # shipped GAP
    energy_check(atoms, calc="chgnet", relax_steps=150)
    energy_check(atoms, calc=my_ase_calculator)      # any ASE calculator that covers carbon
"""

from __future__ import annotations

import functools
import os

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError
from ase.data import atomic_numbers, chemical_symbols

from ..checks import check_count, check_positive
from .gap import check_atoms

#: Judges :func:`judge_calculator` knows: name -> (package to install, what it is).
JUDGES = {
    "chgnet": ("chgnet", "CHGNet 0.3.0 (Deng et al., Nat. Mach. Intell. 5, 1031 (2023); MPtrj PBE/PBE+U labels)"),
    "sevennet": ("sevenn", "SevenNet-0 '7net-0' (Park et al., J. Chem. Theory Comput. 20, 4857 (2024); MPtrj labels)"),
    "gap": ("quippy-ase", "the shipped carbon GAP (docs/gap.md), or $XANESGEN_GAP"),
    "vashishta": ("lammps mpich", "the Vashishta 1990 SiO2 potential through LAMMPS (Si, O; the a-SiO2 MD data's)"),
}


@functools.lru_cache(maxsize=4)
def judge_calculator(name: str, device: str = "cpu") -> Calculator:
    """An ASE calculator for a judge named in :data:`JUDGES` (``'chgnet'``, ``'sevennet'``, ``'gap'``,
    ``'vashishta'``), loaded once per process and name.

    Raises:
        ValueError: an unknown name.
        ImportError: the judge's package is not installed (the message names the pip package).
    """
    key = str(name).lower()
    if key not in JUDGES:
        raise ValueError(f"unknown judge {name!r}: choose one of {sorted(JUDGES)} or pass an ASE calculator")
    package = JUDGES[key][0]
    try:
        if key == "chgnet":
            from chgnet.model import CHGNet
            from chgnet.model.dynamics import CHGNetCalculator

            return CHGNetCalculator(CHGNet.load(verbose=False), use_device=device)
        if key == "sevennet":
            from sevenn.calculator import SevenNetCalculator

            return SevenNetCalculator("7net-0", device=device)
        if key == "vashishta":
            from .lammps import LAMMPSCalculator

            return LAMMPSCalculator(key)
    except ImportError as err:
        raise ImportError(f"the {name} judge needs its package: pip install {package}") from err
    from .gap import get_checker

    return get_checker().calculator


def judge_species(name: str) -> frozenset[int] | None:
    """Atomic numbers a judge covers; ``None`` for the universal potentials (CHGNet, SevenNet: the periodic
    table of their training data)."""
    if str(name).lower() == "vashishta":
        from .lammps import POTENTIALS

        return frozenset(atomic_numbers[s] for s in POTENTIALS["vashishta"][2])
    if str(name).lower() == "gap":
        from .gap import get_checker

        return get_checker().species
    return None


def uncovered(numbers, covered: frozenset[int] | None) -> list[str]:
    """Symbols of ``numbers`` (atomic numbers) outside ``covered`` (sorted, each once; none when ``covered`` is
    ``None``, a universal potential)."""
    return [] if covered is None else sorted({chemical_symbols[z] for z in numbers if z not in covered})


def _judge_name(calc) -> str:
    return calc if isinstance(calc, str) else type(calc).__name__


def energy_check(atoms: Atoms, calc: Calculator | str | None = None, *, relax_steps: int = 0,
                 fmax: float = 0.05) -> dict:
    """Energy per atom of ``atoms`` under ``calc``, and optionally after a fixed-cell FIRE relaxation.

    Args:
        atoms: periodic structure (not modified: a copy carries the calculator).
        calc: an ASE calculator, a judge name (:data:`JUDGES`), or ``None`` for the shipped GAP.
        relax_steps: FIRE steps at fixed cell on a copy (default 0: single point).
        fmax: FIRE convergence criterion, eV/Å (default 0.05).

    Returns:
        dict with ``judge`` (name), ``n_atoms``, ``energy_per_atom`` (eV/atom), ``force_rms`` (eV/Å),
        ``energies`` (``[n_atoms]`` eV per-atom energies where the calculator gives them, else None), and with
        ``relax_steps > 0``: ``energy_per_atom_relaxed``, ``relax_steps_taken``, ``fmax_final`` (eV/Å),
        ``positions_relaxed`` (``[n_atoms, 3]`` Å).

    Raises:
        TypeError / ValueError: not an ``Atoms``, empty, no 3-D cell, non-finite positions; a judge name that
            does not cover the structure's elements.
        RuntimeError: the calculator failed on the structure (e.g. it does not cover carbon) or returned a
            non-finite energy; the message names the calculator and its error.
    """
    check_atoms(atoms)
    relax_steps = check_count(relax_steps, "relax_steps", minimum=0)
    fmax = check_positive(fmax, "fmax", "eV/A")
    name = _judge_name(calc) if calc is not None else "gap"
    if calc is None or isinstance(calc, str):
        covered = judge_species(name)
        missing = uncovered(atoms.numbers, covered)
        if missing:
            raise ValueError(f"the {name} judge covers {sorted(chemical_symbols[z] for z in covered)}, not {missing}")
        calc = judge_calculator(name)
    work = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)
    work.calc = calc
    try:
        energy = float(work.get_potential_energy())
        forces = np.asarray(work.get_forces())
    except Exception as err:  # any calculator: its own error type, re-raised with what was asked of it
        species = sorted(set(atoms.get_chemical_symbols()))
        raise RuntimeError(f"calculator {name} failed on {atoms.get_chemical_formula()} (species {species}): "
                           f"{type(err).__name__}: {err} (does it cover these elements?)") from err
    if not np.isfinite(energy) or not np.all(np.isfinite(forces)):
        raise RuntimeError(f"calculator {name} returned a non-finite energy or forces for "
                           f"{atoms.get_chemical_formula()}")
    report = {"judge": name, "n_atoms": len(atoms), "energy_per_atom": energy / len(atoms),
              "force_rms": float(np.sqrt(np.mean(forces**2))), "energies": None}
    if "energies" in getattr(calc, "implemented_properties", ()):
        try:  # some calculators list per-atom energies but leave them out of a calculation
            report["energies"] = np.asarray(work.get_potential_energies(), dtype=float).copy()
        except PropertyNotImplementedError:
            pass
    if relax_steps:
        from ase.optimize import FIRE

        opt = FIRE(work, logfile=os.devnull)
        opt.run(fmax=fmax, steps=relax_steps)
        report.update(energy_per_atom_relaxed=float(work.get_potential_energy()) / len(work),
                      relax_steps_taken=int(opt.nsteps),
                      fmax_final=float(np.linalg.norm(work.get_forces(), axis=1).max()),
                      positions_relaxed=work.positions.copy())
    return report


def calculator_forces(calc: Calculator, dtype: torch.dtype = torch.float32):
    """``forces(pos, system) -> [N, 3]`` (eV/A) of an ASE calculator, one cell at a time, for the sampler's
    energy term (``diffusion.score_fn.EnergyTerm``; e.g. the shipped GAP through quippy).

    Raises:
        RuntimeError: the calculator fails or returns non-finite forces on a cell (named by its index).
    """

    def forces(pos: torch.Tensor, system) -> torch.Tensor:
        out = torch.empty_like(pos)
        positions = pos.detach().cpu().double().numpy()
        for g in range(system.num_graphs):
            mask = (system.batch == g).cpu().numpy()
            atoms = Atoms(system.z[system.batch == g].cpu().numpy(), positions=positions[mask],
                          cell=system.cell[g].cpu().double().numpy(), pbc=True)
            atoms.wrap()
            atoms.calc = calc
            try:
                f = atoms.get_forces()
            except Exception as err:  # any calculator: its own error type
                raise RuntimeError(f"calculator {type(calc).__name__} failed on cell {g}: {err}") from err
            if not np.all(np.isfinite(f)):
                raise RuntimeError(f"calculator {type(calc).__name__} returned non-finite forces on cell {g}")
            out[torch.from_numpy(mask).to(pos.device)] = torch.as_tensor(f, dtype=dtype, device=pos.device)
        return out

    return forces
