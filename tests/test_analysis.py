"""Structure analysis on the shared crystals and a-C cells (read from ../shared, never copied)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.geometry import find_mic
from ase.io import write
from ase.neighborlist import NeighborList

from ase_xanesgen.analysis import (
    HYBRIDISATION_KEYS,
    bond_angles,
    compare,
    coordination_numbers,
    hybridisation_fractions,
    measure,
    plot_report,
    rdf,
    rdf_first_peak,
    ring_statistics,
    steinhardt,
    voronoi_volumes,
)
from ase_xanesgen.cli import analyze
from ase_xanesgen.data.datasets import CC_BOND_CUTOFF, load_cell, load_reference

# q_l of four neighbours on a regular tetrahedron (diamond's first shell)
Q4_TETRAHEDRAL, Q6_TETRAHEDRAL = 0.509175, 0.628539


@pytest.fixture(scope="module")
def diamond(data_dir) -> Atoms:
    return load_reference("diamond")


@pytest.fixture(scope="module")
def graphite(data_dir) -> Atoms:
    return load_reference("graphite")


@pytest.fixture(scope="module")
def a_c(data_dir) -> Atoms:
    return load_cell("d2.0_1")


@pytest.fixture(scope="module")
def a_c_dense(data_dir) -> Atoms:
    return load_cell("d3.5_2")


def test_diamond_targets(diamond):
    assert np.all(coordination_numbers(diamond) == 4)
    assert hybridisation_fractions(diamond)["CN4"] == 1.0
    angles = bond_angles(diamond)
    assert len(angles) == 6 * len(diamond)
    assert angles.mean() == pytest.approx(np.degrees(np.arccos(-1 / 3)), abs=1e-3)  # 109.47°
    assert rdf_first_peak(diamond) == pytest.approx(1.54, abs=0.01)
    for query in ({"num_neighbors": 4}, {"cutoff": CC_BOND_CUTOFF}):
        q = steinhardt(diamond, (4, 6), **query)
        np.testing.assert_allclose(q[4], Q4_TETRAHEDRAL, atol=1e-5)
        np.testing.assert_allclose(q[6], Q6_TETRAHEDRAL, atol=1e-5)
    # every atom of diamond lies in 12 six-membered rings: 12 / 6 = 2 rings per atom
    assert ring_statistics(diamond).tolist() == [0] * 6 + [2 * len(diamond)] + [0] * 6


def test_graphite_targets(graphite):
    assert np.all(coordination_numbers(graphite) == 3)
    angles = bond_angles(graphite)
    np.testing.assert_allclose(angles, 120.0, atol=1e-6)
    assert rdf_first_peak(graphite) == pytest.approx(1.42, abs=0.01)
    assert ring_statistics(graphite)[6] == len(graphite) // 2  # 3 hexagons per atom, 6 atoms per hexagon


@pytest.mark.needs_data
@pytest.mark.parametrize("name", ["diamond", "graphite", "d2.0_1"])
def test_voronoi_volumes_sum_to_cell(name):
    atoms = load_reference(name) if name in ("diamond", "graphite") else load_cell(name)
    volumes = voronoi_volumes(atoms)
    assert volumes.shape == (len(atoms),) and np.all(volumes > 0)
    assert volumes.sum() == pytest.approx(atoms.get_volume(), rel=1e-5)


def test_freud_box_independent_of_cell_orientation(graphite):
    """A rotated, non-upper-triangular (hexagonal) cell gives the same q_l and Voronoi volumes."""
    rotated = graphite.copy()
    rotated.rotate(37, (1, 2, 3), rotate_cell=True)
    assert not np.allclose(rotated.cell[np.tril_indices(3, -1)], 0)
    for l in (4, 6):
        np.testing.assert_allclose(steinhardt(rotated)[l], steinhardt(graphite)[l], atol=1e-5)
    np.testing.assert_allclose(voronoi_volumes(rotated), voronoi_volumes(graphite), rtol=1e-4)


def test_coordination_matches_ase_neighborlist(a_c):
    nl = NeighborList([CC_BOND_CUTOFF / 2] * len(a_c), skin=0.0, self_interaction=False, bothways=True)
    nl.update(a_c)
    direct = np.array([len(nl.get_neighbors(k)[0]) for k in range(len(a_c))])
    np.testing.assert_array_equal(coordination_numbers(a_c), direct)
    fractions = hybridisation_fractions(a_c)
    assert tuple(fractions) == HYBRIDISATION_KEYS
    assert sum(fractions.values()) == pytest.approx(1.0)
    assert (fractions["CN2"], fractions["CN3"], fractions["CN4"]) == pytest.approx((0.12, 0.77, 0.11), abs=0.01)
    cn = coordination_numbers(a_c)
    assert len(bond_angles(a_c)) == np.sum(cn * (cn - 1) // 2)


def test_rdf_of_ideal_gas_is_one():
    rng = np.random.default_rng(0)
    gas = Atoms("C2000", positions=rng.uniform(0, 20, (2000, 3)), cell=[20, 20, 20], pbc=True)
    r, g = rdf(gas, rmax=6.0, bins=60)
    assert r.shape == g.shape == (60,)
    assert g[r > 2].mean() == pytest.approx(1.0, abs=0.02)


@pytest.mark.slow
def test_compare_self_is_zero_and_other_density_is_not(a_c, a_c_dense):
    same = compare(a_c, a_c)
    assert all(value == 0.0 for value in same.values()), same
    assert compare([a_c, a_c_dense], [a_c, a_c_dense]) == {k: 0.0 for k in same}
    other = compare(a_c, a_c_dense)
    assert set(other) == set(same)
    for key in ("density", "CN4", "rdf_l1", "rdf_first_peak", "angle_wasserstein", "q6_wasserstein",
                "voronoi_wasserstein"):
        assert other[key] > 0, key
    assert other["density"] == pytest.approx(1.5, abs=0.01)
    assert compare(measure(a_c), measure(a_c_dense)) == other


def test_bad_input(a_c):
    with pytest.raises(ValueError, match="no 3-D cell"):
        coordination_numbers(molecule("CH4"))
    with pytest.raises(ValueError, match="'d2.0_1'.*not periodic"):
        no_pbc = a_c.copy()
        no_pbc.pbc = False
        voronoi_volumes(no_pbc)
    with pytest.raises(ValueError, match="empty list"):
        hybridisation_fractions([])
    with pytest.raises(ValueError, match="#1 .*no 3-D cell"):
        compare([a_c, molecule("CH4")], a_c)


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    analyze.add_arguments(parser)
    return analyze.run(parser.parse_args(argv))


def test_cli_writes_json_and_png(tmp_path, a_c, a_c_dense, capsys):
    gen, ref = tmp_path / "gen.vasp", tmp_path / "md.vasp"
    write(gen, a_c, format="vasp", direct=True)
    write(ref, a_c_dense, format="vasp", direct=True)
    report, png = tmp_path / "report.json", tmp_path / "report.png"
    assert _cli([str(gen), "--reference", str(ref), "--json", str(report), "--plot", str(png), "--no-gap"]) == 0
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    data = json.loads(report.read_text())
    assert set(data["panels"]) == {"coordination", "rdf", "angles", "q4", "q6", "voronoi"}
    assert data["generated"]["hybridisation"] == hybridisation_fractions(a_c)
    assert data["distances"]["density"] == pytest.approx(compare(a_c, a_c_dense)["density"])
    angles = data["panels"]["angles"]
    assert len(angles["edges"]) == len(angles["generated"]) + 1
    assert "distances:" in capsys.readouterr().out


def test_cli_gap_panel_and_its_failure(tmp_path, a_c, monkeypatch, capsys):
    cell = tmp_path / "a.vasp"
    write(cell, a_c, format="vasp", direct=True)
    argv = [str(cell), "--reference", str(cell), "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.png"),
            "--overwrite"]

    monkeypatch.setattr(analyze, "gap_energies", lambda atoms, potential=None: np.linspace(-8.0, -7.0, len(atoms)))
    assert _cli(argv) == 0
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["generated"]["energy_mean_eV"] == pytest.approx(-7.5)
    assert sum(data["panels"]["energy"]["generated"]) > 0

    def broken(atoms, potential=None):
        raise ImportError("quippy is not installed")

    monkeypatch.setattr(analyze, "gap_energies", broken)  # GAP unavailable: the panel is dropped with a warning
    assert _cli(argv) == 0
    assert "GAP panel skipped" in capsys.readouterr().err
    assert "energy" not in json.loads((tmp_path / "r.json").read_text())["panels"]
    assert _cli(argv + ["--potential", "missing.xml"]) == 2  # a potential the user named must exist


def test_cli_rejects_structure_without_cell(tmp_path, a_c, capsys):
    xyz, ref = tmp_path / "mol.xyz", tmp_path / "md.vasp"
    write(xyz, molecule("CH4"))
    write(ref, a_c, format="vasp", direct=True)
    assert _cli([str(xyz), "--reference", str(ref), "--no-gap"]) == 2
    assert "no 3-D cell" in capsys.readouterr().err


def test_analyze_refuses_non_carbon_structures_and_unreadable_inputs(tmp_path, capsys, cell_2g):
    """Carbon statistics of a silicon cell would be meaningless: a clear error and the CLI's exit code 2."""
    from ase.io import write

    from ase_xanesgen.cli.main import main

    si = cell_2g.copy()
    si.symbols[:] = "Si"
    write(tmp_path / "si.vasp", si)
    write(tmp_path / "md.vasp", cell_2g)
    assert main(["analyze", str(tmp_path / "si.vasp"), "--reference", str(tmp_path / "md.vasp"), "--no-gap"]) == 2
    assert "carbon" in capsys.readouterr().err
    # a spectrum given as a reference structure, and a GAP potential named but missing: errors, not a traceback or
    # a skipped panel
    (tmp_path / "spectrum.csv").write_text("energy,intensity\n285.0,1.0\n")
    md = str(tmp_path / "md.vasp")
    assert main(["analyze", md, "--reference", str(tmp_path / "spectrum.csv"), "--no-gap"]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["analyze", md, "--reference", md, "--potential", str(tmp_path / "nothere.xml")]) == 2
    assert "nothere.xml" in capsys.readouterr().err
    assert main(["analyze", md, "--reference", md, "--no-gap", "--plot", str(tmp_path / "report.bogus")]) == 2
    assert "cannot plot" in capsys.readouterr().err


