import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.io import read, write
from matscipy.neighbours import neighbour_list

from ase_xanesgen import DiffusionGenerator, cubic_cell
from ase_xanesgen.diffusion import PriorScore, System, restart_sample
from ase_xanesgen.diffusion.samplers import defective_atoms, em_step, euler_maruyama, handoff, neighbourhood
from ase_xanesgen.nn.score import ScoreNet


@pytest.fixture(scope="module")
def gen():
    return DiffusionGenerator(device="cpu")


def small_template(n_atoms=64, density=2.0):
    return cubic_cell(n_atoms, density)


def test_cubic_cell_holds_its_atoms_at_the_density(gen):
    from ase_xanesgen.geometry import density_of

    for n, rho in ((64, 2.0), (216, 3.5), (4096, 2.5)):
        atoms = gen.fill(cubic_cell(n, rho), rho)
        assert len(atoms) == n and density_of(atoms) == pytest.approx(rho, rel=1e-6)
    for bad in ((0, 2.0), (64, 0.0), (64, float("nan"))):
        with pytest.raises(ValueError):
            cubic_cell(*bad)
    with pytest.raises(ValueError, match="n_atoms must be an integer"):  # not silently a 1.5-atom cell
        cubic_cell(1.5, 2.0)
    with pytest.raises(ValueError, match="unknown chemical symbol 'Xx'"):
        cubic_cell(64, 2.0, "Xx")


@pytest.mark.slow
def test_short_generation_has_requested_atoms_and_no_close_pairs(gen):
    atoms = gen.generate(small_template(), density=2.0, seed=0, steps=16)
    assert len(atoms) == 64 and set(atoms.get_chemical_symbols()) == {"C"}
    d = neighbour_list("d", atoms, 1.0)
    assert len(d) == 0, f"pairs closer than 1.0 A: {np.sort(d)[:5]}"
    assert sum(atoms.info["cn_counts"]) == 64 and "restarts" in atoms.info


@pytest.mark.slow
def test_cells_record_how_they_were_made_and_warn_of_defects_left(tmp_path):
    """Without restart cycles and with 3 steps some cells keep defects: each cell counts its own (the same count
    as matscipy's neighbour list gives), a warning names them, and the cells carry their recipe through extxyz."""
    quick = DiffusionGenerator(device="cpu", max_restarts=0, anneal_cycles=0, temperature=1.0)  # the plain sampler
    with pytest.warns(UserWarning, match=r"still hold carbons with CN <= 1 or >= 5") as record:
        cells = quick.generate_batch(small_template(), 2.0, n=4, seed=0, steps=3)
    for a in cells:
        i, d = neighbour_list("id", a, 1.85)
        cn = np.bincount(i, minlength=len(a))
        bad = (cn <= 1) | (cn >= 5)
        bad[i[d < 1.1]] = True
        assert a.info["defects"] == bad.sum()
    flagged = [k for k, a in enumerate(cells) if a.info["defects"]]
    assert flagged and str(flagged) in str(record[0].message)
    path = tmp_path / "cells.extxyz"
    write(path, cells)
    info = read(path).info  # the last cell of the batch
    assert info["density"] == pytest.approx(2.0, abs=1e-3) and info["steps"] == 3 and info["seed"] == 0
    assert (info["batch_index"], info["batch_size"]) == (len(cells) - 1, len(cells))
    assert info["weights"].startswith("shipped prior.pt") and "max_restarts=0" in info["generator"]
    drawn = quick.generate_batch(small_template(), 2.0, n=1, steps=3)[0]  # no seed: the one drawn is recorded
    again = quick.generate_batch(small_template(), 2.0, n=1, steps=3, seed=drawn.info["seed"])[0]
    assert np.array_equal(drawn.positions, again.positions)
    noised = quick.generate(cells[0], start_time=0.2, steps=10, seed=1)
    assert noised.info["steps"] == 10 and noised.info["start_time"] == 0.2


