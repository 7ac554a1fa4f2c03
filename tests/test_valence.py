"""The bond-angle valence field of the energy term (``guidance.ValenceField``), on crystals and the a-C MD cells."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk, graphene
from ase.io import read

from ase_xanesgen import DiffusionGenerator, cubic_cell
from ase_xanesgen.analysis import bond_angles
from ase_xanesgen.cli.main import main
from ase_xanesgen.data.datasets import load_cell
from ase_xanesgen.diffusion.samplers import System
from ase_xanesgen.guidance import ValenceField


def _system(atoms) -> tuple[torch.Tensor, System]:
    pos = torch.tensor(atoms.positions, dtype=torch.float64)
    cell = torch.tensor(np.asarray(atoms.cell), dtype=torch.float64)[None]
    return pos, System(torch.tensor(atoms.numbers), cell, torch.zeros(len(atoms), dtype=torch.long))


def test_ideal_sp3_and_sp2_carbon_cost_nothing_and_a_c_does():
    """Diamond's 109.5 deg at four bonds and graphene's 120 deg at three are the ideal angles; the MD cell's spread
    of angles costs energy."""
    field = ValenceField()
    sheet = graphene(vacuum=5.0).repeat((3, 3, 1))
    sheet.pbc = True
    for crystal in (bulk("C", "diamond", a=3.567, cubic=True).repeat(2), sheet):
        assert float(field.energy(*_system(crystal))) / len(crystal) < 1e-4
    md = load_cell("d2.5_1")
    assert float(field.energy(*_system(md))) / len(md) > 0.01


def test_forces_are_the_negative_gradient_and_relax_the_angles():
    md = load_cell("d2.5_1")
    pos, system = _system(md)
    field = ValenceField()
    forces = field(pos, system)
    assert forces.shape == pos.shape and forces.dtype == pos.dtype
    assert torch.allclose(forces.sum(0), torch.zeros(3, dtype=pos.dtype), atol=1e-8)  # no net force
    shift = torch.zeros_like(pos)
    shift[7, 1] = 1e-5
    numeric = (field.energy(pos + shift, system) - field.energy(pos - shift, system)) / 2e-5
    # the forces hold the bond weights and ideal angles fixed, the difference quotient does not: near, not equal
    assert float(-numeric) == pytest.approx(float(forces[7, 1]), rel=5e-3)
    assert float(field.energy(pos + 0.01 * forces, system)) < float(field.energy(pos, system))


def test_bad_settings_and_other_species_are_refused():
    with pytest.raises(ValueError, match="stiffness"):
        ValenceField(stiffness=-1.0)
    with pytest.raises(ValueError, match=r"knows \['C'\]"):
        DiffusionGenerator("a-SiO2", potential="valence", energy_step=0.3)


@pytest.mark.slow
def test_valence_energy_term_narrows_the_angle_spread():
    template = cubic_cell(216, 2.5)
    sampler = dict(max_restarts=0, refine_steps=10, anneal_cycles=0)
    plain = DiffusionGenerator(**sampler).generate_batch(template, density=2.5, n=2, seed=1, steps=16)
    straight = DiffusionGenerator(potential="valence", energy_step=0.5, **sampler).generate_batch(
        template, density=2.5, n=2, seed=1, steps=16)
    assert np.std(bond_angles(straight)) < np.std(bond_angles(plain)) - 0.5
    assert "energy_step=0.5" in straight[0].info["generator"]


def test_cli_takes_the_valence_term_and_a_short_anneal_quench(tmp_path):
    out = tmp_path / "a-C.extxyz"
    assert main(["generate", "--density", "2.5", "--atoms", "64", "--seed", "0", "--steps", "4", "--device", "cpu",
                 "--potential", "valence", "--energy-step", "0.3", "--anneal-refine-steps", "3", "-o", str(out)]) == 0
    made = read(out).info["generator"]
    assert "energy_step=0.3" in made and "ValenceField(stiffness=1.0" in made and "anneal_refine_steps=3" in made
