"""MeshGraphNets encoder-processor-decoder (Pfaff et al., ICLR 2021) on a periodic atom graph.

Edges carry ``[D / r_c, rbf(|D|)]`` (relative vector and distance); nodes carry a species embedding
plus an optional conditioning vector (the noise level for the score model). Each processor layer updates
edges from (edge, sender, receiver) and nodes from (node, sum of incoming edges), with residuals. Messages
are scaled by a cosine envelope so the output is continuous when atoms cross the cut-off. Everything is
node-local: the same weights apply to any cell size.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .blocks import MLP, GaussianRBF, cosine_cutoff


class MeshGraphNet(nn.Module):
    """Latent node features ``[N, width]`` from species, conditioning and the periodic graph.

    Args:
        species: atomic numbers the model knows (an unknown one is rejected by the front ends).
        width: latent size. layers: processor depth. cutoff: graph radius (Angstrom).
        cond_dim: size of the per-graph conditioning vector (0 for none).
    """

    def __init__(self, species: list[int], width: int = 128, layers: int = 4, cutoff: float = 3.0,
                 n_rbf: int = 16, cond_dim: int = 0):
        super().__init__()
        if width < 1 or layers < 1 or not cutoff > 0:
            raise ValueError(f"need width >= 1, layers >= 1 and cutoff > 0, got {width}, {layers}, {cutoff}")
        self.species, self.width, self.layers, self.cutoff, self.n_rbf, self.cond_dim = (
            list(species), width, layers, cutoff, n_rbf, cond_dim)
        table = torch.full((119,), -1, dtype=torch.long)
        table[torch.tensor(self.species)] = torch.arange(len(self.species))
        self.register_buffer("species_index", table)
        self.embed = nn.Embedding(len(self.species), width)
        self.rbf = GaussianRBF(cutoff, n_rbf)
        self.node_encoder = MLP(width + cond_dim, width, width)
        self.edge_encoder = MLP(3 + n_rbf, width, width)
        self.edge_mlps = nn.ModuleList([MLP(3 * width, width, width) for _ in range(layers)])
        self.node_mlps = nn.ModuleList([MLP(2 * width + cond_dim, width, width) for _ in range(layers)])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(species={self.species}, width={self.width}, layers={self.layers}, "
                f"cutoff={self.cutoff}, cond_dim={self.cond_dim})")

    def forward(self, z: torch.Tensor, vec: torch.Tensor, edge_index: torch.Tensor,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        """``z [N]``, edge vectors ``vec [E, 3]`` (i -> j), ``edge_index [2, E]``, ``cond [N, cond_dim]``."""
        dist = vec.norm(dim=-1)
        env = cosine_cutoff(dist, self.cutoff)[:, None]  # [E, 1]
        h = self.embed(self.species_index[z])
        extra = [cond] if self.cond_dim else []
        h = self.node_encoder(torch.cat([h, *extra], dim=-1))
        e = self.edge_encoder(torch.cat([vec / self.cutoff, self.rbf(dist)], dim=-1))
        src, dst = edge_index[1], edge_index[0]  # message from neighbour j to centre i
        chunk = EDGE_CHUNK if e.device.type == "cpu" else GPU_EDGE_CHUNK
        chunked = not torch.is_grad_enabled() and e.shape[0] > chunk
        for edge_mlp, node_mlp in zip(self.edge_mlps, self.node_mlps):
            if chunked:
                e, agg = edge_layer_chunked(edge_mlp, e, h, dst, src, env, chunk)
            else:
                e = e + edge_update(edge_mlp, e, h, dst, src)
                agg = EnvelopeSum.apply(e, env, dst, h.shape[0])
            h = h + node_mlp(torch.cat([h, agg, *extra], dim=-1))
        return h


#: edges per chunk when no gradient is needed (sampling) on a CPU: keeps each layer's edge temporaries in cache, so
#: the cost per atom stays flat from thousands to 100k atoms instead of becoming memory-bound
EDGE_CHUNK = 4096
#: the same on a GPU, where small chunks only multiply kernel launches (H100, 128 cells: chunks of 4,096 made an
#: unguided evaluation 81-87 ms, unchunked 15.5 ms; benchmarks/guidance_sweep.py --cost-only --device cuda); a
#: million edges (~70k atoms) per chunk only bounds the memory of very large cells (0.5 GB per [E, 128] temporary)
GPU_EDGE_CHUNK = 1 << 20


class EnvelopeSum(torch.autograd.Function):
    """``agg[i] = sum over edges k into i of env[k] * e[k]``: ``[N, w]`` from ``e [E, w]``, ``env [E, 1]``.

    The same sum as ``zeros.index_add_(0, dst, env * e)``, with a leaner backward: autograd's takes two
    ``[E, w]`` products (``g[dst] * env`` and ``g[dst] * e``, then a sum) for the envelope's gradient, this one a
    row-wise dot and the other product in place, about twice as fast. A guided evaluation runs it seven times
    (score and spectrum networks).
    """

    @staticmethod
    def forward(ctx, e: torch.Tensor, env: torch.Tensor, dst: torch.Tensor, n: int) -> torch.Tensor:
        ctx.save_for_backward(e, env, dst)
        return e.new_zeros(n, e.shape[1]).index_add_(0, dst, env * e)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None]:
        e, env, dst = ctx.saved_tensors
        g = grad.index_select(0, dst)  # [E, w]
        grad_env = torch.linalg.vecdot(g, e)[:, None] if ctx.needs_input_grad[1] else None
        return (g.mul_(env) if ctx.needs_input_grad[0] else None), grad_env, None, None


#: set by :func:`bf16_input_gradients`
_bf16_gradients: ContextVar[bool] = ContextVar("bf16_gradients", default=False)
#: set by :func:`bf16_inference`
_bf16_inference: ContextVar[bool] = ContextVar("bf16_inference", default=False)


def fast_bf16_matmul() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AVX512-BF16 or AMX): there an edge MLP's
    ``[E, 128] x [128, 128]`` product takes 4.8 ms in bfloat16 (casts included) against 8.3 ms in float32 (16 cells,
    2-core EPYC); elsewhere bfloat16 is emulated and slower."""
    return any(getattr(torch.cpu, name, lambda: False)() for name in ("_is_avx512_bf16_supported",
                                                                        "_is_amx_tile_supported"))