def test_deterministic_kernels_hand_the_switch_back(gen):
    """The global switch is restored after the block, also when sampling fails inside it (checked with a CUDA
    device object on any machine: the switch is set before any kernel runs); CPU runs leave it alone."""
    from ase_xanesgen.frontends.generator import deterministic_kernels

    with pytest.raises(RuntimeError, match="inside"):
        with deterministic_kernels(torch.device("cuda")):
            assert torch.are_deterministic_algorithms_enabled()
            raise RuntimeError("inside")
    assert not torch.are_deterministic_algorithms_enabled()
    with deterministic_kernels(torch.device("cpu")):
        assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.slow
def test_same_seed_same_cells(gen):
    a = gen.generate_batch(small_template(), 2.0, n=2, seed=3, steps=6)
    b = gen.generate_batch(small_template(), 2.0, n=2, seed=3, steps=6)
    c = gen.generate_batch(small_template(), 2.0, n=2, seed=4, steps=6)
    assert all(np.allclose(x.positions, y.positions) for x, y in zip(a, b))
    assert not np.allclose(a[0].positions, c[0].positions)
    assert not np.allclose(a[0].positions, a[1].positions)  # the batch holds different cells


def test_trajectory_is_readable(gen, tmp_path):
    path = tmp_path / "denoise.traj"
    seen = []
    gen.generate_batch(small_template(), 2.0, n=1, seed=0, steps=5, trajectory=path,
                       callback=lambda k, t, p, s: seen.append(k))
    frames = read(path, ":")
    assert seen[:4 + gen.refine_steps] == list(range(4 + gen.refine_steps))  # numbered on into the quench
    # the start (noise at t = 1), 4 Euler-Maruyama steps to t = 0.3 (on the 5-step grid), the refinement,
    # then the final cell; each frame says which stage and how many score evaluations it follows
    assert len(frames) == 1 + 4 + gen.refine_steps + 1 and len(frames[-1]) == 64
    ts = [f.info["t"] for f in frames]
    assert ts[0] == 1.0 and ts[4] == pytest.approx(gen.refine_from) and ts[-2] == pytest.approx(0.01)
    assert ts[-1] == ts[-2]
    with pytest.raises(FileExistsError, match="overwrite=True"):  # before any sampling: the file is kept
        gen.generate(small_template(), 2.0, seed=1, steps=2, trajectory=path)
    assert len(read(path, ":")) == len(frames)
    gen.generate(small_template(), 2.0, seed=1, steps=2, trajectory=path, overwrite=True)
    assert len(read(path, ":")) < len(frames)
    stages = [f.info["stage"] for f in frames]
    assert stages == ["start"] + ["first pass"] * 4 + ["quench"] * gen.refine_steps + ["returned"]
    assert [f.info["step"] for f in frames[:-1]] == list(range(5 + gen.refine_steps))


def test_refine_times_space_the_quench_from_t_high_to_t_low():
    from ase_xanesgen.diffusion.samplers import refine_times

    assert refine_times(5, 0.3, 0.01) == torch.linspace(0.3, 0.01, 5).tolist()  # rho 1: uniform in t
    early = refine_times(10, 0.3, 0.01, rho=0.25)
    assert early[0] == pytest.approx(0.3) and early[-1] == pytest.approx(0.01)
    assert all(a > b for a, b in zip(early, early[1:]))
    assert early[5] > 0.8 * 0.3 > refine_times(10, 0.3, 0.01)[5]  # rho < 1: the iterations stay near t_high
    assert refine_times(1, 0.3, 0.01, rho=0.25) == pytest.approx([0.3])
    with pytest.raises(ValueError, match="rho must be positive"):
        refine_times(4, 0.3, 0.01, rho=0.0)


