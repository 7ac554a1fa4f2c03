"""Structure files a command reads, with one set of clear errors for missing, unreadable or empty files."""

from __future__ import annotations

from pathlib import Path


def read_structures(path: str) -> list:
    """Every frame of ``path`` (``ase.io.read(path, ":")``) as ``Atoms``; ``FileNotFoundError`` when it is missing and
    ``ValueError`` when ASE cannot read it (ASE raises many types for that) or it holds no structure."""
    from ase.io import read

    if not Path(path).exists():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        frames = read(path, index=":")
    except Exception as exc:
        raise ValueError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    if not frames:
        raise ValueError(f"{path}: contains no structures")
    return frames


def frame_names(path: str, frames: list) -> list[str]:
    """``path`` for a file of one structure, ``path@k`` for frame ``k`` of several."""
    return [path if len(frames) == 1 else f"{path}@{k}" for k in range(len(frames))]