@contextmanager
def bf16_input_gradients(enabled: bool = True) -> Iterator[None]:
    """Within this block the edge MLPs' float32 products with frozen weights back-propagate to their inputs in
    bfloat16 (the forward stays float32).

    For the gradient of a guide through the score network (posterior sampling), where ~0.4 % relative error in
    the likelihood term is far below what the denoised estimate approximates; never for training (the weights'
    own gradients are not computed by this path, so trainable weights keep the float32 one).
    """
    token = _bf16_gradients.set(enabled)
    try:
        yield
    finally:
        _bf16_gradients.reset(token)


@contextmanager
def bf16_inference(enabled: bool = True) -> Iterator[None]:
    """Within this block evaluations without autograd (sampling) multiply the edge MLPs in bfloat16.

    The edge MLPs' two products take most of an evaluation; their inputs and weights are cast to bfloat16, the
    residual edge state, the node terms, the sums and the layer norm stay float32. The score moves by ~0.7 % (relative
    norm, 16 cells at 2.5 g/cm3), far below the sampler's own noise. On a CPU that multiplies bfloat16 in hardware
    (:func:`fast_bf16_matmul`) an evaluation on one thread is ~25 % faster, on two 0-10 % (the graph, gathers and sums
    do not shrink; docs/performance.md). Off by default: the float32 path is the reference.
    """
    token = _bf16_inference.set(enabled)
    try:
        yield
    finally:
        _bf16_inference.reset(token)


