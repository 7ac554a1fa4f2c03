"""VE SDE, reverse-time samplers and restart cycles."""

from .samplers import System, em_step, euler_maruyama, restart_sample
from .score_fn import PriorScore
from .sde import VESDE

__all__ = ["PriorScore", "System", "VESDE", "em_step", "euler_maruyama", "restart_sample"]
