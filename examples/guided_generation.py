"""Steer generation at 2.0 g/cm3 toward the spectrum of an sp3-rich cell, alone and with a coordination guide.

    python examples/guided_generation.py
"""

from ase import Atoms

from ase_xanesgen import DiffusionGenerator, XANESCalculator
from ase_xanesgen.analysis import hybridisation_fractions
from ase_xanesgen.data.datasets import load_cell
from ase_xanesgen.guidance import CoordinationGuide, XANESGuide

target = load_cell("d0.0_11").arrays["xanes"].mean(0)  # mean DFT spectrum of a 3.0 g/cm3 cell
gen, calc = DiffusionGenerator(), XANESCalculator()
template = Atoms(cell=[(216 * 12.011 / (2.0 * 0.602214076)) ** (1 / 3)] * 3, pbc=True)
for label, guide in {"unguided": None, "xanes": XANESGuide(target),
                     "xanes + CN": XANESGuide(target) + CoordinationGuide({"CN3": 0.34, "CN4": 0.66})}.items():
    cells = gen.generate_batch(template, 2.0, n=4, seed=0, guide=guide)
    print(label, {k: round(v, 3) for k, v in hybridisation_fractions(cells).items()})
