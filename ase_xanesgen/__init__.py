"""ase-xanesgen: score-based diffusion generation of amorphous structures, steered by carbon K-edge XANES.

Public API: :class:`DiffusionGenerator`, :class:`XANESCalculator`, :func:`gap_energies`, :func:`cubic_cell`.
"""

from .frontends.gap import gap_energies
from .frontends.generator import DiffusionGenerator, cubic_cell
from .frontends.xanes_calculator import XANESCalculator

__all__ = ["DiffusionGenerator", "XANESCalculator", "cubic_cell", "gap_energies"]
__version__ = "0.1.0"
