"""CHGNet-labelled sampler structures for the atomic potential of the sampler's energy term.

The energy term (``DiffusionGenerator(potential=..., energy_step=...)``) evaluates forces on the denoised
estimate ``x0`` at noise levels 0.05 <= t <= 0.5, structures between a blurred cell and a finished one that no MD
run visits. This script labels such structures, beside the finished cells, so that a potential trained on them
(with the GAP's labels of ``benchmarks/fit_gap.py``) is right where the sampler asks it::

    python benchmarks/potential_labels.py --out runs/potential_labels     # resumable (labels cached per key)
    xz -dk checkpoints/gap_labels/*.xz     # the MD, liquid, crystal and generated frames of fit_gap.py
    cat checkpoints/gap_labels/train.xyz runs/potential_labels/train.xyz > runs/potential_train.xyz
    cat checkpoints/gap_labels/val.xyz runs/potential_labels/val.xyz > runs/potential_val.xyz
    xanesgen train potential --data runs/potential_train.xyz --val-data runs/potential_val.xyz --out runs/potential

Frames: per density (1.5-3.5 g/cm3), cells of the shipped prior and the 64-step sampler (seeded,
``LABELLED_SAMPLER``), the denoised estimate ``x + sigma(t)^2 s(x, t)`` at the first-pass steps nearest t = 0.5,
0.4, 0.3, 0.2, 0.1 and 0.05, and the finished cell; training cells from one seed, held-out cells from another. Labels: CHGNet 0.3.0 energies and forces
(``fit_gap.label_all``), written as extended XYZ with ``REF_energy`` / ``REF_forces`` and ``config_type`` 'denoised'
or 'aC'.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.io import write

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fit_gap import DENSITIES, label_all, plain  # noqa: E402

from ase_xanesgen import DiffusionGenerator, cubic_cell  # noqa: E402
from ase_xanesgen.diffusion.samplers import handoff  # noqa: E402

#: the sampler whose cells and estimates ``checkpoints/potential_labels/`` holds (64-step grid, 40 uniform
#: iterations, temperature 1/3, one anneal cycle): its first pass visits every level of :data:`T_CAPTURE`
LABELLED_SAMPLER = dict(steps=64, refine_steps=40, refine_rho=1.0, anneal_cycles=1)
#: noise levels of the captured denoised estimates
T_CAPTURE = (0.5, 0.4, 0.3, 0.2, 0.1, 0.05)


def sampler_frames(gen: DiffusionGenerator, density: float, n: int, seed: int, tag: str) -> list[Atoms]:
    """``n`` generated cells and their denoised estimates at :data:`T_CAPTURE`, unlabelled, keyed by ``tag``."""
    template = cubic_cell(216, density)
    sigma = gen.sde.sigma
    em_steps = handoff(gen.steps, 1.0, gen.sde.t_min, gen.refine_steps, gen.refine_from)[0]
    state: dict = {"prev": None, "t_prev": 1.0}
    captured: dict[float, torch.Tensor] = {}

    def callback(step: int, t: float, pos: torch.Tensor, score: torch.Tensor) -> None:
        # Euler-Maruyama steps report the next noise level and a score taken at the previous positions (whose
        # denoised estimate it gives); refinement iterations report their own level and land on the estimate
        if step < em_steps:
            t_eval = state["t_prev"]
            x0 = None if state["prev"] is None else state["prev"] + float(sigma(torch.tensor(t_eval))) ** 2 * score
        else:
            t_eval, x0 = t, pos
        for t_cap in T_CAPTURE:
            if x0 is not None and t_cap not in captured and t_eval <= t_cap + 1e-6:
                captured[t_cap] = x0.detach().clone()
        state["prev"], state["t_prev"] = pos.detach().clone(), t

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cells = gen.generate_batch(template, density=density, n=n, seed=seed, callback=callback)
    frames = []
    counts = np.cumsum([0] + [len(c) for c in cells])
    for j, cell in enumerate(cells):
        frames.append(plain(cell, f"{tag}:{density}:{j}", "aC"))
        for t_cap, x0 in sorted(captured.items()):
            atoms = Atoms(cell.numbers, positions=x0[counts[j]:counts[j + 1]].cpu().numpy(), cell=cell.cell, pbc=True)
            atoms.wrap()
            frames.append(plain(atoms, f"{tag}:{density}:{j}:t{t_cap}", "denoised"))
    return frames


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "potential_labels",
                        help="folder of train.xyz, val.xyz and the label cache")
    parser.add_argument("--n", type=int, default=4, help="training cells per density")
    parser.add_argument("--n-val", type=int, default=1, help="held-out cells per density")
    parser.add_argument("--seed", type=int, default=11, help="sampler seed of the training cells (held out: +1)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    gen = DiffusionGenerator(**LABELLED_SAMPLER)
    for split, n, seed in (("train", args.n, args.seed), ("val", args.n_val, args.seed + 1)):
        target = args.out / f"{split}.xyz"
        if target.exists():
            print(f"{target} exists: kept")
            continue
        frames = [f for d in DENSITIES for f in sampler_frames(gen, d, n, seed, f"sampler{seed}")]
        labelled = label_all(frames, args.out / "labels.xyz")
        part = target.with_suffix(".xyz.part")
        write(part, labelled, format="extxyz")
        part.replace(target)
        forces = np.concatenate([a.arrays["REF_forces"] for a in labelled])
        print(f"{split}: {len(labelled)} frames, force RMS {np.sqrt((forces ** 2).mean()):.2f} eV/A, max "
              f"{np.abs(forces).max():.1f}")


if __name__ == "__main__":
    main()
