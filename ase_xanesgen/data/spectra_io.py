"""Reading a measured spectrum file and checking a scan's energy axis: one up-scan with distinct energies."""

from __future__ import annotations

import codecs
import os
import re
from pathlib import Path

import numpy as np

from ..checks import warn_caller

def _as_energy(energy: np.ndarray, n: int) -> np.ndarray:
    """``energy`` as a float ``[n]`` array matching ``n`` intensities (any order: :func:`_ascending` sorts it)."""
    energy = np.asarray(energy, dtype=float)
    if energy.shape != (n,):
        raise ValueError(f"energy: expected shape ({n},) to match the intensities, got {energy.shape}")
    return energy


def _check_energy(energy: np.ndarray, n: int) -> np.ndarray:
    """``energy`` as a float ``[n]`` array, finite and strictly increasing (for arrays that must stay aligned with
    their intensities; :func:`read_spectrum` and :func:`resample` first sort a scan with :func:`_ascending`)."""
    energy = _as_energy(energy, n)
    if not np.all(np.isfinite(energy)):
        raise ValueError("energy: contains NaN/inf")
    if n < 2:
        raise ValueError("energy: need at least two points")
    steps = np.diff(energy)
    if np.any(steps <= 0):
        k = int(np.argmax(steps <= 0))
        down = " (a down-scan: reverse it)" if energy[-1] < energy[0] else ""
        raise ValueError(f"energy: not strictly increasing (E[{k}]={energy[k]:g} eV, E[{k + 1}]={energy[k + 1]:g} eV)"
                         f"{down}")
    return energy


#: a scan may step back by up to this fraction of its median step: readback jitter of the monochromator around
#: a set point, sorted away. A longer step back is refused: two sweeps or overlapping regions in one file, which
#: sorting would silently merge
SCAN_JITTER: float = 0.1


