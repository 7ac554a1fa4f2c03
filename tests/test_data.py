import numpy as np

from ase_xanesgen.data.datasets import coordination_counts, load_dataset, split_by_topology
from ase_xanesgen.geometry import density_of


def test_reads_all_cells_with_spectra(data_dir):
    cells = load_dataset(data_dir)
    assert len(cells) == 25
    for atoms in cells:
        assert len(atoms) == 216 and set(atoms.get_chemical_symbols()) == {"C"}
        assert atoms.arrays["xanes"].shape == (216, 100)
        assert 1.4 < density_of(atoms) < 3.6


def test_known_coordination(data_dir):
    cells = {a.info["name"]: a for a in load_dataset(data_dir, with_spectra=False)}
    cn = coordination_counts(cells["d2.0_1"])
    assert np.bincount(cn, minlength=5)[2:5].tolist() == [25, 166, 25]


def test_split_holds_out_whole_topologies(data_dir):
    train, val = split_by_topology(load_dataset(data_dir, with_spectra=False))
    names = {a.info["name"] for a in val}
    assert names and len(train) + len(val) == 25
    # a held-out cell shares no (density, CN histogram) key with a training cell
    key = lambda a: (round(density_of(a), 1), tuple(np.bincount(coordination_counts(a), minlength=7)))
    assert not {key(a) for a in val} & {key(a) for a in train}
