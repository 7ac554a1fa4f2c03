import re
import warnings

import numpy as np
import pytest

from ase_xanesgen.analysis import hybridisation_fractions
from ase_xanesgen.data.datasets import load_cell, load_dataset, split_by_topology
from ase_xanesgen.data import unmixing
from ase_xanesgen.data.spectra import broaden, check_calibration, energy_grid, prepare_target, subtract_pre_edge
from ase_xanesgen.data.unmixing import coordination_spectra, shipped_coordination_spectra, unmix_coordination
from ase_xanesgen.guidance import CoordinationGuide, RingStrainGuide, XANESGuide, spectrum_guide
from ase_xanesgen.guidance.xanes import DEFAULT_RING_STRAIN_WEIGHT


def test_unmixing_recovers_held_out_fractions(data_dir):
    _, held_out = split_by_topology(load_dataset(data_dir))
    assert len(held_out) == 4  # 1.5, 2.0, 2.5 and 3.5 g/cm3 topologies
    for cell in held_out:
        fractions, misfit = unmix_coordination(cell.arrays["xanes"].mean(0), return_residual=True)
        true = hybridisation_fractions(cell)
        assert sum(fractions.values()) == pytest.approx(1.0)
        assert misfit < 0.1  # measured: 0.03-0.08
        for key, value in fractions.items():
            assert value == pytest.approx(true[key], abs=0.08)  # measured: <= 0.046 (3.5 g/cm3 CN3; 0.069 before)


def test_unmixing_tolerates_a_measurement_s_broadening(data_dir):
    """A spectrum 1 eV (FWHM) broader than DFT, as a measurement at modest resolution, unmixes as well: the
    components' features are wider than the grid step already."""
    _, held_out = split_by_topology(load_dataset(data_dir))
    for cell in held_out:
        fractions = unmix_coordination(broaden(cell.arrays["xanes"].mean(0), 1.0))
        true = hybridisation_fractions(cell)
        for key, value in fractions.items():
            assert value == pytest.approx(true[key], abs=0.08)  # measured: <= 0.052 (3.5 g/cm3; 0.046 unbroadened)


def measured_like(cell, start: float, background, fwhm: float = 0.0, seed: int = 0):
    """A DFT cell mean as an experimentalist's scan: ``start``-320 eV in 0.1 eV steps, ``fwhm`` (eV) broader,
    0.5 % noise, ``background(energy)`` (in units of the maximum) added, arbitrary units."""
    energy = np.arange(start, 320.0 + 1e-9, 0.1)
    clean = np.interp(energy, energy_grid(), broaden(cell.arrays["xanes"].mean(0), fwhm), left=0.0)
    noise = np.random.default_rng(seed).normal(0.0, 0.005 * clean.max(), energy.shape)
    return energy, clean, 12345.0 * (clean + clean.max() * background(energy) + noise)


def test_a_measured_background_is_flagged_and_subtracted(data_dir):
    """Unmixed as it is, a sloped background reads as sp (the pi* share drops after area normalisation); a flat one
    is fitted out by the unmixing's constant. The target warns about both, and the pre-edge line removes them:
    fitted as a line from a scan starting at 265 eV, as a constant from one starting at 275 eV (a slope from 5 eV
    of noisy points would add error). From 280 eV the constant leaves part of the slope, which warns as an edge
    step (a background rising across the edge)."""
    cell = load_cell("d1.5_1", data_dir)
    for start, background, tolerance, left in ((265.0, lambda e: 0.05 + 0.002 * (e - 265.0), 0.01, []),
                                               (275.0, lambda e: 0.05 + 0 * e, 0.01, []),
                                               (280.0, lambda e: 0.05 + 0.002 * (e - 280.0), 0.05, ["edge step"])):
        energy, clean, measured = measured_like(cell, start, background)
        true = unmix_coordination((energy, clean), measurement="dft")
        with pytest.warns(UserWarning, match="pre-edge"):
            biased = unmix_coordination((energy, measured), measurement="dft")
        flat = start == 275.0
        assert (abs(biased["CN2"] - true["CN2"]) < 0.015) if flat else (biased["CN2"] > true["CN2"] + 0.05)
        with warnings.catch_warnings(record=True) as record:  # measured: CN2 0.34 flat, 0.38 / 0.41 sloped; 0.33
            warnings.simplefilter("always")
            fixed = unmix_coordination((energy, subtract_pre_edge(energy, measured)), measurement="dft")
        assert [k for k in left if any(k in str(w.message) for w in record)] == left and len(record) == len(left)
        for key, value in fixed.items():
            assert value == pytest.approx(true[key], abs=tolerance)  # measured: 0.001, 0.001, 0.035
    with pytest.raises(ValueError, match="pre-edge"):
        subtract_pre_edge(energy[energy > 281.5], measured[energy > 281.5])


