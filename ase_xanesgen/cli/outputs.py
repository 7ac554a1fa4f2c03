"""A command's output paths, checked before any work: a long run must not end on a missing folder or write over
its own input."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def check_output_paths(outputs: dict[str, str | os.PathLike | None],
                       inputs: Iterable[str | os.PathLike] = (), *, overwrite: bool = False) -> None:
    """``outputs`` maps what each output is (``"output"``, ``"plot"``) to its path, or ``None`` when not asked for.

    Raises ``FileNotFoundError`` for an output whose folder does not exist, ``IsADirectoryError`` for an output
    that is a folder, ``FileExistsError`` for an existing file unless ``overwrite`` (devices such as /dev/stdout
    are not files), ``PermissionError`` for a folder no file can be created in, and ``ValueError`` for an output
    that names one of the ``inputs`` or the same file as another output (even with ``overwrite``).
    """
    paths = {what: Path(p) for what, p in outputs.items() if p is not None}
    probed: set[Path] = set()  # one probe file per folder (generate -n 50 -o x.vasp names 50 files in one)
    for what, path in paths.items():
        if not path.parent.is_dir():
            raise FileNotFoundError(f"{what} folder {path.parent} does not exist")
        if path.is_dir():
            raise IsADirectoryError(f"the {what} {path} is a folder: name a file (e.g. {path / 'out.traj'})")
        if path.is_file() and not overwrite and path.resolve() not in {Path(p).resolve() for p in inputs}:
            raise FileExistsError(f"the {what} {path} exists: pass --overwrite to replace it")
        if path.parent not in probed:
            check_writable(path.parent, what)
            probed.add(path.parent)
    read = {Path(p).resolve() for p in inputs}
    written: dict[Path, str] = {}
    for what, path in paths.items():
        where = path.resolve()
        if where in read:
            raise ValueError(f"the {what} {path} would overwrite one of the input files")
        if where in written:
            raise ValueError(f"the {written[where]} and the {what} name the same file {path}")
        written[where] = what


def check_writable(folder: Path, what: str) -> None:
    """``PermissionError`` unless a file can be created in ``folder``: trying is the only sure test (as root
    ``os.access`` says yes to read-only and virtual file systems such as /sys)."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".xanesgen-probe-")
    except OSError as err:
        raise PermissionError(f"cannot write the {what} into {folder}: {err.strerror or err}") from None
    os.close(fd)
    os.unlink(probe)


def check_plot_format(path: str | os.PathLike | None) -> None:
    """``ValueError`` unless matplotlib can write ``path`` by its extension (checked before the work, not after)."""
    if path is None:
        return
    # matplotlib is slow to import: loaded only where a plot is asked for
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    formats = FigureCanvasAgg(Figure()).get_supported_filetypes()
    if Path(path).suffix.lstrip(".").lower() not in formats:
        raise ValueError(f"cannot plot to {path}: name a file ending in .{', .'.join(sorted(formats))}")
