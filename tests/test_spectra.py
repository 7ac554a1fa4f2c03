"""Spectrum utilities: calibrated grid, reading, resampling, normalising, validation, extxyz round trip."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from ase.io import read, write

from ase_xanesgen.data import spectra as sp
from ase_xanesgen.data.datasets import N_ENERGY, load_cell, load_dataset, load_reference

needs_data = pytest.mark.needs_data


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
    [("nan", r"bad.txt:11: NaN"), ("negative", "negative"), ("decreasing", "bad.txt: not one monotonic scan"),
     ("short", "covers")],
)
def test_bad_files_raise(tmp_path, case, match):
    energy = np.linspace(270.0, 320.0, 60)
    intensity = np.ones_like(energy)
    if case == "nan":
        intensity[10] = np.nan
    elif case == "negative":
        intensity[10] = -0.5
    elif case == "decreasing":  # a step back of three steps: not readback jitter, not a repeated point
        energy[20] = energy[17]
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


def _pre_edge_warnings(target) -> list[str]:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        sp.prepare_target(target)
    return [str(w.message) for w in record if "pre-edge" in str(w.message)]


@needs_data
def test_a_pre_edge_background_warns_on_grid_targets_and_late_scans():
    """The pre-edge check skipped a target already on the model grid and a scan starting at 282-283 eV (too short a
    pre-edge; zero-padded below): the grid's 15 points below 280 eV judge the first (DFT means < 1e-6 there), the
    scan's first 0.5 eV the second, against the most the DFT spectra 2 eV broader hold there (from 282 eV the pi*
    onset of the sp-rich cells: 2.5-14 % of their maximum). So a late scan shows only a large background."""
    grid = sp.energy_grid()
    y = load_cell("d1.5_1").arrays["xanes"].mean(0)
    assert len(_pre_edge_warnings(y + 0.05 * y.max())) == 1
    for start, background in ((282.0, 0.15), (283.0, 0.2)):  # measured: 8.9 / 8.6 % above the DFT level there
        energy = np.arange(start, 320.0 + 1e-9, 0.1)
        assert "first 0.5 eV" in _pre_edge_warnings((energy, np.interp(energy, grid, y) + background * y.max()))[0]
    for cell in load_dataset():
        for fwhm in (0.0, 2.0):
            spectrum = sp.broaden(cell.arrays["xanes"].mean(0), fwhm)
            assert not _pre_edge_warnings(spectrum)
            for start in (282.0, 282.5, 283.0):  # measured: 0.1 % below the DFT level at most
                energy = np.arange(start, 320.0 + 1e-9, 0.1)
                assert not _pre_edge_warnings((energy, np.interp(energy, grid, spectrum)))


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


# --- measured files as beamlines write them (real spectra: the d2.0_1 cell mean, scanned like a measurement) ---


def _scan(step: float = 0.1, noise: float = 0.0, seed: int = 0, stop: float = 320.0):
    """The d2.0_1 DFT cell mean as a measurement would give it: ``(energy, intensity)`` from 270 eV in ``step``
    eV steps, with Gaussian noise of ``noise`` times its maximum."""
    y = load_cell("d2.0_1").arrays["xanes"].mean(axis=0)
    energy = np.round(np.arange(270.0, stop + 1e-9, step), 6)
    clean = np.interp(energy, sp.energy_grid(), y, left=0.0)
    return energy, clean + np.random.default_rng(seed).normal(0.0, noise * y.max(), energy.shape)


def _lines(energy, intensity, sep: str = " ") -> list[str]:
    return [f"{e:.2f}{sep}{i:.6f}" for e, i in zip(energy, intensity)]


@needs_data
def test_read_spectrum_decodes_bom_latin1_and_utf16(tmp_path):
    """A UTF-8 BOM does not hide the first number (of a file without a header), a Latin-1 ``µ`` in a comment and a
    UTF-16 export read, and errors name the file."""
    energy, intensity = _scan()
    rows = "\n".join(_lines(energy, intensity, ","))
    files = {"bom.csv": ("\ufeff" + rows).encode("utf-8"),
             "bom_header.csv": ("\ufeffenergy,intensity\n" + rows).encode("utf-8"),
             "latin1.txt": ("# I (\u00b5A)\n" + rows).encode("latin-1"),
             "utf16.txt": ("# I (\u00b5A)\n" + rows).encode("utf-16")}
    for name, raw in files.items():
        (tmp_path / name).write_bytes(raw)
        e, y = sp.read_spectrum(tmp_path / name)
        np.testing.assert_allclose(e, energy, err_msg=name)
        np.testing.assert_allclose(y, intensity, atol=1e-6, err_msg=name)
    (tmp_path / "bad.txt").write_bytes(("# I (\u00b5A)\n" + rows + "\n320.1 x\n").encode("latin-1"))
    with pytest.raises(ValueError, match=r"bad.txt:\d+: non-numeric"):
        sp.read_spectrum(tmp_path / "bad.txt")


@needs_data
def test_read_spectrum_warns_about_a_long_header(tmp_path):
    energy, intensity = _scan()
    (tmp_path / "one.txt").write_text("energy intensity\n" + "\n".join(_lines(energy, intensity)))
    (tmp_path / "three.txt").write_text("Sample a-C\nenergy intensity\n285.0 1.2e\n" +
                                        "\n".join(_lines(energy, intensity)))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sp.read_spectrum(tmp_path / "one.txt")  # a CSV header: as usual
    with pytest.warns(UserWarning, match=r"three.txt: skipped lines 1-3"):
        sp.read_spectrum(tmp_path / "three.txt")


@needs_data
def test_down_and_multi_region_scans_with_repeated_points(tmp_path):
    """A down-scan with one repeated point is still a down-scan; the repeated boundary point of a multi-region scan
    is averaged (with a warning); readback jitter is sorted; a scan that turns back is refused, naming the lines."""
    energy, intensity = _scan()
    down = np.r_[energy[:100], energy[99:]][::-1], np.r_[intensity[:100], intensity[99:]][::-1]
    (tmp_path / "down.txt").write_text("\n".join(_lines(*down)))
    with pytest.warns(UserWarning, match="279.9 eV.*averaged"):
        e, y = sp.read_spectrum(tmp_path / "down.txt")
    np.testing.assert_allclose(e, energy)
    np.testing.assert_allclose(y, intensity, atol=1e-6)

    pre, edge = np.arange(270.0, 284.01, 0.5), np.round(np.arange(284.0, 320.01, 0.1), 6)  # 284 eV in both regions
    grid_y = load_cell("d2.0_1").arrays["xanes"].mean(axis=0)
    regions = np.r_[pre, edge]
    measured = np.interp(regions, sp.energy_grid(), grid_y, left=0.0)
    measured[len(pre)] += 0.002  # the second region's first point reads a little higher
    (tmp_path / "regions.txt").write_text("\n".join(_lines(regions, measured)))
    with pytest.warns(UserWarning, match="more than once"):
        e, y = sp.read_spectrum(tmp_path / "regions.txt")
    assert len(e) == len(regions) - 1 and np.all(np.diff(e) > 0)
    assert y[len(pre) - 1] == pytest.approx(measured[len(pre) - 1] + 0.001, abs=2e-6)
    with pytest.warns(UserWarning, match="more than once"):
        assert sp.prepare_target(tmp_path / "regions.txt").shape == (N_ENERGY,)

    jitter = energy.copy()
    jitter[50] = energy[51] + 0.004  # the encoder reads 0.004 eV past the next set point
    (tmp_path / "jitter.txt").write_text("\n".join(f"{a:.3f}\t{b:.6f}" for a, b in zip(jitter, intensity)))
    e, y = sp.read_spectrum(tmp_path / "jitter.txt")
    assert np.all(np.diff(e) > 0) and len(e) == len(energy) and y[51] == pytest.approx(intensity[50], abs=1e-6)

    sweeps = np.r_[energy, energy[::-1][:200]], np.r_[intensity, intensity[::-1][:200]]  # up, then back down
    (tmp_path / "sweeps.txt").write_text("# two sweeps\n" + "\n".join(_lines(*sweeps)))
    with pytest.raises(ValueError, match=r"sweeps.txt: not one monotonic scan: it runs up from 270 to 300.1 eV, but "
                                         r"320 eV \(line 503\) is followed by 319.9 eV \(line 504\)"):
        sp.read_spectrum(tmp_path / "sweeps.txt")
    with pytest.raises(ValueError, match="turning at 320 eV"):  # all the way back
        sp.resample(np.r_[energy, energy[::-1]], np.r_[intensity, intensity[::-1]])


@needs_data
def test_read_spectrum_picks_columns_of_a_beamline_file(tmp_path):
    """E, I0, TEY, TFY: ``columns`` picks two; without it the error names the columns found. Decimal commas between
    tabs get their hint."""
    energy, intensity = _scan()
    i0 = 1.0 + 0.001 * (energy - 270.0)
    table = np.column_stack([energy, i0, intensity * i0, 0.5 * intensity])
    path = tmp_path / "beamline.dat"
    np.savetxt(path, table, header="E I0 TEY TFY", comments="")
    with pytest.raises(ValueError, match=r"4 columns \(0: E, 1: I0, 2: TEY, 3: TFY\).*columns=\(0, k\)"):
        sp.read_spectrum(path)
    np.savetxt(tmp_path / "commented.dat", table, header="scan 12\nE I0 TEY TFY")  # names in a # comment
    with pytest.raises(ValueError, match=r"4 columns \(0: E, 1: I0, 2: TEY, 3: TFY\)"):
        sp.read_spectrum(tmp_path / "commented.dat")
    e, tey = sp.read_spectrum(path, columns=(0, 2))
    np.testing.assert_allclose(e, energy)
    np.testing.assert_allclose(tey / i0, intensity, atol=1e-12)
    np.testing.assert_allclose(sp.read_spectrum(path, columns=(0, 3))[1], 0.5 * intensity, atol=1e-12)
    for bad in ((0, 4), (1, 1)):
        with pytest.raises(ValueError, match="0-based indices of its 4 columns"):
            sp.read_spectrum(path, columns=bad)
    (tmp_path / "comma.txt").write_text("\n".join(_lines(energy, intensity, "\t")).replace(".", ","))
    for columns in (None, (0, 1)):  # a choice of columns must not read 285,4 as two numbers either
        with pytest.raises(ValueError, match="decimal commas"):
            sp.read_spectrum(tmp_path / "comma.txt", columns=columns)


@needs_data
def test_resample_averages_a_dense_noisy_scan():
    """A 0.05 eV scan at 1 % noise: each grid point averages its cell, so the noise on the grid drops ~2.5-fold
    (point sampling kept it all, and its negative noise in the pre-edge was refused); a coarse scan keeps point
    values."""
    energy, clean = _scan(step=0.05)
    _, noisy = _scan(step=0.05, noise=0.01)
    reference = sp.resample(energy, clean)
    y = sp.resample(energy, noisy)  # background-free, noisy: its pre-edge dips to -3 % of the maximum
    assert np.sqrt(np.mean((y - reference) ** 2)) < 0.005 * clean.max()
    assert abs(sp.pi_star_peak(y) - sp.pi_star_peak(reference)) < 0.1
    coarse_e, coarse_y = _scan(step=1.0)
    np.testing.assert_array_equal(sp.resample(coarse_e, coarse_y), np.interp(sp.energy_grid(), coarse_e, coarse_y))
    with pytest.raises(ValueError, match=r"at 2\d\d\.\d\d eV.*raw scan.*background-subtracted"):
        sp.resample(energy, noisy - 0.05 * clean.max())  # a background below zero: an index would not help


def test_resample_averages_symmetrically_at_the_scan_ends():
    """A dense scan cropped to the grid's ends: the end points average a window cut alike on both sides, so a
    straight line stays exact there (a one-sided half cell was off by slope x DE / 4)."""
    grid = sp.energy_grid()
    energy = np.linspace(grid[0], grid[-1], 1001)
    np.testing.assert_allclose(sp.resample(energy, 1.0 + energy - grid[0]), 1.0 + grid - grid[0], atol=1e-9)


@needs_data
def test_a_down_scan_target_warns_like_its_up_scan():
    """prepare_target sorts an (energy, intensity) pair before its pre-edge check: a clean down-scan from 282.5 eV
    read 320 eV as its start and warned of a background."""
    y = sp.broaden(load_cell("d2.0_1").arrays["xanes"].mean(0), 1.0)
    energy = np.arange(282.5, 320.0, 0.1)
    intensity = np.interp(energy, sp.energy_grid(), y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        up = sp.prepare_target((energy, intensity))
        down = sp.prepare_target((energy[::-1], intensity[::-1]))
    np.testing.assert_allclose(down, up)


@needs_data
def test_short_scan_error_leads_with_the_end_it_misses():
    energy, intensity = _scan(stop=314.9)
    with pytest.raises(ValueError, match=r"^spectrum covers 270.00-314.90 eV: it stops short .* reach 315.09") as err:
        sp.resample(energy, intensity)
    assert "absolute scale" not in str(err.value)


def test_spectrum_modules_import_alone_in_any_order():
    """Each data module imports first on its own (an import circle fails for one of the orders), and the public
    names stay importable from data.spectra and data.unmixing."""
    import subprocess
    import sys

    modules = ["grid", "spectra_io", "resampling", "components", "calibration", "measurement", "unmixing", "spectra"]
    code = ("import sys, importlib\n"
            f"for m in {modules!r}:\n"
            "    for k in [k for k in sys.modules if k.startswith('ase_xanesgen')]:\n"
            "        del sys.modules[k]\n"
            "    importlib.import_module('ase_xanesgen.data.' + m)\n"
            "from ase_xanesgen.data.spectra import (read_spectrum, prepare_target, resample, subtract_pre_edge, "
            "check_calibration, energy_grid, normalise, broaden, validate_spectrum, store_spectra, pre_edge_level)\n"
            "from ase_xanesgen.data.unmixing import (unmix_coordination, unmix_prepared, subtract_edge_step, "
            "estimate_energy_shift, shipped_coordination_spectra, edge_step_level, fit_spectrum)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr
