"""Predict carbon K-edge XANES of structures with the shipped (or a given) spectrum model.

Example::

    xanesgen predict a-C.vasp -o spectra.csv --plot spectrum.png
    xanesgen predict md.traj --per-atom -o spectra.csv

Output (CSV, one row per point of the model's energy grid, comma separated, one header line):

- ``energy_eV``: the calibrated axis (``docs/energy_calibration.md``);
- ``mean``: the mean spectrum over all atoms of all images read (for a trajectory or several files this is
  the pooled ensemble spectrum, i.e. what one measurement of all those structures would see);
- ``sp`` / ``sp2`` / ``sp3``: the mean spectrum of the 2- / 3- / 4-coordinated atoms (C-C cut-off ``--cutoff``,
  default 1.85 Å), pooled over images likewise, in the order of the plot's legend; ``nan`` when no atom has that
  coordination (e.g. ``sp2`` of diamond);
- ``image_<k>``: with more than one image, the mean spectrum of image ``k`` (frames numbered in read order
  across the files);
- with ``--per-atom``: one more column per atom, ``atom_<i>`` (one image) or ``image_<k>_atom_<i>``.

Intensities are on the scale of the shared a-C DFT training files (a per-atom spectrum sums to ~22 over the
100 points); area-normalise before comparing with a measurement (``ase_xanesgen.data.spectra.normalise``).
Without ``-o`` the CSV goes to standard output and the summary to standard error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from ase.io.formats import filetype, ioformats

from ..data.datasets import coordination_counts
from ..frontends.xanes_calculator import XANESCalculator
from .inputs import DEVICE_HELP, read_named
from .outputs import check_output_paths, check_plot_format

#: the carbon hybridisations reported, by coordination number (C-C bonds within ``--cutoff``)
HYBRIDS = {"sp": 2, "sp2": 3, "sp3": 4}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``xanesgen predict``."""
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="structure file(s) in any ASE format (.vasp, .cif, .extxyz, .traj ...); all frames")
    parser.add_argument("-o", "--output", type=Path, metavar="SPECTRA.csv",
                        help="CSV to write (default: standard output)")
    parser.add_argument("--per-atom", action="store_true",
                        help="add one column per atom (atom_<i>, or image_<k>_atom_<i> for several images)")
    parser.add_argument("--plot", type=Path, metavar="SPECTRUM.png",
                        help="draw the mean and the sp (CN2) / sp2 (CN3) / sp3 (CN4) means (default: no plot)")
    parser.add_argument("--model", metavar="PATH", help="spectrum checkpoint (default: the shipped weights)")
    parser.add_argument("--device", default=None, help=DEVICE_HELP)
    parser.add_argument("--cutoff", type=float, default=1.85,
                        help="C-C bond cut-off in Å for sp/sp2/sp3 (default: 1.85)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing CSV or plot file (default: refuse)")


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse outputs that would overwrite an input or hide CSV under a structure file's name, and missing
    folders, before any prediction."""
    if args.output is not None and args.output.suffix.lower() not in (".csv", ".txt", ".dat", ".tsv"):
        try:
            fmt = filetype(str(args.output), read=False)
        except Exception:  # no format guessed from the name (/dev/stdout, no suffix): plain text it is
            fmt = None
        if fmt in ioformats:
            raise ValueError(f"predict writes CSV, but {args.output} names a {fmt} structure file: use e.g. .csv")
    check_output_paths({"output": args.output, "plot": args.plot}, args.files, overwrite=args.overwrite)
    check_plot_format(args.plot)


def predict_images(images: list, calc, cutoff: float) -> dict:
    """Per-atom spectra of every image and the pooled means; a plain dict of numpy arrays.

    Keys: ``energy`` ``[100]`` eV, ``per_image`` list of ``[N_k, 100]``, ``mean`` / ``sp`` / ``sp2`` / ``sp3``
    ``[100]`` (``sp``/``sp2``/``sp3`` are ``None`` without such atoms), ``fractions``
    ``{"sp": f2, "sp2": f3, "sp3": f4}`` of all atoms (``HYBRIDS``; other coordinations make up the rest).
    """
    per_image, cns = [], []
    for atoms in images:
        per_image.append(calc.get_property("xanes", atoms))
        cns.append(coordination_counts(atoms, cutoff))
    spectra, cn = np.concatenate(per_image), np.concatenate(cns)
    out = {"energy": calc.energy_grid, "per_image": per_image, "mean": spectra.mean(axis=0), "fractions": {}}
    for key, k in HYBRIDS.items():
        mask = cn == k
        out[key] = spectra[mask].mean(axis=0) if mask.any() else None
        out["fractions"][key] = float(mask.mean())
    return out


def _columns(result: dict, per_atom: bool) -> dict:
    nan = np.full_like(result["mean"], np.nan)
    cols = {"energy_eV": result["energy"], "mean": result["mean"]}
    for key in HYBRIDS:  # the plot's legend order
        cols[key] = nan if result[key] is None else result[key]
    many = len(result["per_image"]) > 1
    if many:
        for k, spectra in enumerate(result["per_image"]):
            cols[f"image_{k}"] = spectra.mean(axis=0)
    if per_atom:
        for k, spectra in enumerate(result["per_image"]):
            for i, row in enumerate(spectra):
                cols[f"image_{k}_atom_{i}" if many else f"atom_{i}"] = row
    return cols


def write_csv(cols: dict, stream) -> None:
    """``cols`` (name -> ``[n_E]``) as CSV to ``stream``: one header line, 6 significant digits, ``nan``."""
    stream.write(",".join(cols) + "\n")
    table = np.column_stack(list(cols.values()))
    for row in table:
        stream.write(",".join("nan" if not np.isfinite(v) else f"{v:.6g}" for v in row) + "\n")


def plot_spectra(result: dict, path: str | Path, *, title: str = "", dpi: int = 120) -> None:
    """Mean spectrum and the sp (CN2) / sp2 (CN3) / sp3 (CN4) means on the eV axis (matplotlib Agg, no pyplot)."""
    # matplotlib is slow to import: loaded only where a figure is drawn
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    e = result["energy"]
    ax.plot(e, result["mean"], color="k", lw=2, label="mean (all atoms)")
    for (key, cn), color in zip(HYBRIDS.items(), ("C2", "C0", "C3")):
        if result[key] is not None:
            ax.plot(e, result[key], color=color, lw=1.2,
                    label=f"{key} (CN{cn}, {100 * result['fractions'][key]:.0f} % of atoms)")
    ax.axvspan(284.0, 286.5, color="0.9", zorder=0, label=r"$\pi^*$ window")
    ax.set(xlabel="energy (eV)", ylabel="intensity (a-C DFT scale)", xlim=(e[0], e[-1]), title=title)
    ax.legend(frameon=False)
    fig.savefig(path, dpi=dpi)


def run(args: argparse.Namespace) -> int:
    """Predict, then write the CSV (file or stdout) and the optional plot; print a one-line summary."""
    check_outputs(args)
    images = read_named(args.files, "source")
    calc = XANESCalculator(model=args.model, device=args.device)
    result = predict_images(images, calc, args.cutoff)
    cols = _columns(result, args.per_atom)

    n_atoms = sum(len(s) for s in result["per_image"])
    f = result["fractions"]
    fractions = ", ".join(f"{key} (CN{cn}) {f[key]:.3f}" for key, cn in HYBRIDS.items())
    summary = f"{len(images)} image(s), {n_atoms} atoms; {fractions}; {len(cols) - 1} spectra columns"
    if len(images) > 1:
        names = [a.info.get("source", "?") for a in images]
        summary += "; " + ", ".join(f"image_{k}: {n}" for k, n in enumerate(names[:8]))
        summary += " ..." if len(names) > 8 else ""
    if args.output is not None:
        with open(args.output, "w") as stream:
            write_csv(cols, stream)
        print(f"{summary} -> {args.output}")
    else:
        try:
            write_csv(cols, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:  # `xanesgen predict x.vasp | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        print(summary, file=sys.stderr)
    if args.plot is not None:
        title = Path(args.files[0]).name + (f" (+{len(args.files) - 1} files)" if len(args.files) > 1 else "")
        plot_spectra(result, args.plot, title=title)
    return 0
