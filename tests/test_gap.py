"""GAP per-atom energies (ase_xanesgen.frontends.gap) with the shipped carbon GAP on the shared a-C cells."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from ase_xanesgen.data.datasets import coordination_counts, load_cell, load_dataset, load_reference

quippy = pytest.importorskip("quippy")

from ase_xanesgen.frontends import gap  # noqa: E402

#: mean GAP energy per atom (eV) of d2.0_1 with the shipped xml, printed by benchmarks/fit_gap.py
REGRESSION_D20_1 = -8.354159


@pytest.fixture(scope="module")
def cells(data_dir) -> list[Atoms]:
    return load_dataset(data_dir, with_spectra=False)


@pytest.fixture(scope="module")
def checker() -> gap.GAPChecker:
    return gap.GAPChecker()


@pytest.fixture(scope="module")
def cell(cells) -> Atoms:
    return next(a for a in cells if a.info["name"] == "d2.0_1")


# ---------------------------------------------------------------- shipped potential on real cells


def test_energies_finite_and_sum_to_total(checker, cell):
    e = checker.energies(cell)
    assert e.shape == (len(cell),)
    assert np.all(np.isfinite(e))
    # independent total from a fresh quippy Potential used as a plain ASE calculator
    from quippy.potential import Potential

    atoms = cell.copy()
    atoms.calc = Potential(param_filename=str(gap.shipped_potential()))
    assert e.sum() == pytest.approx(atoms.get_potential_energy(), abs=1e-6)


def test_energies_reproducible_and_regression(checker, cell):
    e1 = gap.gap_energies(cell)
    e2 = gap.GAPChecker().energies(cell.copy())
    np.testing.assert_allclose(e1, e2, atol=1e-10)
    np.testing.assert_allclose(e1, checker.energies(cell), atol=1e-10)
    # recorded with benchmarks/fit_gap.py output (docs/gap.md); its CHGNet label is -8.357
    assert e1.mean() == pytest.approx(REGRESSION_D20_1, abs=1e-5)


def test_input_not_modified(checker, cell):
    atoms = cell.copy()
    pos = atoms.positions.copy()
    checker.energies(atoms)
    assert atoms.calc is None
    np.testing.assert_array_equal(atoms.positions, pos)


def test_invariance_translation_permutation(checker, cell):
    e = checker.energies(cell)
    moved = cell.copy()
    moved.positions += [0.37, -1.1, 2.9]
    moved.wrap()
    np.testing.assert_allclose(checker.energies(moved), e, atol=1e-8)
    perm = np.random.default_rng(0).permutation(len(cell))
    np.testing.assert_allclose(checker.energies(cell[perm]), e[perm], atol=1e-8)


def test_crystals_below_every_aC_cell(checker, cells):
    per_atom = {a.info["name"]: checker.energies(a).mean() for a in cells}
    diamond = checker.energies(load_reference("diamond")).mean()
    graphite = checker.energies(load_reference("graphite")).mean()
    lowest = min(per_atom.values())
    assert diamond <= lowest - 0.1, (diamond, min(per_atom, key=per_atom.get), lowest)
    assert graphite <= lowest - 0.1, (graphite, min(per_atom, key=per_atom.get), lowest)
    # energy rises with sp content: 1.5 g/cm3 (32 % CN2) > 2.0 (12 %) > 2.5 (1-2 %)
    assert per_atom["d1.5_1"] > per_atom["d2.0_1"] > per_atom["d2.5_1"]


def test_undercoordinated_atoms_higher(checker, data_dir):
    atoms = load_cell("d1.5_1")
    e = checker.energies(atoms)
    cn = coordination_counts(atoms)
    assert e[cn == 2].mean() > e[cn == 3].mean() + 0.3  # 0.43 eV with the CHGNet-labelled GAP


def test_periodic_images_small_cell(checker, data_dir):
    """A 2-atom primitive diamond cell (smaller than the cutoff) equals the 216-atom reference per atom."""
    ref = load_reference("diamond")
    a_ref = (ref.get_volume() / len(ref) * 8) ** (1 / 3)
    prim = bulk("C", "diamond", a=a_ref)
    np.testing.assert_allclose(checker.energies(prim), checker.energies(ref).mean(), atol=1e-6)


# ---------------------------------------------------------------- summary check


def test_check_flags_compressed_atom(checker, data_dir):
    atoms = load_reference("diamond")
    # push atom 0 half-way towards its nearest neighbour
    d = atoms.get_distances(0, range(1, len(atoms)), mic=True, vector=True)
    j = np.argmin(np.linalg.norm(d, axis=1))
    atoms.positions[0] += 0.4 * d[j]
    report = checker.check(atoms)
    assert 0 in report["high_energy"]
    assert report["n_atoms"] == len(atoms)
    assert report["energy"] == pytest.approx(report["energies"].sum(), abs=1e-6)
    assert report["energy_mean"] == pytest.approx(report["energies"].mean())
    assert report["threshold"] >= report["energy_mean"] + 0.1
    assert "relax" not in report


@pytest.mark.parametrize("name, spread", [("diamond", 1e-3), ("graphite", 0.05)])
def test_check_crystal_flags_nothing(checker, name, spread, data_dir):
    report = checker.check(load_reference(name))
    assert report["high_energy"] == []
    # graphite's two AB-stacking sites differ within the 4.5 A pair term (35 meV); diamond's atoms are all alike
    assert report["energy_std"] < spread


def test_check_relaxation(checker, cell):
    report = gap.gap_check(cell, relax_steps=5, fmax=0.01)
    relax = report["relax"]
    assert relax["steps"] == 5 and not relax["converged"]
    assert relax["energy_mean_final"] < relax["energy_mean_initial"]
    assert 0 < relax["displacement_mean"] <= relax["displacement_max"] < 1.0
    assert relax["displacements"].shape == (len(cell),)
    assert relax["positions"].shape == (len(cell), 3)


def test_check_absolute_threshold(checker, cell):
    e = checker.energies(cell)
    report = checker.check(cell, energy_threshold=float(np.median(e)))
    assert len(report["high_energy"]) >= len(cell) // 2 - 1


# ---------------------------------------------------------------- potential selection and bad input


def test_env_var_selects_potential(tmp_path, monkeypatch, cell):
    copy = tmp_path / "my_gap.xml"
    copy.write_bytes(gap.shipped_potential().read_bytes())
    monkeypatch.setenv(gap.GAP_ENV_VAR, str(copy))
    assert gap.resolve_potential() == copy.resolve()
    assert gap.get_checker().path == copy.resolve()
    np.testing.assert_allclose(gap.gap_energies(cell), gap.gap_energies(cell, gap.shipped_potential()), atol=1e-10)


def test_missing_file(tmp_path, monkeypatch):
    missing = tmp_path / "nope.xml"
    with pytest.raises(FileNotFoundError, match="nope.xml"):
        gap.gap_energies(bulk("C", "diamond"), missing)
    monkeypatch.setenv(gap.GAP_ENV_VAR, str(missing))
    with pytest.raises(FileNotFoundError, match=r"nope.xml.*XANESGEN_GAP"):
        gap.GAPChecker()


def test_directory_and_garbage(tmp_path):
    with pytest.raises(ValueError, match="not a file"):
        gap.GAPChecker(tmp_path)
    junk = tmp_path / "junk.xml"
    junk.write_bytes(b"\x00\x01 not xml at all")
    with pytest.raises(ValueError, match="junk.xml"):
        gap.GAPChecker(junk)
    empty = tmp_path / "empty.xml"
    empty.write_text("<Potential label='x' init_args='IP Tersoff'/>")
    with pytest.raises(ValueError, match="no GAP <descriptor>"):
        gap.GAPChecker(empty)


def test_potential_without_carbon(tmp_path):
    xml = tmp_path / "si_gap.xml"
    xml.write_text(
        "<GAP_x><Potential label='GAP_x' init_args='IP GAP label=GAP_x'/>"
        "<GAP_params label='GAP_x'><GAP_data do_core='F'><e0 Z='6' value='0'/></GAP_data>"
        "<gpSparse n_coordinate='2'><gpCoordinates>"
        "<descriptor>distance_2b cutoff=5.0 Z1=14 Z2=14</descriptor></gpCoordinates><gpCoordinates>"
        "<descriptor>soap cutoff=5.0 n_max=8 l_max=8 n_species=1 Z=14 species_Z={14 }</descriptor>"
        "</gpCoordinates></gpSparse></GAP_params></GAP_x>"
    )
    assert gap.gap_species(xml) == frozenset({14})
    with pytest.raises(ValueError, match=r"no carbon.*14"):
        gap.GAPChecker(xml)


def test_bad_atoms(checker):
    with pytest.raises(ValueError, match="empty"):
        checker.energies(Atoms())
    with pytest.raises(ValueError, match="no 3-D cell"):
        checker.energies(Atoms("C2", positions=[[0, 0, 0], [1.4, 0, 0]]))
    with pytest.raises(ValueError, match=r"atomic numbers \[14\]"):
        checker.energies(bulk("Si", "diamond"))
    with pytest.raises(TypeError, match="ase.Atoms"):
        checker.energies([bulk("C", "diamond")])
    with pytest.raises(ValueError, match="relax_steps"):
        checker.check(bulk("C", "diamond"), relax_steps=-1)
    for kwargs, match in ((dict(relax_steps=1.5), "relax_steps must be an integer"),
                          (dict(relax_steps=2, fmax=-1.0), "fmax must be > 0"),
                          (dict(relax_steps=2, fmax=float("nan")), "fmax must be > 0")):
        with pytest.raises(ValueError, match=match):
            checker.check(bulk("C", "diamond"), **kwargs)


def test_non_finite_cell_and_atoms_on_one_spot(checker, cell):
    """quippy gives every atom the isolated-atom energy for a NaN or inf cell, and a bare 'non-finite energies'
    error for two atoms on one spot: the cell is refused and the pair is named."""
    for bad in (np.nan, np.inf):
        broken = cell.copy()
        matrix = broken.cell.array.copy()
        matrix[1, 0] = bad
        broken.cell = matrix
        with pytest.raises(ValueError, match=r"\(NaN or inf\) cell"):
            checker.energies(broken)
    stacked = cell.copy()
    stacked.positions[7] = stacked.positions[3]
    with pytest.raises(RuntimeError, match="closest pair atoms 3 and 7, 0 A apart"):
        checker.energies(stacked)


def test_missing_quippy_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "quippy", None)
    monkeypatch.setitem(sys.modules, "quippy.potential", None)
    with pytest.raises(ImportError, match="pip install quippy-ase"):
        gap.GAPChecker()


def test_import_is_light():
    code = "import sys, ase_xanesgen, ase_xanesgen.frontends.gap; print('quippy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