def test_an_energy_offset_and_an_edge_step_are_flagged(data_dir):
    """The unmixed fractions follow an offset of the energy axis (0.5 eV: CN4 0.13 -> 0.03 / 0.26) but no longer
    an edge step (fitted out); the target warns about both, names the shift that undoes the offset, and no DFT cell
    mean trips either check. A scan's small negative noise is clipped, not refused."""
    assert not [a.info["name"] for a in load_dataset(data_dir) if check_calibration(a.arrays["xanes"].mean(0))]
    cell = load_cell("d2.0_1", data_dir)
    y = cell.arrays["xanes"].mean(0)
    energy, clean, noisy = measured_like(cell, 265.0, lambda e: 0 * e)
    true = unmix_coordination(y)
    for shift in (-0.6, 0.6):
        scan = np.interp(energy - shift, energy_grid(), y, left=0.0)  # the cell's spectrum, its axis off by shift
        with pytest.warns(UserWarning, match="shift its energies by") as record:
            shifted = unmix_coordination((energy, scan), measurement="dft")
        named = [float(m) for w in record for m in re.findall(r"shift its energies by ([+-][\d.]+) eV", str(w.message))]
        assert named == [pytest.approx(-shift, abs=0.1)]  # measured: exact
        assert abs(shifted["CN4"] - true["CN4"]) > 0.05
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # shifted back: nothing to warn about, the fractions return
            back = unmix_coordination((energy - shift, scan), measurement="dft")
        assert back["CN4"] == pytest.approx(true["CN4"], abs=0.02)
    with pytest.warns(UserWarning, match="edge step"):
        stepped = unmix_coordination((energy, clean + 0.3 * clean.max() / (1 + np.exp(-(energy - 290.0)))),
                                     measurement="dft")
    assert stepped["CN4"] == pytest.approx(true["CN4"], abs=0.02)  # measured: 0.127 against 0.132 (0.03 before)
    assert noisy.min() < 0
    assert unmix_coordination((energy, noisy), measurement="dft")["CN4"] == pytest.approx(true["CN4"], abs=0.02)


def arctan_step(energy: np.ndarray, height: float, centre: float = 290.0, width: float = 1.0) -> np.ndarray:
    """A measurement's edge step: ``height`` (of the spectrum's maximum) above ``centre`` eV."""
    return height * (0.5 + np.arctan((energy - centre) / width) / np.pi)


HELD_OUT = ("d1.5_9", "d0.0_15", "d2.5_4", "d3.5_2")  # 1.5 to 3.5 g/cm3: CN4 0.04 to 0.94


def test_an_edge_step_is_fitted_out_and_can_be_subtracted(data_dir):
    """A 30 % edge step, left in, would pull sp3-rich fractions towards sp2 (d2.5_4: CN4 0.13 against 0.28; d3.5_2:
    0.59 against 0.96); the unmixing fits it out, the target warns (with the flag that removes it), and
    ``subtract_edge_step`` gives back the clean target."""
    for name in HELD_OUT:
        energy, clean, _ = measured_like(load_cell(name, data_dir), 265.0, lambda e: 0 * e)
        stepped = clean + clean.max() * arctan_step(energy, 0.3)
        true = unmix_coordination((energy, clean), measurement="dft")
        with pytest.warns(UserWarning, match="edge step .*--subtract-edge-step"):
            fractions = unmix_coordination((energy, stepped), measurement="dft")
        for key, value in fractions.items():
            assert value == pytest.approx(true[key], abs=0.02)  # measured: <= 0.01 (d2.5_4)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing left to warn about
            target = prepare_target((energy, stepped), subtract_edge_step=True)
        reference = prepare_target((energy, clean))
        assert np.linalg.norm(target - reference) < 0.02 * np.linalg.norm(reference)  # measured: <= 0.009
        without = unmixing.subtract_edge_step(reference)
        assert np.abs(without - reference).max() < 0.02 * reference.max()  # measured: <= 0.008


def test_subtracting_no_background_changes_little(data_dir):
    """A clean scan at a measurement's resolution (1-2 eV broader than DFT) loses next to nothing: the fit window
    ends 3 eV below the pi* onset, clear of a broadened pi* tail."""
    for name in ("d1.5_1", "d2.5_1"):
        for fwhm in (1.0, 2.0):
            energy, clean, measured = measured_like(load_cell(name, data_dir), 270.0, lambda e: 0 * e, fwhm)
            true = unmix_coordination((energy, clean), measurement="dft")
            fixed = unmix_coordination((energy, subtract_pre_edge(energy, measured)), measurement="dft")
            for key, value in fixed.items():
                assert value == pytest.approx(true[key], abs=0.015)  # measured: <= 0.002


