"""Guides and posterior sampling by diffusion posterior sampling (Chung et al., ICLR 2023).

A guide maps clean positions ``x0 [N, 3]`` of a batch to a residual per graph ``[B]`` (e.g. the relative L2
distance between a predicted and a target spectrum). Guides add (``a + b``) and scale (``2.0 * a``) like
ASE's ``SumCalculator``. :class:`GuidedScore` turns them into a posterior score for the samplers:

    x0   = x_t + sigma_t^2 * s(x_t, t)              (Tweedie estimate, through the score network)
    s'   = s(x_t, t) - zeta * N_g * grad_{x_t} sum_k w_k r_k(x0)

``zeta * grad |r|`` equals DPS's step ``zeta / |y - F(x0)| * grad |y - F(x0)|^2`` up to a factor 2; the number of
atoms ``N_g`` of each graph keeps the per-atom pull independent of the cell size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

import torch

from ..checks import check_non_negative
from ..diffusion.samplers import System
from ..graph.neighbours import edge_vectors, radius_graph_pbc
from ..nn.meshgraphnet import bf16_input_gradients, fast_bf16_matmul

_T = TypeVar("_T")
#: graphs built by :func:`guide_graph` (and values of :func:`step_cached`) within the current :func:`shared_graphs`
#: block
_step_cache: ContextVar[dict | None] = ContextVar("step_cache", default=None)


@contextmanager
def shared_graphs() -> Iterator[None]:
    """Within this block the guides' graphs of one position tensor are built once (one posterior step)."""
    token = _step_cache.set({})
    try:
        yield
    finally:
        _step_cache.reset(token)


def step_cached(key: tuple, x0: torch.Tensor, system: System, build: Callable[[], _T]) -> _T:
    """``build()``, once per ``key``, positions ``x0`` and ``system`` inside :func:`shared_graphs` (the entry keeps
    ``x0`` and ``system``, so their ids stay unique); outside it, every call builds."""
    cache = _step_cache.get()
    if cache is None:
        return build()
    full_key = (key, id(x0), id(system))
    if full_key not in cache:
        cache[full_key] = (x0, system, build())
    return cache[full_key][2]


