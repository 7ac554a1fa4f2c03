"""Generate 216-atom a-C cells at several densities, write them, and print their hybridisation.

    python examples/generate_amorphous_carbon.py   # writes a-C_<density>.extxyz; view with ase gui
"""

from ase import Atoms
from ase.io import write

from ase_xanesgen import DiffusionGenerator
from ase_xanesgen.analysis import hybridisation_fractions

gen = DiffusionGenerator()
for density in (1.5, 2.5, 3.5):
    side = (216 * 12.011 / (density * 0.602214076)) ** (1 / 3)
    cells = gen.generate_batch(Atoms(cell=[side] * 3, pbc=True), density=density, n=4, seed=0)
    write(f"a-C_{density}.extxyz", cells)
    print(density, {k: round(v, 3) for k, v in hybridisation_fractions(cells).items()})