def _ascending(energy: np.ndarray, intensity: np.ndarray, *, name: str = "energy",
               lines: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One up-scan with distinct energies from a measured ``(energy [n], intensity [n])``.

    The direction is that of the ends (``sign(E[-1] - E[0])``), so a down-scan with one repeated point is still a
    down-scan; steps back within ``SCAN_JITTER`` are stable-sorted; repeated energies (the shared boundary point of
    a multi-region scan) are averaged, with a warning. A longer step back raises ``ValueError`` naming the pair
    (by ``lines`` of a file when given, else by index).
    """
    energy = np.asarray(energy, dtype=float)
    intensity = np.asarray(intensity, dtype=float)
    if not np.all(np.isfinite(energy)):
        raise ValueError(f"{name}: energy contains NaN/inf")
    if len(energy) < 2:
        raise ValueError(f"{name}: need at least two points")
    span = energy[-1] - energy[0]
    if span == 0:
        turn = energy[int(np.argmax(np.abs(energy - energy[0])))]
        raise ValueError(f"{name}: the scan starts and ends at {energy[0]:g} eV" + (
            f", turning at {turn:g} eV: not one monotonic scan (several sweeps in one file? keep one)"
            if turn != energy[0] else ": not a scan"))
    order = np.arange(len(energy)) if span > 0 else np.arange(len(energy))[::-1]
    steps = np.diff(energy[order])
    moving = np.abs(steps[steps != 0])
    back = np.flatnonzero(steps < -SCAN_JITTER * float(np.median(moving)))
    if back.size:
        p, q = sorted((int(order[back[0]]), int(order[back[0] + 1])))
        where = (lambda k: f"line {lines[k]}") if lines is not None else (lambda k: f"index {k}")
        raise ValueError(
            f"{name}: not one monotonic scan: it runs {'up' if span > 0 else 'down'} from {energy[0]:g} to "
            f"{energy[-1]:g} eV, but {energy[p]:g} eV ({where(p)}) is followed by {energy[q]:g} eV ({where(q)}). "
            "Several sweeps or overlapping regions in one file? Keep one sweep, or sort the rows if they are one "
            "spectrum (a repeated boundary point is fine: it is averaged)")
    order = order[np.argsort(energy[order], kind="stable")]
    energy, intensity = energy[order], intensity[order]
    unique, counts = np.unique(energy, return_counts=True)
    if len(unique) < len(energy):
        intensity = np.bincount(np.repeat(np.arange(len(unique)), counts), weights=intensity) / counts
        twice = unique[counts > 1]
        listed = ", ".join(f"{v:g}" for v in twice[:3]) + (" ..." if len(twice) > 3 else "")
        warn_caller(f"{name}: {len(twice)} energy point(s) measured more than once ({listed} eV; the shared "
                    "boundary of a multi-region scan?): their intensities are averaged")
    return unique, intensity


def _decode(raw: bytes, path: Path) -> str:
    """A spectrum file's text. UTF-8 with its BOM dropped (left in, it hid the first number, and a file without a
    header lost its first row); UTF-16 with a BOM (Windows exports); else Latin-1, in which every byte decodes (a
    ``µ`` in an instrument's comment): only the numbers matter, and they are ASCII in all three."""
    if raw[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        try:
            text = raw.decode("utf-16")
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: starts with a UTF-16 byte-order mark but is no UTF-16 text ({err.reason})"
                             ) from None
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
    if "\x00" in text:
        raise ValueError(f"{path}: holds NUL bytes: not a text file (or UTF-16 without a byte-order mark: save it "
                         "as UTF-8)")
    return text


def _decimal_commas(line: str) -> str:
    """A hint when ``line`` reads as numbers with decimal commas between other separators (``285,4\\t0,5``,
    ``285,4;0,5``), which the comma separator splits into twice the columns; else ``""``."""
    parts = [p for p in re.split(r"[;\s]+", line) if p]
    if len(parts) >= 2 and any("," in p for p in parts) and all(
            re.fullmatch(r"[-+]?\d+(,\d+)?([eE][-+]?\d+)?", p) for p in parts):
        return " (decimal commas? use points: 285.4, not 285,4)"
    return ""


def _fields(line: str) -> list[str]:
    """The fields of a line: whitespace, commas and semicolons all separate columns."""
    return [f for f in re.split(r"[,;\s]+", line) if f]


def _table(text: str, path: Path) -> tuple[np.ndarray, list[int], list[int], list[str]]:
    """The numeric rows of a spectrum file ``[rows, columns]``, their line numbers, the line numbers of the skipped
    header lines, and the fields of the last line (header or ``#`` comment) before the data: the column names,
    if any. Every data row must have as many columns as the first."""
    rows: list[list[float]] = []
    lines: list[int] = []
    header: list[int] = []
    labels: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line, _, comment = line.partition("#")
        line = line.strip()
        if not line:
            if not rows and comment.strip():
                labels = _fields(comment)
            continue
        fields = _fields(line)
        try:
            values = [float(f) for f in fields]
        except ValueError:
            if not rows:  # header line
                header.append(lineno)
                labels = fields
                continue
            raise ValueError(f"{path}:{lineno}: non-numeric value in {line!r}") from None
        hint = _decimal_commas(line)
        if hint:
            raise ValueError(f"{path}:{lineno}: {line!r} splits into {len(values)} columns{hint}")
        if rows and len(values) != len(rows[0]):
            raise ValueError(f"{path}:{lineno}: expected {len(rows[0])} columns as on line {lines[0]}, got "
                             f"{len(values)}")
        rows.append(values)
        lines.append(lineno)
    if not rows:
        raise ValueError(f"{path}: no numeric rows found")
    return np.array(rows), lines, header, labels


def _pick_columns(data: np.ndarray, columns: tuple[int, int] | None, path: Path,
                  labels: list[str]) -> tuple[int, int]:
    """The (energy, intensity) column indices: ``columns`` checked against the file, or ``(0, 1)`` for a
    two-column file; a file of more columns must name its choice (a guess would pick I0 or TEY unseen)."""
    n = data.shape[1]
    found = ", ".join(f"{k}: {name}" for k, name in enumerate(labels)) if len(labels) == n else f"0-{n - 1}"
    if columns is None:
        if n == 2:
            return 0, 1
        if n < 2:
            raise ValueError(f"{path}: expected 2 columns (energy, intensity), got {n}")
        raise ValueError(f"{path}: {n} columns ({found}), expected 2 columns (energy, intensity): choose them by "
                         "0-based index, read_spectrum(path, columns=(0, k)) or xanesgen generate --guide-columns 0,k")
    if len(columns) != 2 or any(not isinstance(c, (int, np.integer)) or not 0 <= c < n for c in columns) or \
            columns[0] == columns[1]:
        raise ValueError(f"{path}: columns {tuple(columns)} must be two different 0-based indices of its {n} columns "
                         f"({found})")
    return int(columns[0]), int(columns[1])


def read_spectrum(path: str | os.PathLike, columns: tuple[int, int] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Read a measured spectrum: energy (eV) and intensity columns.

    Columns may be separated by whitespace, commas or semicolons; ``#`` starts a comment; non-numeric
    lines before the data (a CSV header) are skipped, with a warning when there are several. A file of two columns
    is read as is; from one of more (a beamline's E, I0, TEY, TFY; ``xanesgen predict``'s CSV) ``columns``
    picks (energy, intensity) by 0-based index. UTF-8 (with or without a BOM), UTF-16 with a BOM and Latin-1 are
    read. The scan is sorted up (:func:`_ascending`: a down-scan reversed, repeated energies averaged with a
    warning, a scan that turns back refused). Returns ``(energy [n] eV, intensity [n])``, energies strictly
    increasing, intensities finite. They may dip below zero (noise on a raw scan): :func:`subtract_pre_edge` takes
    them so; :func:`resample` clips dips down to ``MEASURED_NEG_TOL`` of the maximum and refuses deeper ones.
    """
    path = Path(path)
    data, lines, header, labels = _table(_decode(path.read_bytes(), path), path)
    if len(header) > 1:
        warn_caller(f"{path}: skipped lines {header[0]}-{header[-1]} ({len(header)} non-numeric lines before the "
                    "data) as a header: check that none of them is a data row")
    e, i = _pick_columns(data, columns, path, labels)
    bad = ~np.isfinite(data[:, [e, i]]).all(axis=1)
    if bad.any():
        raise ValueError(f"{path}:{lines[int(np.argmax(bad))]}: NaN/inf value ({int(bad.sum())} such row(s))")
    return _ascending(data[:, e], data[:, i], name=str(path), lines=lines)
