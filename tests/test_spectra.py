"""Spectrum utilities: calibrated grid, reading, resampling, normalising, validation, extxyz round trip."""

from __future__ import annotations

import numpy as np
import pytest
from ase.io import read, write

from ase_xanesgen.data import spectra as sp
from ase_xanesgen.data.datasets import N_ENERGY, default_data_dir, load_cell, load_reference

needs_data = pytest.mark.skipif(not (default_data_dir() / "reference").is_dir(), reason="shared a-C data not found")


def test_grid_increasing_and_step():
    grid = sp.energy_grid()
    assert grid.shape == (N_ENERGY,)
    assert np.all(np.diff(grid) > 0)
    # three-anchor least-squares step; README's 0.38-0.40 holds for the pi*-sigma* pair only (see docs)
    assert 0.38 <= np.diff(grid).mean() <= 0.44
    assert grid[0] < 284.0 and grid[-1] > 305.0  # covers pre-edge, pi*, sigma* and the diamond dip


def test_resample_preserves_gaussian_peak():
    rng = np.random.default_rng(0)
    energy = np.sort(rng.uniform(270.0, 320.0, 2000))
    energy = energy[np.concatenate([[True], np.diff(energy) > 1e-9])]
    intensity = np.exp(-0.5 * ((energy - 290.0) / 0.8) ** 2)
    y = sp.resample(energy, intensity)
    assert y.shape == (N_ENERGY,)
    assert abs(sp.energy_grid()[np.argmax(y)] - 290.0) <= 0.5 * sp.DE


def test_broaden_adds_widths_in_quadrature_and_keeps_the_area():
    grid = sp.energy_grid()
    fwhm = 2.0  # eV, a peak well inside the grid
    y = np.exp(-4 * np.log(2) * ((grid - 295.0) / fwhm) ** 2)
    wide = sp.broaden(y, 1.5)

    def width(s):  # FWHM from the second moment of a Gaussian
        mean = (grid * s).sum() / s.sum()
        return np.sqrt(8 * np.log(2) * ((grid - mean) ** 2 * s).sum() / s.sum())

    assert width(wide) == pytest.approx(np.hypot(fwhm, 1.5), rel=0.02)
    assert wide.sum() == pytest.approx(y.sum(), rel=1e-6)
    assert np.array_equal(sp.broaden(y, 0.0), y)
    assert sp.broaden(np.stack([y, 2 * y]), 1.5) == pytest.approx(np.stack([wide, 2 * wide]))
    for bad in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="fwhm"):
            sp.broaden(y, bad)


@needs_data
def test_graphite_pi_star_on_calibrated_grid():
    grid = sp.energy_grid()
    mean = load_reference("graphite").arrays["xanes"].mean(axis=0)
    window = (grid > 283.0) & (grid < 288.0)
    e_peak = grid[window][np.argmax(mean[window])]
    assert abs(e_peak - 285.4) <= sp.DE  # within one grid step (fit residual there is 0.23 eV)


@needs_data
def test_area_normalisation_puts_reference_on_ac_scale():
    graphite = load_reference("graphite").arrays["xanes"].mean(axis=0)
    diamond = load_reference("diamond").arrays["xanes"].mean(axis=0)
    ac = load_cell("d2.0_1").arrays["xanes"]
    assert graphite.sum() < 1.0 and ac.sum(axis=1).mean() > 10.0  # the two scales of the README
    for ref in (graphite, diamond):
        t = sp.prepare_target(ref)
        assert t.shape == (N_ENERGY,)
        assert t.sum() == pytest.approx(sp.AC_MEAN_AREA)
    assert sp.AC_MEAN_AREA == pytest.approx(ac.sum(axis=1).mean(), rel=0.03)
    # graphite has pi*, diamond does not
    assert sp.pi_star_intensity(sp.prepare_target(diamond)) < 0.1 * sp.pi_star_intensity(sp.prepare_target(graphite))
    rows = sp.normalise(ac, "area")
    assert rows.shape == ac.shape and np.allclose(rows.sum(axis=1), 1.0)
    edge = sp.normalise(ac, "edge", tail=5)
    assert np.allclose(edge[:, -5:].mean(axis=1), 1.0)


