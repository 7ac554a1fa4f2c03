"""Energy checks by any ASE calculator (frontends.energy) and the sampler's atomic potential (nn.potential)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from ase.io import write

from ase_xanesgen import DiffusionGenerator, cubic_cell
from ase_xanesgen.data.datasets import load_cell
from ase_xanesgen.cli.main import main
from ase_xanesgen.diffusion.samplers import System
from ase_xanesgen.diffusion.score_fn import EnergyTerm, potential_forces
from ase_xanesgen.frontends.energy import calculator_forces, energy_check, judge_calculator
from ase_xanesgen.frontends.gap import gap_energies
from ase_xanesgen.nn.checkpoint import from_dict, load
from ase_xanesgen.nn.potential import AtomicPotential, angle_triplets, energy_and_forces
from ase_xanesgen.train.loop import TrainConfig
from ase_xanesgen.train.potential import train_potential


class SiliconOnly(Calculator):
    """A calculator that, like a potential fitted to another element, has no parameters for carbon."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if set(atoms.get_chemical_symbols()) - {"Si"}:
            raise KeyError(f"no parameters for {sorted(set(atoms.get_chemical_symbols()) - {'Si'})}")
        self.results = {"energy": 0.0, "forces": np.zeros((len(atoms), 3))}


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, data_dir) -> tuple:
    """Two MD cells labelled by the shipped GAP (REF_energy, REF_forces), as benchmarks/fit_gap.py writes labels."""
    folder = tmp_path_factory.mktemp("labels")
    frames = []
    for name in ("d2.0_1", "d3.5_2"):
        atoms = load_cell(name, data_dir)
        atoms.arrays.pop("xanes", None)
        report = energy_check(atoms)
        work = atoms.copy()
        work.calc = judge_calculator("gap")
        atoms.info["REF_energy"] = report["energy_per_atom"] * len(atoms)
        atoms.arrays["REF_forces"] = work.get_forces().copy()
        frames.append(atoms)
    write(folder / "labels.xyz", frames, format="extxyz")
    return folder / "labels.xyz", frames


@pytest.fixture(scope="module")
def potential(labelled, tmp_path_factory) -> AtomicPotential:
    """An AtomicPotential trained for a few steps by the real trainer (scaling and offset set from the data)."""
    out = tmp_path_factory.mktemp("potential")
    config = TrainConfig(steps=3, batch_size=2, warmup=1, val_every=3, ckpt_every=3)
    return train_potential(labelled[0], out, config, val_file=labelled[0]).eval()


def test_energy_check_default_is_the_shipped_gap(data_dir):
    cell = load_cell("d2.0_1", data_dir)
    report = energy_check(cell)
    assert report["judge"] == "gap"
    assert report["energy_per_atom"] == pytest.approx(gap_energies(cell).mean(), abs=1e-6)
    assert report["force_rms"] > 0.1  # an MD snapshot at 300 K is not at a minimum
    relaxed = energy_check(cell, relax_steps=20)
    assert relaxed["energy_per_atom_relaxed"] < relaxed["energy_per_atom"]
    assert relaxed["positions_relaxed"].shape == (216, 3)
    assert cell.calc is None


def test_energy_check_any_calculator(data_dir):
    cell = load_cell("d2.5_1", data_dir)
    report = energy_check(cell, EMT())
    assert report["judge"] == "EMT" and np.isfinite(report["energy_per_atom"])
    with pytest.raises(RuntimeError, match=r"SiliconOnly failed on C216 .*KeyError.*cover"):
        energy_check(cell, SiliconOnly())


def test_energy_check_bad_input(data_dir):
    with pytest.raises(ValueError, match="unknown judge 'dft'"):
        energy_check(load_cell("d2.0_1", data_dir), "dft")
    with pytest.raises(TypeError, match="ase.Atoms"):
        energy_check([1, 2, 3])
    with pytest.raises(ValueError, match="3-D cell"):
        energy_check(Atoms("C2", positions=[[0, 0, 0], [1.4, 0, 0]]))
    bad = load_cell("d2.0_1", data_dir)
    bad.positions[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        energy_check(bad)
    with pytest.raises(ImportError, match="pip install"):
        try:
            import sevenn  # noqa: F401
        except ImportError:
            judge_calculator("sevennet")
        else:
            raise ImportError("sevenn is installed here: pip install nothing")


def test_angle_triplets_pairs_edges_of_one_centre():
    centre = torch.tensor([0, 0, 0, 1, 1, 2])
    e1, e2 = angle_triplets(centre)
    pairs = set(zip(e1.tolist(), e2.tolist()))
    assert pairs == {(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (3, 4), (4, 3)}


def test_potential_invariant_and_forces_are_gradients(potential, data_dir):
    assert potential.model_args["interactions"] == 2  # the message-passing path, not the descriptor MLP alone
    cell = load_cell("d2.0_1", data_dir)
    pos = torch.tensor(cell.positions, dtype=torch.float64)
    box = torch.tensor(cell.cell.array, dtype=torch.float64)[None]
    z = torch.tensor(cell.numbers)
    batch = torch.zeros(len(cell), dtype=torch.long)
    model = potential.double()
    energy, forces = energy_and_forces(model, pos, z, box, batch, 1)
    rot = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64))[0]
    e_rot, f_rot = energy_and_forces(model, pos @ rot.T, z, box @ rot.T, batch, 1)
    assert float(e_rot) == pytest.approx(float(energy), abs=1e-8)
    torch.testing.assert_close(f_rot, forces @ rot.T, atol=1e-8, rtol=0)
    perm = torch.randperm(len(cell), generator=torch.Generator().manual_seed(1))
    e_perm, _ = energy_and_forces(model, pos[perm], z, box, batch, 1)
    assert float(e_perm) == pytest.approx(float(energy), abs=1e-8)
    step = torch.zeros_like(pos)
    step[5, 1] = 1e-4
    e_plus, _ = energy_and_forces(model, pos + step, z, box, batch, 1)
    e_minus, _ = energy_and_forces(model, pos - step, z, box, batch, 1)
    assert float(-(e_plus - e_minus) / 2e-4) == pytest.approx(float(forces[5, 1]), abs=1e-5)
    potential.float()


