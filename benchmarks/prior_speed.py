"""Generation speed on this machine: seconds and score evaluations per 216-atom cell (batched) at each
``--densities`` (restart cycles included), seconds per step per atom at 2k / 20k / 100k atoms (flat = O(N)), and
peak memory at the largest size.

    python benchmarks/prior_speed.py [--threads 2] [--n 16] [--repeats 3] [--densities 1.5 2.5 3.5]
        [--sizes 2000 20000 100000] [--device cpu] [--checkpoint runs/prior/model.pt]
        [sampler options of xanesgen generate: --steps 64 --refine-steps 40 --refine-rho 1 --temperature 1
        --anneal-cycles 0 (the plain sampler), --bf16, ...]
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np
import torch

from ase_xanesgen import cubic_cell
from ase_xanesgen.cli.generate import add_sampler_arguments, generator_from_args
from ase_xanesgen.diffusion import PriorScore
from ase_xanesgen.diffusion.samplers import handoff
from ase_xanesgen.nn.meshgraphnet import bf16_inference


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--steps", type=int, default=None, help="Euler-Maruyama steps (default: the generator's)")
    p.add_argument("--repeats", type=int, default=3, help="timed batches (a shared machine drifts by 10-30 %%)")
    p.add_argument("--densities", type=float, nargs="+", default=[1.5, 2.5, 3.5], help="g/cm3 of the 216-atom cells")
    p.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 100000])
    p.add_argument("--checkpoint", help="model.pt / last.pt (default: shipped weights)")
    add_sampler_arguments(p)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    gen = generator_from_args(args)
    gen.generate_batch(cubic_cell(216, 2.5), 2.5, n=2, seed=0, steps=2)  # warm-up
    em_steps, _ = handoff(args.steps or gen.steps, 1.0, gen.sde.t_min, gen.refine_steps, gen.refine_from)
    print(f"batches of {args.n} x 216 atoms, seed 0: {em_steps} Euler-Maruyama + {gen.refine_steps} refinement steps "
          f"+ {gen.anneal_cycles} anneal cycle(s) + restart cycles on cells with defects")
    for density in args.densities:
        per_cell = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            with warnings.catch_warnings():  # cells left with defects are counted below, not warned about
                warnings.simplefilter("ignore")
                out = gen.generate_batch(cubic_cell(216, density), density, n=args.n, seed=0, steps=args.steps)
            per_cell.append((time.perf_counter() - t0) / args.n)
        restarts = np.mean([a.info["restarts"] for a in out])
        evaluations = np.mean([a.info["score_evaluations"] for a in out])
        print(f"{density:4.2f} g/cm3: {min(per_cell):.2f} s per cell (best of {args.repeats}; median "
              f"{np.median(per_cell):.2f}, all {' '.join(f'{x:.2f}' for x in per_cell)}), {evaluations:.0f} score "
              f"evaluations and {restarts:.1f} restart cycles per cell, "
              f"{sum(a.info['defects'] > 0 for a in out)} cells left with defects")
    score = PriorScore(gen.model, gen.sde)
    with torch.no_grad(), bf16_inference(gen.bf16_inference):
        for n_atoms in args.sizes:
            atoms = gen.fill(cubic_cell(n_atoms, 2.5), 2.5)
            system = gen._system(atoms, 1)
            pos = gen.sde.prior_sample(system.cell, system.batch, torch.Generator(gen.device).manual_seed(0))
            score(pos, 0.3, system)
            t0 = time.perf_counter()
            reps = 3
            for _ in range(reps):
                score(pos, 0.3, system)
            step = (time.perf_counter() - t0) / reps
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{len(atoms):7d} atoms: {step:.3f} s per step, {step / len(atoms) * 1e6:.2f} us per atom-step, "
                  f"peak RSS so far {peak:.0f} MB")


if __name__ == "__main__":
    main()