def test_read_spectrum_txt_and_csv(tmp_path):
    energy = np.linspace(270.0, 320.0, 101)
    intensity = np.exp(-0.5 * ((energy - 291.7) / 1.0) ** 2)
    txt = tmp_path / "measured.txt"
    np.savetxt(txt, np.column_stack([energy, intensity]), header="energy_eV intensity")
    csv = tmp_path / "measured.csv"
    np.savetxt(csv, np.column_stack([energy, intensity]), delimiter=",", header="energy,intensity", comments="")
    bare = tmp_path / "bare.csv"
    np.savetxt(bare, np.column_stack([energy, intensity]), delimiter=",")
    down = tmp_path / "down.txt"  # a down-scan reads as the same spectrum
    np.savetxt(down, np.column_stack([energy, intensity])[::-1])
    for path in (txt, csv, bare, down):
        e, y = sp.read_spectrum(path)
        np.testing.assert_allclose(e, energy)
        np.testing.assert_allclose(y, intensity, atol=1e-12)
    t = sp.prepare_target(csv)
    assert abs(sp.energy_grid()[np.argmax(t)] - 291.7) <= 0.5 * sp.DE


def _write(tmp_path, energy, intensity):
    path = tmp_path / "bad.txt"
    np.savetxt(path, np.column_stack([energy, intensity]))
    return path


@pytest.mark.parametrize(
    ("case", "match"),
    [("nan", r"bad.txt:11: NaN"), ("negative", "negative"), ("decreasing", "strictly increasing"), ("short", "covers")],
)
def test_bad_files_raise(tmp_path, case, match):
    energy = np.linspace(270.0, 320.0, 60)
    intensity = np.ones_like(energy)
    if case == "nan":
        intensity[10] = np.nan
    elif case == "negative":
        intensity[10] = -0.5
    elif case == "decreasing":
        energy[20] = energy[19]
    elif case == "short":
        energy = np.linspace(280.0, 300.0, 60)
    with pytest.raises(ValueError, match=match):
        sp.prepare_target(_write(tmp_path, energy, intensity))


def test_bad_arrays_raise(tmp_path):
    with pytest.raises(ValueError, match="energy points"):
        sp.prepare_target(np.ones(99))
    with pytest.raises(ValueError, match="NaN"):
        sp.validate_spectrum(np.full(N_ENERGY, np.nan))
    with pytest.raises(ValueError, match="negative"):
        sp.validate_spectrum(-np.ones(N_ENERGY))
    with pytest.raises(ValueError, match="zero"):
        sp.normalise(np.zeros(N_ENERGY))
    (tmp_path / "three.csv").write_text("280,1,2\n281,1,2\n")
    with pytest.raises(ValueError, match="2 columns"):
        sp.read_spectrum(tmp_path / "three.csv")
    # tiny negative rounding noise is clipped, not an error
    y = np.ones(N_ENERGY)
    y[0] = -1e-9
    assert sp.validate_spectrum(y)[0] == 0.0


@pytest.mark.parametrize(("energy", "match"), [(np.linspace(0.27, 0.32, 60), "keV"),
                                                (np.linspace(-15.0, 35.0, 60), "relative to the edge")])
def test_energies_in_other_units_get_a_hint(energy, match):
    with pytest.raises(ValueError, match=match):
        sp.prepare_target((energy, np.ones_like(energy)))
    far = energy - 1000.0  # neither keV nor relative to the edge: no hint that says so
    with pytest.raises(ValueError, match="absolute scale") as error:
        sp.prepare_target((far, np.ones_like(far)))
    assert "keV" not in str(error.value) and "relative to the edge" not in str(error.value)


def test_late_scan_needs_pre_edge():
    energy = np.linspace(280.0, 320.0, 200)
    intensity = np.exp(-0.5 * ((energy - 285.4) / 0.5) ** 2) + 0.2
    with pytest.raises(ValueError, match="pre_edge"):
        sp.resample(energy, intensity)
    y = sp.resample(energy, intensity, pre_edge=0.0)
    assert np.all(y[sp.energy_grid() < 279.0] == 0.0)


@needs_data
def test_store_spectra_extxyz_roundtrip(tmp_path):
    atoms = load_cell("d2.0_1")
    ref = atoms.arrays.pop("xanes")
    sp.store_spectra(atoms, ref)
    path = tmp_path / "cell.extxyz"
    write(path, atoms)
    back = read(path)
    np.testing.assert_allclose(back.arrays["xanes"], ref, atol=1e-7)
    np.testing.assert_allclose(back.arrays["xanes_pi_star"], sp.pi_star_intensity(ref), atol=1e-7)
    np.testing.assert_allclose(back.info["xanes_mean"], ref.mean(axis=0), rtol=1e-12)
    with pytest.raises(ValueError, match="expected shape"):
        sp.store_spectra(atoms, ref[:10])
