"""Any material: MD snapshots in, species-aware prior, multi-element analysis and guides (a-SiO2 fixture: two
held-out frames of the Vashishta melt-quench MD, benchmarks/silica_md.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.io import read, write

from ase_xanesgen import DiffusionGenerator
from ase_xanesgen.analysis import rdf
from ase_xanesgen.analysis.species import (first_peak, fractions, network_rings, number_density, partial_coordination,
                                           partial_rdf, structure_factor, total_rdf, triplet_angles)
from ase_xanesgen.analysis.voronoi import voronoi_volumes
from ase_xanesgen.data.bonding import CARBON_RULES, BondRules, bond_counts, learn_bond_rules
from ase_xanesgen.data.datasets import load_cell
from ase_xanesgen.data.structures import composition_of, load_structures, split_by_trajectory
from ase_xanesgen.diffusion import PriorScore, restart_sample
from ase_xanesgen.diffusion.samplers import System, coordination
from ase_xanesgen.guidance import PDFGuide, RDFGuide

ROOT = Path(__file__).resolve().parents[1]
SILICA = ROOT / "tests" / "data" / "a-SiO2_heldout.extxyz"


@pytest.fixture(scope="module")
def silica():
    return load_structures(SILICA)


def as_system(atoms: Atoms) -> tuple[torch.Tensor, System]:
    return (torch.tensor(atoms.positions, dtype=torch.float32),
            System(torch.tensor(atoms.numbers), torch.tensor(np.asarray(atoms.cell), dtype=torch.float32)[None],
                   torch.zeros(len(atoms), dtype=torch.long)))


# ---------------------------------------------------------------- data of any composition
def test_extxyz_frames_keep_species_cell_and_trajectory(silica):
    assert len(silica) == 2
    for atoms in silica:
        assert atoms.get_chemical_formula() == "O128Si64" and atoms.pbc.all()
        assert atoms.info["trajectory"].startswith("q192-") and atoms.info["name"].startswith(atoms.info["trajectory"])
        assert 2.15 < atoms.get_masses().sum() * 1.66054 / atoms.get_volume() < 2.25  # g/cm3
    assert composition_of(silica) == pytest.approx({"O": 2 / 3, "Si": 1 / 3})


def test_lammps_data_and_dump_need_species_and_read_back(silica, tmp_path):
    atoms = silica[0]
    write(tmp_path / "cell.data", atoms, format="lammps-data", specorder=["Si", "O"], masses=True)
    with pytest.raises(ValueError, match="species"):
        load_structures(tmp_path / "cell.data")
    back = load_structures(tmp_path / "cell.data", species=["Si", "O"])[0]
    assert back.get_chemical_formula() == "O128Si64"
    assert np.allclose(back.cell, atoms.cell) and np.allclose(back.positions, atoms.positions, atol=1e-5)
    # a two-frame LAMMPS text dump (type 1 = Si, 2 = O), as `dump d all custom N f id type x y z` writes it
    lines = []
    for step, frame in enumerate(silica):
        lines += ["ITEM: TIMESTEP", str(step), "ITEM: NUMBER OF ATOMS", str(len(frame)),
                  "ITEM: BOX BOUNDS pp pp pp"] + [f"0 {frame.cell[k, k]}" for k in range(3)]
        lines.append("ITEM: ATOMS id type x y z")
        lines += [f"{k + 1} {1 if z == 14 else 2} {x} {y} {w}" for k, (z, (x, y, w))
                  in enumerate(zip(frame.numbers, frame.positions))]
    (tmp_path / "md.lammpstrj").write_text("\n".join(lines) + "\n")
    frames = load_structures(tmp_path / "md.lammpstrj", species=["Si", "O"])
    assert len(frames) == 2 and {a.info["trajectory"] for a in frames} == {"md.lammpstrj"}
    assert np.allclose(frames[1].positions, silica[1].positions, atol=1e-6)
    assert (frames[1].numbers == silica[1].numbers).all()


def test_folder_of_poscars_and_split_by_trajectory(silica, tmp_path):
    for k, atoms in enumerate(silica * 2):
        write(tmp_path / f"POSCAR_{k}", atoms, format="vasp")
    frames = load_structures(tmp_path)
    assert len(frames) == 4 and len({a.info["trajectory"] for a in frames}) == 4  # one file, one trajectory
    train, held = split_by_trajectory(frames, 0.25)
    assert len(held) == 1 and len(train) == 3
    train, held = split_by_trajectory(silica + silica, [silica[0].info["trajectory"]])
    assert not held[0].info["trajectory"] in {a.info["trajectory"] for a in train}
    with pytest.raises(ValueError, match="not in the data"):
        split_by_trajectory(frames, ["nope"])
    with pytest.raises(FileNotFoundError):
        load_structures(tmp_path / "missing.extxyz")


# ---------------------------------------------------------------- bond rules and defects
def test_bond_rules_learned_from_silica(silica):
    rules = learn_bond_rules(silica, min_fraction=0.1)  # a coordination held by >= 10 % of a species' atoms
    assert set(rules.bond_cutoffs) == {(8, 14)}  # Si-O bonds; Si-Si and O-O do not
    assert 1.9 <= rules.cutoff(8, 14) <= 2.4
    assert rules.coordination == {8: (2, 2), 14: (4, 4)}
    assert 2.2 <= rules.min_distance(8, 8) < 2.5 and 2.5 <= rules.min_distance(14, 14) < 3.0
    assert BondRules.from_dict(rules.to_dict()) == rules
    assert learn_bond_rules(silica, coordination={"Si": (4, 5)}).coordination[14] == (4, 5)
    with pytest.raises(ValueError, match="'C'"):
        learn_bond_rules(silica, coordination={"C": (4, 4)})


def test_rule_defects_find_a_broken_bond_and_a_clash(silica):
    atoms = silica[0].copy()
    rules = learn_bond_rules(silica)
    pos, system = as_system(atoms)
    cn, bad = coordination(pos, system, rules=rules)
    assert (cn.numpy() == bond_counts(atoms, rules)).all()
    before = int(bad.sum())
    si = int(np.flatnonzero(atoms.numbers == 14)[0])
    o = int(np.flatnonzero(atoms.numbers == 8)[5])
    pos[o] = pos[si] + torch.tensor([0.9, 0.0, 0.0])  # an O onto a Si: a clash, and bonds broken elsewhere
    _, bad = coordination(pos, system, rules=rules)
    assert bad[si] and bad[o] and int(bad.sum()) > before


def test_carbon_rules_give_the_default_defects(cell_2g):
    pos, system = as_system(cell_2g)
    pos = pos + 0.15 * torch.randn(pos.shape, generator=torch.Generator().manual_seed(0))
    cn, bad = coordination(pos, system)
    cn_r, bad_r = coordination(pos, system, rules=CARBON_RULES)
    assert torch.equal(cn, cn_r) and torch.equal(bad, bad_r) and bad.any()


# ---------------------------------------------------------------- analysis and guides for any species
def test_partials_angles_and_rings_of_silica(silica):
    r, g = partial_rdf(silica, "Si", "O", rmax=4.0, bins=400)
    assert 1.58 < first_peak(r, g, (1.4, 1.9)) < 1.66
    si = fractions(partial_coordination(silica, "Si", "O", 2.0))
    o = fractions(partial_coordination(silica, "O", "Si", 2.0))
    assert si[4] > 0.9 and o[2] > 0.9
    assert 106 < triplet_angles(silica, "O", "Si", 2.0).mean() < 112
    assert 135 < triplet_angles(silica, "Si", "O", 2.0).mean() < 160
    rings = network_rings(silica[0], {("Si", "O"): 2.0}, maxlength=16)
    assert rings[1::2].sum() == 0 and rings[8:13].sum() > rings[:8].sum()  # Si-O alternate; mostly 4-6 Si rings


def test_total_rdf_weights_and_structure_factor(silica):
    r, g_number = total_rdf(silica, "number", rmax=8.0, bins=400)
    assert np.allclose(g_number, rdf(silica, rmax=8.0, bins=400)[1])
    _, g_neutron = total_rdf(silica, "neutron", rmax=8.0, bins=400)
    _, g_si_o = partial_rdf(silica, "Si", "O", rmax=8.0, bins=400)
    c, b = np.array([1 / 3, 2 / 3]), np.array([4.1491, 5.803])
    expected_si_o = 2 * c[0] * c[1] * b[0] * b[1] / (c @ b) ** 2  # weight of Si-O pairs in the neutron g(r)
    peak = (r > 1.4) & (r < 1.9)  # only Si-O pairs there
    assert np.allclose(g_neutron[peak], expected_si_o * g_si_o[peak], rtol=1e-9, atol=1e-12)
    s = structure_factor(r, g_neutron, number_density(silica), np.array([1.55, 5.0, 10.0]))
    assert np.all(np.isfinite(s)) and s[0] > 0


def test_rdf_and_pdf_guides_weight_species(silica):
    r, g = total_rdf(silica[:1], "neutron", rmax=6.0, bins=300)
    guide = RDFGuide(r, g, r_min=1.2, r_max=5.0)
    pos, system = as_system(silica[0])
    own = float(guide.residual(pos, system))  # the cell against its own histogram g(r), smoothed alike
    shuffled = System(system.z[torch.randperm(len(system.z), generator=torch.Generator().manual_seed(0))],
                      system.cell, system.batch)  # same positions, species scattered: another weighted g(r)
    other = as_system(silica[1])  # another quench
    assert own < 0.05 and own < float(guide.residual(*other)) < float(guide.residual(pos, shuffled))
    number = RDFGuide(r, total_rdf(silica[:1], "number", rmax=6.0, bins=300)[1], r_min=1.2, r_max=5.0,
                      weighting="number")
    assert float(number.residual(pos, shuffled)) == pytest.approx(float(number.residual(pos, system)))
    G = 4 * np.pi * r * number_density(silica[:1]) * (g - 1)
    assert float(PDFGuide(r, G, r_min=1.2, r_max=5.0).residual(pos, system)) < 0.1
    with pytest.raises(ValueError, match="weighting"):
        RDFGuide(r, g, weighting="electron")


# ---------------------------------------------------------------- the a-SiO2 prior
@pytest.fixture(scope="module")
def silica_gen():
    return DiffusionGenerator("a-SiO2", device="cpu", steps=4, refine_steps=2, anneal_cycles=0, max_restarts=0)


@pytest.mark.filterwarnings("ignore:.*off the bond rules")  # five network evaluations leave defects
def test_silica_prior_keeps_the_template_composition(silica_gen, silica):
    template = Atoms("Si64O128", cell=silica[0].cell, pbc=True)
    out = silica_gen.generate(template, seed=0)
    assert out.get_chemical_formula() == "O128Si64" and (out.numbers == template.numbers).all()
    assert out.info["model"] == "a-SiO2" and out.info["weights"].startswith("shipped a-SiO2.pt")
    assert silica_gen.rules.coordination == {8: (2, 2), 14: (4, 4)}
    assert np.allclose(out.cell, template.cell) and np.isfinite(out.positions).all()


def test_shipped_silica_prior_brings_its_tuned_restart_cycles():
    gen = DiffusionGenerator("a-SiO2", device="cpu")
    assert (gen.t_restart, gen.max_restarts, gen.restart_accept) == (0.7, 30, True)
    mine = DiffusionGenerator("a-SiO2", device="cpu", t_restart=0.5, restart_accept=False)
    assert (DiffusionGenerator(device="cpu").t_restart, mine.t_restart, mine.restart_accept) == (0.35, 0.5, False)


def test_accepted_restart_cycles_never_add_defects(silica):
    """Cycles re-noising a held-out MD frame's defects to t = 0.9 and denoising them in two steps wreck it; kept
    only where they did not add defects, the frame keeps its count."""
    gen = DiffusionGenerator("a-SiO2", device="cpu")
    pos, system = as_system(silica[0])
    before = int(coordination(pos, system, rules=gen.rules)[1].sum())
    cycles = dict(steps=2, t_start=2 * gen.sde.t_min, t_restart=0.9, max_restarts=2, refine_steps=1,
                  restart_radius=3.0, rules=gen.rules)
    with torch.no_grad():
        for accept in (True, False):
            out, restarts = restart_sample(PriorScore(gen.model, gen.sde), gen.sde, pos, system, **cycles,
                                           restart_accept=accept, generator=torch.Generator().manual_seed(0))
            after = int(coordination(out, system, rules=gen.rules)[1].sum())
            assert restarts.item() == 2 and (after <= before if accept else after > 2 * before)


def test_unknown_species_and_far_composition_name_what_the_model_knows(silica_gen, silica):
    with pytest.raises(ValueError, match=r"species \['C'\] not known to the model \(trained for \['O', 'Si'\]\)"):
        silica_gen.fill(Atoms("Si64O127C", cell=silica[0].cell, pbc=True), None)
    with pytest.warns(UserWarning, match=r"composition is far from the training data's.*Si 0.67 \(trained 0.33\)"):
        silica_gen.fill(Atoms("Si128O64", cell=silica[0].cell, pbc=True), None)
    with pytest.raises(ValueError, match=r"species \['O', 'Si'\] not known to the model \(trained for \['C'\]\)"):
        DiffusionGenerator(device="cpu").fill(Atoms("Si64O128", cell=silica[0].cell, pbc=True), None)


def test_xanes_calculator_refuses_silica(silica):
    from ase_xanesgen import XANESCalculator

    atoms = silica[0].copy()
    atoms.calc = XANESCalculator(device="cpu")
    with pytest.raises(ValueError, match=r"species \['O', 'Si'\] not known to the model \(trained for \['C'\]\)"):
        atoms.calc.calculate(atoms)


def test_model_names_and_paths(tmp_path):
    with pytest.raises(ValueError, match=r"neither a shipped prior \(\['a-C', 'a-SiO2'\]\)"):
        DiffusionGenerator("a-GeO2")
    from ase_xanesgen.weights import PRIORS, weight_path

    path, _ = weight_path(PRIORS["a-SiO2"])
    gen = DiffusionGenerator(str(path), device="cpu")
    assert gen.model_name == str(path) and gen.species == [8, 14] and gen.rules is not None
    assert DiffusionGenerator("a-C", device="cpu").rules is None  # carbon keeps its own rule


# ---------------------------------------------------------------- the MD script (LAMMPS is optional)
def test_silica_md_script_runs_a_few_steps(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "silica_md.py"), "--out", str(tmp_path), "--quenches",
                    "1", "--atoms", "24", "--density", "2.2", "--melt-ps", "0.005", "--quench-ps", "0.005",
                    "--anneal-ps", "0.005", "--frames", "2", "--every-ps", "0.002"], check=True, env=env,
                   capture_output=True, timeout=120)
    frames = read(tmp_path / "quench_24_000.extxyz", ":")
    assert len(frames) == 2 and frames[0].get_chemical_formula() == "O16Si8"
    assert frames[0].info["quench"] == "q24-000"


def test_vashishta_judge_is_the_md_potential(silica, data_dir):
    """The LAMMPS judge gives the held-out MD frame its own MD energy, covers Si and O only, and serves as the
    sampler's energy term of the silica prior."""
    from ase_xanesgen.frontends.energy import energy_check, judge_species

    frame = silica[0]
    report = energy_check(frame, "vashishta")
    assert report["energy_per_atom"] == pytest.approx(frame.info["potential_energy"] / len(frame), abs=1e-6)
    assert report["force_rms"] > 0.3  # a 300 K snapshot
    assert judge_species("vashishta") == {8, 14}
    with pytest.raises(ValueError, match=r"the vashishta judge covers \['O', 'Si'\], not \['C'\]"):
        energy_check(load_cell("d2.0_1", data_dir), "vashishta")
    # LAMMPS runs in a worker: its library (and its voro++) stays out of this process, where freud's would break
    assert "liblammps" not in Path("/proc/self/maps").read_text()
    assert voronoi_volumes(load_cell("d2.0_1", data_dir)).shape == (216,)
    with pytest.raises(ValueError, match=r"potential knows \['O', 'Si'\], not \['C'\]"):
        DiffusionGenerator(potential="vashishta", energy_step=0.02, device="cpu")
    gen = DiffusionGenerator("a-SiO2", device="cpu", steps=4, refine_steps=2, max_restarts=0, anneal_cycles=0,
                             potential="vashishta", energy_step=0.05, energy_max_force=5.0)
    template = Atoms("Si8O16", cell=[8.0] * 3, pbc=True)
    with pytest.warns(UserWarning):  # a cell this small (and the few steps) is for the test only
        cell = gen.generate(template, seed=0, force=True)
    assert cell.get_chemical_formula() == "O16Si8" and np.isfinite(cell.positions).all()
    assert "energy_potential='vashishta'" in cell.info["generator"] and "energy_max_force=5.0" in cell.info["generator"]


