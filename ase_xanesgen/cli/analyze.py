"""Compare generated structures with reference MD structures: CN, g(r), angles, q4/q6, Voronoi, GAP energies.

Example::

    xanesgen analyze gen_*.vasp --reference md.vasp --json report.json --plot report.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..analysis import build_report, measure, plot_report
from ..frontends.gap import gap_energies
from .inputs import read_named
from .outputs import check_output_paths, check_plot_format


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``xanesgen analyze``."""
    parser.add_argument("files", nargs="+", metavar="FILE", help="generated structures (any ASE format; all frames)")
    parser.add_argument(
        "--reference", action="append", required=True, metavar="MD",
        help="reference structure file (repeat for several; all frames are pooled)",
    )
    parser.add_argument("--json", type=Path, metavar="REPORT.json",
                        help="write every number of the figure here (default: not written)")
    parser.add_argument("--plot", type=Path, metavar="REPORT.png",
                        help="write the multi-panel figure here (default: not drawn)")
    parser.add_argument(
        "--gap", action=argparse.BooleanOptionalAction, default=True,
        help="per-atom GAP energies panel (skipped with a warning if GAP is unavailable; default: on)",
    )
    parser.add_argument("--potential", metavar="GAP.xml",
                        help="GAP potential file (default: the shipped one; a missing one is an error)")
    parser.add_argument("--cutoff", type=float, default=1.85, help="C-C bond cut-off in Å (default: 1.85)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing JSON or plot file (default: refuse)")


def _energies(generated: list, reference: list, potential: str | None):
    """Per-atom GAP energies (eV) of both sides, or ``None`` with a warning on stderr."""
    try:
        return tuple(np.concatenate([gap_energies(a, potential=potential) for a in side])
                     for side in (generated, reference))
    except Exception as exc:  # optional panel: any failure (file, quippy) only drops it
        print(f"xanesgen analyze: warning: GAP panel skipped ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None


def _fmt(value, spec: str) -> str:
    """``value`` formatted by ``spec``, or ``nan`` for a value the JSON report holds as ``None`` (a NaN metric)."""
    return "nan" if value is None else format(value, spec)


def _print_summary(report: dict) -> None:
    """One line per side and one of distances; NaN metrics (no bonds, no pair in the peak window) print ``nan``."""
    for side in ("generated", "reference"):
        s = report[side]
        fractions = " ".join(f"{k}={_fmt(v, '.3f')}" for k, v in s["hybridisation"].items())
        print(f"{side:9s} {s['n_atoms']:6d} atoms  {_fmt(s['density_g_cm3'], '.3f')} g/cm3  {fractions}"
              f"  r1={_fmt(s['rdf_first_peak_A'], '.3f')} Å  angle={_fmt(s['angle_mean_deg'], '.2f')}°"
              f"  q4={_fmt(s['q4_mean'], '.3f')} q6={_fmt(s['q6_mean'], '.3f')}"
              + (f"  GAP={_fmt(s['energy_mean_eV'], '.3f')} eV/atom" if "energy_mean_eV" in s else ""))
    print("distances: " + " ".join(f"{k}={_fmt(v, '.4g')}" for k, v in report["distances"].items()))


def run(args: argparse.Namespace) -> int:
    """Analyse ``args.files`` against ``args.reference``; write JSON and PNG if asked, then print a summary."""
    inputs = [*args.files, *args.reference, *([args.potential] if args.potential else [])]
    check_output_paths({"JSON report": args.json, "plot": args.plot}, inputs, overwrite=args.overwrite)  # before the analysis, not after it
    check_plot_format(args.plot)
    try:
        if args.gap and args.potential and not Path(args.potential).is_file():  # named, so not optional
            raise FileNotFoundError(f"no GAP potential file {args.potential} (--no-gap drops the panel)")
        generated, reference = read_named(args.files, "name", keep=True), read_named(args.reference, "name", keep=True)
        metrics = [measure(side, cutoff=args.cutoff) for side in (generated, reference)]
    except (OSError, ValueError, TypeError) as exc:
        print(f"xanesgen analyze: error: {exc}", file=sys.stderr)
        return 2  # as every xanesgen command on bad input
    energies = _energies(generated, reference, args.potential) if args.gap else None
    report = build_report(*metrics, energies=energies)
    report["files"] = {"generated": list(args.files), "reference": list(args.reference)}

    # files first: a summary that cannot be printed must not cost the report
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
    if args.plot:
        plot_report(report, args.plot, overwrite=True)  # an existing file was refused up front without --overwrite
    _print_summary(report)
    return 0
