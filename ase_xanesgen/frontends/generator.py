"""``DiffusionGenerator``: ASE ``Atoms`` template + density in, denoised amorphous ``Atoms`` out."""

from __future__ import annotations

import math
import secrets
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.data import atomic_masses, atomic_numbers, chemical_symbols
from ase.io.trajectory import Trajectory
from ase.units import _amu
from tqdm.auto import tqdm

from ..checks import (check_count, check_fraction, check_non_negative, check_positive, check_structure,
                      warn_caller, whole_number)
from ..data.bonding import BondRules
from ..data.datasets import CARBON
from ..device import resolve_device
from ..diffusion.samplers import REFINE_T, System, coordination, handoff, restart_sample
from ..diffusion.score_fn import CountedScore, EnergyTerm, PriorScore, potential_forces
from ..diffusion.sde import VESDE
from ..geometry import density_of, lattice_thickness
from ..guidance import Guide, GuidedScore, ValenceField, XANESGuide, spectrum_guide
from ..guidance.base import HISTORY_COLUMNS, base_terms
from ..nn.checkpoint import from_dict, load
from ..nn.meshgraphnet import bf16_inference, fast_bf16_matmul
from ..nn.potential import AtomicPotential
from ..nn.score import ScoreNet
from ..weights import PRIORS, weight_path
from .energy import JUDGES, calculator_forces, judge_calculator, judge_species, uncovered

#: Guidance strength used when ``zeta=None`` (chosen from ``benchmarks/guidance_sweep.py``).
DEFAULT_ZETA = 10.0
#: Where the refinement of guided runs starts (t): bonds settle, the guided bonding stays (against 0.06, the
#: Fig. 5 runs move CN further and match the spectrum closer at the same GAP energy).
GUIDED_REFINE_FROM = 0.1
#: Temperature of the stochastic pass of unguided runs (``diffusion.samplers.em_step``): drawn at 1/3 and annealed,
#: cells sit lower in energy (CHGNet, SevenNet) with fewer three-rings, the CN fractions moved from MD toward the
#: lower-energy coordination (``benchmarks/energy_fidelity.py``, docs/prior_model.md#energy-fidelity).
TEMPERATURE = 1 / 3
#: Euler-Maruyama grid of unguided runs (t = 1 to 0.001; the pass hands over to the refinement at ``refine_from``,
#: after 17 steps)
STEPS = 24
#: Refinement iterations of unguided runs, in the first pass and in every anneal and restart cycle
REFINE_STEPS = 10
#: Spacing of the refinement's noise levels in unguided runs (``diffusion.samplers.refine_times``): at 0.5 most
#: iterations sit near ``refine_from``, where the Tweedie jumps still rearrange bonds, and few where they only
#: sharpen them
REFINE_RHO = 0.5
#: Whole-cell anneal cycles of unguided runs (``diffusion.samplers.restart_sample``), each re-noising to
#: ``t_restart``. With the three settings above, 60 score evaluations per cell at 2.5 g/cm3 (17 + 10 + 3 x 11):
#: against a 64-step grid with 40 uniform iterations and one cycle (128), 0.00-0.03 eV/atom lower in energy at
#: 2.0-3.5 g/cm3 and 0.01-0.03 higher at 1.5 (docs/prior_model.md#energy-fidelity)
ANNEAL_CYCLES = 3
#: Noise level (t) anneal and restart cycles re-noise to, restart cycles per run, and whether a restart cycle is
#: kept only in cells where it left no more defects than it found (``diffusion.samplers.restart_sample``)
T_RESTART, MAX_RESTARTS, RESTART_ACCEPT = 0.35, 10, False
#: Per shipped prior, the settings of the line above that its benchmark tuned for it. a-SiO2
#: (``benchmarks/silica_structure.py``, docs/model_a-SiO2.md): at t = 0.7 a cycle can move an oxygen into an
#: under-coordinated silicon's shell (at 0.35 the cycles left 20-30 flagged atoms per 192-atom cell); kept only where
#: it helped, 30 cycles bring four-fold Si from 0.87 to 0.96.
MODEL_SAMPLERS = {"a-SiO2": {"t_restart": 0.7, "max_restarts": 30, "restart_accept": True}}
#: Potential of the energy term when none is given (a name in ``frontends.energy.JUDGES``).
DEFAULT_POTENTIAL = "gap"
#: Noise levels (t) between which the energy term acts.
ENERGY_T = (0.05, 0.5)
#: Highest density (g/cm3) accepted per element: beyond what the element can pack.
MAX_DENSITY = {6: 4.0}
#: Densities (g/cm3) of the shipped weights' training cells per element: outside, generation warns (the MD data
#: spans 1.5-3.5 g/cm3; ``from_checkpoint`` reads a checkpoint's own from its meta, see :func:`trained_density`).
TRAINED_DENSITY = {6: (1.5, 3.5)}
#: ``atoms.info`` key of an empty template naming the element that fills it (set by :func:`cubic_cell`)
FILL_SYMBOL = "fill_symbol"
#: fewest atoms a generated cell may hold without ``force``: the training cells hold 216, and a handful of atoms
#: in a cell are mostly bonded to their own periodic images
MIN_ATOMS = 8
#: largest difference of any element's atom fraction from the training data's before generation warns
COMPOSITION_TOLERANCE = 0.1