def test_cells_count_their_score_evaluations_and_guided_runs_keep_their_own_schedule(gen):
    """``info["score_evaluations"]`` is the first pass, the anneal cycles and the cell's own restart cycles; a guide
    switches to the guided steps and refinement."""
    from ase_xanesgen.guidance import CoordinationGuide

    quick = DiffusionGenerator(gen.model, gen.sde, device="cpu", steps=8, refine_steps=3, anneal_cycles=2,
                               max_restarts=4, guided_steps=6, guided_refine_steps=2)
    em_steps = handoff(8, 1.0, gen.sde.t_min, 3, quick.refine_from)[0]
    cycle = handoff(math.ceil(8 * quick.t_restart), quick.t_restart, gen.sde.t_min, 3, quick.refine_from)[0] + 3
    with warnings.catch_warnings():  # short runs may keep defects
        warnings.simplefilter("ignore")
        cells = quick.generate_batch(small_template(), 1.5, n=4, seed=0)
    assert any(a.info["restarts"] for a in cells)
    for a in cells:
        assert a.info["score_evaluations"] == em_steps + 3 + (2 + a.info["restarts"]) * cycle
    guided = DiffusionGenerator(gen.model, gen.sde, device="cpu", steps=8, refine_steps=3, anneal_cycles=2,
                                max_restarts=0, guided_steps=6, guided_refine_steps=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cell = guided.generate(small_template(), 2.0, seed=0, guide=CoordinationGuide({"CN4": 0.2}))
    assert cell.info["steps"] == 6
    # the guided schedule, no anneal cycles (guided_anneal_cycles=0)
    assert cell.info["score_evaluations"] == handoff(6, 1.0, gen.sde.t_min, 2, guided.guided_refine_from)[0] + 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        noised = guided.generate(cells[0], start_time=0.2, seed=0, steps=10)
    assert noised.info["score_evaluations"] == 2 + 3  # ceil(10 x 0.2) steps and the refinement: no anneal cycles


def test_handoff_stops_the_stochastic_pass_where_the_refinement_starts():
    assert handoff(64, 1.0, 1e-3, 40, 0.3) == (45, 0.3)  # about the same step size, stopped at t = 0.3
    assert handoff(64, 1.0, 1e-3, 0, 0.3) == (64, 1.0)  # no refinement: down to t_min
    assert handoff(20, 0.05, 1e-3, 40, 0.3) == (20, 0.05)  # start_time below refine_from: as before


def test_start_time_starts_from_template(gen, cell_2g):
    out = gen.generate(cell_2g, start_time=0.05, seed=0, steps=20)
    disp = cell_2g.positions - out.positions
    frac = np.linalg.solve(cell_2g.cell.array.T, disp.T).T
    disp = (frac - np.round(frac)) @ cell_2g.cell.array
    assert np.median(np.linalg.norm(disp, axis=1)) < 0.3  # stays close to the template


def planted(cell_2g, kind):
    atoms = cell_2g.copy()
    i = 0
    if kind == "cn5":  # move a distant atom next to a 4-fold atom, opposite its bonds
        ii, dd = neighbour_list("iD", atoms, 1.85)
        i = int(np.flatnonzero(np.bincount(ii) == 4)[0])
        away = -dd[ii == i].sum(0)
        far = int(np.argmax(atoms.get_distances(i, range(len(atoms)), mic=True)))
        atoms.positions[far] = atoms.positions[i] + 1.5 * away / np.linalg.norm(away)
    else:  # isolate atom i: put it in the middle of the largest void
        from scipy.spatial import cKDTree

        grid = np.stack(np.meshgrid(*[np.linspace(0, 1, 12, endpoint=False)] * 3), -1).reshape(-1, 3) @ atoms.cell.array
        tree = cKDTree(atoms.positions, boxsize=np.diag(atoms.cell.array) + 1e-9)
        atoms.positions[i] = grid[np.argmax(tree.query(grid % np.diag(atoms.cell.array))[0])]
    return atoms


@pytest.mark.parametrize("kind", ["cn1", "cn5"])
def test_restart_triggered_by_planted_defect(gen, cell_2g, kind):
    atoms = planted(cell_2g, kind)
    system = System(torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array, dtype=torch.float32)[None],
                    torch.zeros(len(atoms), dtype=torch.long))
    pos = torch.tensor(atoms.positions, dtype=torch.float32)
    assert defective_atoms(pos, system).any()
    _, restarts = restart_sample(PriorScore(gen.model, gen.sde), gen.sde, pos, system, steps=4,
                                 t_start=2 * gen.sde.t_min, t_restart=0.3, max_restarts=2,
                                 generator=torch.Generator().manual_seed(0))
    assert restarts.item() >= 1


