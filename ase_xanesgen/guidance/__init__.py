"""Plug-and-play guides for posterior sampling; sum them with ``+``."""

from .base import Guide, GuidedScore, SumGuide
from .coordination import CoordinationGuide
from .pdf import RDFGuide
from .xanes import XANESGuide

__all__ = ["CoordinationGuide", "Guide", "GuidedScore", "RDFGuide", "SumGuide", "XANESGuide"]