def test_small_cells_and_supercells_give_the_same_statistics(cell_2g):
    """g(r) (periodic images counted, N^2 normalisation), Steinhardt (freud needs a radius below half the cell)
    and rings (a ring must not meet its own image) of a cell and of its supercell agree; the 8-atom cubic diamond
    cell gives the textbook values."""
    from ase.build import bulk

    small = bulk("C", "diamond", a=3.567, cubic=True)
    big = small.repeat(3)
    r, g_small = rdf(small)
    _, g_big = rdf(big)
    np.testing.assert_allclose(g_small, g_big, atol=1e-9)
    assert g_small[r > 4.0].mean() == pytest.approx(1.0, abs=0.05)  # was 8/7 with N (N - 1)
    _, g_md = rdf(cell_2g)
    _, g_md2 = rdf(cell_2g.repeat(2))
    np.testing.assert_allclose(g_md, g_md2, atol=1e-9)
    q = steinhardt(small)
    np.testing.assert_allclose(q[4], Q4_TETRAHEDRAL, atol=1e-5)
    np.testing.assert_allclose(q[6], Q6_TETRAHEDRAL, atol=1e-5)
    assert ring_statistics(small, maxlength=7).tolist() == [0] * 6 + [2 * len(small), 0]  # odd maxlength too
    rings = ring_statistics(cell_2g, maxlength=12)
    assert rings[12] > 0  # rings of exactly maxlength atoms are counted
    np.testing.assert_array_equal(rings * 8, ring_statistics(cell_2g.repeat(2), maxlength=12))


