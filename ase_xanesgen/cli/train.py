"""Train the diffusion prior, the XANES model or the atomic potential (resumable from ``OUT/last.pt``; ``torchrun``
for DDP)."""

from __future__ import annotations

import argparse

from ..train.loop import TrainConfig
from ..train.prior import train_prior
from ..train.xanes import train_xanes
from .inputs import DEVICE_HELP, refuse_idle


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``xanesgen train``."""
    parser.add_argument("model", choices=["prior", "xanes", "potential"], help="which network to train")
    parser.add_argument("--data", default=None,
                        help="a-C data folder (default: $XANESGEN_DATA, else ../shared/data/a-C); prior: or MD "
                        "snapshots of any material (extxyz, LAMMPS dump / data, POSCARs, or a folder of them), split "
                        "by trajectory; potential: an extended-XYZ file of frames labelled REF_energy / REF_forces "
                        "(benchmarks/fit_gap.py)")
    parser.add_argument("--val-data", default=None,
                        help="potential: held-out labelled frames (extended XYZ; default: none, no validation)")
    parser.add_argument("--species", type=lambda t: t.split(","), default=None, metavar="A,B",
                        help="prior: elements of LAMMPS atom types 1, 2, ... (e.g. Si,O; default: none, LAMMPS files "
                        "refused)")
    parser.add_argument("--held-out", type=float, default=None,
                        help="prior, MD data: fraction of the trajectories held out for validation (default 0.2)")
    parser.add_argument("--cutoff", type=float, default=None, help="prior: graph radius in A (default 3.0)")
    parser.add_argument("--out", required=True, help="run folder: last.pt, model.pt, log.jsonl")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (default: prior 20000, xanes 3000, potential 4000)")
    parser.add_argument("--batch-size", type=int, default=None, help="cells per step (default: prior 8, xanes 4, potential 8)")
    parser.add_argument("--lr", type=float, default=1e-3,
                        help="peak learning rate (default 1e-3), after a linear warm-up of min(200, steps / 10) "
                        "steps, cosine decay to 1e-5")
    parser.add_argument("--ema", type=float, default=0.999, help="EMA decay of the saved weights (default 0.999)")
    parser.add_argument("--width", type=int, default=None, help="latent size (default: prior 128, xanes 64, potential 64)")
    parser.add_argument("--layers", type=int, default=None,
                        help="processor layers (default: prior 4, xanes 3); potential: message-passing interactions "
                        "on its symmetry functions (default 2; 0: none)")
    parser.add_argument("--sigma-max", type=float, default=None, help="prior: sigma(1) in Angstrom (default 0.8)")
    parser.add_argument("--t-power", type=float, default=None,
                        help="prior: t = u**p, p > 0 (p > 1: more low noise; default 1)")
    parser.add_argument("--t-range", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                        help="prior: draw t in [LOW, HIGH] only, e.g. a fine-tune (--init) on the noise levels "
                        "where the bonding is decided (default: 0.001 1)")
    parser.add_argument("--exclude-density", type=float, default=None,
                        help="xanes: leave this density (g/cm3) out of training (leave-one-density-out; default: none)")
    parser.add_argument("--crystals", action="store_true",
                        help="xanes: add the diamond and graphite references (spectra scaled to the a-C intensities)")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="wall-clock seconds for the whole run, resumes included: sets the step count (default: "
                        "none, --steps steps)")
    parser.add_argument("--val-every", type=int, default=500,
                        help="validate, log and save last.pt every N steps (default 500; a killed run loses at most "
                        "N steps)")
    parser.add_argument("--seed", type=int, default=0,
                        help="initial weights, noise, rotations and data order (default: 0)")
    parser.add_argument("--init", help="start from this run's weights (a model.pt / last.pt or its run folder; "
                        "fresh optimiser and schedule; --out must be a new folder; default: fresh weights)")
    parser.add_argument("--no-balance", action="store_true",
                        help="prior: draw cells uniformly instead of every density equally often")
    parser.add_argument("--device", default=None, help=DEVICE_HELP)


#: options of one model only, and the model: given for the other, they would be silently ignored
ONLY_FOR = {"sigma_max": "prior", "t_power": "prior", "t_range": "prior", "no_balance": "prior",
            "species": "prior", "held_out": "prior", "cutoff": "prior", "exclude_density": "xanes", "crystals": "xanes",
            "val_data": "potential"}


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status (errors raise, ``cli.main`` turns them into status 2)."""
    wrong = {"--" + name.replace("_", "-"): model for name, model in ONLY_FOR.items()
             if getattr(args, name) is not None and getattr(args, name) is not False and model != args.model}
    refuse_idle(list(wrong), "train " + " / ".join(sorted(set(wrong.values()))))
    defaults = {"prior": dict(steps=20000, batch_size=8, width=128, layers=4),
                "xanes": dict(steps=3000, batch_size=4, width=64, layers=3),
                "potential": dict(steps=4000, batch_size=8, width=64, layers=2)}[args.model]
    pick = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in defaults.items()}
    config = TrainConfig(steps=pick["steps"], batch_size=pick["batch_size"], lr=args.lr, ema=args.ema,
                         lr_min=min(TrainConfig.lr_min, args.lr),
                         warmup=min(TrainConfig.warmup, max(1, pick["steps"] // 10)),
                         val_every=args.val_every, ckpt_every=args.val_every, seed=args.seed,
                         time_budget=args.time_budget)
    if args.model == "prior":
        given = {k: v for k in ("sigma_max", "t_power", "t_range", "species", "held_out", "cutoff")
                 if (v := getattr(args, k)) is not None}  # else its defaults
        train_prior(args.data, args.out, config, width=pick["width"], layers=pick["layers"], device=args.device,
                    init=args.init, balance_densities=not args.no_balance, **given)
    elif args.model == "potential":
        from ..train.potential import train_potential

        if args.data is None:
            raise ValueError("train potential needs --data (labelled extended XYZ)")
        train_potential(args.data, args.out, config, val_file=args.val_data, width=pick["width"],
                        interactions=pick["layers"], device=args.device)
    else:
        train_xanes(args.data, args.out, config, width=pick["width"], layers=pick["layers"],
                    exclude_density=args.exclude_density, device=args.device, init=args.init,
                    crystals=args.crystals)
    print(f"weights: {args.out}/model.pt")
    return 0