def test_local_restart_repairs_the_defect_and_leaves_the_rest(gen, cell_2g):
    atoms = planted(cell_2g, "cn5")
    system = System(torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array, dtype=torch.float32)[None],
                    torch.zeros(len(atoms), dtype=torch.long))
    pos = torch.tensor(atoms.cell.scaled_positions(atoms.positions) % 1.0 @ atoms.cell.array, dtype=torch.float32)
    bad = defective_atoms(pos, system)
    mobile = neighbourhood(bad, pos, system, 3.0)
    assert bad.any() and bad.sum() < mobile.sum() < 60  # the planted atoms and their surroundings only
    score = PriorScore(gen.model, gen.sde)
    with torch.no_grad():
        out = euler_maruyama(score, gen.sde, pos, system, steps=3, t_start=0.3, mobile=mobile,
                             generator=torch.Generator().manual_seed(0))
        assert torch.equal(out[~mobile], pos[~mobile]) and not torch.allclose(out[mobile], pos[mobile])
        fixed, restarts = restart_sample(score, gen.sde, pos, system, steps=2, t_start=2 * gen.sde.t_min,
                                         t_restart=0.3, max_restarts=2, refine_steps=10, restart_radius=3.0,
                                         generator=torch.Generator().manual_seed(0))
    assert restarts.item() >= 1 and not defective_atoms(fixed, system).any()


@pytest.mark.parametrize("kwargs, match", [
    (dict(density=0.0), "density"), (dict(density=-1.0), "density"), (dict(density=4.5), "density"),
    (dict(density=float("nan")), "density"), (dict(density=2.0, n=0), "n must"), (dict(density=2.0, n=1.5), "n must"),
    (dict(density=2.0, steps=2.5), "steps must"), (dict(density=2.0, start_time=0.1), "density=None"),
    (dict(density=2.0, seed=2**64), "seed must"), (dict(density=2.0, seed=-1), "seed must"),
    (dict(density=2.0, trajectory="path.xyz"), r"\.traj"),
])
def test_bad_input_raises(gen, kwargs, match):
    with pytest.raises(ValueError, match=match):
        gen.generate_batch(small_template(), **kwargs)


def test_bad_templates_raise(gen):
    with pytest.raises(ValueError, match="cell"):
        gen.generate(Atoms("C"), density=2.0)
    with pytest.raises(ValueError, match="cell"):
        gen.generate(Atoms(cell=[[1, 0, 0], [2, 0, 0], [0, 0, 1]], pbc=True), density=2.0)
    with pytest.raises(ValueError, match="species"):
        gen.generate(Atoms("Si4", cell=[6] * 3, pbc=True, scaled_positions=np.random.rand(4, 3)), density=2.0)
    nan = Atoms("C2", cell=[5] * 3, pbc=True, positions=[[0, 0, 0], [np.nan, 0, 0]])
    with pytest.raises(ValueError, match="NaN"):
        gen.generate(nan)
    for bad in (np.nan, np.inf):  # ended in ASE's cell reduction ("cannot convert float NaN to integer")
        cell = np.eye(3) * 9.0
        cell[0, 1] = bad
        with pytest.raises(ValueError, match=r"non-finite \(NaN or inf\) cell"):
            gen.generate(Atoms(cell=cell, pbc=True), density=2.0, steps=2)
    with pytest.raises(ValueError, match="slab|periodic"):  # a slab is not silently made bulk
        gen.generate(Atoms(cell=[8.6] * 3, pbc=[True, True, False]), density=2.0)
    with pytest.raises(TypeError, match="seed"):
        gen.generate(small_template(), density=2.0, seed=1.7)
    whole = gen.generate(small_template(), density=2.0, seed=3.0, steps=2.0)  # whole-number floats are fine
    assert np.allclose(whole.positions, gen.generate(small_template(), density=2.0, seed=3, steps=2).positions)


