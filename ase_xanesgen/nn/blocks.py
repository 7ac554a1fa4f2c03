"""Small building blocks: MLP, radial basis, smooth cut-off, Gaussian random Fourier embedding."""

from __future__ import annotations

import math

import torch
from torch import nn


class MLP(nn.Sequential):
    """``Linear -> SiLU -> ... -> Linear`` with an optional trailing ``LayerNorm`` (MeshGraphNets style)."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int, n_layers: int = 2, layer_norm: bool = True):
        dims = [n_in] + [n_hidden] * (n_layers - 1) + [n_out]
        layers: list[nn.Module] = []
        for k, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if k < len(dims) - 2:
                layers.append(nn.SiLU())
        if layer_norm:
            layers.append(nn.LayerNorm(n_out))
        super().__init__(*layers)


class GaussianRBF(nn.Module):
    """Gaussian radial basis on ``[0, cutoff]``: ``[E] -> [E, n]``."""

    def __init__(self, cutoff: float, n: int = 16):
        super().__init__()
        self.register_buffer("centres", torch.linspace(0.0, cutoff, n))
        self.gamma = (n / cutoff) ** 2

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        """``[E, n]`` Gaussians of distances ``d [E]`` (Å) around ``n`` centres on ``[0, cutoff]``."""
        return torch.exp(-self.gamma * (d[:, None] - self.centres) ** 2)


def cosine_cutoff(d: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Smooth envelope, 1 at 0 and 0 at ``cutoff``, so edges appear and vanish continuously."""
    return 0.5 * (torch.cos(math.pi * d / cutoff) + 1.0) * (d < cutoff)


class GaussianFourierEmbedding(nn.Module):
    """Gaussian random Fourier features of a scalar (Tancik et al.; Song et al.'s time embedding).

    The frequencies are fixed (a buffer), drawn once with scale ``scale``.
    """

    def __init__(self, dim: int, scale: float = 16.0, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("freqs", torch.randn(dim // 2, generator=g) * scale)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``[B, dim]`` sines and cosines of ``t [B]``."""
        x = 2 * math.pi * t[:, None] * self.freqs
        return torch.cat([torch.sin(x), torch.cos(x)], dim=-1)