def _edge_mlp_rest_bf16(mlp: MLP, e: torch.Tensor, at_dst: torch.Tensor, at_src: torch.Tensor) -> torch.Tensor:
    """:func:`edge_mlp_rest` with its two products in bfloat16 (``Linear, SiLU, Linear, LayerNorm`` MLPs)."""
    first, act, second, norm = mlp
    bf = torch.bfloat16
    x = torch.addmm(first.bias.to(bf), e.to(bf), first.weight[:, :e.shape[-1]].T.to(bf))
    x = act(x.float().add_(at_dst).add_(at_src).to(bf))
    x = torch.addmm(second.bias.to(bf), x, second.weight.T.to(bf))
    return nn.functional.layer_norm(x.float(), norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def _edge_rest():
    """The edge MLP after its node terms: :func:`_edge_mlp_rest_bf16` inside :func:`bf16_inference` without
    autograd, else :func:`edge_mlp_rest`."""
    return _edge_mlp_rest_bf16 if _bf16_inference.get() and not torch.is_grad_enabled() else edge_mlp_rest


class _BF16InputGradLinear(torch.autograd.Function):
    """``x @ w.T + b`` whose backward is only ``x``'s gradient, as a bfloat16 product."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(w)
        return torch.addmm(b, x, w.T)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (w,) = ctx.saved_tensors
        return torch.mm(grad.to(torch.bfloat16), w.to(torch.bfloat16)).to(grad.dtype), None, None


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``x @ w.T + b``; inside :func:`bf16_input_gradients` with a bfloat16 backward for float32 ``x`` and frozen
    ``w``."""
    if (_bf16_gradients.get() and x.dtype == torch.float32 and torch.is_grad_enabled() and x.requires_grad
            and not (w.requires_grad or b.requires_grad)):
        return _BF16InputGradLinear.apply(x, w, b)
    return torch.addmm(b, x, w.T)


def node_projections(mlp: MLP, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The receiver and sender thirds of the edge MLP's first layer applied per node: ``[N, w]`` each."""
    _, w_dst, w_src = mlp[0].weight.split(h.shape[-1], dim=1)
    return h @ w_dst.T, h @ w_src.T


def edge_mlp_rest(mlp: MLP, e: torch.Tensor, at_dst: torch.Tensor, at_src: torch.Tensor) -> torch.Tensor:
    """The edge MLP given its first layer's node terms already gathered onto the edges.

    The node terms are added in place: two fewer ``[E, w]`` allocations per layer (addmm keeps no output for its
    backward), ~2 % of a guided evaluation with autograd (16 cells, 31 alternating rounds; same gradient).
    """
    first, *rest = mlp
    x = linear(e, first.weight[:, :e.shape[-1]], first.bias).add_(at_dst).add_(at_src)
    for layer in rest:
        x = linear(x, layer.weight, layer.bias) if isinstance(layer, nn.Linear) else layer(x)
    return x


def edge_update(mlp: MLP, e: torch.Tensor, h: torch.Tensor, dst: torch.Tensor, src: torch.Tensor
                ) -> torch.Tensor:
    """``mlp(cat[e, h[dst], h[src]])`` with the node thirds of the first layer applied per node, then gathered.

    Same weights and result as the concatenation, but the ``[E, 3w] x [3w, w]`` product (most of the cost,
    with ~14 edges per atom) shrinks to ``[E, w] x [w, w]`` plus two ``[N, w] x [w, w]``.
    """
    a, b = node_projections(mlp, h)
    return _edge_rest()(mlp, e, a.index_select(0, dst), b.index_select(0, src))


@torch.no_grad()
def edge_layer_chunked(mlp: MLP, e: torch.Tensor, h: torch.Tensor, dst: torch.Tensor, src: torch.Tensor,
                       env: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One processor layer's edge half, ``chunk`` edges at a time, updating ``e`` in place (no autograd).

    Returns the updated ``e`` and the enveloped sum of incoming edges per node, as the unchunked path.
    """
    a, b = node_projections(mlp, h)
    agg = torch.zeros_like(h)
    rest = _edge_rest()
    for start in range(0, e.shape[0], chunk):
        part = slice(start, start + chunk)
        e[part] += rest(mlp, e[part], a.index_select(0, dst[part]), b.index_select(0, src[part]))
        agg.index_add_(0, dst[part], env[part] * e[part])
    return e, agg
