"""Generate amorphous cells with the diffusion prior: ``xanesgen generate --density 2.0 --atoms 216 -o a-C.traj``."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--density", type=float, default=None,
                        help="g/cm3 (required unless --template gives the atoms to use as they are)")
    parser.add_argument("--atoms", type=int, default=216, help="atoms per cell (cubic cell sized to the density)")
    parser.add_argument("--template", help="structure file whose cell (and species) to use instead of --atoms")
    parser.add_argument("--n", type=int, default=1, help="number of cells, denoised as one batch")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--trajectory", help="write the denoising path of the first cell (.traj, for ase gui)")
    parser.add_argument("--guide", help="measured spectrum (energy/intensity columns) to steer towards")
    parser.add_argument("--zeta", type=float, default=None, help="guidance strength")
    parser.add_argument("--coordination-weight", type=float, default=None,
                        help="weight of the coordination fractions unmixed from the spectrum (0: spectrum only; "
                        "default 0.5)")
    parser.add_argument("--coordination-t-min", type=float, default=0.0,
                        help="the coordination term acts only while t >= this (e.g. 0.2: fewer strained sites)")
    parser.add_argument("--ring-strain-weight", type=float, default=None,
                        help="weight of the term against three-membered rings, which comes with the coordination "
                        "term (0: off; default 0.5)")
    add_sampler_arguments(parser)
    parser.add_argument("--checkpoint", help="prior weights (default: shipped)")
    parser.add_argument("--device", default=None)
    parser.add_argument("-o", "--output", required=True, help="output file: .traj, .extxyz, .vasp, .cif, ...")


def add_sampler_arguments(parser: argparse.ArgumentParser) -> None:
    """Refinement and restart settings of ``DiffusionGenerator`` (default: the generator's)."""
    parser.add_argument("--refine-steps", type=int, default=None,
                        help="noise-free denoising iterations after each pass (0: none)")
    parser.add_argument("--refine-from", type=float, default=None, help="noise level t the refinement starts from")
    parser.add_argument("--guided-refine-from", type=float, default=None,
                        help="noise level t the refinement starts from when a guide is on")
    parser.add_argument("--max-restarts", type=int, default=None, help="restart cycles on cells with defects")
    parser.add_argument("--restart-radius", type=float, default=None,
                        help="restart cycles re-noise the atoms within this many A of a defect (0: the whole cell)")


def sampler_options(args: argparse.Namespace) -> dict:
    """``DiffusionGenerator`` keyword arguments from :func:`add_sampler_arguments`' options that were given."""
    names = ("refine_steps", "refine_from", "guided_refine_from", "max_restarts", "restart_radius")
    options = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    if options.get("restart_radius") == 0:
        options["restart_radius"] = None
    return options


def generator_from_args(args: argparse.Namespace):
    """The ``DiffusionGenerator`` that ``--checkpoint``, ``--device`` and the sampler options ask for."""
    from ..frontends.generator import DiffusionGenerator

    options = {"device": args.device, **sampler_options(args)}
    if args.checkpoint:
        return DiffusionGenerator.from_checkpoint(args.checkpoint, **options)
    return DiffusionGenerator(**options)


def template_for(args: argparse.Namespace):
    from ase import Atoms
    from ase.io import read

    from ..frontends.generator import cubic_cell

    if args.template:
        template = read(args.template)
        if args.density is None:
            return template  # its atoms as they are, positions re-drawn
        return Atoms(symbols=template.get_chemical_symbols(), cell=template.cell, pbc=True)
    if args.density is None:
        raise ValueError("--density is required without --template")
    if args.atoms < 1:
        raise ValueError(f"--atoms must be >= 1, got {args.atoms}")
    if args.density <= 0:
        raise ValueError(f"--density must be > 0, got {args.density}")
    return cubic_cell(args.atoms, args.density)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ase.io import write

    gen = generator_from_args(args)
    template = template_for(args)
    extra = {}
    if args.guide:
        from ..data.spectra import read_spectrum
        from ..guidance import spectrum_guide

        energy, intensity = read_spectrum(args.guide)
        weights = {name: value for name in ("coordination_weight", "ring_strain_weight")
                   if (value := getattr(args, name)) is not None}
        guide = spectrum_guide(intensity, energy, coordination_t_min=args.coordination_t_min, **weights)
        extra = {"guide": guide, "zeta": args.zeta}
    images = gen.generate_batch(template, args.density, n=args.n, seed=args.seed, steps=args.steps,
                                trajectory=args.trajectory, progress=True, **extra)
    out = Path(args.output)
    tmp = out.with_name(f".{out.name}.part")
    fmt = None if out.suffix else "extxyz"
    if out.suffix in (".vasp", ".cif") and len(images) > 1:
        for k, atoms in enumerate(images):
            write(out.with_name(f"{out.stem}_{k}{out.suffix}"), atoms)
    else:
        write(tmp, images, format=fmt or _format(out))
        tmp.replace(out)
    for k, atoms in enumerate(images):
        print(f"cell {k}: {len(atoms)} atoms, CN histogram {atoms.info['cn_counts']}, "
              f"restarts {atoms.info['restarts']}")
    print(f"wrote {out}")
    return 0


def _format(path) -> str:
    from ase.io.formats import filetype

    try:
        return filetype(str(path), read=False)
    except Exception:
        return "extxyz"
