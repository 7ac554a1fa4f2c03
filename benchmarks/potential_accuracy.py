"""Errors of an ``AtomicPotential`` checkpoint (``xanesgen train potential``) against labelled frames, per kind.

Prints, for every ``config_type`` of every labelled extended-XYZ file given (``REF_energy`` / ``REF_forces``, as
``benchmarks/fit_gap.py`` and ``benchmarks/potential_labels.py`` write them; denoised sampler frames also by the
noise level in their key, ``...:t0.3``): frames, energy RMSE (meV/atom), force
component RMSE (eV/A) and the labels' own force RMS (eV/A), the scale an error is judged against::

    xz -dk checkpoints/gap_labels/val.xyz.xz checkpoints/potential_labels/val.xyz.xz
    python benchmarks/potential_accuracy.py checkpoints/potential/last.pt \\
        checkpoints/gap_labels/val.xyz checkpoints/potential_labels/val.xyz
"""

from __future__ import annotations

import argparse

import torch
from ase.io import read
from torch_geometric.data import Batch

from ase_xanesgen.nn.checkpoint import from_dict, load
from ase_xanesgen.train.potential import labelled_graphs, predict


def kind_of(atoms) -> str:
    """``config_type``, with the noise level of a denoised sampler frame (key ``...:t0.3``)."""
    kind, tail = atoms.info.get("config_type", "-"), str(atoms.info.get("key", "")).rsplit(":", 1)[-1]
    return f"{kind} {tail}" if tail.startswith("t") and tail[1:].replace(".", "").isdigit() else kind


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="model.pt or last.pt of xanesgen train potential")
    parser.add_argument("frames", nargs="+", help="labelled extended-XYZ files")
    args = parser.parse_args(argv)
    ckpt = load(args.checkpoint)
    model = from_dict(ckpt.get("ema", ckpt), expect="AtomicPotential").eval()
    print(f"{model!r}")
    print(f"{'file':40s} {'kind':14s} {'frames':>6s} {'E meV/atom':>11s} {'F eV/A':>7s} {'label F RMS':>12s}")
    for path in args.frames:
        frames = read(path, ":")
        for kind in sorted({kind_of(a) for a in frames}):
            subset = [a for a in frames if kind_of(a) == kind]
            batch = Batch.from_data_list(labelled_graphs(subset, model.cutoff))
            energy, forces = (x.detach() for x in predict(model, batch, create_graph=False))
            n_atoms = torch.bincount(batch.batch).to(energy)
            e_rmse = float(((energy - batch.energy) / n_atoms).square().mean().sqrt()) * 1000
            f_rmse = float((forces - batch.forces).square().mean().sqrt())
            f_rms = float(batch.forces.square().mean().sqrt())
            print(f"{path[-40:]:40s} {kind:14s} {len(subset):6d} {e_rmse:11.1f} {f_rmse:7.2f} {f_rms:12.2f}")


if __name__ == "__main__":
    main()
