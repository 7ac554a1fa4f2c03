"""Generate 216-atom a-C cells at several densities, write them, and print their hybridisation.

    python examples/generate_amorphous_carbon.py   # writes a-C_<density>.extxyz; view with ase gui
"""

from ase.io import write

from ase_xanesgen import DiffusionGenerator, cubic_cell
from ase_xanesgen.analysis import hybridisation_fractions

gen = DiffusionGenerator()
for density in (1.5, 2.5, 3.5):
    cells = gen.generate_batch(cubic_cell(216, density), density=density, n=4, seed=0)
    write(f"a-C_{density}.extxyz", cells)
    print(density, {k: round(v, 3) for k, v in hybridisation_fractions(cells).items()})
