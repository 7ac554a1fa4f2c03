"""Structure figures of generated a-C against the MD cells (docs/prior_model.md).

For each density: ``--n`` cells of 216 atoms in one batch; CN2/CN3/CN4 fractions vs MD, defect fraction
(CN <= 1 plus CN >= 5), RDF first peak, mean C-C-C angle (and its spread), closest pair, GAP mean energy
(shipped potential), restarts, seconds per cell.

    python benchmarks/prior_structure.py [--checkpoint runs/prior/model.pt] [--n 8] [--steps N]
    python benchmarks/prior_structure.py --large 4096   # one 4,096-atom cell at 2.5 g/cm3
    python benchmarks/prior_structure.py --densities 2.25 2.75 3.25   # between the MD densities: MD interpolated
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from ase import Atoms

from ase_xanesgen import cubic_cell, gap_energies
from ase_xanesgen.analysis import bond_angles, hybridisation_fractions, rdf_first_peak
from ase_xanesgen.cli.generate import add_sampler_arguments, generator_from_args
from ase_xanesgen.data.datasets import load_dataset
from ase_xanesgen.geometry import density_of

DENSITIES = (1.5, 2.0, 2.5, 3.0, 3.5)
KEYS = ("CN2", "CN3", "CN4")


def min_pair_distance(atoms: Atoms) -> float:
    from matscipy.neighbours import neighbour_list

    d = neighbour_list("d", atoms, 1.5)
    return float(d.min()) if len(d) else float("inf")


def md_reference(cells: list[Atoms], density: float) -> list[Atoms]:
    """The MD cells at ``density`` (theirs are 1.496-3.492 for the nominal 1.5-3.5 g/cm3)."""
    return [a for a in cells if abs(density_of(a) - density) < 0.02]


def reference_figures(reference: list[Atoms]) -> dict:
    """The MD figures a generated batch is compared with: CN fractions, RDF peak, angles, GAP energy."""
    out = {f"{k}_md": v for k, v in hybridisation_fractions(reference).items() if k in KEYS}
    out["rdf_peak_md"] = rdf_first_peak(reference)
    angles = bond_angles(reference)
    out["angle_md"], out["angle_std_md"] = float(np.mean(angles)), float(np.std(angles))
    out["gap_md"] = float(np.mean([gap_energies(a).mean() for a in reference]))
    return out


def md_figures(cells: list[Atoms], density: float) -> dict:
    """``reference_figures`` of the MD cells at ``density``; between two MD densities (no cell there), their
    linear interpolation, marked ``interpolated`` (a density the prior never saw: does it generate in between?)."""
    ref = md_reference(cells, density)
    if ref:
        return reference_figures(ref)
    known = sorted({round(density_of(a), 1) for a in cells})
    below, above = [d for d in known if d < density], [d for d in known if d > density]
    if not below or not above:
        raise SystemExit(f"no MD cells at or around {density} g/cm3 (MD densities: {known})")
    lower, upper = below[-1], above[0]
    w = (density - lower) / (upper - lower)
    a, b = (reference_figures(md_reference(cells, d)) for d in (lower, upper))
    return {**{k: (1 - w) * a[k] + w * b[k] for k in a}, "interpolated": [lower, upper]}


def evaluate(generated: list[Atoms], md: dict) -> dict:
    gen_f = [hybridisation_fractions(a) for a in generated]
    out = {f"{k}_gen": float(np.mean([f[k] for f in gen_f])) for k in KEYS}
    out.update({f"{k}_gen_std": float(np.std([f[k] for f in gen_f])) for k in KEYS})
    out.update(md)
    out["max_cn_error"] = max(abs(out[f"{k}_gen"] - out[f"{k}_md"]) for k in KEYS)
    out["defects"] = float(np.mean([f["CN<=1"] + f["CN>=5"] for f in gen_f]))
    out["rdf_peak_gen"] = rdf_first_peak(generated)
    angles_gen = bond_angles(generated)
    out["angle_gen"], out["angle_std_gen"] = float(np.mean(angles_gen)), float(np.std(angles_gen))
    out["min_pair"] = min(min_pair_distance(a) for a in generated)
    out["gap_gen"] = float(np.mean([gap_energies(a).mean() for a in generated]))
    out["restarts"] = float(np.mean([a.info["restarts"] for a in generated]))
    out["pass"] = bool(out["max_cn_error"] <= 0.05 and out["defects"] < 0.01
                       and abs(out["rdf_peak_gen"] - out["rdf_peak_md"]) <= 0.03
                       and abs(out["angle_gen"] - out["angle_md"]) <= 3.0 and out["min_pair"] >= 1.1)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="model.pt / last.pt (default: shipped weights)")
    p.add_argument("--data", default=None)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--steps", type=int, default=None, help="Euler-Maruyama steps (default: the generator's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--densities", type=float, nargs="+", default=list(DENSITIES))
    p.add_argument("--large", type=int, default=0, help="also one cell of this many atoms at 2.5 g/cm3")
    add_sampler_arguments(p)
    p.add_argument("--device", default=None)
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)

    gen = generator_from_args(args)
    cells = load_dataset(args.data, with_spectra=False)
    results = {}
    print(f"{'rho':>5} | {'CN2 gen/md':>11} {'CN3 gen/md':>11} {'CN4 gen/md':>11} | {'max|d|':>6} "
          f"{'defect':>6} | {'rdf gen/md':>11} | {'angle gen/md':>13} {'spread':>9} | {'GAP eV gen/md':>13} | "
          f"{'dmin':>5} {'rst':>4} {'s/cell':>6} ok")
    for rho in args.densities:
        md = md_figures(cells, rho)
        t0 = time.perf_counter()
        out = gen.generate_batch(cubic_cell(216, rho), rho, n=args.n, seed=args.seed, steps=args.steps)
        dt = (time.perf_counter() - t0) / args.n
        r = evaluate(out, md)
        r["s_per_cell"] = dt
        results[rho] = r
        print(f"{rho:5.2f} | " + " ".join(f"{r[k + '_gen']:.3f}/{r[k + '_md']:.2f}" for k in KEYS)
              + f" | {r['max_cn_error']:6.3f} {r['defects']:6.3f} | {r['rdf_peak_gen']:.3f}/{r['rdf_peak_md']:.3f}"
              f" | {r['angle_gen']:6.2f}/{r['angle_md']:6.2f} {r['angle_std_gen']:4.1f}/{r['angle_std_md']:4.1f}"
              f" | {r['gap_gen']:6.3f}/{r['gap_md']:6.3f} | {r['min_pair']:5.2f} {r['restarts']:4.1f}"
              f" {dt:6.2f} {'yes' if r['pass'] else 'NO'}"
              + (" (MD interpolated between {} and {})".format(*md["interpolated"]) if "interpolated" in md else ""),
              flush=True)
    if args.large:
        t0 = time.perf_counter()
        big = gen.generate(cubic_cell(args.large, 2.5), 2.5, seed=args.seed, steps=args.steps)
        r = evaluate([big], md_figures(cells, 2.5))
        r["seconds"] = time.perf_counter() - t0
        results[f"large_{args.large}"] = r
        print(f"{len(big)} atoms at 2.5: " + " ".join(f"{k} {r[k + '_gen']:.3f}/{r[k + '_md']:.2f}" for k in KEYS)
              + f" max|d| {r['max_cn_error']:.3f} defects {r['defects']:.3f} ({r['seconds']:.1f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return results


if __name__ == "__main__":
    main()
