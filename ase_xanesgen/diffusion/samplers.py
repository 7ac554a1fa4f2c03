"""Reverse-time samplers for the VE SDE: Euler-Maruyama and restart cycles on coordination defects.

A sampler sees only a ``score_fn(pos, t) -> [N, 3]`` (1/Angstrom): the prior score network, or the prior
plus a guidance term (see ``ase_xanesgen.guidance``). The position update lives in :func:`em_step` alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Protocol

import torch

from ..graph.neighbours import edge_vectors, radius_graph_pbc, wrap_positions
from ..data.bonding import BondRules
from .defects import rule_coordination
from .sde import VESDE


class ScoreFn(Protocol):
    """What a sampler calls: ``score_fn(pos [N, 3] Å, t, system) -> score [N, 3]`` in 1/Å at diffusion time ``t``
    (``PriorScore``, ``guidance.GuidedScore``)."""

    def __call__(self, pos: torch.Tensor, t: float, system: "System") -> torch.Tensor: ...


#: ``callback(step, t, pos, score)`` after each step (``pos`` wrapped): for an Euler-Maruyama step ``t`` is the
#: noise level reached, for a refinement step the level its Tweedie jump was taken at.
Callback = Callable[[int, float, torch.Tensor, torch.Tensor], None]


@dataclass
class System:
    """The fixed part of a batch being sampled: species ``z [N]``, ``cell [B, 3, 3]``, ``batch [N]``.

    ``graph_ids [B]`` are the graphs' indices in the original batch (restart cycles sample subsets).
    """

    z: torch.Tensor
    cell: torch.Tensor
    batch: torch.Tensor
    graph_ids: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.graph_ids is None:
            self.graph_ids = torch.arange(self.cell.shape[0], device=self.cell.device)

    @property
    def num_graphs(self) -> int:
        """The number of cells B."""
        return self.cell.shape[0]

    @cached_property
    def atom_counts(self) -> torch.Tensor:
        """``[B]`` atoms per graph (counted once per system: the guides need it at every step)."""
        return torch.bincount(self.batch, minlength=self.num_graphs)

    def subset(self, graphs: torch.Tensor) -> tuple["System", torch.Tensor]:
        """The sub-system of the listed graphs and the node mask that selects it."""
        mask = torch.isin(self.batch, graphs)
        remap = torch.full((self.num_graphs,), -1, dtype=torch.long, device=self.batch.device)
        remap[graphs] = torch.arange(len(graphs), device=self.batch.device)
        return System(self.z[mask], self.cell[graphs], remap[self.batch[mask]], self.graph_ids[graphs]), mask


def em_step(pos: torch.Tensor, score: torch.Tensor, sde: VESDE, t: float, dt: float, noise: torch.Tensor | None,
            temperature: float = 1.0) -> torch.Tensor:
    """One reverse Euler-Maruyama step from ``t`` to ``t - dt``: ``x + g^2 s dt / T + g sqrt(dt) z``.

    ``temperature`` T < 1 sharpens the drift against the same noise: the Langevin part of the step then keeps
    ``p_t(x)^(1/T)`` instead of ``p_t(x)``, a lower-temperature draw from the learned density (T = 1: the reverse SDE).
    """
    g2 = sde.g2(torch.tensor(t)).item()
    pos = pos + g2 * dt * score / temperature
    if noise is not None:
        pos = pos + math.sqrt(g2 * dt) * noise
    return pos


def euler_maruyama(score_fn: ScoreFn, sde: VESDE, pos: torch.Tensor, system: System, *, steps: int,
                   t_start: float = 1.0, t_end: float | None = None, generator: torch.Generator | None = None,
                   callback: Callback | None = None, mobile: torch.Tensor | None = None, temperature: float = 1.0
                   ) -> torch.Tensor:
    """Integrate the reverse SDE from ``t_start`` to ``t_end`` (default ``sde.t_min``) in ``steps`` uniform steps.

    To ``t_min`` the last step adds no noise, so the result is the denoised estimate; to a higher ``t_end``
    it is a sample at that noise level. With a ``mobile`` mask ``[N]`` only those atoms move; the others stay
    where they are (local restarts). ``temperature``: of every step (:func:`em_step`).
    """
    ts = torch.linspace(t_start, sde.t_min if t_end is None else t_end, steps + 1).tolist()
    for k in range(steps):
        t, dt = ts[k], ts[k] - ts[k + 1]
        score = score_fn(pos, t, system)
        noise = None
        if k < steps - 1 or t_end is not None:
            noise = torch.randn(pos.shape, generator=generator, device=pos.device, dtype=pos.dtype)
        pos = _move(pos, wrap_positions(em_step(pos, score, sde, t, dt, noise, temperature), system.cell, system.batch),
                    mobile)
        if callback is not None:
            callback(k, ts[k + 1], pos, score)
    return pos


def _move(old: torch.Tensor, new: torch.Tensor, mobile: torch.Tensor | None) -> torch.Tensor:
    return new if mobile is None else torch.where(mobile[:, None], new, old)


#: noise levels (t) of the refinement: annealed from the first to the second
REFINE_T = (0.3, 0.01)


def refine_times(steps: int, t_high: float, t_low: float, rho: float = 1.0) -> list[float]:
    """The ``steps`` noise levels of a refinement, from ``t_high`` down to ``t_low``:
    ``t_k = (t_high^(1/rho) + k / (steps - 1) * (t_low^(1/rho) - t_high^(1/rho)))^rho`` (the spacing of Karras et
    al. 2022's sampler, here over t). ``rho = 1``: uniform in t; ``rho < 1`` spends the iterations near
    ``t_high`` and drops to ``t_low`` at the end (``rho = 0.25``, 10 steps from 0.3 to 0.01: 0.30, 0.29, 0.28,
    0.27, 0.26, 0.25, 0.23, 0.21, 0.17, 0.01); ``rho > 1`` the reverse. One step: ``[t_high]``.

    Raises:
        ValueError: ``rho`` is not positive.
    """
    if not rho > 0:
        raise ValueError(f"rho must be positive, got {rho}")
    if steps == 1 or rho == 1:
        return torch.linspace(t_high, t_low, steps).tolist()
    a, b = t_high ** (1 / rho), t_low ** (1 / rho)
    return [(a + k / (steps - 1) * (b - a)) ** rho for k in range(steps)]


def refine(score_fn: ScoreFn, sde: VESDE, pos: torch.Tensor, system: System, *, steps: int,
           t_high: float = REFINE_T[0], t_low: float = REFINE_T[1], callback: Callback | None = None,
           rho: float = 1.0) -> torch.Tensor:
    """Noise-free denoising iterations ``x <- x + sigma(t)^2 s(x, t)`` (Tweedie) with t annealed from
    ``t_high`` to ``t_low`` on the spacing :func:`refine_times` (``rho``).

    Each iteration jumps to the denoised estimate ``E[x_0 | x_t = x]``: annealed mode seeking on the learned
    density, i.e. a zero-temperature quench on the learned landscape after the stochastic pass. It settles
    the bond lengths and angles (and the sp2/sp3 balance) that the stochastic steps leave too disordered:
    annealing from t = 0.3 (sigma 0.24 A) brings the generated CN fractions within 0.03 of MD at 1.5-3.5 g/cm3
    (from 0.13 off at 3.5) and the GAP energies to within 0.15 eV/atom of MD. The iterations near ``t_high`` do
    most of that (``rho < 1``; ``benchmarks/energy_fidelity.py``, docs/prior_model.md#energy-fidelity).

    With a guide in ``score_fn`` the iterations follow the posterior; guided runs start them lower
    (``DiffusionGenerator(guided_refine_from=0.1)``): from t = 0.3 each full Tweedie jump pulls with the guide
    too, ~15x harder in sum than the whole stochastic pass below 0.3 (GAP +0.5 eV/atom for an sp-rich target at
    2.0 g/cm3), while the prior's quench alone undoes the guided bonding.
    """
    for k, t in enumerate(refine_times(steps, t_high, t_low, rho)):
        score = score_fn(pos, t, system)
        pos = wrap_positions(pos + sde.sigma(torch.tensor(t)).item() ** 2 * score, system.cell, system.batch)
        if callback is not None:
            callback(k, t, pos, score)
    return pos


def handoff(steps: int, t_start: float, t_min: float, refine_steps: int, refine_from: float
            ) -> tuple[int, float]:
    """Euler-Maruyama steps of a pass and the noise level where the refinement takes over from them.

    With a refinement starting below ``t_start`` the stochastic pass stops there, at about the same step size,
    and the quench starts from that noisy sample: its first Tweedie jump is the denoised estimate at ``refine_from``
    itself, so integrating on to ``t_min`` first would only be undone (at 2.5 g/cm3: 45 + 40 score evaluations
    instead of 64 + 40, every structure target still met; docs/prior_model.md). Otherwise (no refinement, or a
    ``start_time`` run from below ``refine_from``) the pass runs to ``t_min`` and
    the refinement, if any, starts at ``t_start``: ``(steps, t_start)``.
    """
    t_high = min(refine_from, t_start)
    if not refine_steps or t_high >= t_start:
        return steps, t_start
    return max(1, round(steps * (t_start - t_high) / (t_start - t_min))), t_high


def coordination(pos: torch.Tensor, system: System, cutoff: float = 1.85, min_distance: float = 1.1,
                 rules: BondRules | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordination numbers ``[N]`` within ``cutoff`` (periodic), and the mask ``[N]`` of defective atoms from the
    same graph: carbons with CN <= 1 or CN >= 5 and atoms in a pair closer than ``min_distance``. With ``rules``
    (any material) bonds, coordination ranges and clash distances are per species instead
    (:func:`.defects.rule_coordination`)."""
    if rules is not None:
        return rule_coordination(pos, system.z, system.cell, system.batch, rules)
    edge_index, shifts = radius_graph_pbc(pos, system.cell, system.batch, cutoff)
    cn = torch.bincount(edge_index[0], minlength=pos.shape[0])
    bad = ((cn <= 1) | (cn >= 5)) & (system.z == 6)
    close = edge_vectors(pos, system.cell, system.batch, edge_index, shifts).norm(dim=-1) < min_distance
    bad[edge_index[0, close]] = True
    return cn, bad


def defective_atoms(pos: torch.Tensor, system: System, cutoff: float = 1.85, min_distance: float = 1.1,
                    rules: BondRules | None = None) -> torch.Tensor:
    """The defect mask of :func:`coordination`: the atoms restart cycles re-noise."""
    return coordination(pos, system, cutoff, min_distance, rules)[1]


def neighbourhood(mask: torch.Tensor, pos: torch.Tensor, system: System, radius: float) -> torch.Tensor:
    """The masked atoms and every atom within ``radius`` (periodic) of one of them."""
    edge_index, _ = radius_graph_pbc(pos, system.cell, system.batch, radius)
    out = mask.clone()
    out[edge_index[0, mask[edge_index[1]]]] = True
    return out


def restart_sample(score_fn: ScoreFn, sde: VESDE, pos: torch.Tensor, system: System, *, steps: int,
                   t_start: float = 1.0, t_restart: float = 0.35, max_restarts: int = 3, refine_steps: int = 0,
                   refine_from: float = REFINE_T[0], generator: torch.Generator | None = None,
                   callback: Callback | None = None, restart_radius: float | None = None,
                   on_restart: Callable[[int, int], None] | None = None, rules: BondRules | None = None,
                   restart_refine_steps: int | None = None, temperature: float = 1.0, anneal_cycles: int = 0,
                   on_anneal: Callable[[int], None] | None = None, anneal_refine_steps: int | None = None,
                   refine_rho: float = 1.0, restart_accept: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Euler-Maruyama handed over to ``refine_steps`` of :func:`refine` at ``t = refine_from`` (:func:`handoff`),
    then ``anneal_cycles`` whole-cell cycles on every graph, then up to ``max_restarts`` cycles on graphs with 1- or
    5-coordinated carbons (or atoms closer than 1.1 A).

    An anneal cycle re-noises every whole cell to ``t_restart`` and denoises and refines it again
    (``anneal_refine_steps``, default ``refine_steps``):
    an anneal on the learned density (restart sampling) that lets strained motifs the first quench froze in open up
    again: each cycle lowers the energy, and moves the CN fractions toward the lower-energy coordination
    (docs/prior_model.md#energy-fidelity).
    ``on_anneal(cycle)`` is told when anneal cycle 1, 2, ... starts.

    A cycle re-noises those graphs from ``t_min`` to ``t_restart`` and denoises (and refines) them again on
    the schedule of ``ceil(steps * t_restart)`` steps; defect-free graphs are left as they are. With
    ``restart_radius`` (A) only the defective atoms and their neighbours within that radius are re-noised and
    denoised, the rest of the cell waits in place, and the refinement then relaxes the whole cell: a cycle
    repairs the defects instead of redrawing a cell that holds new ones at the model's usual rate (3.5 g/cm3:
    0.6 % defects after up to 6 local cycles against 2.6 % after 3 whole-cell ones). The refinement
    uses ``score_fn`` too, so a guide stays on. The network is told ``t`` for the whole cell while the waiting
    atoms sit clean, an inpainting-style approximation judged by the structure benchmark. (``DiffusionGenerator`` uses
    ``restart_radius=3.0``, and its shipped priors' own cycle settings.) ``callback`` sees every score evaluation
    of the first pass, stochastic and refining; ``on_restart(cycle, graphs)`` is told when cycle 1, 2, ... starts
    on that many graphs (the cycles can take most of a run at high density). ``rules`` (``data.bonding.BondRules``) defines the
    defects of another material (default: the carbon rule above). ``restart_refine_steps``: the refinement's
    length in a restart cycle (default ``refine_steps``): a cycle only repairs a neighbourhood, so a shorter quench
    can do. ``refine_rho``: the spacing of every refinement's noise levels (:func:`refine_times`).
    ``temperature``: of the Euler-Maruyama steps, first pass and cycles (:func:`em_step`; the refinement's
    Tweedie jumps take the score as it is). ``restart_accept``: keep a restart cycle's result only in the cells
    where it left no more defects than it found (the others keep their positions and draw again in the next
    cycle), so the cycles can only repair; at high ``t_restart`` a cycle may otherwise add as many defects as it
    removes. Returns the final positions and the number of restart cycles run per graph ``[B]``.
    """
    def denoise(p: torch.Tensor, part: System, t_from: float, n_steps: int, n_refine: int,
                mobile: torch.Tensor | None = None, cb: Callback | None = None) -> torch.Tensor:
        """One pass: Euler-Maruyama from ``t_from``, handed over to ``n_refine`` refinement steps (:func:`handoff`)."""
        em_steps, t_high = handoff(n_steps, t_from, sde.t_min, n_refine, refine_from)
        p = euler_maruyama(score_fn, sde, p, part, steps=em_steps, t_start=t_from,
                           t_end=None if t_high == t_from else t_high, generator=generator, callback=cb,
                           mobile=mobile, temperature=temperature)
        if not n_refine:
            return p
        numbered = None if cb is None else (lambda k, *rest: cb(em_steps + k, *rest))
        return refine(score_fn, sde, p, part, steps=n_refine, t_high=t_high, t_low=min(REFINE_T[1], t_high),
                      callback=numbered, rho=refine_rho)

    sub_steps = max(1, math.ceil(steps * t_restart))
    extra = math.sqrt(sde.sigma_max**2 * (t_restart**2 - sde.t_min**2))

    def cycle(p: torch.Tensor, graphs: torch.Tensor, n_refine: int, bad: torch.Tensor | None = None) -> torch.Tensor:
        """Re-noise ``graphs`` to ``t_restart`` (with ``bad`` and ``restart_radius``: the neighbourhoods of the bad
        atoms only) and denoise them again; the other graphs stay as they are."""
        sub, mask = system.subset(graphs)
        clean = p[mask]
        mobile = None if bad is None or restart_radius is None else neighbourhood(bad[mask], clean, sub,
                                                                                  restart_radius)
        noise = torch.randn(clean.shape, generator=generator, device=p.device, dtype=p.dtype)
        start = _move(clean, wrap_positions(clean + extra * noise, sub.cell, sub.batch), mobile)
        p = p.clone()
        p[mask] = denoise(start, sub, t_restart, sub_steps, n_refine, mobile)
        return p

    pos = denoise(pos, system, t_start, steps, refine_steps, cb=callback)
    every = torch.arange(system.num_graphs, device=pos.device)
    for k in range(1, anneal_cycles + 1):
        if on_anneal is not None:
            on_anneal(k)
        pos = cycle(pos, every, refine_steps if anneal_refine_steps is None else anneal_refine_steps)
    restarts = torch.zeros(system.num_graphs, dtype=torch.long, device=pos.device)

    def defect_counts(bad: torch.Tensor) -> torch.Tensor:
        return torch.bincount(system.batch[bad], minlength=system.num_graphs)

    bad = defective_atoms(pos, system, rules=rules) if max_restarts else None
    for k in range(1, max_restarts + 1):
        graphs = torch.unique(system.batch[bad])
        if len(graphs) == 0:
            break
        if on_restart is not None:
            on_restart(k, len(graphs))
        new = cycle(pos, graphs, refine_steps if restart_refine_steps is None else restart_refine_steps, bad)
        restarts[graphs] += 1
        if restart_accept or k < max_restarts:
            new_bad = defective_atoms(new, system, rules=rules)
            if restart_accept:  # keep a cell's cycle only where it left no more defects than it found
                keep = (defect_counts(new_bad) <= defect_counts(bad))[system.batch]
                new = torch.where(keep[:, None], new, pos)
                new_bad = torch.where(keep, new_bad, bad)
            bad = new_bad
        pos = new
    return pos, restarts

