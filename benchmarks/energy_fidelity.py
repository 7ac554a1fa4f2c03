"""Energy fidelity of generated a-C against the MD cells, judged by the shipped GAP and DFT-trained potentials.

Per density: ``--n`` generated cells of 216 atoms (one batch) and the MD cells of that density, each given a
single-point energy per atom by every judge (the shipped GAP; CHGNet and SevenNet where installed), and after a
150-step FIRE relaxation at fixed cell (``--relax-pairs`` MD/generated pairs, relaxed under ``--relax-judge``
and then judged by each judge); bond-angle mean and spread, three-membered rings per atom, CN fractions,
seconds per cell. One table; ``--plot`` draws the per-atom GAP energy distributions (the paper's Fig. 3e).

    python benchmarks/energy_fidelity.py                      # shipped weights, 6 cells per density
    python benchmarks/energy_fidelity.py --judges gap chgnet sevennet --relax-judge chgnet --plot e.png
    python benchmarks/energy_fidelity.py --steps 64 --refine-steps 40 --refine-rho 1 --temperature 1 --anneal-cycles 0
                                                              # the plain reverse SDE with a uniform quench

MD judge energies are cached in ``--cache`` (they do not change between runs); ``--json`` keeps every number.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms

from ase_xanesgen import cubic_cell
from ase_xanesgen.analysis import bond_angles, hybridisation_fractions, ring_statistics
from ase_xanesgen.cli.generate import add_sampler_arguments, generator_from_args
from ase_xanesgen.data.datasets import load_dataset
from ase_xanesgen.frontends.energy import energy_check, judge_calculator
from ase_xanesgen.frontends.gap import resolve_potential
from ase_xanesgen.geometry import density_of

DENSITIES = (1.5, 2.0, 2.5, 3.0, 3.5)
KEYS = ("CN2", "CN3", "CN4")
ROOT = Path(__file__).resolve().parents[1]


def available_judges(names: list[str]) -> list[str]:
    out = []
    for name in names:
        try:
            judge_calculator(name)
            out.append(name)
        except ImportError as err:
            print(f"judge {name} skipped: {err}")
    return out


def structure_figures(cells: list[Atoms]) -> dict:
    angles = bond_angles(cells)
    rings = ring_statistics(cells, maxlength=8)
    n_atoms = sum(len(a) for a in cells)
    out = {k: v for k, v in hybridisation_fractions(cells).items() if k in KEYS}
    out.update(angle_mean=float(np.mean(angles)), angle_std=float(np.std(angles)),
               rings3_per_atom=float(rings[3] / n_atoms), rings4_per_atom=float(rings[4] / n_atoms))
    return out


def judge_tag(judge: str) -> str:
    """The cache's name of a judge: the GAP's with its file's checksum, since a refit changes its energies."""
    if judge != "gap":
        return judge
    return f"gap-{hashlib.sha256(resolve_potential().read_bytes()).hexdigest()[:12]}"


def judge_cells(cells: list[Atoms], judges: list[str], cache: dict | None = None
                ) -> tuple[dict, np.ndarray | None]:
    """Mean energy per atom (eV) and its spread over cells, per judge, and the GAP's per-atom energies of all
    cells (``[sum of atoms]`` eV; None unless ``"gap"`` judges). MD cells are cached by name."""
    out, local = {}, None
    for judge in judges:
        means, energies = [], []
        tag = judge_tag(judge)
        for a in cells:
            key = f"{tag}:{a.info.get('name')}"
            entry = cache.get(key) if cache is not None else None
            if not isinstance(entry, dict):
                rep = energy_check(a, judge)
                entry = {"energy_per_atom": rep["energy_per_atom"],
                         "energies": None if rep["energies"] is None else rep["energies"].tolist()}
                if cache is not None:
                    cache[key] = entry
            means.append(entry["energy_per_atom"])
            energies.append(entry["energies"])
        out[judge] = (float(np.mean(means)), float(np.std(means)))
        if judge == "gap":
            local = np.concatenate(energies)
    return out, local


def relaxed_energies(atoms: Atoms, relax_judge: str, judges: list[str]) -> dict:
    """Energy per atom under each judge after ``relax_judge``'s 150-step FIRE at fixed cell."""
    rep = energy_check(atoms, relax_judge, relax_steps=150)
    relaxed = atoms.copy()
    relaxed.positions = rep["positions_relaxed"]
    return {j: (rep["energy_per_atom_relaxed"] if j == relax_judge
                else energy_check(relaxed, j)["energy_per_atom"]) for j in judges}