@contextmanager
def deterministic_kernels(device: torch.device, on: bool = True) -> Iterator[None]:
    """Deterministic CUDA kernels within the block (``on`` and a CUDA ``device``; otherwise nothing changes).

    CUDA sums edges into atoms with atomic float adds (``index_add_``, scatter), whose order, and so the last
    bits, change from run to run; a sampler turns that into other structures (an H100 gave two different guided
    cells from one seed). Seeded runs take PyTorch's deterministic kernels instead; the global switch is restored.
    """
    if not on or device.type != "cuda" or torch.are_deterministic_algorithms_enabled():
        yield
        return
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with warnings.catch_warnings():  # one stream: cuBLAS repeats its products bit for bit
            warnings.filterwarnings("ignore", message=".*CuBLAS.*")
            yield
    finally:
        torch.use_deterministic_algorithms(False)


def cubic_cell(n_atoms: int, density: float, symbol: str = "C") -> Atoms:
    """An empty periodic cubic template sized so that ``n_atoms`` of ``symbol`` fill it at ``density`` (g/cm3);
    ``DiffusionGenerator.generate(cubic_cell(216, 2.0), 2.0)`` gives 216 atoms. ``info["fill_symbol"]`` records
    ``symbol``, so that the generator fills the cell with it (or refuses it) instead of its default element."""
    n_atoms = check_count(n_atoms, "n_atoms")
    if symbol not in atomic_numbers:
        raise ValueError(f"unknown chemical symbol {symbol!r} (e.g. 'C', 'Si')")
    density = check_positive(density, "density", "g/cm3")
    mass_g = n_atoms * atomic_masses[atomic_numbers[symbol]] * _amu * 1e3
    return Atoms(cell=[(mass_g / density) ** (1 / 3) * 1e8] * 3, pbc=True,  # cm -> Angstrom
                 info={FILL_SYMBOL: symbol})


def trained_density(meta: dict, species: list[int]) -> dict[int, tuple[float, float]]:
    """Per element, the training cells' density range recorded in a checkpoint's meta (``train_prior`` writes
    ``density_range``); empty for checkpoints written before it, which then generate without that warning."""
    if "density_range" not in meta:
        return {}
    low, high = (float(x) for x in meta["density_range"])
    return {z: (low, high) for z in species}


def load_prior(model: str | Path) -> tuple[ScoreNet, dict, str, str]:
    """``(ScoreNet, checkpoint meta, label, weights)`` of a shipped prior by material name (a ``str`` in
    ``weights.PRIORS``: ``"a-C"``, ``"a-SiO2"``) or of a checkpoint file / run folder written by
    ``xanesgen train prior`` (its EMA weights; a ``Path`` is always a file). ``label`` names the model (the
    material or the path), ``weights`` the file and its checksum.

    Raises ``ValueError`` for a name that is neither (naming the shipped priors) or a checkpoint of another kind,
    ``FileNotFoundError`` for a missing ``Path``.
    """
    if isinstance(model, str) and model in PRIORS:
        path, sha256 = weight_path(PRIORS[model])
        ckpt, label, weights = load(path, sha256), model, f"shipped {path.name} (sha256 {sha256[:12]})"
    elif isinstance(model, Path) or Path(model).exists():
        ckpt, label = load(model), str(model)
        weights = label
    else:
        raise ValueError(f"model {model!r} is neither a shipped prior ({sorted(PRIORS)}) nor a checkpoint file or "
                         "run folder")
    ckpt = ckpt.get("ema", ckpt)
    return from_dict(ckpt, expect="ScoreNet"), ckpt["meta"], label, weights


def composition(atoms: Atoms) -> np.ndarray:
    """``[119]`` fraction of the atoms per atomic number."""
    return np.bincount(atoms.numbers, minlength=119) / len(atoms)


def fill_count(volume: float, fractions: np.ndarray, density: float) -> int:
    """Atoms of the composition ``fractions`` (``[119]``, summing to 1) that make ``density`` (g/cm3) in
    ``volume`` (A^3); ``ValueError`` when that is none."""
    mass_per_atom = float(fractions @ atomic_masses[:119])
    count = round(density * volume * 1e-24 / (mass_per_atom * _amu * 1e3))
    if count < 1:
        raise ValueError(f"density {density} g/cm3 gives no atom in this cell")
    return count