def test_calculator_forces_match_the_calculator(data_dir):
    cells = [load_cell(name, data_dir) for name in ("d1.5_1", "d3.5_2")]
    system = System(torch.tensor(np.concatenate([c.numbers for c in cells])),
                    torch.tensor(np.stack([c.cell.array for c in cells]), dtype=torch.float32),
                    torch.repeat_interleave(torch.arange(2), 216))
    pos = torch.tensor(np.concatenate([c.positions for c in cells]), dtype=torch.float32)
    forces = calculator_forces(judge_calculator("gap"))(pos, system)
    work = cells[1].copy()
    work.calc = judge_calculator("gap")
    np.testing.assert_allclose(forces[216:].numpy(), work.get_forces(), atol=2e-3)


def test_train_potential_cli_and_checkpoint(labelled, tmp_path):
    out = tmp_path / "run"
    rc = main(["train", "potential", "--data", str(labelled[0]), "--val-data", str(labelled[0]), "--out", str(out),
               "--steps", "2", "--batch-size", "1", "--val-every", "2"])
    assert rc == 0 and (out / "model.pt").exists()
    model = from_dict(load(out / "model.pt"), expect="AtomicPotential")
    assert model.model_args["species"] == [6] and model.model_args["interactions"] == 2
    rc = main(["train", "potential", "--data", str(labelled[0]), "--out", str(tmp_path / "flat"), "--steps", "1",
               "--batch-size", "1", "--layers", "0"])
    flat = from_dict(load(tmp_path / "flat" / "model.pt"), expect="AtomicPotential")
    assert rc == 0 and flat.model_args["interactions"] == 0 and not hasattr(flat, "filters")
    gen = DiffusionGenerator(potential=out / "model.pt", energy_step=0.01)
    assert gen.energy_step == 0.01 and gen.energy_potential == str(out / "model.pt")
    with pytest.raises(ValueError, match="no REF_energy"):
        bare = tmp_path / "bare.xyz"
        write(bare, [labelled[1][0].copy()], format="extxyz", write_info=False)
        from ase_xanesgen.train.potential import labelled_graphs
        from ase.io import read

        labelled_graphs(read(bare, ":"), 3.0)


@pytest.mark.slow
def test_energy_term_lowers_the_gap_energy():
    template = cubic_cell(216, 2.5)
    sampler = dict(max_restarts=0, refine_steps=10, temperature=1.0, anneal_cycles=0)  # the plain reverse SDE
    plain = DiffusionGenerator(energy_step=0, **sampler)
    hot = DiffusionGenerator(energy_step=0.02, potential="gap", **sampler)
    assert plain.energy_forces is None and hot.energy_step == 0.02
    cold = plain.generate_batch(template, density=2.5, n=3, seed=3, steps=16)
    warm = hot.generate_batch(template, density=2.5, n=3, seed=3, steps=16)

    def mean_energy(cells):
        return float(np.mean([energy_check(a, judge_calculator("gap"))["energy_per_atom"] for a in cells]))

    assert not np.allclose(cold[0].positions, warm[0].positions)
    assert mean_energy(warm) < mean_energy(cold)
    assert "energy_step=0.02" in warm[0].info["generator"]


def test_energy_term_settings_checked(potential):
    with pytest.raises(ValueError, match="energy_step"):
        DiffusionGenerator(energy_step=-1.0)
    with pytest.raises(ValueError, match="t_low <= t_high"):
        DiffusionGenerator(energy_t=(0.4, 0.1))
    with pytest.raises(TypeError, match="AtomicPotential, a ValenceField"):
        DiffusionGenerator(energy_step=0.01, potential=3.0)
    with pytest.raises(ValueError, match="unknown judge"):
        judge_calculator("dft")


def test_energy_term_acts_inside_its_window(potential, data_dir):
    cell = load_cell("d2.5_1", data_dir)
    gen = DiffusionGenerator(energy_step=0)
    system = gen._system(cell, 1)
    pos = torch.tensor(cell.positions, dtype=torch.float32)
    term = EnergyTerm(lambda p, t, s: torch.zeros_like(p), potential_forces(potential), gen.sde, 0.02, 0.1, 0.4)
    assert term(pos, 0.5, system).abs().max() == 0 and term(pos, 0.05, system).abs().max() == 0
    _, forces = energy_and_forces(potential, pos, system.z, system.cell, system.batch, 1)
    torch.testing.assert_close(term(pos, 0.3, system), 0.02 / gen.sde.sigma(0.3) ** 2 * forces)
    capped = EnergyTerm(lambda p, t, s: torch.zeros_like(p), potential_forces(potential), gen.sde, 0.02, 0.1, 0.4,
                        max_force=0.5)(pos, 0.3, system) * gen.sde.sigma(0.3) ** 2 / 0.02
    norms, raw = capped.norm(dim=-1), forces.norm(dim=-1)
    assert float(norms.max()) == pytest.approx(0.5, rel=1e-5) and (raw > 0.5).any()
    torch.testing.assert_close(capped[raw <= 0.5], forces[raw <= 0.5])  # weaker forces pass unchanged
