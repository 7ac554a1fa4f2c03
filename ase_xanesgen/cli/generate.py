"""Generate amorphous cells with the diffusion prior: ``xanesgen generate --density 2.0 --atoms 216 -o a-C.traj``.

With ``--guide FILE`` each cell records, beside the generator's ``guide_targets``, what made the target from the
file: ``info["guide_file"]``, ``info["guide_energy_shift"]`` (eV, 0 when not given),
``info["guide_subtract_background"]``, ``info["guide_subtract_edge_step"]``, ``info["guide_measurement"]`` (how
the file was read: ``auto``, ``measured`` or ``dft``) and, when given, ``info["guide_columns"]``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ase import Atoms
from ase.io import write
from ase.io.formats import filetype, ioformats

from ..data.spectra import read_spectrum, subtract_pre_edge
from ..frontends.generator import DiffusionGenerator, composition, cubic_cell, fill_count
from ..geometry import density_of
from ..guidance import spectrum_guide
from .inputs import DEVICE_HELP, read_structures, refuse_idle
from .outputs import check_output_paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``xanesgen generate``."""
    parser.add_argument("--density", type=float, default=None,
                        help="g/cm3 (required without --template; default with --template: its own atoms, as they are)")
    parser.add_argument("--atoms", type=int, default=None,
                        help="atoms per cell (cubic cell sized to the density; not with --template; default: 216)")
    parser.add_argument("--template", help="structure file whose cell (and species) to use instead of --atoms "
                        "(default: a cubic cell of --atoms carbon atoms)")
    parser.add_argument("--n", type=int, default=1, help="number of cells, denoised as one batch")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the noise: the same seed, --n and device give the same cells (default: drawn "
                        "at random, printed and recorded in each cell)")
    parser.add_argument("--steps", type=int, default=None,
                        help="Euler-Maruyama steps on the grid from t = 1 to 0.001 (the pass stops where the "
                        "refinement takes over; default: 24, with a guide 64)")
    parser.add_argument("--trajectory", help="write the denoising path of the first cell (a .traj file, for ase gui; "
                        "default: none)")
    parser.add_argument("--guide", help="measured spectrum (energy/intensity columns) to steer towards "
                        "(default: none, unguided)")
    parser.add_argument("--guide-columns", type=guide_columns, default=None, metavar="E,I",
                        help="0-based energy and intensity columns of a --guide file of more than two (a beamline's "
                        "E, I0, TEY, TFY: 0,2 for TEY; xanesgen predict's CSV: 0,1; default: 0,1)")
    parser.add_argument("--measurement", choices=("auto", "measured", "dft"), default="auto",
                        help="how the guide is read: measured (default for a file: fitted through the measurement "
                        "model, as xanesgen fit does; docs/spectra.md) or dft (as it is, on the DFT energy axis)")
    parser.add_argument("--subtract-background", action="store_true",
                        help="subtract a straight line fitted to the guide's pre-edge (below 280 eV) first")
    parser.add_argument("--subtract-edge-step", action="store_true",
                        help="with --measurement dft: remove the guide's edge step (an arctan at 290 eV fitted with "
                        "the sp/sp2/sp3 components) from the spectrum term's target; the model's spectra have none")
    parser.add_argument("--energy-shift", type=float, default=None,
                        help="eV added to the guide's energies first (align its calibration with the model's; "
                        "a warning suggests one when the spectrum fits the DFT spectra better shifted; default: 0)")
    parser.add_argument("--zeta", type=float, default=None,
                        help="guidance strength (0 keeps the guided schedule without its pull: a baseline, not an "
                             "unguided run; default: 10)")
    parser.add_argument("--coordination-weight", type=float, default=None,
                        help="weight of the coordination fractions unmixed from the spectrum (0: spectrum only; "
                        "default 0.5)")
    parser.add_argument("--coordination-t-min", type=float, default=0.0,
                        help="the coordination term acts only while t >= this (e.g. 0.2: fewer strained sites; "
                        "default: 0, throughout)")
    parser.add_argument("--coordination-tolerance", type=float, default=None,
                        help="distance of the CN fractions from the unmixed ones within which the coordination "
                        "pull fades (default 0: a full pull up to the target; docs/guidance.md)")
    parser.add_argument("--ring-strain-weight", type=float, default=None,
                        help="weight of the term against three-membered rings, which comes with the coordination "
                        "term (0: off; default 0.5)")
    add_sampler_arguments(parser)
    parser.add_argument("--model", help="prior: a shipped one's name (a-C, a-SiO2) or a checkpoint file / run folder "
                        "of xanesgen train prior (default: a-C); the template's species must be the model's")
    parser.add_argument("--checkpoint", help="prior weights file (as --model PATH; default: none, --model's)")
    parser.add_argument("--device", default=None, help=DEVICE_HELP)
    parser.add_argument("-o", "--output", required=True,
                        help="output file: .traj, .extxyz, .vasp, .cif, POSCAR, ... (several cells: one file, or "
                        "out_0.vasp, out_1.vasp, ... for one-structure formats)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing output and trajectory files (default: refuse)")
    parser.add_argument("--force", action="store_true",
                        help="generate in a cell too small for the model (thinner than twice its 3 A cut-off, or "
                        "fewer than 8 atoms) with a warning (default: refuse)")


