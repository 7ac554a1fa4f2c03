import json

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from ase_xanesgen.data.datasets import load_cell
from ase_xanesgen.diffusion import VESDE
from ase_xanesgen.graph.convert import atoms_to_data
from ase_xanesgen.nn import ScoreNet
from ase_xanesgen.train.loop import Trainer, TrainConfig
from ase_xanesgen.train.prior import dsm_loss, make_loss, sample_t, train_prior


def fixed_loss(model, batch, sde):
    t = torch.tensor([0.1, 0.3])
    with torch.no_grad():
        return float(dsm_loss(model, batch, sde, t, torch.Generator().manual_seed(0), model.cutoff).mean())


def test_a_band_of_noise_levels_draws_only_inside_it(tmp_path):
    sde = VESDE()
    t = sample_t(4000, sde, torch.Generator().manual_seed(0), t_range=(0.15, 0.7))
    assert 0.15 <= float(t.min()) < 0.16 and 0.69 < float(t.max()) <= 0.7
    full = sample_t(4000, sde, torch.Generator().manual_seed(0))
    assert float(full.min()) >= sde.t_min and float(full.max()) > 0.99
    for bad in ((0.7, 0.15), (0.0, 0.5), (0.5, 1.5)):
        with pytest.raises(ValueError, match="t_range must satisfy"):
            train_prior(None, tmp_path / "run", TrainConfig(steps=1), t_range=bad)


@pytest.mark.slow
def test_dsm_loss_finite_and_falling(data_dir, tmp_path):
    graphs = [atoms_to_data(load_cell(n, data_dir)) for n in ("d2.0_1", "d3.5_2")]
    sde = VESDE()
    torch.manual_seed(0)
    model = ScoreNet(width=32, layers=2)
    batch = Batch.from_data_list(graphs)
    before = fixed_loss(model, batch, sde)
    config = TrainConfig(steps=40, batch_size=2, lr=3e-3, warmup=5, ema=0.0, ckpt_every=1000, val_every=20)
    trainer = Trainer(model, graphs, make_loss(sde, model.cutoff, 1.0), tmp_path, config, device="cpu")
    trainer.fit()
    after = fixed_loss(trainer.model, batch, sde)
    assert torch.isfinite(torch.tensor(after)) and after < before
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [20, 40]


def test_trainer_resumes_from_last_checkpoint(data_dir, tmp_path):
    graphs = [atoms_to_data(load_cell("d2.0_1", data_dir))]
    sde = VESDE()
    loss = make_loss(sde, 3.0, 1.0)
    cfg = dict(batch_size=1, warmup=2, ckpt_every=1000, val_every=1000)
    first = Trainer(ScoreNet(width=16, layers=1), graphs, loss, tmp_path, TrainConfig(steps=3, **cfg), device="cpu")
    first.fit()
    second = Trainer(ScoreNet(width=16, layers=1), graphs, loss, tmp_path, TrainConfig(steps=5, **cfg), device="cpu")
    assert second.step == 3
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    second.fit()
    assert second.step == 5 and (tmp_path / "model.pt").exists()


