"""The same physics on a GPU as on the CPU: graph, prior and posterior scores, spectra, generation and training.

Skipped without CUDA (CI has none); run on a GPU machine with ``python -m pytest -q tests/test_cuda.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ase_xanesgen import DiffusionGenerator, XANESCalculator, cubic_cell
from ase_xanesgen.cli.main import main
from ase_xanesgen.data.datasets import load_cell
from ase_xanesgen.diffusion import PriorScore, System
from ase_xanesgen.graph.neighbours import radius_graph_pbc
from ase_xanesgen.guidance import GuidedScore, spectrum_guide

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(scope="module")
def gens():
    return {dev: DiffusionGenerator(device=dev) for dev in ("cpu", "cuda")}


@pytest.fixture(scope="module")
def noisy(data_dir):
    """Two MD cells at 2.0 g/cm3 as one batch, re-noised to t = 0.3 (sigma 0.24 A)."""
    cells = [load_cell(name, data_dir) for name in ("d2.0_1", "d0.0_14")]
    pos = torch.tensor(np.concatenate([a.positions for a in cells]), dtype=torch.float32)
    pos += 0.24 * torch.randn(pos.shape, generator=torch.Generator().manual_seed(0))
    system = System(torch.tensor(np.concatenate([a.numbers for a in cells])),
                    torch.tensor(np.stack([a.cell.array for a in cells]), dtype=torch.float32),
                    torch.repeat_interleave(torch.arange(2), 216))
    return cells, pos, system


def on(system: System, device: str) -> System:
    return System(system.z.to(device), system.cell.to(device), system.batch.to(device))


def test_graph_is_the_same_on_both_devices(noisy):
    _, pos, system = noisy
    edges = {}
    for dev in ("cpu", "cuda"):
        s = on(system, dev)
        index, shifts = radius_graph_pbc(pos.to(dev), s.cell, s.batch, 3.0)
        edges[dev] = {(*e, *u) for e, u in zip(index.T.tolist(), shifts.round().long().tolist())}
    assert len(edges["cpu"]) > 14 * 216 and edges["cpu"] == edges["cuda"]


def test_prior_and_posterior_scores_agree(gens, noisy):
    cells, pos, system = noisy
    guide = spectrum_guide(cells[0].arrays["xanes"].mean(0))
    out = {}
    for dev, gen in gens.items():
        prior = PriorScore(gen.model, gen.sde)
        s = on(system, dev)
        with torch.no_grad():
            score = prior(pos.to(dev), 0.3, s)
        out[dev] = score.cpu(), GuidedScore(prior, guide, 10.0, bf16_gradients=False)(pos.to(dev), 0.3, s).cpu()
    for cpu, cuda in zip(out["cpu"], out["cuda"]):
        scale = cpu.abs().max()
        assert torch.allclose(cpu, cuda, atol=1e-3 * scale), (cpu - cuda).abs().max() / scale
    likelihood = out["cuda"][1] - out["cuda"][0]
    assert likelihood.norm() > 1e-3 * out["cuda"][0].norm()  # the guide acts on the GPU too


def test_spectra_agree(cell_2g):
    atoms = cell_2g.copy()
    spectra = {dev: XANESCalculator(device=dev).get_property("xanes", atoms) for dev in ("cpu", "cuda")}
    assert np.allclose(spectra["cpu"], spectra["cuda"], atol=1e-4 * spectra["cpu"].max())


def test_guided_generation_on_the_gpu_is_reproducible(gens, cell_2g):
    """A seeded run takes deterministic kernels (without them an H100 gave two different cells from one seed)
    and hands the global switch back."""
    target = cell_2g.arrays["xanes"].mean(0)
    runs = [gens["cuda"].generate_batch(cubic_cell(64, 2.0), 2.0, n=2, seed=3, steps=8, guide=target)
            for _ in range(2)]
    assert not torch.are_deterministic_algorithms_enabled()
    for a, b in zip(*runs):
        assert len(a) == 64 and np.isfinite(a.positions).all()
        assert np.allclose(a.positions, b.positions, atol=1e-4)
        assert np.isfinite(a.info["guide_residual"])


def test_training_runs_on_the_gpu(tmp_path, data_dir):
    for kind in ("prior", "xanes"):
        rc = main(["train", kind, "--data", str(data_dir), "--out", str(tmp_path / kind), "--steps", "3",
                   "--batch-size", "2", "--width", "16", "--layers", "1", "--device", "cuda"])
        assert rc == 0 and (tmp_path / kind / "model.pt").exists()
