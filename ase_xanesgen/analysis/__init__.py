"""Structure analysis of (amorphous) carbon: coordination, g(r), angles, Steinhardt, Voronoi, rings.

All functions take periodic ``Atoms`` (a 3-D cell is required); those that describe distributions
also take a list, pooling all atoms. Lengths in Å, angles in degrees, bond cut-off 1.85 Å by default.
"""

from .angles import angle_histogram, bond_angles
from .compare import compare
from .coordination import HYBRIDISATION_KEYS, coordination_numbers, hybridisation_fractions
from .metrics import StructureMetrics, measure
from .plot import plot_report
from .rdf import rdf, rdf_first_peak
from .report import build_report
from .rings import ring_statistics
from .steinhardt import steinhardt
from .voronoi import voronoi_volumes

__all__ = [
    "HYBRIDISATION_KEYS",
    "StructureMetrics",
    "angle_histogram",
    "bond_angles",
    "build_report",
    "compare",
    "coordination_numbers",
    "hybridisation_fractions",
    "measure",
    "plot_report",
    "rdf",
    "rdf_first_peak",
    "ring_statistics",
    "steinhardt",
    "voronoi_volumes",
]