def test_cli_prints_nan_and_writes_the_report_first(tmp_path, a_c, capsys):
    """8 isolated atoms have no bonds: their angle, q_l and first peak are NaN, printed as ``nan`` (the summary
    line crashed on ``None`` and nothing was written)."""
    from ase_xanesgen.cli.main import main

    gas = Atoms("C8", scaled_positions=np.indices((2, 2, 2)).reshape(3, -1).T / 2, cell=[8.0] * 3, pbc=True)
    write(tmp_path / "gas.vasp", gas, format="vasp", direct=True)
    write(tmp_path / "md.vasp", a_c, format="vasp", direct=True)
    report = tmp_path / "gas.json"
    argv = ["analyze", str(tmp_path / "gas.vasp"), "--reference", str(tmp_path / "md.vasp"), "--no-gap"]
    assert main(argv + ["--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "r1=nan Å" in out and "q4=nan" in out and "angle_wasserstein=nan" in out
    data = json.loads(report.read_text())
    assert data["generated"]["rdf_first_peak_A"] is None and data["generated"]["hybridisation"]["CN<=1"] == 1.0


def test_cli_refuses_to_overwrite_an_existing_report_unless_asked(tmp_path, a_c, capsys):
    from ase_xanesgen.cli.main import main

    gen, report = tmp_path / "gen.vasp", tmp_path / "report.json"
    write(gen, a_c, format="vasp", direct=True)
    report.write_text("mine")
    argv = ["analyze", str(gen), "--reference", str(gen), "--no-gap", "--json", str(report)]
    assert main(argv) == 2
    assert "exists" in capsys.readouterr().err and report.read_text() == "mine"
    assert main(argv + ["--overwrite"]) == 0
    assert json.loads(report.read_text())["files"]["generated"] == [str(gen)]
    png = tmp_path / "report.png"  # the API keeps files as the command does
    png.write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        plot_report(json.loads(report.read_text()), png)
    plot_report(json.loads(report.read_text()), png, overwrite=True)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_refuses_to_overwrite_an_input(tmp_path, a_c, capsys):
    """``--json`` naming a structure or the potential is refused before any work; the file keeps its content."""
    from ase_xanesgen.cli.main import main

    gen, ref, pot = tmp_path / "gen.vasp", tmp_path / "md.vasp", tmp_path / "gap.xml"
    for path in (gen, ref):
        write(path, a_c, format="vasp", direct=True)
    pot.write_text("<GAP/>")
    for target in (gen, ref, pot):
        before = target.read_bytes()
        argv = ["analyze", str(gen), "--reference", str(ref), "--potential", str(pot), "--json", str(target)]
        assert main(argv) == 2
        assert "overwrite" in capsys.readouterr().err
        assert target.read_bytes() == before


def test_non_finite_positions_or_cell_are_refused(a_c):
    bad_position = a_c.copy()
    bad_position.positions[3] = np.nan
    bad_cell = a_c.copy()
    bad_cell.cell[0, 0] = np.inf
    for atoms, what in ((bad_position, "positions"), (bad_cell, "cell")):
        for function in (voronoi_volumes, steinhardt, rdf, bond_angles):
            with pytest.raises(ValueError, match=f"non-finite .*{what}|{what}.*non-finite"):
                function(atoms)


def test_steinhardt_nearest_neighbours_beyond_3_angstrom(a_c):
    """fcc with 12 neighbours at 4.24 Å (a = 6 Å) gives the fcc q4/q6 in its 1-atom primitive cell, its cubic cell
    and a supercell (a fixed 3 Å reach would size the repeat too small: q4 0.342, q6 0.491)."""
    from ase.build import bulk

    q4_fcc, q6_fcc = 0.190941, 0.574524
    for atoms in (bulk("Pb", "fcc", a=6.0), bulk("Pb", "fcc", a=6.0, cubic=True), bulk("Pb", "fcc", a=6.0) * 3):
        with pytest.warns(UserWarning, match="carbon"):
            q = steinhardt(atoms, num_neighbors=12)
        np.testing.assert_allclose(q[4], q4_fcc, atol=1e-5)
        np.testing.assert_allclose(q[6], q6_fcc, atol=1e-5)
    np.testing.assert_allclose(steinhardt(a_c, num_neighbors=4)[6], steinhardt(a_c * 2, num_neighbors=4)[6][:216],
                               atol=1e-5)
    with pytest.raises(TypeError, match="one ase.Atoms"):
        steinhardt([a_c, a_c])
    for bad in ({"cutoff": 0.0}, {"cutoff": -1.0}, {"num_neighbors": 0}, {"num_neighbors": -4}):
        with pytest.raises(ValueError, match="must be"):
            steinhardt(a_c, **bad)


@pytest.mark.needs_data
def test_rdf_l1_measures_structure_not_bins():
    """Smoothed by 0.05 Å, two 2.5 g/cm3 cells are 0.18 apart and a 2.5 and a 3.0 g/cm3 cell 0.47, at 150 and at
    1200 bins (raw bins: 0.55 / 1.74 for the pair of one density, growing with the bin count and beyond the 3.0)."""
    cells = {name: load_cell(name) for name in ("d2.5_1", "d2.5_2", "d0.0_11")}
    l1 = {}
    for bins in (150, 1200):
        m = {name: measure(atoms, bins=bins) for name, atoms in cells.items()}
        l1[bins] = (compare(m["d2.5_1"], m["d2.5_2"])["rdf_l1"], compare(m["d2.5_1"], m["d0.0_11"])["rdf_l1"])
    np.testing.assert_allclose(l1[150], l1[1200], atol=0.02)
    same, denser = l1[1200]
    assert same == pytest.approx(0.18, abs=0.02) and denser == pytest.approx(0.47, abs=0.02)


def test_compare_refuses_different_settings(a_c, a_c_dense):
    import dataclasses

    m = measure(a_c)
    with pytest.raises(ValueError, match="cut-offs"):
        compare(m, measure(a_c_dense, cutoff=1.6))
    with pytest.raises(ValueError, match="ring_maxlength"):
        compare(m, dataclasses.replace(m, rings=m.rings[:9]))


@pytest.mark.needs_data
def test_rdf_first_peak_is_not_bin_noise():
    """The four 2.5 g/cm3 MD cells have first peaks within 17 mÅ at the default smoothing (51 mÅ at 0.02 Å)."""
    peaks = [rdf_first_peak(load_cell(f"d2.5_{k}")) for k in range(1, 5)]
    assert np.ptp(peaks) < 0.02
    assert np.mean(peaks) == pytest.approx(1.463, abs=0.005)


def test_sheared_cell_is_reduced_before_repeating(a_c):
    """d2.0_1 written with vectors b + 2a, c + 2b is the same lattice: as few copies and the same rings and q_l."""
    from ase_xanesgen.analysis._common import repeat_to_width

    sheared = a_c.copy()
    a, b, c = a_c.cell.array
    sheared.set_cell([a, b + 2 * a, c + 2 * b], scale_atoms=False)
    sheared.wrap()  # as a file written with these vectors holds it
    width = 12 * CC_BOND_CUTOFF
    assert repeat_to_width(sheared, width)[1] == repeat_to_width(a_c, width)[1] == 8
    big, _ = repeat_to_width(sheared, width)
    moved = find_mic(big.positions[: len(a_c)] - sheared.positions, a_c.cell)[1]
    np.testing.assert_allclose(moved, 0.0, atol=1e-9)  # original atoms first, in order, up to lattice vectors
    np.testing.assert_array_equal(ring_statistics(sheared), ring_statistics(a_c))
    np.testing.assert_allclose(steinhardt(sheared)[6], steinhardt(a_c)[6], atol=1e-5)


def test_rdf_arguments_and_non_carbon_warning(a_c):
    import warnings

    for bad in ({"bins": 0}, {"rmax": 0.0}, {"rmax": -1.0}):
        with pytest.raises(ValueError, match="must be"):
            rdf(a_c, **bad)
    si = a_c.copy()
    si.symbols[:] = "Si"
    for function in (coordination_numbers, hybridisation_fractions, bond_angles, rdf_first_peak, ring_statistics):
        with pytest.warns(UserWarning, match=r"\['Si'\].*carbon"):
            function(si)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        coordination_numbers(a_c)
        rdf(si)  # g(r) and Voronoi volumes do not depend on the element
