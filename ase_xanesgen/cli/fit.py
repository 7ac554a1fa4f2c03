"""Fit a measured carbon K-edge NEXAFS scan: sp / sp2 / sp3 fractions with uncertainties, through the model of the
measurement (``ase_xanesgen.data.measurement``).

Example::

    xanesgen fit examples/data/dlc_like_nexafs.csv --plot fit.png
    xanesgen fit beamline.dat --columns 0,2 --exclude 287:289 --exclude 295:296 --json fit.json

Prints the fractions (each +- the half-width of a ~95 % interval), the classic pi* estimate beside them, the
fitted nuisance parameters (energy offset, broadening, edge step, constant, edge jump, noise) and the misfit; says
when the fit is unreliable and why. ``--plot`` draws the normalised scan, the fit, each class's contribution and
the residual, with the windows left out shaded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .generate import guide_columns


def parse_window(text: str) -> tuple[float, float]:
    """``"287:289"`` -> ``(287.0, 289.0)`` (eV); ``argparse.ArgumentTypeError`` otherwise."""
    try:
        low, high = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW:HIGH in eV (e.g. 287:289), got {text!r}") from None
    if not low < high:
        raise argparse.ArgumentTypeError(f"window {text!r}: LOW must be below HIGH")
    return low, high


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``xanesgen fit``."""
    from ..data.measurement import EXCLUDE, FIT_RANGE

    parser.add_argument("spectrum", type=Path, metavar="SPECTRUM",
                        help="measured scan: columns energy (eV, graphite pi* at 285.4) and intensity")
    parser.add_argument("--columns", type=guide_columns, default=None, metavar="E,I",
                        help="0-based energy and intensity columns of a file with more than two")
    parser.add_argument("--range", type=parse_window, default=FIT_RANGE, metavar="LOW:HIGH", dest="fit_range",
                        help=f"energies fitted, eV (default {FIT_RANGE[0]:g}:{FIT_RANGE[1]:g})")
    parser.add_argument("--exclude", type=parse_window, action="append", default=None, metavar="LOW:HIGH",
                        help="a window left out of the fit, eV; repeatable (default "
                        f"{' '.join(f'{a:g}:{b:g}' for a, b in EXCLUDE)}, C-H and C=O resonances; "
                        "--exclude 0:0 leaves none out)")
    parser.add_argument("--bootstrap", type=int, default=30, metavar="N",
                        help="bootstrap replicates for the uncertainties (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument("--plot", type=Path, metavar="FIT.png", help="draw data, fit, components and residual")
    parser.add_argument("--json", type=Path, metavar="FIT.json", help="write the fit's numbers as JSON")


def plot_fit(fit, path: str | Path, title: str = "") -> None:
    """Data, fit, each class's contribution (offset down by nothing: they sum with step and constant to the fit),
    and the residual below, on the eV axis; windows left out shaded (matplotlib Agg, no pyplot)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 6))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    e = fit.energy
    top.plot(e, fit.data, "k.", ms=4, label="data (normalised)")
    top.plot(e, fit.model, "r-", lw=1.5, label=f"fit (misfit {fit.misfit:.3f})")
    for k, (name, color) in enumerate((("sp (CN2)", "tab:green"), ("sp2 (CN3)", "tab:blue"),
                                       ("sp3 (CN4)", "tab:orange"))):
        key = ("CN2", "CN3", "CN4")[k]
        top.plot(e, fit.components[k], color=color, lw=1,
                 label=f"{name} {fit.fractions[key]:.2f} ± {fit.uncertainty[key]:.2f}")
    residual = np.where(fit.mask, fit.data - fit.model, np.nan)
    bottom.plot(e, residual, "k-", lw=1)
    bottom.plot(e, np.where(fit.mask, np.nan, fit.data - fit.model), color="0.6", lw=1)
    bottom.axhline(0.0, color="0.5", lw=0.5)
    for ax in (top, bottom):
        for low, high in _gaps(e, fit.mask):
            ax.axvspan(low, high, color="0.9", zorder=0)
    top.set_ylabel("intensity (edge jumps)")
    bottom.set_ylabel("residual")
    bottom.set_xlabel("energy (eV)")
    top.legend(fontsize=8)
    top.set_title(title, fontsize=9)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120)


def _gaps(energy, mask) -> list[tuple[float, float]]:
    """The energy spans (eV) of the runs of points not fitted."""
    spans, start = [], None
    for e, on in zip(energy, mask):
        if not on and start is None:
            start = e
        elif on and start is not None:
            spans.append((start, e))
            start = None
    if start is not None:
        spans.append((start, energy[-1]))
    return spans


def run(args: argparse.Namespace) -> int:
    """Fit, print the summary, write the optional plot and JSON."""
    from ..data.measurement import EXCLUDE, fit_spectrum
    from .outputs import check_output_paths, check_plot_format

    check_plot_format(args.plot)
    check_output_paths({"plot": args.plot, "json": args.json}, [args.spectrum])
    if args.bootstrap < 0:  # named as the option, before the scan is read
        raise ValueError(f"--bootstrap must be 0 or more, got {args.bootstrap}")
    exclude = EXCLUDE if args.exclude is None else tuple(w for w in args.exclude if w != (0.0, 0.0))
    fit = fit_spectrum(args.spectrum, columns=args.columns, fit_range=args.fit_range, exclude=exclude,
                       n_bootstrap=args.bootstrap, seed=args.seed)
    left_out = f" less {', '.join(f'{a:g}-{b:g}' for a, b in exclude)} eV" if exclude else ""
    print(f"{args.spectrum}: fitted {int(fit.mask.sum())} model-grid points, {args.fit_range[0]:g}-"
          f"{args.fit_range[1]:g} eV{left_out}")
    print(fit.summary())
    if args.json is not None:
        record = {"fractions": fit.fractions, "uncertainty": fit.uncertainty, "nuisance": fit.nuisance,
                  "misfit": fit.misfit, "pi_star_estimate": list(fit.pi_star_sp2), "reliable": fit.reliable,
                  "reason": fit.reason}
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    if args.plot is not None:
        plot_fit(fit, args.plot, title=str(args.spectrum.name))
    return 0
