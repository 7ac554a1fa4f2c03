"""What a command reads: structure files, with one set of clear errors for missing, unreadable or empty files, and
options, refused where they would do nothing."""

from __future__ import annotations

from pathlib import Path

from ase.io import read

#: help of every command's ``--device``
DEVICE_HELP = "cpu, cuda, cuda:1, ... (default: $XANESGEN_DEVICE, else CUDA when available, else cpu)"


def read_structures(path: str) -> list:
    """Every frame of ``path`` (``ase.io.read(path, ":")``) as ``Atoms``; ``FileNotFoundError`` when it is missing and
    ``ValueError`` when ASE cannot read it (ASE raises many types for that) or it holds no structure."""
    if not Path(path).exists():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        frames = read(path, index=":")
    except Exception as exc:
        raise ValueError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    if not frames:
        raise ValueError(f"{path}: contains no structures")
    return frames


def read_named(paths: list[str], key: str, keep: bool = False) -> list:
    """Every frame of every file, each named in ``info[key]``: ``path`` for a file of one structure, ``path@k`` for
    frame ``k`` of several; ``keep`` leaves a name the file already holds."""
    structures = []
    for path in paths:
        frames = read_structures(path)
        for k, atoms in enumerate(frames):
            name = path if len(frames) == 1 else f"{path}@{k}"
            atoms.info[key] = atoms.info.get(key, name) if keep else name
        structures.extend(frames)
    return structures


def refuse_idle(flags: list[str], acting_on: str) -> None:
    """``ValueError`` naming options given where they would be silently ignored; ``acting_on`` says where they
    act (e.g. ``"a guided run: add --guide SPECTRUM"``)."""
    if flags:
        raise ValueError(f"{', '.join(flags)} only act{'s' if len(flags) == 1 else ''} on {acting_on}")
