"""The paper's demo: diamond expanded to 2.5 g/cm3, noised to t and denoised into amorphous carbon.

    python examples/perturbed_diamond.py    # writes diamond_to_aC.traj (replaced when run again)
    ase gui diamond_to_aC.traj              # watch it, where there is a display
"""

from ase.build import bulk

from ase_xanesgen import DiffusionGenerator
from ase_xanesgen.analysis import hybridisation_fractions

diamond = bulk("C", "diamond", a=3.567, cubic=True) * (3, 3, 3)
diamond.set_cell(diamond.cell * (3.52 / 2.5) ** (1 / 3), scale_atoms=True)  # expand to 2.5 g/cm3
gen = DiffusionGenerator()
out = gen.generate(diamond, start_time=0.5, seed=0, trajectory="diamond_to_aC.traj", overwrite=True)
print("diamond:", hybridisation_fractions(diamond))
print("after denoising from t=0.5:", {k: round(v, 3) for k, v in hybridisation_fractions(out).items()})
