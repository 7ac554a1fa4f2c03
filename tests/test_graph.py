import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.neighborlist import neighbor_list

from ase_xanesgen.graph import edge_vectors, neighbour_graph, radius_graph_pbc


def edge_set(i, j, s):
    return set(zip(np.asarray(i).tolist(), np.asarray(j).tolist(), map(tuple, np.asarray(s).tolist())))


def torch_edges(atoms, cutoff, offset=None):
    pos = torch.tensor(atoms.positions + (0 if offset is None else offset))
    cell = torch.tensor(atoms.cell.array)[None]
    ei, shifts = radius_graph_pbc(pos, cell, None, cutoff)
    d = edge_vectors(pos, cell, torch.zeros(len(atoms), dtype=torch.long), ei, shifts).norm(dim=1)
    return ei.numpy(), shifts.numpy(), d.numpy()


def triclinic():
    atoms = bulk("C", "diamond", a=3.57, cubic=True) * (2, 2, 2)
    atoms.set_cell(atoms.cell.array + np.array([[0, 0.6, 0.3], [0.8, 0, 0], [0.2, 0.5, 0]]), scale_atoms=True)
    atoms.rattle(0.05, seed=1)
    return atoms


@pytest.mark.parametrize("make", ["acell", "triclinic", "small"])
def test_torch_cell_list_matches_ase(make, cell_2g):
    atoms = {"acell": cell_2g, "triclinic": triclinic(), "small": bulk("C", "diamond", a=3.57)}[make]
    cutoff = 3.0
    ref = edge_set(*neighbor_list("ijS", atoms, cutoff))
    # unwrapped positions must give the same pairs (shifts change, distances do not)
    ei, shifts, d = torch_edges(atoms, cutoff)
    assert edge_set(ei[0], ei[1], shifts) == ref
    assert len(ei[0]) == len(ref) and d.max() < cutoff


def test_unwrapped_positions_same_distances(cell_2g):
    atoms = cell_2g
    rng = np.random.default_rng(1)
    images = rng.integers(-3, 4, size=(len(atoms), 3)) @ atoms.cell.array
    _, _, d = torch_edges(atoms, 3.0)
    _, _, d2 = torch_edges(atoms, 3.0, offset=images)
    assert np.allclose(np.sort(d), np.sort(d2), atol=1e-9)


def test_matscipy_graph_matches_ase(cell_2g):
    ei, shifts = neighbour_graph(cell_2g, 3.0)
    assert edge_set(ei[0], ei[1], shifts) == edge_set(*neighbor_list("ijS", cell_2g, 3.0))


def test_batched_graphs_do_not_mix(cell_2g):
    small = bulk("C", "diamond", a=3.57) * (2, 2, 2)
    pos = torch.tensor(np.concatenate([cell_2g.positions, small.positions]))
    cell = torch.tensor(np.stack([cell_2g.cell.array, small.cell.array]))
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor([len(cell_2g), len(small)]))
    ei, _ = radius_graph_pbc(pos, cell, batch, 3.0)
    assert torch.equal(batch[ei[0]], batch[ei[1]])
    n_ref = len(neighbor_list("i", cell_2g, 3.0)) + len(neighbor_list("i", small, 3.0))
    assert ei.shape[1] == n_ref


def test_blocked_candidates_give_the_same_graph(cell_2g, monkeypatch):
    """Large inputs scan the neighbour bins a few offsets at a time: same edges, same order."""
    from ase_xanesgen.graph import neighbours

    whole = radius_graph_pbc(torch.tensor(cell_2g.positions), torch.tensor(cell_2g.cell.array)[None], None, 3.0)
    monkeypatch.setattr(neighbours, "CANDIDATE_BLOCK", 1)  # one offset per block
    blocked = radius_graph_pbc(torch.tensor(cell_2g.positions), torch.tensor(cell_2g.cell.array)[None], None, 3.0)
    assert all(torch.equal(a, b) for a, b in zip(whole, blocked))
