import json

import torch
from torch_geometric.data import Batch

from ase_xanesgen.data.datasets import load_cell
from ase_xanesgen.diffusion import VESDE
from ase_xanesgen.graph.convert import atoms_to_data
from ase_xanesgen.nn import ScoreNet
from ase_xanesgen.train.loop import Trainer, TrainConfig
from ase_xanesgen.train.prior import dsm_loss, make_loss


def fixed_loss(model, batch, sde):
    t = torch.tensor([0.1, 0.3])
    with torch.no_grad():
        return float(dsm_loss(model, batch, sde, t, torch.Generator().manual_seed(0), model.cutoff).mean())


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