def test_resume_refuses_other_settings_and_init_beside_a_run(data_dir, tmp_path):
    """A resumed run keeps the optimiser and schedule of its checkpoint, so other settings are refused instead of
    being recorded in model.pt; init= beside an existing run (which would be resumed instead) is refused; init=
    takes a run folder."""
    import pytest

    graphs = [atoms_to_data(load_cell("d2.0_1", data_dir))]
    loss = make_loss(VESDE(), 3.0, 1.0)
    cfg = dict(batch_size=1, warmup=2, ckpt_every=1000, val_every=1000)
    Trainer(ScoreNet(width=16, layers=1), graphs, loss, tmp_path / "a", TrainConfig(steps=2, **cfg), device="cpu",
            meta={"sde": {"sigma_max": 0.8}}).fit()
    with pytest.raises(ValueError, match="lr 0.001 \\(asked 0.005\\)"):
        Trainer(ScoreNet(width=16, layers=1), graphs, loss, tmp_path / "a", TrainConfig(steps=4, lr=5e-3, **cfg),
                device="cpu", meta={"sde": {"sigma_max": 0.8}})
    with pytest.raises(ValueError, match="sigma_max"):
        Trainer(ScoreNet(width=16, layers=1), graphs, loss, tmp_path / "a", TrainConfig(steps=4, **cfg),
                device="cpu", meta={"sde": {"sigma_max": 3.0}})
    with pytest.raises(ValueError, match="width 16 \\(asked 32\\)"):
        Trainer(ScoreNet(width=32, layers=1), graphs, loss, tmp_path / "a", TrainConfig(steps=4, **cfg), device="cpu",
                meta={"sde": {"sigma_max": 0.8}})
    with pytest.raises(ValueError, match="already holds a run"):
        Trainer(ScoreNet(width=16, layers=1), graphs, loss, tmp_path / "a", TrainConfig(steps=4, **cfg), device="cpu",
                init=tmp_path / "a")
    fine = Trainer(ScoreNet(width=16, layers=1), graphs, loss, tmp_path / "b", TrainConfig(steps=4, **cfg),
                   device="cpu", init=tmp_path / "a")  # a run folder: its model.pt
    assert fine.step == 0
    # a longer run resumes with the checkpoint's warm-up (the command line derives it from the step count)
    longer = Trainer(ScoreNet(width=16, layers=1), graphs, loss, tmp_path / "a",
                     TrainConfig(steps=40, **dict(cfg, warmup=4)), device="cpu", meta={"sde": {"sigma_max": 0.8}})
    assert longer.step == 2 and longer.config.warmup == 2


def test_nan_loss_stops_before_the_weights_and_a_run_that_never_trained_saves_nothing(cell_2g, tmp_path):
    import pytest

    from ase_xanesgen.graph.neighbours import radius_graph_pbc

    def nan_loss(model, batch, generator):  # the score network's output through a NaN: a diverged run
        graph = radius_graph_pbc(batch.pos, batch.cell, batch.batch, 3.0)
        score = model(batch.pos, batch.z, batch.cell, batch.batch, *graph, torch.ones(1), torch.ones(1))
        return {"loss": score.sum() * float("nan")}

    trainer = Trainer(ScoreNet(width=16, layers=1), [atoms_to_data(cell_2g)], nan_loss, tmp_path,
                      TrainConfig(steps=3, batch_size=1), device="cpu")
    with pytest.raises(FloatingPointError, match="step 1"):
        trainer.fit()
    assert not (tmp_path / "model.pt").exists() and not (tmp_path / "last.pt").exists()
    with pytest.raises(ValueError, match="val_every"):
        TrainConfig(val_every=0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=0.0)
    with pytest.raises(ValueError, match="sigma_max"):
        VESDE(sigma_max=0.0)


def test_sigterm_saves_and_says_the_run_stopped_then_resume_continues(data_dir, tmp_path):
    import os
    import signal

    import pytest

    from ase_xanesgen.train.loop import Interrupted

    graphs = [atoms_to_data(load_cell("d2.0_1", data_dir))]
    base = make_loss(VESDE(), 3.0, 1.0)
    calls = {"n": 0}

    def loss(model, batch, generator):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # the scheduler's stop request, mid-run
        return base(model, batch, generator)

    cfg = dict(steps=6, batch_size=1, warmup=2, ckpt_every=1000, val_every=1000)
    with pytest.raises(Interrupted, match="step 3 of 6"):
        Trainer(ScoreNet(width=16, layers=1), graphs, loss, tmp_path, TrainConfig(**cfg), device="cpu").fit()
    again = Trainer(ScoreNet(width=16, layers=1), graphs, base, tmp_path, TrainConfig(**cfg), device="cpu")
    assert again.step == 3
    again.fit()
    assert again.step == 6


def test_time_budget_refit_never_raises_the_learning_rate(data_dir, tmp_path):
    """A re-fit that lengthens the schedule mid-decay (the first fit counted CUDA warm-up) continues the cosine
    from where it is instead of jumping back up it."""
    graphs = [atoms_to_data(load_cell("d2.0_1", data_dir))]
    config = TrainConfig(steps=1000, batch_size=1, warmup=200, time_budget=100.0)
    trainer = Trainer(ScoreNet(width=16, layers=1), graphs, make_loss(VESDE(), 3.0, 1.0), tmp_path, config,
                      device="cpu")
    trainer.step = 600
    before = trainer._lr_factor(600)
    trainer._fit_to_budget(elapsed=25.0, rate=0.025)  # 75 s left at 25 ms/step: ~2,857 more steps
    assert trainer.config.steps > 3000
    factors = [trainer._lr_factor(k) for k in range(600, trainer.config.steps + 1, 50)]
    assert factors[0] == before
    assert all(b <= a for a, b in zip(factors, factors[1:]))
    assert abs(trainer._lr_factor(trainer.config.steps) - config.lr_min / config.lr) < 1e-9