def test_energy_offsets_are_found_on_sp2_and_sp3_rich_cells(data_dir):
    """The pi* peak check missed offsets of 1.5 eV and more, sp3-rich targets and stepped ones. The misfit over
    shifted targets finds them: measured-like scans (0.6 eV broader, 0.5 % noise) whose axis is off by +-0.6 to
    +-2 eV warn once and name the shift that undoes the offset; no DFT cell mean warns, as it is or as such a scan."""
    for name in ("d1.5_9", "d0.0_15", "d2.5_4", "d0.0_11", "d3.5_2"):  # CN4 0.04 to 0.94
        energy, _, scan = measured_like(load_cell(name, data_dir), 265.0, lambda e: 0 * e, fwhm=0.6)
        for offset in (-2.0, -1.5, -1.0, -0.6, 0.6, 1.0, 1.5, 2.0):
            with pytest.warns(UserWarning, match="--energy-shift") as record:
                prepare_target((energy + offset, scan))  # the scan's axis reads offset eV high
            named = [float(m) for w in record for m in re.findall(r"shift its energies by ([+-][\d.]+) eV",
                                                                   str(w.message))]
            assert named == [pytest.approx(-offset, abs=0.15)]  # measured: <= 0.05
    for cell in load_dataset(data_dir):
        energy, _, scan = measured_like(cell, 265.0, lambda e: 0 * e, fwhm=0.6)
        for target in (cell.arrays["xanes"].mean(0), (energy, scan)):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                y = prepare_target(target)
            assert abs(unmixing.estimate_energy_shift(y)[0]) <= 0.1  # measured: <= 0.05


def test_crystal_spectra_unmix_to_their_coordination_with_a_warning(data_dir):
    """Crystal lines are sharper than any a-C mix: the unmixing says so itself (rounded; it stayed silent before),
    and the spectrum guide says it once, with its own advice."""
    for name, key in (("diamond", "CN4"), ("graphite", "CN3")):
        y = np.loadtxt(data_dir / "reference" / f"{name}_xanes.csv", delimiter=",", skiprows=1)
        y = y.mean(0) if y.ndim == 2 else y
        with pytest.warns(UserWarning, match="poor mix") as record:
            fractions, misfit = unmix_coordination(y, return_residual=True)
        assert fractions[key] > 0.95  # measured: 1.0
        assert misfit > 0.15  # measured 0.39 / 0.32
        assert len(record) == 1 and not re.search(r"\d\.\d{3}", str(record[0].message))
        with pytest.warns(UserWarning, match="poor mix") as record:
            spectrum_guide(y)
        assert len(record) == 1 and "coordination_weight=0" in str(record[0].message)


def test_shipped_components_rebuild_from_the_training_split(data_dir):
    train, _ = split_by_topology(load_dataset(data_dir))
    np.testing.assert_allclose(coordination_spectra(train), shipped_coordination_spectra(), rtol=1e-6)
    np.testing.assert_allclose(unmixing.density_spectra(train)[1], unmixing.shipped_density_spectra(), rtol=1e-6,
                               atol=1e-12)


def test_unmixing_rejects_bad_input(cell_2g):
    y = cell_2g.arrays["xanes"].mean(0)
    with pytest.raises(ValueError, match="NaN"):
        unmix_coordination(np.where(np.arange(100) == 5, np.nan, y))
    with pytest.raises(ValueError, match="components"):
        unmix_coordination(y, components=np.ones((2, 100)))


def test_spectrum_guide_adds_the_unmixed_coordination(cell_2g):
    y = cell_2g.arrays["xanes"].mean(0)
    guide = spectrum_guide(y, coordination_weight=0.5)
    xanes, coord, ring = guide.terms()
    assert isinstance(xanes, XANESGuide) and isinstance(coord, CoordinationGuide)
    assert isinstance(ring, RingStrainGuide) and ring.weight == DEFAULT_RING_STRAIN_WEIGHT
    assert coord.weight == 0.5
    assert len(spectrum_guide(y, ring_strain_weight=0).terms()) == 2
    expected = unmix_coordination(y)
    np.testing.assert_allclose(coord.target.numpy(), [expected[k] for k in CoordinationGuide.KEYS], atol=1e-6)
    assert isinstance(spectrum_guide(y, coordination_weight=0), XANESGuide)
    with pytest.raises(ValueError, match="coordination_weight"):
        spectrum_guide(y, coordination_weight=float("nan"))
    with pytest.raises(ValueError, match="ring_strain_weight"):
        spectrum_guide(y, ring_strain_weight=-1.0)


def test_a_flat_misfit_names_no_shift():
    """Ties in the misfit pick the smallest shift (a flat one picked -2.5 eV), and a perfect fit no NaN gain."""
    assert unmixing.estimate_energy_shift(np.ones(100)) == (0.0, 0.0)
