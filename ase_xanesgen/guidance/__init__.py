"""Plug-and-play guides for posterior sampling; sum them with ``+``."""

from .base import Guide, GuidedScore, SumGuide
from .coordination import CoordinationGuide
from .pdf import PDFGuide, RDFGuide
from .ring_strain import RingStrainGuide
from .valence import ValenceField
from .xanes import XANESGuide, spectrum_guide

__all__ = ["CoordinationGuide", "Guide", "GuidedScore", "PDFGuide", "RDFGuide", "RingStrainGuide", "SumGuide",
           "ValenceField", "XANESGuide", "spectrum_guide"]
