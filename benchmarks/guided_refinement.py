"""Where guided runs start their refinement: spectrum match, CN shift and GAP energy per ``guided_refine_from``.

    python benchmarks/guided_refinement.py [--starts 0.3 0.06] [--n 8] [--target d1.5_9]

(run by path from the repository root: it imports ``cell_figures`` from ``guidance_sweep.py`` beside it)

2.0 g/cm3 cells guided (default spectrum guide, default zeta) by the mean DFT spectrum of a held-out cell; the
unguided cells of the same seed for reference. Figures as in ``guidance_sweep.py``.
"""

from __future__ import annotations

import argparse

from guidance_sweep import cell_figures

from ase_xanesgen import DiffusionGenerator, XANESCalculator, cubic_cell
from ase_xanesgen.data.datasets import load_cell


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--starts", type=float, nargs="+", default=[0.3, 0.1, 0.06])
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--target", default="d1.5_9", help="held-out cell whose mean spectrum is the target")
    args = p.parse_args(argv)

    calc = XANESCalculator(device="cpu")
    template = cubic_cell(216, 2.0)
    target = load_cell(args.target).arrays["xanes"].mean(0)
    print(f"{'guided_refine_from':>18s} {'CN2':>6s} {'CN4':>6s} {'specL2':>7s} {'GAP eV':>7s}")
    runs = [("unguided", None)] + [(f"{t:g}", t) for t in args.starts]
    for label, start in runs:
        gen = DiffusionGenerator() if start is None else DiffusionGenerator(guided_refine_from=start)
        out = gen.generate_batch(template, 2.0, n=args.n, seed=0, guide=None if start is None else target)
        r = cell_figures(out, target, calc)
        print(f"{label:>18s} {r['CN2']:6.3f} {r['CN4']:6.3f} {r['spectrum_rel_l2']:7.3f} {r['gap_mean_eV']:7.3f}",
              flush=True)


if __name__ == "__main__":
    main()