class DiffusionGenerator:
    """Generates periodic amorphous structures with a score-based diffusion prior.

    ``DiffusionGenerator()`` loads the shipped amorphous-carbon weights; ``from_checkpoint(path)`` any
    checkpoint written by ``xanesgen train prior``. Sampling is Euler-Maruyama on the VE SDE from uniform
    positions (t = 1) down to ``t = refine_from``, where ``refine_steps`` noise-free denoising iterations take
    over, annealed to 0.01 (a quench on the learned density, ``diffusion.samplers.refine`` and ``handoff``), then
    ``anneal_cycles`` whole-cell re-noise-and-denoise cycles (unguided runs), followed by restart cycles while a
    carbon has CN <= 1 or CN >= 5 (C-C 1.85 A) or two atoms are closer than 1.1 A.

    Any material: a prior trained on MD of several elements keeps the template's species (positions diffuse,
    species stay) and reads its defects from the bond rules in its checkpoint (``data.bonding.BondRules``,
    learned from the training data: per-pair bond cut-offs, per-species coordination ranges, clash distances).

    Args:
        model: a ``ScoreNet``; a shipped prior's name (``"a-C"``, ``"a-SiO2"``: ``weights.PRIORS``); a checkpoint
            file or run folder; ``None``: the shipped a-C weights. ``info["model"]`` of every cell records it.
        sde: the noise schedule the model was trained with.
        device: ``'cpu'``, ``'cuda'``, ...; default CUDA when available.
        steps: Euler-Maruyama steps from t = 1 to 0.001 (the pass stops at ``refine_from`` on that grid). Default
            ``STEPS``.
        guided_steps: the same when a guide is on (default 64).
        t_restart, max_restarts: noise level and number of restart cycles on defective cells (``None``: the
            settings in ``MODEL_SAMPLERS`` of a shipped prior loaded by its name, else ``T_RESTART`` and
            ``MAX_RESTARTS``, also for the same weights loaded by path); ``t_restart`` is the anneal cycles' level
            too.
        restart_accept: keep a restart cycle only in the cells where it left no more defects than it found
            (``None``: as ``t_restart``, else ``RESTART_ACCEPT``).
        restart_refine_steps: refinement steps in a restart cycle (``None``: the run's, ``refine_steps`` or with a
            guide ``guided_refine_steps``).
        restart_radius: re-noise only the atoms within this many A of a defect (``None``: the whole cell).
        rules: defect rules (``BondRules``); default: the checkpoint's, else the carbon rule above.
        refine_steps, refine_from: length (default ``REFINE_STEPS``; 0: none) and starting noise level of the
            refinement.
        refine_rho: spacing of the refinement's noise levels from ``refine_from`` to 0.01
            (``diffusion.samplers.refine_times``: 1 uniform in t, below 1 most iterations near ``refine_from``).
            Default ``REFINE_RHO``.
        guided_refine_steps, guided_refine_rho: the refinement's length and spacing when a guide is on
            (default 40 and 1: the guide strength is tuned for them).
        guided_refine_from: the refinement's starting noise level when a guide is on. From t = 0.3 the guided
            quench drives cells off the prior (GAP +0.5 eV/atom, sp-rich target at 2.0 g/cm3) and a prior-only
            quench undoes the guided bonding (an sp3-rich target kept 0.2 of its CN4 shift), so guided runs
            only settle bonds (docs/guidance.md).
        bf16_gradients: back-propagate a guide through the networks in bfloat16 (``GuidedScore``); ``None``: on
            CPUs that multiply bfloat16 in hardware (2-9 % faster guided evaluations), ``False``: exact float32.
        potential: the potential of the energy term: ``"valence"`` or a ``guidance.ValenceField`` (bond-angle
            forces of carbon, batched in torch, nearly free; ``energy_step`` about 0.2-0.5), an ``AtomicPotential``
            or the path of a checkpoint written by ``xanesgen train potential`` (batched in torch), any ASE
            calculator or a judge name of
            ``frontends.energy.JUDGES`` (one cell at a time); ``None``: ``DEFAULT_POTENTIAL``, the shipped GAP
            fitted to CHGNet energies and forces (``docs/gap.md``).
        energy_step: step (A^2/eV) of the annealed energy term, which adds ``energy_step / sigma(t)^2 * F`` to the
            score, forces on the denoised estimate (``diffusion.score_fn.EnergyTerm``): a Boltzmann factor at
            ``kT = sigma(t)^2 / energy_step`` (default 0: off; docs/prior_model.md measures 0.02 and 0.05).
        energy_t: ``(t_low, t_high)`` noise levels between which the energy term acts.
        energy_max_force: cap (eV/A) on each atom's force in the energy term (``None``: no cap). On the blurred
            denoised estimates of the early steps steep repulsive potentials (Vashishta, Buckingham) give forces of
            hundreds of eV/A, which would throw atoms across the cell.
        temperature: of the Euler-Maruyama steps (first pass and restart cycles): their drift is the score over
            ``temperature``, a sharper draw from the learned density (``diffusion.samplers.em_step``; 1: the plain
            reverse SDE). Default ``TEMPERATURE``.
        guided_temperature: the same when a guide is on (default 1: the guide's strength ``zeta`` is tuned for it;
            below 1 it sharpens the guide's likelihood too).
        anneal_cycles: after the first pass, re-noise every whole cell to ``t_restart`` and denoise and refine it
            again this many times, before the restart cycles (an anneal on the learned density; each costs the
            refinement's iterations plus 1-3 Euler-Maruyama steps). Default ``ANNEAL_CYCLES``.
        guided_anneal_cycles: the same when a guide is on (default 0).
        anneal_refine_steps: refinement steps in an anneal cycle (``None``: the run's refinement length).
        bf16_inference: multiply the score network's edge MLPs in bfloat16 while sampling
            (``nn.meshgraphnet.bf16_inference``), a score ~0.7 % off the float32 one. Where bfloat16 is multiplied in
            hardware a single-threaded evaluation is ~25 % faster; on 2 CPU threads the 64-step sampler's cells are
            ~10 % faster and the plain sampler's not at all (docs/performance.md); without such hardware it is slower
            (a warning says so). Default ``False``.
    """

    def __init__(self, model: ScoreNet | str | Path | None = None, sde: VESDE | None = None, *,
                 device: str | None = None,
                 steps: int = STEPS, t_restart: float | None = None, max_restarts: int | None = None,
                 refine_steps: int = REFINE_STEPS,
                 refine_rho: float = REFINE_RHO, guided_steps: int = 64, guided_refine_steps: int = 40,
                 guided_refine_rho: float = 1.0,
                 refine_from: float = REFINE_T[0], guided_refine_from: float = GUIDED_REFINE_FROM,
                 restart_radius: float | None = 3.0, bf16_gradients: bool | None = None,
                 potential: AtomicPotential | str | Path | None = None, energy_step: float = 0.0,
                 energy_t: tuple[float, float] = ENERGY_T, energy_max_force: float | None = None,
                 rules: BondRules | None = None,
                 restart_refine_steps: int | None = None, temperature: float = TEMPERATURE,
                 guided_temperature: float = 1.0, anneal_cycles: int = ANNEAL_CYCLES, guided_anneal_cycles: int = 0,
                 anneal_refine_steps: int | None = None, bf16_inference: bool = False,
                 restart_accept: bool | None = None):
        #: per element, the densities the weights were trained on (known for the shipped ones): outside, a warning
        self.trained_density = TRAINED_DENSITY if model is None or (isinstance(model, str) and model == "a-C") else {}
        #: where the weights came from, recorded on every generated cell (``info["weights"]``)
        self.weights = "a ScoreNet passed in"
        #: which prior this is, recorded on every generated cell (``info["model"]``)
        self.model_name = "a-C" if model is None else "ScoreNet"
        #: the training data's atom fraction per element symbol (from the checkpoint), empty when unknown
        self.trained_composition: dict[str, float] = {}
        meta = None
        if isinstance(model, (str, Path)):
            model, meta, self.model_name, self.weights = load_prior(model)
            sde = sde or VESDE(**meta.get("sde", {}))
            if self.model_name != "a-C":
                self.trained_density = trained_density(meta, model.model_args["species"])
        if meta is not None:
            rules = rules if rules is not None else (
                BondRules.from_dict(meta["bond_rules"]) if "bond_rules" in meta else None)
            self.trained_composition = dict(meta.get("composition", {}))
        #: defect rules of the restart cycles and ``info["defects"]`` (None: the carbon rule)
        self.rules = rules
        #: the checkpoint's meta (training data, split, SDE) when loaded by name or path, else empty
        self.meta = meta or {}
        if model is None:
            path, sha256 = weight_path("prior")
            ckpt = load(path, sha256)
            model = from_dict(ckpt)
            sde = VESDE(**ckpt["meta"]["sde"])
            self.weights = f"shipped {path.name} (sha256 {sha256[:12]})"
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a ScoreNet, a shipped prior's name ({sorted(PRIORS)}), a checkpoint path "
                            f"or None (the shipped a-C weights), got {type(model).__name__}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.sde = sde or VESDE()
        tuned = MODEL_SAMPLERS.get(self.model_name, {})
        t_restart = tuned.get("t_restart", T_RESTART) if t_restart is None else t_restart
        max_restarts = tuned.get("max_restarts", MAX_RESTARTS) if max_restarts is None else max_restarts
        restart_accept = tuned.get("restart_accept", RESTART_ACCEPT) if restart_accept is None else restart_accept
        refine_steps = check_count(refine_steps, "refine_steps", minimum=0)
        max_restarts = check_count(max_restarts, "max_restarts", minimum=0)
        for name, value in (("refine_from", refine_from), ("guided_refine_from", guided_refine_from),
                            ("t_restart", t_restart)):
            check_fraction(value, name)
        self.steps, self.t_restart, self.max_restarts = check_count(steps, "steps"), t_restart, max_restarts
        self.guided_steps = check_count(guided_steps, "guided_steps")
        self.guided_refine_steps = check_count(guided_refine_steps, "guided_refine_steps", minimum=0)
        self.refine_rho = check_positive(refine_rho, "refine_rho")
        self.guided_refine_rho = check_positive(guided_refine_rho, "guided_refine_rho")
        if restart_radius is not None:
            restart_radius = check_positive(restart_radius, "restart_radius", "A (or None: whole-cell restarts)")
        self.refine_steps, self.refine_from, self.restart_radius = refine_steps, refine_from, restart_radius
        self.restart_refine_steps = None if restart_refine_steps is None else check_count(
            restart_refine_steps, "restart_refine_steps", minimum=0)
        self.guided_refine_from, self.bf16_gradients = guided_refine_from, bf16_gradients
        self.bf16_inference = bool(bf16_inference)
        if self.bf16_inference and self.device.type == "cpu" and not fast_bf16_matmul():
            warn_caller("bf16_inference on a CPU without bfloat16 hardware: the products are emulated, slower than "
                        "float32")
        self.temperature = check_positive(temperature, "temperature")
        self.restart_accept = bool(restart_accept)
        self.guided_temperature = check_positive(guided_temperature, "guided_temperature")
        self.anneal_cycles = check_count(anneal_cycles, "anneal_cycles", minimum=0)
        self.guided_anneal_cycles = check_count(guided_anneal_cycles, "guided_anneal_cycles", minimum=0)
        self.anneal_refine_steps = None if anneal_refine_steps is None else check_count(
            anneal_refine_steps, "anneal_refine_steps", minimum=0)
        self.energy_t = tuple(check_fraction(t, "energy_t") for t in energy_t)
        if len(self.energy_t) != 2 or self.energy_t[0] > self.energy_t[1]:
            raise ValueError(f"energy_t must be (t_low, t_high) with t_low <= t_high, got {energy_t}")
        self.energy_step = check_non_negative(energy_step, "energy_step", "A^2/eV")
        self.energy_max_force = None if energy_max_force is None else check_positive(
            energy_max_force, "energy_max_force", "eV/A")
        #: forces of the energy term (``None`` while it is off) and what they come from (``info["generator"]``)
        self.energy_forces, self.energy_potential = (None, None) if self.energy_step == 0 else (
            self._energy_forces(potential))

    def _energy_forces(self, potential) -> tuple[Callable, str]:
        """``forces(pos, system)`` of the energy term's potential and a label naming it.

        Raises:
            TypeError: ``potential`` is none of the accepted kinds.
            ValueError: the potential does not cover the model's species.
        """
        label = DEFAULT_POTENTIAL if potential is None else (
            str(potential) if isinstance(potential, (str, Path)) else type(potential).__name__)
        if isinstance(potential, str) and potential.lower() == "valence" or isinstance(potential, ValenceField):
            forces = ValenceField() if isinstance(potential, str) else potential
            species, label = forces.species, repr(forces)
        elif potential is None or isinstance(potential, str) and potential.lower() in JUDGES:
            name = DEFAULT_POTENTIAL if potential is None else potential.lower()
            species, forces = judge_species(name), calculator_forces(judge_calculator(name))
        elif isinstance(potential, Calculator):
            species, forces = None, calculator_forces(potential)
        else:
            if isinstance(potential, (str, Path)):  # a run folder's model.pt / last.pt (xanesgen train potential)
                ckpt = load(potential)
                potential = from_dict(ckpt.get("ema", ckpt), expect="AtomicPotential")
            if not isinstance(potential, AtomicPotential):
                raise TypeError("potential must be an AtomicPotential, a ValenceField or 'valence', an ASE calculator, "
                                f"a judge name ({sorted(JUDGES)}) or a checkpoint path, got {type(potential).__name__}")
            potential = potential.to(self.device).eval()
            for p in potential.parameters():
                p.requires_grad_(False)
            species, forces = potential.model_args["species"], potential_forces(potential)
        missing = uncovered(self.species, species)
        if missing:
            raise ValueError(f"the potential knows {[chemical_symbols[z] for z in species]}, not {missing} of the "
                             "model: pass energy_step=0 or a potential for them")
        return forces, label

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kwargs) -> "DiffusionGenerator":
        """A generator from a ``model.pt`` (EMA weights) or a trainer's ``last.pt``."""
        return cls(Path(path), **kwargs)

    @property
    def species(self) -> list[int]:
        """Atomic numbers the model knows."""
        return self.model.model_args["species"]

    def __repr__(self) -> str:
        sampler = ", ".join(f"{k}={getattr(self, k)!r}" for k in (
            "steps", "t_restart", "max_restarts", "refine_steps", "refine_from", "refine_rho", "guided_steps",
            "guided_refine_steps", "guided_refine_from", "guided_refine_rho",
            "temperature", "guided_temperature", "anneal_cycles", "guided_anneal_cycles", "anneal_refine_steps",
            "restart_radius", "restart_refine_steps", "restart_accept", "bf16_gradients", "bf16_inference",
            "energy_step", "energy_t", "energy_max_force", "energy_potential"))
        return f"DiffusionGenerator({self.model!r}, {self.sde}, device={str(self.device)!r}, {sampler})"

    # ------------------------------------------------------------------ public API
    def generate(self, template: Atoms, density: float | None = None, *, seed: int | None = None,
                 steps: int | None = None, trajectory: str | Path | None = None,
                 start_time: float | None = None, guide=None, zeta: float | None = None,
                 progress: bool = False, overwrite: bool = False, force: bool = False) -> Atoms:
        """One denoised structure in the template's cell (see :meth:`generate_batch`)."""
        return self.generate_batch(template, density, n=1, seed=seed, steps=steps, trajectory=trajectory,
                                   start_time=start_time, guide=guide, zeta=zeta, progress=progress,
                                   overwrite=overwrite, force=force)[0]

    def generate_batch(self, template: Atoms, density: float | None = None, n: int = 8, *,
                       seed: int | None = None, steps: int | None = None, trajectory: str | Path | None = None,
                       start_time: float | None = None, guide=None, zeta: float | None = None,
                       progress: bool = False, callback: Callable | None = None, overwrite: bool = False,
                       force: bool = False) -> list[Atoms]:
        """``n`` structures denoised together as one batched graph.

        Args:
            template: cell; its species fill the cell (an empty one: ``cubic_cell``'s symbol, else carbon).
                Without ``density`` its atoms (count, species, positions for ``start_time``) are used; its
                info, arrays and constraints are not carried over. Generated cells are periodic: pbc all False
                (ASE's default) is made periodic with a warning, a partly periodic template (a slab) is refused.
                A cell thinner than twice the model's cut-off, or of fewer than ``MIN_ATOMS`` atoms, is refused
                unless ``force``.
            density: g/cm3; sets the atom count to ``round(density * volume / mass)`` (a species that rounds to
                no atom warns). Either way the density is refused beyond ``MAX_DENSITY`` and warns outside
                ``trained_density``.
            seed: same seed and ``n``, same structures on the same device (the batch draws its noise as one:
                cell k of a batch is not the cell of an ``n=1`` run with that seed); on a GPU a seeded run uses
                deterministic kernels (:func:`deterministic_kernels`).
            steps: Euler-Maruyama steps from t = 1 to 0.001 on whose grid the pass runs (default: the generator's
                ``steps``, or ``guided_steps`` with a guide).
            trajectory: ``.traj`` path; the first structure's start and every step's positions are appended
                as they come, so a crash leaves a readable file (``info``: ``t``, ``stage`` 'start', 'first pass',
                'quench' or 'returned', and ``step``, score evaluations so far).
            start_time: start from the template positions noised to this t (0 < t < 1) instead of noise; such a run
                skips the anneal cycles, which would re-noise the cells to ``t_restart``.
            guide: a mean spectrum ``[100]`` on the model grid, an ``(energy_eV, intensity)`` pair or a measured
                two-column file (-> ``guidance.spectrum_guide``: the spectrum, the coordination fractions
                unmixed from it and the ring-strain term; a pair or a file is read through the model of the
                measurement, ``data.measurement``, a model-grid array as it is) or any
                ``ase_xanesgen.guidance.Guide`` (sums of guides too; ``XANESGuide`` alone for the spectrum only);
                restart cycles keep it on.
            zeta: guidance strength (default ``DEFAULT_ZETA``). ``0`` is not ``guide=None``: it keeps the guided
                schedule (refinement from ``guided_refine_from``), the baseline of a zeta sweep, and records
                the guide's residual without taking its gradient.
            callback: ``callback(step, t, pos, score)`` after every step of the first pass, numbered on from
                the Euler-Maruyama steps into the refinement (``diffusion.samplers.Callback``).
            overwrite: replace an existing ``trajectory`` file (default ``False``: ``FileExistsError``).
            force: generate in a cell too small for the model (see :meth:`fill`) with a warning instead of
                ``ValueError``.

        Returns:
            ``n`` ``Atoms`` with ``info["restarts"]``, ``info["score_evaluations"]`` (score-network evaluations
            spent on the cell, restart cycles included), ``info["cn_counts"]`` (CN 0..8 histogram),
            ``info["defects"]`` (carbons still with CN <= 1 or >= 5, and atoms closer than 1.1 A to another: a
            warning names such cells), and how they were made: ``info["density"]`` (g/cm3), ``info["steps"]``
            (as asked), ``info["start_time"]`` (when given), ``info["seed"]`` (drawn when not given: it repeats
            the run on a CPU), ``info["batch_index"]`` and ``info["batch_size"]`` (cell k of a batch repeats
            with the same seed and ``n``, not alone), ``info["weights"]``, ``info["generator"]`` (with its sampler
            settings). Guided runs
            add ``info["guide"]``, ``info["guide_targets"]`` (``[k, 100]``, its ``XANESGuide`` targets),
            ``info["zeta"]``, ``info["guide_residual"]`` (final residual of the whole guide, this cell) and
            ``info["guide_history"]`` (the batch's, columns ``info["guide_history_columns"]``, per score
            evaluation: t, mean residual of the terms active at t (NaN when none is: see ``Guide.t_min``), mean
            prior-score and likelihood norms; t runs 1 (or
            ``start_time``) -> ``guided_refine_from`` over the Euler-Maruyama steps, then -> 0.01 over the
            refinement, and ``t_restart`` -> ``guided_refine_from`` -> 0.01 over each restart; a ``start_time``
            below ``guided_refine_from`` runs to 0.001 first and refines from ``start_time``).
        """
        n = check_count(n, "n")
        default_steps = self.steps if guide is None else self.guided_steps
        steps = default_steps if steps is None else check_count(steps, "steps")
        seeded = seed is not None  # a drawn seed is recorded, but takes no deterministic GPU kernels
        seed = whole_number(seed, "seed") if seeded else secrets.randbits(63)
        if not 0 <= seed < 2**63:
            raise ValueError(f"seed must lie in [0, 2**63), got {seed}")
        if trajectory is not None and Path(trajectory).suffix != ".traj":
            raise ValueError(f"trajectory {trajectory}: the denoising path is written as an ASE .traj file "
                             "(ase convert turns it into other formats)")
        if trajectory is not None and Path(trajectory).exists() and not overwrite:
            raise FileExistsError(f"trajectory {trajectory} exists: pass overwrite=True (--overwrite) to replace it")
        made = {"steps": steps, "seed": seed, "weights": self.weights, "generator": repr(self),
                "model": self.model_name}
        if start_time is not None:
            check_fraction(start_time, "start_time")
            if density is not None:
                raise ValueError("start_time starts from the template's own positions: pass density=None (its "
                                 "atoms are used as they are); density= would refill the cell")
        atoms = self.fill(template, density, force=force)
        generator = torch.Generator(device=self.device)
        generator.manual_seed(seed)
        system = self._system(atoms, n)
        if start_time is None:
            pos = self.sde.prior_sample(system.cell, system.batch, generator)
            t_start = 1.0
        else:
            pos0 = torch.tensor(np.tile(atoms.positions, (n, 1)), dtype=torch.float32, device=self.device)
            sigma = self.sde.sigma(torch.full((n,), start_time, device=self.device))
            pos, _ = self.sde.perturb(pos0, system.cell, system.batch, sigma, generator)
            t_start = made["start_time"] = start_time
            steps = max(1, math.ceil(steps * start_time))
        score_fn = PriorScore(self.model, self.sde)
        if guide is not None:
            score_fn = self._guided(score_fn, guide, zeta)
        if self.energy_step > 0:
            score_fn = EnergyTerm(score_fn, self.energy_forces, self.sde, self.energy_step, *self.energy_t,
                                  max_force=self.energy_max_force)
        counted = CountedScore(score_fn, n, self.device)
        callbacks = [callback] if callback is not None else []
        refine_steps, refine_from, refine_rho, temperature, anneal = (
            (self.refine_steps, self.refine_from, self.refine_rho, self.temperature, self.anneal_cycles)
            if guide is None else (self.guided_refine_steps, self.guided_refine_from, self.guided_refine_rho,
                                   self.guided_temperature, self.guided_anneal_cycles))
        if start_time is not None:
            anneal = 0
        em_steps, _ = handoff(steps, t_start, self.sde.t_min, refine_steps, refine_from)
        bar = tqdm(total=em_steps + refine_steps, desc="denoise", disable=not progress, dynamic_ncols=True)
        callbacks.append(lambda k, t, p, s: bar.update(1))

        def show_restart(cycle: int, cells: int) -> None:  # the bar is full after the first pass; cycles go on
            bar.set_postfix_str(f"restart {cycle}/{self.max_restarts}, cells left {cells}")

        def show_anneal(cycle: int) -> None:
            bar.set_postfix_str(f"anneal {cycle}/{anneal}")

        writer = None
        if trajectory is not None:
            writer = Trajectory(str(trajectory), "w")
            write = self._frame_writer(writer, atoms, em_steps)
            write(-1, t_start, pos, pos, stage="start")  # the noise (or noised template) the pass starts from
            callbacks.append(write)
        try:
            # a guide switches gradients back on for its own term
            with torch.no_grad(), deterministic_kernels(self.device, seeded), bf16_inference(self.bf16_inference):
                pos, restarts = restart_sample(
                    counted, self.sde, pos, system, steps=steps, t_start=t_start, t_restart=self.t_restart,
                    max_restarts=self.max_restarts, refine_steps=refine_steps, refine_rho=refine_rho,
                    restart_refine_steps=self.restart_refine_steps, restart_radius=self.restart_radius,
                    refine_from=refine_from, generator=generator,
                    temperature=temperature, anneal_cycles=anneal, on_anneal=show_anneal,
                    anneal_refine_steps=self.anneal_refine_steps,
                    callback=lambda *a: [cb(*a) for cb in callbacks], on_restart=show_restart, rules=self.rules,
                    restart_accept=self.restart_accept)
            if writer is not None:  # at the t and step of the first pass's end; restart cycles may have moved it
                write(em_steps + refine_steps - 1, None, pos, pos, stage="returned")
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        images = self._to_atoms(atoms, pos, system, restarts)
        for a, count in zip(images, counted.counts.tolist()):
            a.info["score_evaluations"] = count
        if guide is not None:
            with torch.no_grad():
                final = score_fn.guide.weighted(pos, system).cpu().numpy()
            history = np.array([[h[k] for k in HISTORY_COLUMNS] for h in score_fn.history])
            made.update(guide=repr(score_fn.guide), zeta=score_fn.zeta, guide_history_columns=" ".join(HISTORY_COLUMNS),
                        bf16_gradients=score_fn.bf16_on(self.device))
            targets = [g.target for g in base_terms(score_fn.guide) if isinstance(g, XANESGuide)]
            if targets:
                made["guide_targets"] = np.array(targets)
            for a, r in zip(images, final):
                a.info["guide_residual"] = float(r)
                a.info["guide_history"] = history
        for k, a in enumerate(images):
            a.info.update(made, batch_index=k, batch_size=n)  # a cell repeats only with its batch (seed and n)
        defective = [k for k, a in enumerate(images) if a.info["defects"]]
        if defective:
            more = " ..." if len(defective) > 10 else ""
            what = ("carbons with CN <= 1 or >= 5 or atoms closer than 1.1 A" if self.rules is None
                    else f"atoms off the bond rules ({self.rules.describe()}) or too close")
            warn_caller(f"{len(defective)} of {n} cells (indices {defective[:10]}{more}) still hold {what} "
                        f"after up to {self.max_restarts} restart "
                        "cycles (info['defects']): generate more cells and keep the clean ones, or raise "
                        "max_restarts (or steps)")
        return images

    @staticmethod
    def _frame_writer(writer, atoms: Atoms, em_steps: int) -> Callable:
        """The trajectory callback: one frame of the first cell per step, with ``info`` ``t``, ``stage`` ('start',
        'first pass' for Euler-Maruyama steps, 'quench' for the refinement, 'returned') and ``step`` (score
        evaluations so far: a quench frame's ``t`` is the level its jump was taken at, which the last
        Euler-Maruyama frame reached; ``t=None`` keeps the last frame's)."""
        frame, n0 = atoms.copy(), len(atoms)

        def write(k: int, t: float | None, p: torch.Tensor, s: torch.Tensor, stage: str | None = None) -> None:
            frame.positions = p[:n0].detach().cpu().numpy()
            frame.info.update(stage=stage or ("first pass" if k < em_steps else "quench"), step=k + 1)
            if t is not None:
                frame.info["t"] = t
            writer.write(frame)  # each frame is complete on disk once written

        return write

    def _guided(self, prior: PriorScore, guide, zeta: float | None):
        if not isinstance(guide, Guide):  # a spectrum: [100] array, (energy eV, intensity) or a measured file,
            guide = spectrum_guide(guide)  # a scan through data.measurement, a grid array by prepare_target
        return GuidedScore(prior, guide, DEFAULT_ZETA if zeta is None else zeta, bf16_gradients=self.bf16_gradients)

    # ------------------------------------------------------------------ helpers
    def fill(self, template: Atoms, density: float | None, *, force: bool = False) -> Atoms:
        """The template's cell filled with ``density`` (g/cm3) worth of atoms, or with its own atoms when
        ``density`` is None; validates everything. The result is a fresh periodic ``Atoms`` (numbers, positions,
        cell): a template's info, arrays and constraints are not the new cell's.

        Raises:
            TypeError: ``template`` is no ``Atoms``.
            ValueError: a bad cell or density, species the model does not know, a slab (pbc partly True), or,
                unless ``force`` (then a warning), a cell thinner than twice the model's cut-off (atoms would meet
                their own periodic images) or holding fewer than ``MIN_ATOMS`` atoms.
        """
        check_structure(template, "template", empty_ok=True)
        if template.pbc.any() and not template.pbc.all():
            raise ValueError(f"template pbc={template.pbc.tolist()}: the model generates bulk cells, periodic in all "
                             "three directions; set pbc=True")
        if not template.pbc.any():
            warn_caller("the template has pbc all False (ASE's default): the generated cells are periodic in all "
                        "three directions (set pbc=True on the template to say so)")
        numbers = sorted(set(template.numbers.tolist())) or [self._fill_number(template)]
        unknown = [chemical_symbols[z] for z in numbers if z not in self.species]
        if unknown:
            known = [chemical_symbols[z] for z in self.species]
            raise ValueError(f"species {unknown} not known to the model (trained for {known})")
        self._check_composition(template)
        if density is None:
            if len(template) == 0:
                raise ValueError("template has no atoms: pass density= to fill its cell")
            self._check_density(density_of(template), numbers, own=True)
            atoms = Atoms(numbers=template.numbers, positions=template.positions, cell=template.cell, pbc=True)
        else:
            density = float(density)
            self._check_density(density, numbers)
            atoms = self._refill(template, numbers, density)
        height = lattice_thickness(atoms)
        if height < 2 * self.model.cutoff:
            self._too_small(f"the cell is {height:.2f} A thick across its thinnest direction, under twice the "
                            f"model's {self.model.cutoff} A cut-off: atoms meet the same neighbour through two "
                            "periodic images (their own image below the cut-off), unlike in the 13-15 A training "
                            "cells, so the structures may be artefacts (use a larger cell)", force)
        if len(atoms) < MIN_ATOMS:
            self._too_small(f"the cell holds {len(atoms)} atom(s), fewer than {MIN_ATOMS}: most of their neighbours "
                            "would be their own periodic images (use a larger cell)", force)
        return atoms

    @staticmethod
    def _too_small(message: str, force: bool) -> None:
        """``ValueError`` with ``message``, or its warning when ``force``."""
        if not force:
            raise ValueError(f"{message}; force=True (--force) generates anyway")
        warn_caller(message)

    @staticmethod
    def _refill(template: Atoms, numbers: list[int], density: float) -> Atoms:
        """The template's cell with its composition (its fill element when empty) at ``density``; warns when a
        species of the template rounds to no atom, which would silently change the composition."""
        fractions = composition(template) if len(template) else np.eye(119)[numbers[0]]
        count = fill_count(template.get_volume(), fractions, density)
        counts = np.round(fractions * count).astype(int)
        counts[np.argmax(counts)] += count - counts.sum()
        atoms = Atoms(numbers=np.repeat(np.arange(119), counts), cell=template.cell, pbc=True)
        lost = [chemical_symbols[z] for z in numbers if counts[z] <= 0]
        if lost:
            warn_caller(f"species {lost} of the template round to no atom among the {count} atoms at {density} "
                        f"g/cm3: the cell holds {atoms.get_chemical_formula()} only (use a larger cell)")
        return atoms

    def _fill_number(self, template: Atoms) -> int:
        """The element an empty template is filled with: ``cubic_cell``'s symbol, else carbon when the model
        knows it (the shipped weights are carbon only), else the model's first species."""
        symbol = template.info.get(FILL_SYMBOL)
        if symbol is not None:
            if symbol not in atomic_numbers:
                raise ValueError(f"template info[{FILL_SYMBOL!r}] = {symbol!r} is not a chemical symbol")
            return atomic_numbers[symbol]
        return CARBON if CARBON in self.species else self.species[0]

    def _check_composition(self, template: Atoms) -> None:
        """Warn when the template's atom fractions differ from the training data's by more than
        ``COMPOSITION_TOLERANCE`` for some element (only for a multi-element prior with a recorded composition)."""
        if len(template) == 0 or len(self.trained_composition) < 2:
            return
        mine = {chemical_symbols[z]: f for z, f in enumerate(composition(template)) if f > 0}
        off = {s: (mine.get(s, 0.0), self.trained_composition.get(s, 0.0))
               for s in set(mine) | set(self.trained_composition)
               if abs(mine.get(s, 0.0) - self.trained_composition.get(s, 0.0)) > COMPOSITION_TOLERANCE}
        if off:
            said = ", ".join(f"{s} {a:.2f} (trained {b:.2f})" for s, (a, b) in sorted(off.items()))
            trained = " ".join(f"{s}{f:.2f}" for s, f in self.trained_composition.items())
            warn_caller(f"the template's composition is far from the training data's: atom fractions {said}; the "
                        f"model ({self.model_name}) knows {trained}: the structures are an extrapolation")

    def _check_density(self, density: float, numbers: list[int], own: bool = False) -> None:
        """Refuse a density beyond what the species can pack; warn outside the training range. The ``density=``
        path and a template's ``own`` atoms (``density=None``) both go through here."""
        said = (f"the template's density {density:.4g} g/cm3 (its atoms in its cell)" if own
                else f"density {density} g/cm3")
        limit = min(MAX_DENSITY.get(z, 25.0) for z in numbers)
        if own and not density <= limit:
            raise ValueError(f"{said}: density must be in (0, {limit}] g/cm3 for its species (use a larger cell or "
                             "fewer atoms)")
        if not math.isfinite(density) or density <= 0 or density > limit:
            units = " (in kg/m3? divide by 1000)" if density > 100 else ""
            raise ValueError(f"density must be in (0, {limit}] g/cm3 for the template's species, got "
                             f"{density}{units}")
        ranges = {self.trained_density.get(z) for z in numbers}
        low, high = next(iter(ranges)) if len(ranges) == 1 and None not in ranges else (0.0, math.inf)
        if not low <= density <= high:
            warn_caller(f"{said} lies outside the {low}-{high} g/cm3 the model was trained on: the structures are "
                        "an extrapolation")

    def _system(self, atoms: Atoms, n: int) -> System:
        cell = torch.tensor(np.asarray(atoms.cell), dtype=torch.float32, device=self.device)
        z = torch.tensor(atoms.numbers, dtype=torch.long, device=self.device).repeat(n)
        batch = torch.arange(n, device=self.device).repeat_interleave(len(atoms))
        return System(z, cell.unsqueeze(0).repeat(n, 1, 1), batch)

    def _to_atoms(self, atoms: Atoms, pos: torch.Tensor, system: System, restarts: torch.Tensor) -> list[Atoms]:
        cn, defects = (x.cpu().numpy() for x in coordination(pos, system, rules=self.rules))  # one graph for both
        pos = pos.detach().cpu().numpy()
        out, n0 = [], len(atoms)
        for g in range(system.num_graphs):
            a = atoms.copy()
            a.positions = pos[g * n0:(g + 1) * n0]
            a.wrap()
            a.info["restarts"] = int(restarts[g])
            a.info["cn_counts"] = np.bincount(cn[g * n0:(g + 1) * n0], minlength=9)[:9].tolist()
            a.info["defects"] = int(defects[g * n0:(g + 1) * n0].sum())
            a.info["density"] = round(density_of(a), 4)
            out.append(a)
        return out
