"""Timing of the structure analysis on ~4k-atom cells, and the crystal reference values.

Run: ``python benchmarks/analyze_speed.py``. Cells: ideal diamond 8x8x8 conventional (4,096 atoms,
rattled by 0.05 Å), and shared a-C cells repeated 3x3x2 (3,888 atoms; 216-atom cells cannot make 4,096).
The CLI is timed in-process (``analyze.run``) and as a fresh interpreter (imports included), with and
without the GAP panel; GAP is reported as unavailable if ``ase_xanesgen.frontends.gap`` fails.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.io import write

from ase_xanesgen.analysis import (
    bond_angles,
    coordination_numbers,
    measure,
    rdf_first_peak,
    ring_statistics,
    steinhardt,
    voronoi_volumes,
)
from ase_xanesgen.cli import analyze
from ase_xanesgen.data.datasets import load_cell, load_reference


def crystal_values() -> None:
    print("crystal values (shared references, cut-off 1.85 Å)")
    for name in ("diamond", "graphite"):
        atoms = load_reference(name)
        cn = coordination_numbers(atoms)
        angles = bond_angles(atoms)
        q = steinhardt(atoms, (4, 6))
        q_nn4 = steinhardt(atoms, (4, 6), num_neighbors=4)
        volumes = voronoi_volumes(atoms)
        rings = ring_statistics(atoms)
        print(
            f"  {name:8s} N={len(atoms)} CN={sorted(set(cn.tolist()))} angle mean={angles.mean():.4f}° "
            f"[{angles.min():.4f}, {angles.max():.4f}] RDF peak={rdf_first_peak(atoms):.4f} Å "
            f"q4={q[4].mean():.6f} q6={q[6].mean():.6f} (4-NN: q4={q_nn4[4].mean():.6f} q6={q_nn4[6].mean():.6f}) "
            f"Voronoi sum={volumes.sum():.4f} Å3 vs cell {atoms.get_volume():.4f} Å3 "
            f"6-rings/atom={rings[6] / len(atoms):.3f}"
        )


def timed(label: str, fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    print(f"  {label:55s} {time.perf_counter() - t0:7.3f} s")
    return out


def run_cli(argv: list[str]) -> int:
    """``analyze.run`` in-process, its summary and warnings silenced."""
    parser = argparse.ArgumentParser()
    analyze.add_arguments(parser)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return analyze.run(parser.parse_args(argv))


def gap_status() -> str:
    try:
        from ase_xanesgen.frontends.gap import gap_energies

        gap_energies(load_cell("d2.0_1"))
    except Exception as exc:
        return f"unavailable ({type(exc).__name__}: {exc}); --gap timings below skip the panel"
    return "available"


def main() -> None:
    crystal_values()
    print(f"GAP energies: {gap_status()}")
    rng = np.random.default_rng(0)
    diamond = bulk("C", "diamond", a=3.567, cubic=True).repeat(8)
    diamond.rattle(0.05, rng=rng)
    cells = {"diamond 8x8x8 rattled": diamond}
    for name in ("d1.5_1", "d2.0_1", "d3.5_2"):
        cells[f"{name} x(3,3,2)"] = load_cell(name).repeat((3, 3, 2))

    with tempfile.TemporaryDirectory() as tmp:
        reference = Path(tmp) / "md.vasp"
        write(reference, load_cell("d2.0_1"), format="vasp", direct=True)
        for label, atoms in cells.items():
            print(f"{label}: {len(atoms)} atoms")
            a = atoms.copy()
            timed("coordination_numbers", coordination_numbers, a)
            timed("rdf_first_peak", rdf_first_peak, a)
            timed("bond_angles", bond_angles, a)
            timed("steinhardt q4, q6", steinhardt, a)
            timed("voronoi_volumes", voronoi_volumes, a)
            timed("ring_statistics (maxlength 12)", ring_statistics, a)
            timed("measure (all of the above + RDF to 6 Å)", measure, a)
            path = Path(tmp) / "gen.vasp"
            write(path, atoms, format="vasp", direct=True)
            base = [str(path), "--reference", str(reference), "--json", f"{tmp}/r.json", "--plot", f"{tmp}/r.png"]
            timed("CLI run, --no-gap, JSON + PNG (in-process)", run_cli, base + ["--no-gap"])
            timed("CLI run, --gap, JSON + PNG (in-process)", run_cli, base + ["--gap"])
            for gap in ("--no-gap", "--gap"):
                code = (
                    "import argparse, sys; from ase_xanesgen.cli import analyze; p = argparse.ArgumentParser(); "
                    "analyze.add_arguments(p); sys.exit(analyze.run(p.parse_args(sys.argv[1:])))"
                )
                timed(
                    f"CLI {gap}, fresh interpreter (imports included)",
                    subprocess.run, [sys.executable, "-c", code, *base, gap], capture_output=True, check=True,
                )


if __name__ == "__main__":
    main()