def guide_columns(text: str) -> tuple[int, int]:
    """``--guide-columns E,I``: two different 0-based column indices."""
    try:
        columns = tuple(int(v) for v in text.split(","))
    except ValueError:
        columns = ()
    if len(columns) != 2 or min(columns) < 0 or columns[0] == columns[1]:
        raise argparse.ArgumentTypeError(f"expected two different 0-based column indices E,I (e.g. 0,2), got {text!r}")
    return columns


def add_sampler_arguments(parser: argparse.ArgumentParser) -> None:
    """Refinement and restart settings of ``DiffusionGenerator`` (default: the generator's)."""
    parser.add_argument("--refine-steps", type=int, default=None,
                        help="noise-free denoising iterations after each pass of an unguided run (0: none; "
                        "default: 10)")
    parser.add_argument("--refine-from", type=float, default=None,
                        help="noise level t the refinement starts from (default: 0.3)")
    parser.add_argument("--refine-rho", type=float, default=None,
                        help="spacing of an unguided run's refinement noise levels: 1 uniform in t, below 1 most "
                             "iterations near --refine-from (default: 0.5)")
    parser.add_argument("--guided-refine-rho", type=float, default=None,
                        help="the same when a guide is on (default: 1)")
    parser.add_argument("--guided-refine-steps", type=int, default=None,
                        help="refinement iterations when a guide is on (default: 40)")
    parser.add_argument("--guided-refine-from", type=float, default=None,
                        help="noise level t the refinement starts from when a guide is on (default: 0.1)")
    parser.add_argument("--max-restarts", type=int, default=None,
                        help="restart cycles on cells with defects (default: the model's; 10 for a-C, 30 for "
                        "a-SiO2)")
    parser.add_argument("--restart-refine-steps", type=int, default=None,
                        help="refinement steps in a restart cycle (default: the run's, --refine-steps or "
                             "--guided-refine-steps)")
    parser.add_argument("--restart-radius", type=float, default=None,
                        help="restart cycles re-noise the atoms within this many A of a defect (0: the whole cell; "
                        "default: 3)")
    parser.add_argument("--t-restart", type=float, default=None,
                        help="noise level t that anneal and restart cycles re-noise to (default: the model's; 0.35 "
                        "for a-C, 0.7 for a-SiO2)")
    parser.add_argument("--restart-accept", action=argparse.BooleanOptionalAction, default=None,
                        help="keep a restart cycle only in cells where it left no more defects than it found "
                        "(default: the model's; off for a-C, on for a-SiO2)")
    parser.add_argument("--potential", default=None,
                        help="potential of the energy term: valence (bond-angle forces, nearly free), a judge name (gap, "
                             "chgnet, sevennet; vashishta for a-SiO2) or a checkpoint of "
                             "xanesgen train potential (default: gap, the shipped carbon GAP)")
    parser.add_argument("--energy-step", type=float, default=None,
                        help="step (A^2/eV) of the sampler's annealed energy term with the --potential's forces "
                             "(0: off; default: 0)")
    parser.add_argument("--energy-max-force", type=float, default=None,
                        help="cap (eV/A) on each atom's force in the energy term (default: none; steep repulsive "
                             "potentials such as vashishta need one)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="temperature of the stochastic pass: its drift is the score over it (1: the plain "
                             "reverse SDE; below 1 a sharper draw, lower in energy; default: 0.333333)")
    parser.add_argument("--guided-temperature", type=float, default=None,
                        help="the same for guided runs (default: 1)")
    parser.add_argument("--anneal-cycles", type=int, default=None,
                        help="whole-cell anneal cycles after the first pass, each the refinement's iterations plus 1-3 "
                             "score evaluations (default: 3)")
    parser.add_argument("--guided-anneal-cycles", type=int, default=None,
                        help="the same for guided runs (default: 0)")
    parser.add_argument("--anneal-refine-steps", type=int, default=None,
                        help="refinement steps in an anneal cycle (default: the run's, --refine-steps or "
                             "--guided-refine-steps)")
    parser.add_argument("--float32-gradients", action="store_true",
                        help="a guide's backward in float32 also on CPUs with bfloat16 hardware (exact; slower; "
                        "default: bfloat16 where the CPU multiplies it in hardware)")
    parser.add_argument("--bf16", action="store_true",
                        help="sample with the score network's edge products in bfloat16 (where the hardware multiplies "
                        "bfloat16: up to ~25%% faster per evaluation; default: float32)")


def sampler_options(args: argparse.Namespace) -> dict:
    """``DiffusionGenerator`` keyword arguments from :func:`add_sampler_arguments`' options that were given."""
    names = ("refine_steps", "refine_from", "refine_rho", "guided_refine_steps", "guided_refine_from",
             "guided_refine_rho", "max_restarts", "t_restart", "restart_accept",
             "restart_radius", "restart_refine_steps", "energy_step", "energy_max_force", "potential", "temperature",
             "guided_temperature", "anneal_cycles", "guided_anneal_cycles", "anneal_refine_steps")
    options = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    if options.get("restart_radius") == 0:
        options["restart_radius"] = None
    if args.float32_gradients:
        options["bf16_gradients"] = False
    if args.bf16:
        options["bf16_inference"] = True
    return options


def generator_from_args(args: argparse.Namespace):
    """The ``DiffusionGenerator`` that ``--model`` / ``--checkpoint``, ``--device`` and the sampler options ask
    for."""
    options = {"device": args.device, **sampler_options(args)}
    model = getattr(args, "model", None)
    if model and args.checkpoint:
        raise ValueError("--model and --checkpoint both name the prior: give one")
    if args.checkpoint:
        return DiffusionGenerator.from_checkpoint(args.checkpoint, **options)
    if model:
        return DiffusionGenerator(model, **options)
    return DiffusionGenerator(**options)


def template_for(args: argparse.Namespace):
    """The template ``Atoms`` of ``--template`` (refilled when ``--density`` is given) or a cubic cell of
    ``--atoms`` at ``--density``."""
    if args.template:
        if args.atoms is not None:
            raise ValueError("--atoms sizes a cubic cell; with --template the template's cell is used: drop one")
        frames = read_structures(args.template)
        if len(frames) > 1:
            raise ValueError(f"{args.template} holds {len(frames)} structures; a template is one cell: write the one "
                             "you want to a file of its own")
        template = frames[0]
        if args.density is None:
            return template  # its atoms as they are, positions re-drawn
        note_refill(template, args.density)
        # its own pbc: the generator refuses a slab instead of making it bulk
        return Atoms(symbols=template.get_chemical_symbols(), cell=template.cell, pbc=template.pbc)
    if args.density is None:
        raise ValueError("--density is required without --template")
    return cubic_cell(DEFAULT_ATOMS if args.atoms is None else args.atoms, args.density)  # it checks both


def note_refill(template, density: float) -> None:
    """A note on stderr when ``--density`` refills the template's cell with another number of atoms than it holds
    (216 at 2.0 g/cm3 become 325 at 3.0): easily missed, as the run goes on without complaint."""
    if not len(template) or not (math.isfinite(density) and density > 0):
        return  # nothing to compare with, or the generator will say what is wrong
    try:
        count = fill_count(template.get_volume(), composition(template), density)
        held = density_of(template)
    except (ValueError, OverflowError):  # no atom at this density, no volume: the generator says so
        return
    if count != len(template):
        print(f"xanesgen generate: note: --density {density} refills the template's cell with {count} atoms "
              f"(it holds {len(template)}, {held:.2f} g/cm3); drop --density to keep its atoms", file=sys.stderr)


#: atoms per cubic cell without --atoms or --template (the training cells' size)
DEFAULT_ATOMS = 216
#: options that only mean something with --guide
GUIDE_OPTIONS = ("zeta", "coordination_weight", "coordination_tolerance", "ring_strain_weight")


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status (errors raise, ``cli.main`` turns them into status 2)."""
    given = [f"--{name.replace('_', '-')}" for name in GUIDE_OPTIONS if getattr(args, name) is not None]
    if args.coordination_t_min:
        given.append("--coordination-t-min")
    given += [flag for flag, on in (("--subtract-background", args.subtract_background),
                                    ("--subtract-edge-step", args.subtract_edge_step),
                                    ("--energy-shift", args.energy_shift is not None),
                                    ("--guide-columns", args.guide_columns is not None)) if on]
    refuse_idle(given if not args.guide else [], "a guided run: add --guide SPECTRUM")
    shaping = [flag for flag, on in (("--coordination-t-min", args.coordination_t_min),
                                     ("--coordination-tolerance", args.coordination_tolerance)) if on]
    refuse_idle(shaping if args.coordination_weight == 0 else [], "a coordination term: drop --coordination-weight 0")
    out = Path(args.output)
    fmt = _format(out)
    if fmt not in ioformats or not ioformats[fmt].can_write:
        raise ValueError(f"cannot write {out}: ASE has no writable format {fmt!r} (use .traj, .extxyz, .vasp, "
                         ".cif ...)")
    # a format that holds one structure (POSCAR, .vasp) gets one file per cell: out_0.vasp, out_1.vasp, ...
    one_per_file = args.n > 1 and ioformats[fmt].single
    paths = [out.with_name(f"{out.stem}_{k}{out.suffix}") for k in range(args.n)] if one_per_file else [out]
    check_output_paths({**{f"output {path.name}" if one_per_file else "output": path for path in paths},
                        "trajectory": args.trajectory}, [p for p in (args.template, args.guide) if p],
                       overwrite=args.overwrite)
    gen = generator_from_args(args)
    template = template_for(args)
    extra = {"guide": guide_from_args(args), "zeta": args.zeta} if args.guide else {}
    images = gen.generate_batch(template, args.density, n=args.n, seed=args.seed, steps=args.steps,
                                trajectory=args.trajectory, progress=True, overwrite=args.overwrite,
                                force=args.force, **extra)
    if args.guide:
        for atoms in images:
            atoms.info.update(guide_record(args))
    for path, part in zip(paths, [[a] for a in images] if one_per_file else [images]):
        tmp = path.with_name(f".{path.stem}.part{path.suffix}")  # a crash never leaves a half-written file
        write(tmp, part, format=fmt)
        tmp.replace(path)
    for k, atoms in enumerate(images):
        print(f"cell {k}: {len(atoms)} atoms, CN histogram {atoms.info['cn_counts']}, "
              f"restarts {atoms.info['restarts']}, defects {atoms.info['defects']}")
    print(f"wrote {', '.join(map(str, paths))} ({fmt}), seed {images[0].info['seed']}")
    return 0


def guide_from_args(args: argparse.Namespace):
    """The spectrum guide of ``--guide`` (its columns, shifted, background subtracted as asked)."""
    energy, intensity = read_spectrum(args.guide, columns=args.guide_columns)
    if args.energy_shift is not None:
        energy = energy + args.energy_shift
    if args.subtract_background:
        intensity = subtract_pre_edge(energy, intensity)
    weights = {name: value for name in ("coordination_weight", "coordination_tolerance", "ring_strain_weight")
               if (value := getattr(args, name)) is not None}
    return spectrum_guide(intensity, energy, coordination_t_min=args.coordination_t_min,
                          subtract_edge_step=args.subtract_edge_step, measurement=args.measurement, **weights)


def guide_record(args: argparse.Namespace) -> dict:
    """What turned the --guide file into the target, for ``atoms.info``: ``guide_targets`` alone cannot tell which
    file, shift and background made it, and a cell should say how to make it again."""
    record = {"guide_file": str(args.guide), "guide_energy_shift": float(args.energy_shift or 0.0),
              "guide_subtract_background": bool(args.subtract_background),
              "guide_subtract_edge_step": bool(args.subtract_edge_step), "guide_measurement": args.measurement}
    if args.guide_columns is not None:
        record["guide_columns"] = list(args.guide_columns)
    return record


def _format(path: Path) -> str:
    """ASE's format for the output name (``POSCAR`` -> vasp, ``.cif`` -> cif, ...); extxyz when it has none."""
    try:
        return filetype(str(path), read=False)
    except Exception:
        return "extxyz"