# ---------------------------------------------------------------- end to end on the command line
def test_train_on_md_then_generate_with_the_run(tmp_path):
    from ase_xanesgen.cli.main import main

    run = tmp_path / "run"
    assert main(["train", "prior", "--data", str(SILICA), "--out", str(run), "--steps", "2", "--batch-size", "1",
                 "--width", "16", "--layers", "1", "--cutoff", "3.5", "--held-out", "0.5", "--device", "cpu"]) == 0
    meta = torch.load(run / "model.pt", weights_only=True)["meta"]
    assert meta["val_trajectories"] and not set(meta["val_trajectories"]) & set(meta["train_trajectories"])
    assert meta["composition"] == pytest.approx({"O": 2 / 3, "Si": 1 / 3}) and meta["density_range"] == [2.1, 2.3]
    assert meta["bond_rules"]["bond_cutoffs"].keys() == {"O-Si"}
    template = tmp_path / "cell.vasp"
    write(template, Atoms("Si8O16", cell=[7.13] * 3, pbc=True), format="vasp")
    out = tmp_path / "cells.extxyz"
    with pytest.warns(UserWarning, match=r"off the bond rules \(bonds O-Si < "):  # two steps of training
        assert main(["generate", "--model", str(run), "--template", str(template), "--steps", "3", "--refine-steps",
                     "1", "--max-restarts", "0", "--seed", "0", "--device", "cpu", "-o", str(out)]) == 0
    cell = read(out)
    assert cell.get_chemical_formula() == "O16Si8" and cell.info["model"] == str(run)