def plot_distributions(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 3.0), sharey=True)
    bins = np.linspace(-9.5, -5.0, 60)
    for ax, row in zip(np.atleast_1d(axes), rows):
        ax.hist(row["gap_local_md"], bins=bins, density=True, histtype="step", color="k", label="MD")
        ax.hist(row["gap_local_gen"], bins=bins, density=True, histtype="stepfilled", alpha=0.5, label="generated")
        ax.set_title(f"{row['density']} g/cm$^3$")
        ax.set_xlabel("per-atom GAP energy (eV)")
    np.atleast_1d(axes)[0].set_ylabel("density")
    np.atleast_1d(axes)[0].legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--n", type=int, default=6, help="generated cells per density (one batch)")
    parser.add_argument("--seed", type=int, default=0, help="sampler seed")
    parser.add_argument("--densities", type=float, nargs="+", default=DENSITIES, help="g/cm3")
    parser.add_argument("--judges", nargs="+", default=["gap", "chgnet", "sevennet"],
                        help="energy judges (those not installed are skipped)")
    parser.add_argument("--relax-pairs", type=int, default=1, help="MD/generated pairs relaxed per density")
    parser.add_argument("--relax-judge", default="gap", help="potential of the 150-step FIRE relaxation")
    parser.add_argument("--checkpoint", default=None, help="prior weights (default: shipped)")
    parser.add_argument("--device", default="cpu", help="torch device of the generator")
    parser.add_argument("--cache", type=Path, default=ROOT / "runs" / "energy_fidelity_md.json",
                        help="cache of the MD cells' judge energies")
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    parser.add_argument("--plot", type=Path, default=None, help="per-atom energy distributions (png)")
    parser.add_argument("--steps", type=int, default=None, help="Euler-Maruyama steps (default: the generator's)")
    add_sampler_arguments(parser)
    args = parser.parse_args(argv)

    judges = available_judges(args.judges)
    if args.plot and "gap" not in judges:
        parser.error("--plot shows the per-atom GAP energies: add gap to --judges (it needs quippy-ase installed)")
    cache = json.loads(args.cache.read_text()) if args.cache.exists() else {}
    gen = generator_from_args(args)
    md = load_dataset(with_spectra=False)
    held = [density_of(a) for a in md]
    missing = [d for d in args.densities if not any(abs(h - d) < 0.02 for h in held)]
    if missing:
        parser.error(f"no MD cells at {missing} g/cm3 to compare with: the data hold "
                     f"{sorted({round(h, 1) for h in held})}")
    rows = []
    for density in args.densities:
        ref = [a for a, h in zip(md, held) if abs(h - density) < 0.02]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cells = gen.generate_batch(cubic_cell(216, density), density=density, n=args.n, seed=args.seed,
                                       steps=args.steps)
        seconds = (time.perf_counter() - t0) / args.n
        row = {"density": density, "seconds_per_cell": seconds, "n_md": len(ref),
               "defects": int(sum(a.info["defects"] for a in cells))}
        row["md"], row["gen"] = structure_figures(ref), structure_figures(cells)
        row["energy_md"], local_md = judge_cells(ref, judges, cache)
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        args.cache.write_text(json.dumps(cache))
        row["energy_gen"], local_gen = judge_cells(cells, judges)
        if local_md is not None:
            row["gap_local_md"], row["gap_local_gen"] = local_md.tolist(), local_gen.tolist()
        if args.relax_pairs and ref:
            pairs = list(zip(ref, cells))[: args.relax_pairs]
            relaxed = [(relaxed_energies(m, args.relax_judge, judges), relaxed_energies(g, args.relax_judge, judges))
                       for m, g in pairs]
            row["relaxed"] = {j: float(np.mean([g[j] - m[j] for m, g in relaxed])) for j in judges}
        rows.append(row)
        print_row(row, judges)
    print_table(rows, judges, args.relax_judge, args.relax_pairs)
    if args.plot:
        plot_distributions(rows, args.plot)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def print_row(row: dict, judges: list[str]) -> None:
    gaps = ", ".join(f"{j} {row['energy_gen'][j][0] - row['energy_md'][j][0]:+.3f}" for j in judges)
    print(f"{row['density']} g/cm3: generated - MD {gaps} eV/atom; {row['seconds_per_cell']:.2f} s/cell", flush=True)


def print_table(rows: list[dict], judges: list[str], relax_judge: str, pairs: int) -> None:
    print("\n== generated - MD energy per atom (eV/atom); spread over generated cells in brackets ==")
    head = f"{'g/cm3':>6}" + "".join(f"{j:>16}" for j in judges)
    head += "".join(f"{'relaxed ' + j:>16}" for j in judges)
    print(head)
    for r in rows:
        line = f"{r['density']:>6}"
        line += "".join(f"{r['energy_gen'][j][0] - r['energy_md'][j][0]:>+9.3f} ({r['energy_gen'][j][1]:.3f})"
                        for j in judges)
        line += "".join(f"{r['relaxed'][j]:>+16.3f}" if "relaxed" in r else f"{'-':>16}" for j in judges)
        print(line)
    print(f"(relaxed: 150 FIRE steps at fixed cell under {relax_judge}, mean of {pairs} MD/generated pair(s) per "
          "density)")
    print("\n== structure: MD / generated ==")
    print(f"{'g/cm3':>6}{'CN2':>13}{'CN3':>13}{'CN4':>13}{'angle mean':>16}{'angle std':>14}{'3-rings/atom':>18}"
          f"{'defects':>9}{'s/cell':>8}")
    for r in rows:
        m, g = r["md"], r["gen"]
        print(f"{r['density']:>6}" + "".join(f"{m[k]:>7.3f}/{g[k]:.3f}" for k in KEYS)
              + f"{m['angle_mean']:>9.1f}/{g['angle_mean']:<6.1f}{m['angle_std']:>8.1f}/{g['angle_std']:<5.1f}"
              + f"{m['rings3_per_atom']:>11.4f}/{g['rings3_per_atom']:.4f}{r['defects']:>9}{r['seconds_per_cell']:>8.2f}")


if __name__ == "__main__":
    main()
