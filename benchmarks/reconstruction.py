"""Where the prior loses energy: MD cells noised to a level t and denoised again, judged against the cells themselves.

A score model that matched the data would bring a noised MD cell back to a cell of the same energy (a fresh
draw of its posterior, minus the 300 K thermal displacement the denoiser removes). Per held-out MD cell
(the validation topologies of ``data.datasets.split_by_topology``, never trained on) and noise level ``t``:
``DiffusionGenerator.generate(cell, start_time=t)`` with the default sampler (no restart cycles), the
energy per atom under ``--judge`` minus the MD cell's. Below the level where the model's errors start the
difference sits near minus the thermal energy (about -0.04 eV/atom); above it, it rises: the noise levels of
that rise are where a fine-tune (``xanesgen train prior --init ... --t-range LOW HIGH``) pays.

    python benchmarks/reconstruction.py                                  # shipped weights
    python benchmarks/reconstruction.py --checkpoint runs/prior_band/model.pt --times 0.3 0.4 0.5
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from ase_xanesgen.cli.generate import add_sampler_arguments, generator_from_args
from ase_xanesgen.data.datasets import load_dataset, split_by_topology
from ase_xanesgen.frontends.energy import energy_check
from ase_xanesgen.geometry import density_of

TIMES = (0.1, 0.2, 0.3, 0.4, 0.5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--times", type=float, nargs="+", default=TIMES, help="noise levels t the cells start from")
    parser.add_argument("--judge", default="gap", help="energy judge (frontends.energy.JUDGES)")
    parser.add_argument("--draws", type=int, default=2, help="denoised draws per cell and t (seeds 0, 1, ...)")
    parser.add_argument("--all-cells", action="store_true",
                        help="every MD cell instead of the held-out topologies (training cells included)")
    parser.add_argument("--checkpoint", default=None, help="prior weights (default: shipped)")
    parser.add_argument("--device", default="cpu", help="torch device of the generator")
    add_sampler_arguments(parser)
    args = parser.parse_args(argv)
    args.max_restarts = 0 if args.max_restarts is None else args.max_restarts
    gen = generator_from_args(args)
    cells = load_dataset(with_spectra=False)
    cells = cells if args.all_cells else split_by_topology(cells)[1]
    cells = sorted(cells, key=density_of)
    print(f"{args.judge} energy per atom, denoised - MD (eV/atom), mean of {args.draws} draws per cell")
    print(f"{'cell':>10} {'g/cm3':>6} " + " ".join(f"{'t=' + str(t):>8}" for t in args.times))
    table = []
    for cell in cells:
        e_md = energy_check(cell, args.judge)["energy_per_atom"]
        row = []
        for t in args.times:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = [gen.generate(cell, start_time=t, seed=k) for k in range(args.draws)]
            row.append(np.mean([energy_check(a, args.judge)["energy_per_atom"] for a in out]) - e_md)
        table.append(row)
        print(f"{cell.info['name']:>10} {density_of(cell):6.2f} " + " ".join(f"{d:+8.3f}" for d in row), flush=True)
    print(f"{'mean':>10} {'':>6} " + " ".join(f"{d:+8.3f}" for d in np.mean(table, axis=0)))


if __name__ == "__main__":
    main()
