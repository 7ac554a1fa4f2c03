"""Melt-quench MD against diffusion generation: cost per 216-atom cell and quality, in one process.

The standard a-C melt-quench protocol: 216 atoms of diamond scaled to the density, 8000 K for 3 ps, a 1000 K/ps
quench to 300 K, 1 fs steps (Langevin), then a FIRE relaxation at fixed cell (up to 300 steps): 10,700 + up to
300 force calls. With the shipped GAP through quippy in ASE (or any judge of ``frontends.energy.JUDGES``).

By default ``--timed-steps`` MD steps are timed and the full protocol is extrapolated from them; ``--full`` runs
it (hours on 2 cores: run it in the background, it writes ``--out`` as it goes and resumes from it). Beside it,
the same-size generation (batched by ``--n``) is timed in the same process, and both are judged alike: CN
fractions against the MD data of that density, and energy per atom under the same potential.

    python benchmarks/melt_quench.py                        # 2.5 g/cm3, 200 timed MD steps, shipped GAP
    python benchmarks/melt_quench.py --full --out runs/melt_quench_2.5.traj   # the whole protocol, resumable
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from ase import units
from ase.build import bulk
from ase.io import read
from ase.io.trajectory import Trajectory
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.optimize import FIRE

from ase_xanesgen import DiffusionGenerator, cubic_cell
from ase_xanesgen.analysis import hybridisation_fractions
from ase_xanesgen.data.datasets import load_dataset
from ase_xanesgen.frontends.energy import energy_check, judge_calculator
from ase_xanesgen.geometry import density_of

MELT_K, MELT_PS, FINAL_K, RATE_K_PER_PS, DT_FS, RELAX_STEPS = 8000.0, 3.0, 300.0, 1000.0, 1.0, 300
KEYS = ("CN2", "CN3", "CN4")


def protocol_steps() -> tuple[int, int]:
    """MD steps of the melt and of the quench."""
    melt = round(MELT_PS * 1000 / DT_FS)
    quench = round((MELT_K - FINAL_K) / RATE_K_PER_PS * 1000 / DT_FS)
    return melt, quench


def diamond_at(density: float):
    """216 atoms of cubic diamond (3 x 3 x 3 conventional cells) scaled to ``density`` g/cm3."""
    atoms = bulk("C", "diamond", a=3.567, cubic=True).repeat(3)
    atoms.set_cell(atoms.cell * (density_of(atoms) / density) ** (1 / 3), scale_atoms=True)
    return atoms


def melt_quench(density: float, calc, out: Path | None, seed: int) -> tuple:
    """The full protocol; frames every 100 steps go to ``out`` (a resumed run starts from its last frame)."""
    melt, quench = protocol_steps()
    done = 0
    atoms = diamond_at(density)
    if out is not None and out.exists() and out.stat().st_size:
        frames = read(out, ":")
        atoms, done = frames[-1], int(frames[-1].info.get("md_step", 0))
    atoms.calc = calc
    if done == 0:
        MaxwellBoltzmannDistribution(atoms, temperature_K=MELT_K, rng=np.random.default_rng(seed))
    writer = Trajectory(str(out), "a") if out is not None else None
    dyn = Langevin(atoms, DT_FS * units.fs, temperature_K=MELT_K, friction=0.01,
                   rng=np.random.RandomState(seed + done))
    t0 = time.perf_counter()
    step = done
    while step < melt + quench:
        target = MELT_K if step < melt else MELT_K - (step - melt) * RATE_K_PER_PS * DT_FS / 1000
        dyn.set_temperature(temperature_K=max(target, FINAL_K))
        dyn.run(100)
        step += 100
        if writer is not None:
            atoms.info["md_step"] = step
            writer.write(atoms)
        print(f"MD step {step} / {melt + quench}, T target {target:.0f} K, {time.perf_counter() - t0:.0f} s",
              flush=True)
    opt = FIRE(atoms, logfile=None)
    opt.run(fmax=0.05, steps=RELAX_STEPS)
    return atoms, time.perf_counter() - t0, melt + quench - done + opt.nsteps


def timed_steps(density: float, calc, steps: int, seed: int) -> float:
    """Seconds per MD step (force call) of the hot melt, where neighbour lists change the most."""
    atoms = diamond_at(density)
    atoms.calc = calc
    MaxwellBoltzmannDistribution(atoms, temperature_K=MELT_K, rng=np.random.default_rng(seed))
    dyn = Langevin(atoms, DT_FS * units.fs, temperature_K=MELT_K, friction=0.01, rng=np.random.RandomState(seed))
    dyn.run(5)  # warm-up
    t0 = time.perf_counter()
    dyn.run(steps)
    return (time.perf_counter() - t0) / steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--density", type=float, default=2.5, help="g/cm3")
    parser.add_argument("--calculator", default="gap", help="MD potential and judge (frontends.energy.JUDGES)")
    parser.add_argument("--timed-steps", type=int, default=200, help="MD steps timed for the extrapolation")
    parser.add_argument("--full", action="store_true", help="run the whole protocol instead of extrapolating")
    parser.add_argument("--out", type=Path, default=None, help="trajectory of the full run (resumes from it)")
    parser.add_argument("--n", type=int, default=16, help="generated cells, one batch")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--seed", type=int, default=0, help="MD and sampler seed")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    calc = judge_calculator(args.calculator)
    melt, quench = protocol_steps()
    calls = melt + quench + RELAX_STEPS
    report: dict = {"density": args.density, "calculator": args.calculator, "protocol_force_calls": calls}

    gen = DiffusionGenerator(device="cpu")
    gen.generate_batch(cubic_cell(216, args.density), density=args.density, n=2, seed=1, steps=4)  # warm-up
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cells = gen.generate_batch(cubic_cell(216, args.density), density=args.density, n=args.n, seed=args.seed)
    report["generation_s_per_cell"] = (time.perf_counter() - t0) / args.n

    if args.full:
        quenched, seconds, done_calls = melt_quench(args.density, calc, args.out, args.seed)
        report.update(md_s_per_cell=seconds * calls / max(done_calls, 1), md_measured="full run")
        md_cells = [quenched]
    else:
        per_step = timed_steps(args.density, calc, args.timed_steps, args.seed)
        report.update(md_s_per_step=per_step, md_s_per_cell=per_step * calls,
                      md_measured=f"{args.timed_steps} steps timed, extrapolated to {calls} force calls")
        md_cells = []
    report["cost_ratio"] = report["md_s_per_cell"] / report["generation_s_per_cell"]

    reference = [a for a in load_dataset(with_spectra=False) if abs(density_of(a) - args.density) < 0.02]
    for name, group in (("reference MD data", reference), ("generated", cells), ("this melt-quench", md_cells)):
        if not group:
            continue
        fractions = hybridisation_fractions(group)
        energy = float(np.mean([energy_check(a, calc)["energy_per_atom"] for a in group]))
        report[name] = {**{k: float(fractions[k]) for k in KEYS}, "energy_per_atom": energy}

    print(f"\n== {args.density} g/cm3, 216 atoms, {args.calculator} ==")
    print(f"melt-quench: {report['md_s_per_cell']:.0f} s per cell ({report['md_measured']})")
    print(f"generation:  {report['generation_s_per_cell']:.2f} s per cell (batch of {args.n})")
    print(f"cost ratio:  {report['cost_ratio']:.0f}x")
    print(f"{'':<20}{'CN2':>7}{'CN3':>7}{'CN4':>7}{'E (eV/atom)':>13}")
    for name in ("reference MD data", "generated", "this melt-quench"):
        if name in report:
            r = report[name]
            print(f"{name:<20}" + "".join(f"{r[k]:>7.3f}" for k in KEYS) + f"{r['energy_per_atom']:>13.3f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