def test_cells_too_small_for_the_cutoff_are_refused_unless_forced(gen):
    import warnings

    thin = Atoms(cell=[20.0, 20.0, 2.0], pbc=True)
    with pytest.raises(ValueError, match="thick.*force=True"):  # atoms would meet their own periodic images
        gen.fill(thin, 2.0)
    with pytest.warns(UserWarning, match="thick"):
        assert len(gen.fill(thin, 2.0, force=True)) == 80
    for n in (1, 3):  # a cubic cell of so few atoms is also thin; in a large cell the atom count refuses it
        with pytest.raises(ValueError, match="thick"):
            gen.generate(cubic_cell(n, 2.0), 2.0, steps=2)
        few = Atoms(f"C{n}", cell=[12.0] * 3, pbc=True, positions=np.eye(3)[:n] * 4.0)
        with pytest.raises(ValueError, match=f"holds {n} atom.*fewer than 8"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its density lies outside the training range, too
            gen.generate(few, steps=2)
    sheared = Atoms(cell=np.array([[1, 1, 1], [0, 1, 2], [0, 0, 1]]) @ np.diag([12.0] * 3), pbc=True)
    with warnings.catch_warnings():  # the 12 A cube in other cell vectors (faces 4.9 A apart) is not thin
        warnings.simplefilter("error")
        gen.fill(sheared, 2.0)


def test_density_outside_the_training_range_warns(gen):
    with pytest.warns(UserWarning, match="outside"):
        gen.fill(small_template(), 1.0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gen.fill(small_template(), 2.0)
    with pytest.warns(UserWarning, match="pbc all False"):  # ASE's default pbc: made periodic, and said so
        assert gen.fill(Atoms(cell=[8.6] * 3), 2.0).pbc.all()


def test_refine_relaxes_a_rattled_md_cell(gen, cell_2g):
    """Tweedie refinement acts as a relaxation on the learned density: GAP energy back to the MD cell's."""
    from ase_xanesgen import gap_energies
    from ase_xanesgen.diffusion.samplers import refine

    system = System(torch.tensor(cell_2g.numbers), torch.tensor(cell_2g.cell.array, dtype=torch.float32)[None],
                    torch.zeros(len(cell_2g), dtype=torch.long))
    rattled = cell_2g.copy()
    rattled.positions += np.random.default_rng(0).normal(0.0, 0.08, rattled.positions.shape)
    with torch.no_grad():
        pos = refine(PriorScore(gen.model, gen.sde), gen.sde, torch.tensor(rattled.positions, dtype=torch.float32),
                     system, steps=10)
    refined = cell_2g.copy()
    refined.positions = pos.numpy()
    e_md, e_rattled, e_refined = (gap_energies(a).mean() for a in (cell_2g, rattled, refined))
    assert e_rattled > e_md + 0.2  # measured: -8.07 vs -8.35 eV/atom
    assert e_refined < e_md + 0.05  # measured: -8.39


@pytest.mark.parametrize("kwargs, match", [
    (dict(refine_steps=-1), "refine_steps"), (dict(refine_from=0.0), "refine_from"),
    (dict(refine_from=1.5), "refine_from"), (dict(guided_refine_from=0.0), "guided_refine_from"),
    (dict(restart_radius=0.0), "restart_radius"), (dict(restart_radius=float("nan")), "restart_radius"),
    (dict(max_restarts=-1), "max_restarts"), (dict(refine_steps=1.5), "refine_steps must be an integer"),
    (dict(max_restarts=2.5), "max_restarts must be an integer"), (dict(temperature=0.0), "temperature"),
    (dict(guided_temperature=-1.0), "guided_temperature"), (dict(temperature=float("nan")), "temperature"),
    (dict(anneal_cycles=-1), "anneal_cycles"), (dict(guided_anneal_cycles=0.5), "guided_anneal_cycles"),
    (dict(energy_max_force=0.0), "energy_max_force"), (dict(energy_max_force=float("nan")), "energy_max_force"),
    (dict(refine_rho=0.0), "refine_rho"), (dict(guided_refine_rho=float("nan")), "guided_refine_rho"),
    (dict(guided_steps=0), "guided_steps"), (dict(guided_refine_steps=-2), "guided_refine_steps"),
])
def test_bad_sampler_settings_raise(gen, kwargs, match):
    with pytest.raises(ValueError, match=match):
        DiffusionGenerator(gen.model, gen.sde, device="cpu", **kwargs)


def test_sampler_options_from_the_command_line():
    import argparse

    from ase_xanesgen.cli.generate import add_sampler_arguments, sampler_options

    parser = argparse.ArgumentParser()
    add_sampler_arguments(parser)
    assert sampler_options(parser.parse_args([])) == {}  # the generator's defaults
    opts = sampler_options(parser.parse_args(["--refine-steps", "5", "--restart-radius", "0", "--temperature", "1"]))
    assert opts == {"refine_steps": 5, "restart_radius": None, "temperature": 1.0}  # 0: whole-cell restarts
    assert sampler_options(parser.parse_args(["--bf16"])) == {"bf16_inference": True}
    assert sampler_options(parser.parse_args(["--refine-rho", "0.5", "--guided-refine-steps", "30"])) == {
        "refine_rho": 0.5, "guided_refine_steps": 30}


def test_bf16_inference_stays_close_to_float32(gen, cell_2g):
    """The bfloat16 edge products move the score by well under 2 %, on the chunked (two cells, > 4,096 edges) and
    the whole-graph path (one cell), and a generator sampling that way says so on its cells."""
    from ase_xanesgen.nn.meshgraphnet import bf16_inference

    prior = PriorScore(gen.model, gen.sde)
    noisy = torch.tensor(cell_2g.positions, dtype=torch.float32)
    noisy = noisy + 0.1 * torch.randn(noisy.shape, generator=torch.Generator().manual_seed(0))
    for cells in (1, 2):
        system = System(torch.full((216 * cells,), 6), torch.tensor(np.stack([cell_2g.cell.array] * cells),
                                                                   dtype=torch.float32),
                        torch.repeat_interleave(torch.arange(cells), 216))
        pos = noisy.repeat(cells, 1)
        with torch.no_grad():
            exact = prior(pos, 0.2, system)
            with bf16_inference():
                fast = prior(pos, 0.2, system)
        assert 0 < float((fast - exact).norm() / exact.norm()) < 2e-2
    atoms = DiffusionGenerator(gen.model, gen.sde, device="cpu", bf16_inference=True, anneal_cycles=0).generate(
        small_template(), density=2.0, seed=0, steps=8)
    assert "bf16_inference=True" in atoms.info["generator"] and len(atoms) == 64


def test_anneal_cycles_redraw_every_cell_from_the_restart_level(gen, cell_2g):
    """An anneal cycle re-noises every whole cell to t_restart and denoises it again: each atom moves, by about
    the noise of that level (sigma 0.28 A) and not by a redraw of the cell (several A)."""
    system = System(torch.tensor(cell_2g.numbers).repeat(2), torch.tensor(cell_2g.cell.array,
                    dtype=torch.float32)[None].repeat(2, 1, 1), torch.arange(2).repeat_interleave(len(cell_2g)))
    pos = torch.tensor(np.tile(cell_2g.positions, (2, 1)), dtype=torch.float32)
    score, started = PriorScore(gen.model, gen.sde), []
    with torch.no_grad():
        kwargs = dict(steps=4, t_start=2 * gen.sde.t_min, max_restarts=0, refine_steps=10,
                      generator=torch.Generator().manual_seed(0))
        first, _ = restart_sample(score, gen.sde, pos, system, **kwargs)
        kwargs["generator"] = torch.Generator().manual_seed(0)
        annealed, restarts = restart_sample(score, gen.sde, pos, system, anneal_cycles=2, on_anneal=started.append,
                                            **kwargs)
    frac = (annealed - first).numpy() @ np.linalg.inv(cell_2g.cell.array)
    moved = torch.tensor(np.linalg.norm((frac - np.round(frac)) @ cell_2g.cell.array, axis=1))  # minimum image
    assert started == [1, 2] and restarts.tolist() == [0, 0]
    assert (moved > 0).all() and 0.05 < moved.median() < 1.0


def test_anneal_refine_steps_set_the_length_of_an_anneal_cycles_quench(gen, cell_2g):
    """An anneal cycle's refinement runs ``anneal_refine_steps`` score evaluations instead of ``refine_steps``; the
    generator passes the setting on and records it."""
    system = System(torch.tensor(cell_2g.numbers), torch.tensor(cell_2g.cell.array, dtype=torch.float32)[None],
                    torch.zeros(len(cell_2g), dtype=torch.long))
    pos = torch.tensor(cell_2g.positions, dtype=torch.float32)
    prior = PriorScore(gen.model, gen.sde)

    def evaluations(**extra) -> int:
        calls = []

        def score(p, t, s):
            calls.append(t)
            return prior(p, t, s)

        with torch.no_grad():
            restart_sample(score, gen.sde, pos, system, steps=8, max_restarts=0, refine_steps=10, anneal_cycles=1,
                           generator=torch.Generator().manual_seed(0), **extra)
        return len(calls)

    assert evaluations() - evaluations(anneal_refine_steps=3) == 7
    short = DiffusionGenerator(gen.model, gen.sde, device="cpu", anneal_refine_steps=3)
    assert "anneal_refine_steps=3" in short.generate(cubic_cell(64, 2.5), 2.5, seed=0, steps=8).info["generator"]
    with pytest.raises(ValueError, match="anneal_refine_steps"):
        DiffusionGenerator(gen.model, gen.sde, device="cpu", anneal_refine_steps=-1)


def test_temperature_sharpens_the_drift_against_the_same_noise(gen):
    """T divides the score term of a step and leaves the noise: at T = 1/3 a step moves 3x as far along the
    score; the generator passes its temperature on and records it."""
    pos, score, noise = torch.zeros(4, 3), torch.ones(4, 3), torch.full((4, 3), 0.5)
    hot = em_step(pos, score, gen.sde, 0.5, 0.1, noise)
    cold = em_step(pos, score, gen.sde, 0.5, 0.1, noise, temperature=1 / 3)
    noise_part = em_step(pos, torch.zeros(4, 3), gen.sde, 0.5, 0.1, noise)
    assert torch.allclose(cold - noise_part, 3 * (hot - noise_part))
    cells = {t: DiffusionGenerator(gen.model, gen.sde, device="cpu", temperature=t).generate_batch(
        cubic_cell(216, 2.5), 2.5, n=2, seed=0, steps=16) for t in (1.0, 1 / 3)}
    assert "temperature=1.0" in cells[1.0][0].info["generator"]
    assert not np.allclose(cells[1.0][0].positions, cells[1 / 3][0].positions)


def test_template_atoms_come_without_the_templates_records(gen, tmp_path):
    """With density=None the template's atoms are used, but not its info (a guided run's guide and zeta),
    arrays (momenta, tags) or constraints: they belong to the template, not to the new cell or its path."""
    from ase.constraints import FixAtoms

    template = gen.fill(small_template(), 2.0)
    template.positions = np.random.default_rng(0).random((64, 3)) @ template.cell.array
    template.info.update(guide="XANESGuide(...)", zeta=10.0, note="mine")
    template.set_momenta(np.ones((64, 3)))
    template.set_tags(np.arange(64))
    template.set_constraint(FixAtoms(indices=[0, 1]))
    filled = gen.fill(template, None)
    assert np.array_equal(filled.positions, template.positions) and np.array_equal(filled.numbers, template.numbers)
    assert not filled.info and sorted(filled.arrays) == ["numbers", "positions"] and not filled.constraints
    path = tmp_path / "path.traj"
    out = gen.generate(template, steps=2, seed=0, trajectory=path)
    assert not {"guide", "zeta", "note"} & set(out.info) and not out.constraints
    assert sorted(out.arrays) == ["numbers", "positions"]
    assert not {"guide", "zeta", "note"} & set(read(path, 0).info)


def test_template_atoms_meet_the_density_checks(gen):
    """density=None takes the template's own density through the same checks as density=: 216 carbons in an 8 A
    cube (8.4 g/cm3) are refused, 64 in a 20 A cube (0.16 g/cm3) warn as an extrapolation."""
    rng = np.random.default_rng(0)
    dense = Atoms("C216", positions=rng.random((216, 3)) * 8.0, cell=[8.0] * 3, pbc=True)
    with pytest.raises(ValueError, match=r"template's density 8\.4.* must be in \(0, 4\.0\]"):
        gen.generate(dense, None, seed=0, steps=2)
    sparse = Atoms("C64", positions=rng.random((64, 3)) * 20.0, cell=[20.0] * 3, pbc=True)
    with pytest.warns(UserWarning, match=r"template's density 0\.1596 .* outside the 1\.5-3\.5"):
        gen.fill(sparse, None)


def test_the_fill_element_is_the_templates_or_carbon(gen):
    """cubic_cell's symbol reaches the generator (the carbon model refuses Si instead of making carbon), an empty
    template is filled with carbon also by a model whose first species is H, and a species of the template that
    rounds to no atom warns instead of vanishing."""
    with pytest.raises(ValueError, match=r"species \['Si'\] not known"):
        gen.generate(cubic_cell(64, 2.0, "Si"), 2.0)
    hc = DiffusionGenerator(ScoreNet(species=[1, 6], width=16, layers=1), gen.sde, device="cpu")
    assert set(hc.fill(Atoms(cell=[10.0] * 3, pbc=True), 2.0).get_chemical_symbols()) == {"C"}
    assert set(hc.fill(cubic_cell(1000, 0.5, "H"), 0.5).get_chemical_symbols()) == {"H"}
    with pytest.warns(UserWarning, match=r"species \['H'\] of the template round to no atom"):
        few = hc.fill(Atoms("C100H2", cell=[10.0] * 3, pbc=True), 0.3)
    assert set(few.get_chemical_symbols()) == {"C"}


def test_warnings_point_at_the_callers_line(gen):
    """generate, generate_batch and fill reach the same warnings at different depths; each points at the line
    that called the package, not at a line inside it."""
    quick = DiffusionGenerator(gen.model, gen.sde, device="cpu", max_restarts=0, refine_steps=2)
    quick.trained_density = gen.trained_density  # 1.0 g/cm3 lies outside: the warning from fill
    for call in (lambda: quick.generate(cubic_cell(16, 1.0), 1.0, seed=0, steps=2),
                 lambda: quick.generate_batch(cubic_cell(16, 1.0), 1.0, n=1, seed=0, steps=2),
                 lambda: quick.fill(cubic_cell(16, 1.0), 1.0)):
        with pytest.warns(UserWarning, match="outside") as record:
            call()
        assert {w.filename for w in record} == {__file__}, [(w.filename, str(w.message)[:40]) for w in record]


def test_progress_shows_the_restart_cycles(gen, capsys):
    """The bar is full once the first pass ends; the restart cycles that follow show on it."""
    quick = DiffusionGenerator(gen.model, gen.sde, device="cpu", max_restarts=2, refine_steps=0)
    with pytest.warns(UserWarning, match="still hold"):
        cell = quick.generate(small_template(), 2.0, seed=0, steps=2, progress=True)
    assert cell.info["restarts"] == 2  # two steps without a quench leave defects
    err = capsys.readouterr().err
    assert "restart 1/2, cells left 1" in err and "restart 2/2, cells left 1" in err


def test_a_trained_checkpoint_knows_its_density_range(data_dir, tmp_path):
    """train_prior records the training cells' densities; from_checkpoint warns outside them. A checkpoint without
    a recorded range (the committed one) warns at no density."""
    import warnings

    from ase_xanesgen.train.loop import TrainConfig
    from ase_xanesgen.train.prior import train_prior

    train_prior(data_dir, tmp_path, TrainConfig(steps=1, batch_size=1), width=16, layers=1, device="cpu")
    trained = DiffusionGenerator.from_checkpoint(tmp_path / "model.pt", device="cpu")
    assert trained.trained_density == {6: (1.5, 3.5)}
    with pytest.warns(UserWarning, match="outside the 1.5-3.5"):
        trained.fill(small_template(), 1.0)
    old = DiffusionGenerator.from_checkpoint(Path(__file__).parents[1] / "checkpoints/prior/last.pt", device="cpu")
    assert old.trained_density == {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        old.fill(small_template(), 1.0)


def test_an_unreadable_checkpoint_is_a_value_error(tmp_path):
    """A 4-byte text file made torch raise struct.error; any file that is not a checkpoint says so."""
    from ase_xanesgen.nn.checkpoint import load

    junk = tmp_path / "junk.pt"
    junk.write_text("junk")
    with pytest.raises(ValueError, match="not a checkpoint"):
        DiffusionGenerator.from_checkpoint(junk)
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(ValueError, match="not a checkpoint"):
        load(tmp_path / "tensor.pt")