def guide_graph(x0: torch.Tensor, system: System, cutoff: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``radius_graph_pbc`` of ``x0`` for a guide; inside :func:`shared_graphs` shared by the terms of a sum.

    Each term needs a graph of the same denoised estimate (spectrum 3 A, coordination and ring strain 2.35 A), so
    one graph serves them all. Within the block the graph of ``x0`` and ``system`` is
    kept (with ``x0`` itself, so its id stays unique), and so is each smaller cut-off's filtered copy of it; a
    larger cut-off rebuilds.
    """
    graphs = _step_cache.get()
    if graphs is None:
        return radius_graph_pbc(x0.detach(), system.cell, system.batch, cutoff)
    key = (id(x0), id(system))
    if key not in graphs or cutoff > graphs[key][1]:
        graphs[key] = (x0, cutoff, {cutoff: radius_graph_pbc(x0.detach(), system.cell, system.batch, cutoff)})
    _, built_cutoff, by_cutoff = graphs[key]
    if cutoff not in by_cutoff:
        edge_index, shifts = by_cutoff[built_cutoff]
        keep = edge_vectors(x0.detach(), system.cell, system.batch, edge_index, shifts).norm(dim=-1) < cutoff
        by_cutoff[cutoff] = edge_index[:, keep], shifts[keep]
    return by_cutoff[cutoff]


#: the per-step record of :class:`GuidedScore` (``history``), and the columns of ``info["guide_history"]``
HISTORY_COLUMNS = ("t", "residual", "prior_norm", "likelihood_norm")


class Guide:
    """Base class: ``residual(x0, system) -> [B]`` differentiable in ``x0``; ``weight`` scales it.

    ``t_min``: the guide acts only while the diffusion time ``t >= t_min`` — e.g. a coordination term that shapes
    the bonding while it forms and leaves the final bond lengths to the prior. A sum's terms keep their own.
    """

    weight: float = 1.0
    t_min: float = 0.0

    def residual(self, x0: torch.Tensor, system: System) -> torch.Tensor:
        """How far each cell's denoised estimate is from the target: the method every guide overrides.

        Args:
            x0: ``[N, 3]`` Å, the denoised (Tweedie) positions of all atoms of the batch, Cartesian, not
                necessarily wrapped into the cell; requires grad, and the result must be differentiable in it.
            system: the batch's fixed part: ``z [N]`` atomic numbers, ``cell [B, 3, 3]`` Å (rows are lattice
                vectors), ``batch [N]`` the cell index of each atom.

        Returns:
            ``[B]``, one residual per cell, ``>= 0`` and ``0`` at the target, on the dtype and device of ``x0``.
            Dimensionless by convention (e.g. a relative L2 distance, a fraction), so that ``zeta`` means the same
            pull for every guide; :class:`GuidedScore` multiplies its gradient by ``zeta`` and the atom count.
        """
        raise NotImplementedError

    def weighted(self, x0: torch.Tensor, system: System) -> torch.Tensor:
        """``weight * residual(x0, system)``: ``[B]``."""
        return self.weight * self.residual(x0, system)

    def terms(self) -> list["Guide"]:
        """The guides this one adds up: ``[self]`` for a single guide, its terms for a :class:`SumGuide`."""
        return [self]

    def __add__(self, other: "Guide") -> "SumGuide":
        if not isinstance(other, Guide):
            return NotImplemented
        return SumGuide(self.terms() + other.terms())

    def __radd__(self, other: object) -> "Guide":
        """``0 + guide`` is the guide, so ``sum(guides)`` works."""
        if isinstance(other, (int, float)) and other == 0:
            return self
        return NotImplemented

    def __mul__(self, factor: float) -> "SumGuide":
        return SumGuide([_Scaled(g, factor) for g in self.terms()])

    __rmul__ = __mul__


class _Scaled(Guide):
    def __init__(self, guide: Guide, factor: float):
        self.guide, self.weight = guide, check_non_negative(factor, "factor") * guide.weight

    @property
    def t_min(self) -> float:  # the scaled guide's, also when it is set later
        return self.guide.t_min

    def residual(self, x0: torch.Tensor, system: System) -> torch.Tensor:
        return self.guide.residual(x0, system)

    def __repr__(self) -> str:
        return f"{self.weight} * {self.guide!r}"


class SumGuide(Guide):
    """Several guides at once: the weighted residuals (and so the gradients) add."""

    def __init__(self, guides: list[Guide]):
        if not guides:
            raise ValueError("SumGuide needs at least one guide")
        self.guides = guides

    def terms(self) -> list[Guide]:
        return list(self.guides)

    def residual(self, x0: torch.Tensor, system: System) -> torch.Tensor:
        return sum(g.weighted(x0, system) for g in self.guides)

    def weighted(self, x0: torch.Tensor, system: System) -> torch.Tensor:
        return self.residual(x0, system)

    def __repr__(self) -> str:
        return " + ".join(repr(g) for g in self.guides)


def base_terms(guide: Guide) -> list[Guide]:
    """The guides a (scaled, summed) guide is made of, without their scale factors: e.g. to find the targets of
    its ``XANESGuide`` terms."""
    out = []
    for term in guide.terms():
        while isinstance(term, _Scaled):
            term = term.guide
        out.append(term)
    return out


class GuidedScore:
    """Posterior score ``prior + likelihood`` with the likelihood taken on the denoised estimate x0.

    ``history`` collects per-step records: ``t``, mean residual, mean norms of prior and likelihood terms.

    ``bf16_gradients``: back-propagate the likelihood through the networks' edge MLPs in bfloat16
    (``nn.meshgraphnet.bf16_input_gradients``; the prior score stays float32). ``None``: on a CPU that multiplies
    bfloat16 in hardware, where it makes a guided evaluation 2-9 % faster (docs/performance.md).
    """

    def __init__(self, prior, guide: Guide, zeta: float, bf16_gradients: bool | None = None):
        self.prior, self.guide, self.zeta = prior, guide, check_non_negative(zeta, "zeta")
        self.bf16_gradients = fast_bf16_matmul() if bf16_gradients is None else bool(bf16_gradients)
        self.history: list[dict[str, float]] = []

    def bf16_on(self, device: torch.device) -> bool:
        """Whether evaluations on ``device`` take the bfloat16 backward (a CPU only)."""
        return self.bf16_gradients and device.type == "cpu"

    def __call__(self, pos: torch.Tensor, t: float, system: System) -> torch.Tensor:
        terms = [g for g in self.guide.terms() if t >= g.t_min]
        if not terms:  # every guide is switched off at this noise level: the prior alone, no autograd
            score = self.prior(pos, t, system)
            self.history.append(dict(zip(HISTORY_COLUMNS, (t, float("nan"), float(score.norm(dim=-1).mean()), 0.0))))
            return score
        pull = self.zeta > 0  # zeta 0: no pull, the residual for the record without autograd
        with torch.set_grad_enabled(pull), bf16_input_gradients(pull and self.bf16_on(pos.device)):
            x_t = pos.detach().requires_grad_(pull)
            score = self.prior(x_t, t, system)
            x0 = x_t + self.prior.sde.sigma(t) ** 2 * score
            with shared_graphs():
                residual = sum(g.weighted(x0, system) for g in terms)  # [B]
            if pull:
                n_atoms = system.atom_counts.to(residual)
                (grad,) = torch.autograd.grad((n_atoms * residual).sum(), x_t)
        likelihood = -self.zeta * grad if pull else torch.zeros_like(score)
        norms = torch.stack([score.detach(), likelihood]).norm(dim=-1).mean(dim=1)
        record = torch.cat([residual.detach().mean()[None], norms]).tolist()  # one device sync per step
        self.history.append(dict(zip(HISTORY_COLUMNS, [t, *record])))
        return score.detach() + likelihood
