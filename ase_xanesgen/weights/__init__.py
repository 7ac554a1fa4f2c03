"""Shipped weights: name -> (file inside this package, sha256). Read with ``importlib.resources``."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path


#: shipped structure priors by material -> their registry name (``DiffusionGenerator(model="a-SiO2")``)
PRIORS = {"a-C": "prior", "a-SiO2": "a-SiO2"}


def weight_path(name: str) -> tuple[Path, str]:
    """``(path, sha256)`` of a shipped checkpoint (``"prior"`` (a-C), ``"a-SiO2"``, ``"xanes"`` or ``"potential"``)."""
    registry = json.loads(resources.files(__name__).joinpath("registry.json").read_text())
    if name not in registry:
        raise ValueError(f"no shipped weights named {name!r}; available: {sorted(registry)}")
    entry = registry[name]
    return Path(str(resources.files(__name__).joinpath(entry["file"]))), entry["sha256"]
