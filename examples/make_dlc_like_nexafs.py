"""Make ``examples/data/dlc_like_nexafs.csv``: a synthetic carbon K-edge NEXAFS scan of a diamond-like carbon film.

    python examples/make_dlc_like_nexafs.py [--data ../shared/data/a-C]

The mean DFT spectrum of the 3.0 g/cm3 MD cell d0.0_11 (sp / sp2 / sp3 0.00 / 0.34 / 0.66, a ta-C-like film) as a
beamline would record it (``data.measurement.simulate_scan``): 270.7-320.7 eV in 0.2 eV steps, energies 0.3 eV low,
broadened by 0.5 eV FWHM plus 0.3 eV per eV above 290 eV (a sigma* band rising to ~298 eV), a 36 % arctan edge step
at 290.8 eV, a pre-edge background at 15 % of the maximum sloping down, 0.5 % noise; plus what a real film holds and
pure a-C lacks: a C-H resonance at 287.7 eV and a C=O one at 288.6 eV (Gaussians, 1.0 and 0.8 eV FWHM, 10 % and 5 %
of the maximum). Written as a beamline CSV: a UTF-8 byte-order mark, CRLF line ends, the header ``PE/eV,AbNorm``.
The numbers are made here, from the shared data; nothing is copied from a measurement.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ase_xanesgen.data.datasets import load_cell
from ase_xanesgen.data.measurement import simulate_scan

OUT = Path(__file__).resolve().parent / "data" / "dlc_like_nexafs.csv"
CELL = "d0.0_11"
#: (centre eV, FWHM eV, height over the spectrum's maximum) of the C-H and C=O resonances
RESONANCES = ((287.7, 1.0, 0.10), (288.6, 0.8, 0.05))


def dlc_like_scan(data: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(energy [251] eV, intensity [251])`` of the DLC-like scan, intensities of order 1."""
    y = load_cell(CELL, data).arrays["xanes"].mean(0)
    energy, scan = simulate_scan(y, energy_offset=-0.3, broadening=0.5, broadening_slope=0.3, edge_step_height=0.36,
                                 edge_step_energy=290.8, edge_step_width=1.0, background=(0.155, -0.001),
                                 noise=0.005, scale=1.0, seed=23)
    for centre, fwhm, height in RESONANCES:
        scan += height * y.max() * np.exp(-4.0 * np.log(2.0) * ((energy - centre) / fwhm) ** 2)
    return energy, scan / y.max()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="a-C data folder (default ../shared/data/a-C)")
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args(argv)
    energy, scan = dlc_like_scan(args.data)
    lines = ["PE/eV,AbNorm"] + [f"{e:.1f},{i:.5f}" for e, i in zip(energy, scan)]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\r\n").encode())
    print(f"wrote {args.output} ({len(energy)} points, {energy[0]:.1f}-{energy[-1]:.1f} eV)")


if __name__ == "__main__":
    main()