def test_density_weights_draw_every_density_equally(data_dir):
    from collections import Counter

    from ase_xanesgen.data.datasets import load_dataset, split_by_topology
    from ase_xanesgen.geometry import density_of
    from ase_xanesgen.train.prior import density_weights

    train, _ = split_by_topology(load_dataset(data_dir, with_spectra=False))
    weights = density_weights(train)
    per_density = Counter()
    for atoms, w in zip(train, weights):
        per_density[round(density_of(atoms) * 2) / 2] += w
    assert sorted(per_density) == [1.5, 2.0, 2.5, 3.0, 3.5]
    assert all(abs(total - 1.0) < 1e-9 for total in per_density.values())


def test_weighted_trainer_needs_one_weight_per_graph(cell_2g, tmp_path):
    import pytest

    graphs = [atoms_to_data(cell_2g)] * 3
    with pytest.raises(ValueError, match="one per training graph"):
        Trainer(ScoreNet(width=16, layers=1), graphs, make_loss(VESDE(), 3.0, 1.0), tmp_path, TrainConfig(steps=1),
                weights=[1.0, 2.0], device="cpu")


def test_edge_update_equals_the_concatenated_mlp():
    from ase_xanesgen.nn.blocks import MLP
    from ase_xanesgen.nn.meshgraphnet import edge_update

    g = torch.Generator().manual_seed(0)
    mlp = MLP(3 * 32, 32, 32)
    e, h = torch.randn(200, 32, generator=g), torch.randn(40, 32, generator=g)
    dst, src = torch.randint(0, 40, (200,), generator=g), torch.randint(0, 40, (200,), generator=g)
    expected = mlp(torch.cat([e, h[dst], h[src]], dim=-1))
    assert torch.allclose(edge_update(mlp, e, h, dst, src), expected, atol=1e-5)


def test_chunked_inference_equals_the_full_forward(cell_2g, monkeypatch):
    import ase_xanesgen.nn.meshgraphnet as mgn
    from ase_xanesgen import DiffusionGenerator
    from ase_xanesgen.graph.neighbours import radius_graph_pbc

    gen = DiffusionGenerator(device="cpu")
    pos = torch.tensor(cell_2g.positions, dtype=torch.float32)
    cell = torch.tensor(cell_2g.cell.array, dtype=torch.float32)[None]
    batch, z = torch.zeros(len(cell_2g), dtype=torch.long), torch.tensor(cell_2g.numbers)
    edge_index, shifts = radius_graph_pbc(pos, cell, batch, 3.0)
    t = torch.tensor([0.2])
    with torch.no_grad():
        monkeypatch.setattr(mgn, "EDGE_CHUNK", 10**9)
        full = gen.model(pos, z, cell, batch, edge_index, shifts, t, gen.sde.sigma(t))
        monkeypatch.setattr(mgn, "EDGE_CHUNK", 500)  # ~6 chunks of this cell's ~3,000 edges
        chunked = gen.model(pos, z, cell, batch, edge_index, shifts, t, gen.sde.sigma(t))
    assert torch.allclose(chunked, full, atol=1e-5)


