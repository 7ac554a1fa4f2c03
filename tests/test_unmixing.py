import re
import warnings

import numpy as np
import pytest

from ase_xanesgen.analysis import hybridisation_fractions
from ase_xanesgen.data.datasets import load_cell, load_dataset, split_by_topology
from ase_xanesgen.data.spectra import broaden, check_calibration, energy_grid, subtract_pre_edge
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
            assert value == pytest.approx(true[key], abs=0.08)  # measured: <= 0.07 (3.5 g/cm3 CN2)


def test_unmixing_tolerates_a_measurement_s_broadening(data_dir):
    """A spectrum 1 eV (FWHM) broader than DFT, as a measurement at modest resolution, unmixes as well: the
    components' features are wider than the grid step already."""
    _, held_out = split_by_topology(load_dataset(data_dir))
    for cell in held_out:
        fractions = unmix_coordination(broaden(cell.arrays["xanes"].mean(0), 1.0))
        true = hybridisation_fractions(cell)
        for key, value in fractions.items():
            assert value == pytest.approx(true[key], abs=0.08)  # measured: <= 0.078 (3.5 g/cm3; 0.069 unbroadened)


def measured_like(cell, start: float, background, fwhm: float = 0.0, seed: int = 0):
    """A DFT cell mean as an experimentalist's scan: ``start``-320 eV in 0.1 eV steps, ``fwhm`` (eV) broader,
    0.5 % noise, ``background(energy)`` (in units of the maximum) added, arbitrary units."""
    energy = np.arange(start, 320.0 + 1e-9, 0.1)
    clean = np.interp(energy, energy_grid(), broaden(cell.arrays["xanes"].mean(0), fwhm), left=0.0)
    noise = np.random.default_rng(seed).normal(0.0, 0.005 * clean.max(), energy.shape)
    return energy, clean, 12345.0 * (clean + clean.max() * background(energy) + noise)


def test_a_measured_background_is_flagged_and_subtracted(data_dir):
    """Unmixed as it is, a background reads as sp (the pi* share drops after area normalisation); the target
    warns, and the pre-edge line removes it: fitted as a line from a scan starting at 265 eV, as a constant from
    one starting at 275 eV (a slope from 5 eV of noisy points would add error)."""
    cell = load_cell("d1.5_1", data_dir)
    for start, background, tolerance in ((265.0, lambda e: 0.05 + 0.002 * (e - 265.0), 0.01),
                                         (275.0, lambda e: 0.05 + 0 * e, 0.01),
                                         (280.0, lambda e: 0.05 + 0.002 * (e - 280.0), 0.05)):  # its first 2 eV
        energy, clean, measured = measured_like(cell, start, background)
        true = unmix_coordination((energy, clean))
        with pytest.warns(UserWarning, match="pre-edge"):
            biased = unmix_coordination((energy, measured))
        assert biased["CN2"] > true["CN2"] + 0.05  # measured: 0.39-0.46 against 0.33
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no background left to warn about
            fixed = unmix_coordination((energy, subtract_pre_edge(energy, measured)))
        for key, value in fixed.items():
            assert value == pytest.approx(true[key], abs=tolerance)  # measured: 0.001, 0.001, 0.037
    with pytest.raises(ValueError, match="pre-edge"):
        subtract_pre_edge(energy[energy > 281.5], measured[energy > 281.5])


def test_an_energy_offset_and_an_edge_step_are_flagged(data_dir):
    """The unmixed fractions follow an offset of the energy axis (0.5 eV: CN4 0.13 -> 0.03 / 0.26) and an edge step;
    the target warns about both, names the shift that undoes the offset, and no DFT cell mean trips either check.
    A scan's small negative noise is clipped, not refused."""
    assert not [a.info["name"] for a in load_dataset(data_dir) if check_calibration(a.arrays["xanes"].mean(0))]
    cell = load_cell("d2.0_1", data_dir)
    y = cell.arrays["xanes"].mean(0)
    energy, clean, noisy = measured_like(cell, 265.0, lambda e: 0 * e)
    true = unmix_coordination(y)
    for shift in (-0.6, 0.6):
        scan = np.interp(energy - shift, energy_grid(), y, left=0.0)  # the cell's spectrum, its axis off by shift
        with pytest.warns(UserWarning, match="shift its energies by") as record:
            shifted = unmix_coordination((energy, scan))
        named = [float(m) for w in record for m in re.findall(r"shift its energies by ([+-][\d.]+) eV", str(w.message))]
        assert named and named[0] == pytest.approx(-shift, abs=0.2)  # this cell's own peak sits 0.13 eV low
        assert abs(shifted["CN4"] - true["CN4"]) > 0.05
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # shifted back: nothing to warn about, the fractions return
            back = unmix_coordination((energy - shift, scan))
        assert back["CN4"] == pytest.approx(true["CN4"], abs=0.02)
    with pytest.warns(UserWarning, match="edge step"):
        stepped = unmix_coordination((energy, clean + 0.3 * clean.max() / (1 + np.exp(-(energy - 290.0)))))
    assert stepped["CN4"] < true["CN4"] - 0.05
    assert noisy.min() < 0
    assert unmix_coordination((energy, noisy))["CN4"] == pytest.approx(true["CN4"], abs=0.02)


def test_subtracting_no_background_changes_little(data_dir):
    """A clean scan at a measurement's resolution (1-2 eV broader than DFT) loses next to nothing: the fit window
    ends 3 eV below the pi* onset, clear of a broadened pi* tail."""
    for name in ("d1.5_1", "d2.5_1"):
        for fwhm in (1.0, 2.0):
            energy, clean, measured = measured_like(load_cell(name, data_dir), 270.0, lambda e: 0 * e, fwhm)
            true = unmix_coordination((energy, clean))
            fixed = unmix_coordination((energy, subtract_pre_edge(energy, measured)))
            for key, value in fixed.items():
                assert value == pytest.approx(true[key], abs=0.015)  # measured: <= 0.002


def test_crystal_spectra_unmix_to_their_coordination_with_a_warning(data_dir):
    for name, key in (("diamond", "CN4"), ("graphite", "CN3")):
        y = np.loadtxt(data_dir / "reference" / f"{name}_xanes.csv", delimiter=",", skiprows=1)
        y = y.mean(0) if y.ndim == 2 else y
        fractions, misfit = unmix_coordination(y, return_residual=True)
        assert fractions[key] > 0.95  # measured: 1.0
        assert misfit > 0.15  # crystal lines are sharper than any a-C mix (measured 0.39 / 0.32)
        with pytest.warns(UserWarning, match="poor mix"):
            spectrum_guide(y)


def test_shipped_components_rebuild_from_the_training_split(data_dir):
    train, _ = split_by_topology(load_dataset(data_dir))
    np.testing.assert_allclose(coordination_spectra(train), shipped_coordination_spectra(), rtol=1e-6)


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
