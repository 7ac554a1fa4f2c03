"""Graph networks: MeshGraphNet stack, score and spectrum heads, checkpoints."""

from .meshgraphnet import MeshGraphNet
from .score import ScoreNet
from .spectrum import SpectrumNet

__all__ = ["MeshGraphNet", "ScoreNet", "SpectrumNet"]