def test_envelope_sum_matches_index_add_and_its_gradient(cell_2g):
    """The lean-backward edge aggregation is the plain ``index_add`` sum, and its hand-written backward passes
    gradcheck on a real cell's graph (float64, random edge features)."""
    from ase_xanesgen.graph.neighbours import edge_vectors, radius_graph_pbc
    from ase_xanesgen.nn.blocks import cosine_cutoff
    from ase_xanesgen.nn.meshgraphnet import EnvelopeSum

    pos = torch.tensor(cell_2g.positions[:40], dtype=torch.float64)
    cell = torch.tensor(cell_2g.cell.array, dtype=torch.float64)[None]
    batch = torch.zeros(len(pos), dtype=torch.long)
    edge_index, shifts = radius_graph_pbc(pos, cell, batch, 3.0)
    env = cosine_cutoff(edge_vectors(pos, cell, batch, edge_index, shifts).norm(dim=-1), 3.0)[:, None]
    dst = edge_index[0]
    e = torch.randn(len(dst), 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expected = torch.zeros(len(pos), 6, dtype=torch.float64).index_add_(0, dst, env * e)
    assert torch.equal(EnvelopeSum.apply(e, env, dst, len(pos)), expected)
    assert torch.autograd.gradcheck(lambda a, b: EnvelopeSum.apply(a, b, dst, len(pos)),
                                    (e.requires_grad_(), env.requires_grad_()))


def test_shipped_prior_is_the_average_of_its_committed_ingredients():
    """weights/prior.pt is rebuilt bit for bit by ``ship prior checkpoints/prior/last.pt checkpoints/prior/gpu_s5.pt``,
    and averaging refuses checkpoints of another architecture or weights that do not sum to one."""
    import pytest

    from ase_xanesgen.nn.checkpoint import average, load, to_dict
    from ase_xanesgen.weights import ship

    root = ship.HERE.parents[1] / "checkpoints" / "prior"
    if not root.is_dir():
        pytest.skip("needs the source checkout (checkpoints/ is not installed with the package)")
    shipped = load(ship.HERE / "prior.pt")
    ingredients = [load(root / "last.pt")["ema"], load(root / "gpu_s5.pt")]
    soup = average(ingredients)
    for key, value in shipped["state_dict"].items():
        assert torch.equal(soup["state_dict"][key], value), key
    key = "mgn.edge_mlps.0.0.weight"
    halfway = (ingredients[0]["state_dict"][key] + ingredients[1]["state_dict"][key]) / 2
    torch.testing.assert_close(shipped["state_dict"][key], halfway)
    trained = [k for k, v in shipped["state_dict"].items() if v.is_floating_point()
               and not torch.equal(ingredients[0]["state_dict"][k], ingredients[1]["state_dict"][k])]
    assert len(trained) > 40  # a real mix: every weight matrix differs between the two runs
    assert [a["step"] for a in shipped["meta"]["average_of"]] == [6500, 12269] and "step" not in shipped["meta"]
    with pytest.raises(ValueError, match="share model_name"):
        average([ingredients[0], to_dict(ScoreNet(width=32, layers=2))])
    with pytest.raises(ValueError, match="sum to 1"):
        average(ingredients, [0.7, 0.7])


def test_seed_repeats_a_training_run_and_options_of_the_other_model_are_refused(tmp_path, capsys):
    """The initial weights are drawn from --seed too: two runs with one seed write the same model."""
    from ase_xanesgen.cli.main import main
    from ase_xanesgen.nn.checkpoint import load

    tiny = ["--steps", "2", "--batch-size", "2", "--width", "16", "--layers", "1", "--val-every", "2", "--device",
            "cpu"]
    for run in ("a", "b"):
        assert main(["train", "xanes", "--out", str(tmp_path / run), *tiny]) == 0
    a, b = (load(tmp_path / run / "model.pt")["state_dict"] for run in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    capsys.readouterr()
    assert main(["train", "prior", "--out", str(tmp_path / "c"), "--exclude-density", "2.0", *tiny]) == 2
    assert "--exclude-density only acts on train xanes" in capsys.readouterr().err
    assert main(["train", "xanes", "--out", str(tmp_path / "c"), "--t-power", "2", *tiny]) == 2
    assert "--t-power only acts on train prior" in capsys.readouterr().err
    assert main(["train", "prior", "--out", str(tmp_path / "c"), "--crystals", *tiny]) == 2
    assert "--crystals only acts on train xanes" in capsys.readouterr().err
    assert main(["train", "prior", "--out", str(tmp_path / "c"), "--exclude-density", "0", *tiny]) == 2  # 0 == False
    assert main(["train", "prior", "--out", str(tmp_path / "c"), "--t-power", "0", *tiny]) == 2
    assert "t_power must be > 0" in capsys.readouterr().err and not (tmp_path / "c").exists()


def test_time_budget_warms_up_over_a_tenth_of_what_it_fits_and_survives_a_resume(data_dir, tmp_path):
    """A budget that fits ~80 steps must not leave the run in a 200-step warm-up; a resumed budgeted run keeps its
    spent time, total and decay instead of restarting its schedule (the learning rate rose back to the peak)."""
    import pytest

    graphs = [atoms_to_data(load_cell("d2.0_1", data_dir))]
    config = TrainConfig(steps=3000, batch_size=1, warmup=200, time_budget=10.0)
    trainer = Trainer(ScoreNet(width=16, layers=1), graphs, make_loss(VESDE(), 3.0, 1.0), tmp_path, config,
                      device="cpu")
    trainer.step = 50
    trainer._fit_to_budget(elapsed=5.0, rate=0.15)  # ~31 more steps
    assert trainer.config.steps == 81 and trainer.config.warmup == 51
    factors = [trainer._lr_factor(k) for k in range(51, 82)]
    assert factors[0] == 1.0 and all(b <= a for a, b in zip(factors, factors[1:]))
    assert factors[-1] == pytest.approx(config.lr_min / config.lr)
    trainer.step, trainer._decay_from, trainer.spent = 60, (51, 0.3), 7.0
    trainer.save()
    again = Trainer(ScoreNet(width=16, layers=1), graphs, make_loss(VESDE(), 3.0, 1.0), tmp_path,
                    TrainConfig(steps=3000, batch_size=1, warmup=200, time_budget=10.0), device="cpu")
    assert (again.step, again.config.steps, again.config.warmup) == (60, 81, 51)
    assert again._decay_from == (51, 0.3) and again.spent == 7.0
    assert again._lr_factor(60) == trainer._lr_factor(60)


def test_trainer_refuses_no_cells_and_warns_on_init_from_other_settings(data_dir, tmp_path):
    import pytest

    graphs = [atoms_to_data(load_cell("d2.0_1", data_dir))]
    loss = make_loss(VESDE(), 3.0, 1.0)
    cfg = TrainConfig(steps=1, batch_size=1)
    with pytest.raises(ValueError, match="no training cells"):
        Trainer(ScoreNet(width=16, layers=1), [], loss, tmp_path / "none", cfg, device="cpu")
    assert not (tmp_path / "none").exists()
    Trainer(ScoreNet(width=16, layers=1), graphs, loss, tmp_path / "a", cfg, device="cpu",
            meta={"sde": {"sigma_max": 0.8}}).fit()
    with pytest.warns(UserWarning, match="sigma_max"):
        Trainer(ScoreNet(width=16, layers=1), graphs, loss, tmp_path / "b", TrainConfig(steps=1, batch_size=1),
                device="cpu", meta={"sde": {"sigma_max": 1.5}}, init=tmp_path / "a")
    with pytest.raises(ValueError, match="ema must be in"):
        TrainConfig(ema=1.0)


def test_a_resumed_budget_run_refits_once_and_a_spent_budget_trains_no_more(data_dir, tmp_path, capsys):
    """Resumed at 80 % of its budget, a run fits its step count once (the 25/50/75 % re-fits it has passed would read
    the pace of a step or two); once the budget is spent, rerunning the command trains no further step."""
    graphs = [atoms_to_data(load_cell("d2.0_1", data_dir))]

    def trainer() -> Trainer:
        return Trainer(ScoreNet(width=16, layers=1), graphs, make_loss(VESDE(), 3.0, 1.0), tmp_path,
                       TrainConfig(steps=3000, batch_size=1, time_budget=2.0, val_every=10), device="cpu")

    first = trainer()
    first.spent = 1.6  # as if resumed late in its budget
    first.fit()
    assert capsys.readouterr().out.count("time budget:") == 1
    again = trainer()
    assert again.spent > 1.6 and again.config.steps == again.step == first.step
    again.fit()
    assert again.step == first.step and "nothing to train" in capsys.readouterr().out


def test_crystal_references_join_training_on_the_a_c_intensity_scale(data_dir, tmp_path):
    """The reference files use another intensity scale (rows sum to ~0.45, a-C rows to ~22): scaled, each crystal
    atom's spectrum has the a-C mean area and keeps its shape; a --crystals run trains on them."""
    from ase_xanesgen.data.datasets import load_dataset, load_reference
    from ase_xanesgen.nn.checkpoint import load
    from ase_xanesgen.train.xanes import crystal_references, train_xanes

    cells = load_dataset(data_dir)[:4]
    area = np.mean([a.arrays["xanes"].sum(axis=1).mean() for a in cells])
    for crystal in crystal_references(data_dir, cells):
        raw = load_reference(crystal.info["name"], data_dir).arrays["xanes"]
        np.testing.assert_allclose(crystal.arrays["xanes"].sum(axis=1), area)
        ratio = crystal.arrays["xanes"][raw > 0] / raw[raw > 0]
        np.testing.assert_allclose(ratio, ratio[0])  # one factor: the shape is kept
    config = TrainConfig(steps=2, batch_size=2, val_every=2)
    train_xanes(data_dir, tmp_path / "x", config, width=16, layers=1, crystals=True, device="cpu")
    meta = load(tmp_path / "x" / "model.pt")["meta"]
    assert {"diamond", "graphite"} <= set(meta["train_cells"]) and meta["crystals"] is True
    # a run without crystals (as every run before --crystals) resumes, but not as a crystal run
    train_xanes(data_dir, tmp_path / "y", config, width=16, layers=1, device="cpu")
    assert "crystals" not in load(tmp_path / "y" / "model.pt")["meta"]
    train_xanes(data_dir, tmp_path / "y", TrainConfig(steps=4, batch_size=2, val_every=2), width=16, layers=1,
                device="cpu")
    with pytest.raises(ValueError, match="other settings"):
        train_xanes(data_dir, tmp_path / "y", TrainConfig(steps=6, batch_size=2, val_every=2), width=16, layers=1,
                    device="cpu", crystals=True)
    # leaving a density out leaves its crystal out (diamond is 3.5 g/cm3)
    train_xanes(data_dir, tmp_path / "z", config, width=16, layers=1, crystals=True, exclude_density=3.5,
                device="cpu")
    assert {"graphite"} == set(load(tmp_path / "z" / "model.pt")["meta"]["train_cells"]) - {
        a.info["name"] for a in load_dataset(data_dir)}


def test_a_run_saved_before_the_density_range_resumes_and_records_it(data_dir, tmp_path):
    """``density_range`` and ``t_range`` are new in the prior's meta: a run whose last.pt lacks them (every committed
    one) still resumes instead of being refused as started with other settings (unless asked for another band of
    noise levels than the full range it trained on), and its next save records them."""
    from ase_xanesgen.nn.checkpoint import load, save_atomic
    from ase_xanesgen.train.prior import train_prior

    def run(steps, **kw):
        train_prior(data_dir, tmp_path, TrainConfig(steps=steps, batch_size=1), width=16, layers=1, device="cpu",
                    **kw)

    run(1)
    state = load(tmp_path / "last.pt")
    assert state["ema"]["meta"].pop("density_range") == [1.5, 3.5]
    assert state["ema"]["meta"].pop("t_range") == [1e-3, 1.0]  # the full range, recorded since t_range exists
    save_atomic(state, tmp_path / "last.pt")  # as written before the range and the band were recorded
    with pytest.raises(ValueError, match=r"t_range \[0.001, 1.0\] \(asked \[0.2, 0.6\]\)"):
        run(2, t_range=(0.2, 0.6))  # it trained on the full range
    run(2)
    assert load(tmp_path / "model.pt")["meta"]["density_range"] == [1.5, 3.5]


def test_trainer_joins_no_process_group(data_dir, tmp_path, monkeypatch):
    """Building a Trainer changes nothing process-wide: under torchrun (WORLD_SIZE > 1) it asks for
    start_process_group() first instead of starting one itself; outside torchrun that function does nothing."""
    from ase_xanesgen.train.loop import start_process_group

    graphs = [atoms_to_data(load_cell("d2.0_1", data_dir))]
    loss = make_loss(VESDE(), 3.0, 1.0)
    config = TrainConfig(steps=1, batch_size=1, warmup=0)
    Trainer(ScoreNet(width=16, layers=1), graphs, loss, tmp_path / "a", config, device="cpu")
    assert not torch.distributed.is_initialized() and start_process_group() is False
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="start_process_group"):
        Trainer(ScoreNet(width=16, layers=1), graphs, loss, tmp_path / "b", config, device="cpu")
    assert not torch.distributed.is_initialized()
