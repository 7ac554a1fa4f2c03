"""The measurement model on measured-style scans made from the shared cells' DFT spectra (known truth)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from ase_xanesgen.analysis import hybridisation_fractions
from ase_xanesgen.cli.main import main
from ase_xanesgen.data.calibration import prepare_target
from ase_xanesgen.data.components import KEYS, unmix_prepared
from ase_xanesgen.data.datasets import load_cell, load_reference
from ase_xanesgen.data.measurement import MEASURED_POOR_FIT, fit_spectrum, simulate_scan
from ase_xanesgen.data.unmixing import unmix_coordination
from ase_xanesgen.diffusion import System
from ase_xanesgen.guidance import CoordinationGuide, XANESGuide, spectrum_guide

DLC_FILE = Path(__file__).resolve().parents[1] / "examples" / "data" / "dlc_like_nexafs.csv"


def truth(cell) -> dict[str, float]:
    fractions = hybridisation_fractions(cell)
    return {k: fractions[k] for k in KEYS}


@pytest.mark.parametrize("name", ["d1.5_9", "d2.5_4", "d3.5_2"])  # held-out topologies, 1.5 / 2.5 / 3.5 g/cm3
def test_experiment_like_scans_of_held_out_cells_unmix_within_their_uncertainty(data_dir, name):
    """Offset -0.3 eV, broadening growing above the edge, a 40 % arctan step, a sloped pre-edge, 0.5 % noise: read
    as DFT-like the fractions were off by up to 0.11; through the measurement model within 0.05, truth inside."""
    cell = load_cell(name, data_dir)
    scan = simulate_scan(cell.arrays["xanes"].mean(0), seed=1)
    fit = fit_spectrum(scan, n_bootstrap=8)
    true = truth(cell)
    assert fit.reliable and fit.misfit < MEASURED_POOR_FIT
    for key in KEYS:
        assert abs(fit.fractions[key] - true[key]) <= 0.05  # measured: <= 0.03
        assert abs(fit.fractions[key] - true[key]) <= fit.uncertainty[key]
    assert fit.nuisance["energy_offset"] == pytest.approx(-0.3, abs=0.15)
    assert 0.3 < fit.nuisance["edge_step"] < 0.7  # 40 % of the maximum, in edge jumps


def test_the_dlc_like_example_reads_as_sp3_rich_with_little_sp(data_dir):
    """The example file (BOM, CRLF, header PE/eV,AbNorm; a ta-C-like cell with C-H and C=O resonances, a broad
    sigma* band, a 15 % pre-edge background, a 36 % step) unmixes to its cell's fractions; read as DFT-like the sp
    fraction absorbs the misfit."""
    fit = unmix_coordination(DLC_FILE, return_fit=True)
    true = truth(load_cell("d0.0_11", data_dir))
    assert fit.fractions["CN2"] <= 0.10 and 0.2 <= fit.fractions["CN4"] <= 0.9
    for key in KEYS:
        assert abs(fit.fractions[key] - true[key]) <= fit.uncertainty[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert unmix_coordination(DLC_FILE, measurement="dft")["CN2"] > 0.10


def test_the_pi_star_estimate_follows_the_pi_bonds(data_dir):
    """The classic estimate (pi* area over 290-310 eV, against graphite under the fitted model) counts pi orbitals:
    2 CN2 + CN3 for the sp2-rich cells; it reads high on sp3-rich ones (disorder fills the pi* window)."""
    for name in ("d1.5_9", "d0.0_15", "d2.5_4"):
        cell = load_cell(name, data_dir)
        fit = fit_spectrum(simulate_scan(cell.arrays["xanes"].mean(0)), n_bootstrap=0)
        true = truth(cell)
        assert fit.pi_star_sp2[0] == pytest.approx(2 * true["CN2"] + true["CN3"], abs=0.15)  # measured: <= 0.1


@pytest.mark.parametrize("case, match", [
    ("n_edge", "N K-edge"), ("late", "pi\\* onset"), ("short", "sigma\\*"), ("noise", "noise"), ("nan", "NaN"),
    ("kev", "keV"),
])
def test_bad_scans_get_clear_errors(data_dir, case, match):
    energy, scan = simulate_scan(load_cell("d2.5_4", data_dir).arrays["xanes"].mean(0))
    target = {"n_edge": (energy + 120.0, scan), "late": (energy[energy >= 287.0], scan[energy >= 287.0]),
              "short": (energy[energy <= 293.0], scan[energy <= 293.0]),
              "noise": (energy, np.random.default_rng(0).normal(0.0, 1.0, energy.shape)),
              "nan": (energy, np.where(energy > 290.0, np.nan, scan)), "kev": (energy / 1000.0, scan)}[case]
    with pytest.raises(ValueError, match=match):
        unmix_coordination(target)


def test_dft_like_input_reads_as_before(data_dir):
    """A model-grid array (no energy axis) is unmixed as it is: the same numbers as the DFT-like unmixing."""
    y = load_cell("d2.5_4", data_dir).arrays["xanes"].mean(0)
    assert unmix_coordination(y) == unmix_prepared(prepare_target(y)).fractions
    with pytest.raises(ValueError, match="measured scan"):
        unmix_coordination(y, return_fit=True)
    with pytest.raises(ValueError, match="needs its energies"):
        fit_spectrum(y)


def test_a_poor_fit_warns_and_the_guide_leaves_coordination_out(data_dir):
    """Two sharp 30 % peaks at 297-300 eV (a potassium L-edge of a contaminated film): no a-C mix fits them, so
    the fit says it is unreliable and why, and the spectrum guide drops its coordination term instead of pushing
    fractions it cannot trust; the clean scan keeps it, with the fitted fractions."""
    energy, scan = simulate_scan(load_cell("d2.5_4", data_dir).arrays["xanes"].mean(0))
    bumps = sum(0.3 * scan.max() * np.exp(-0.5 * ((energy - c) / 0.3) ** 2) for c in (297.3, 300.0))
    with pytest.warns(UserWarning, match="fits poorly"):
        unmix_coordination((energy, scan + bumps))
    with pytest.warns(UserWarning, match="coordination term is left out.*fits poorly"):
        guide = spectrum_guide((energy, scan + bumps))
    assert isinstance(guide, XANESGuide) and guide.fit is not None and not guide.fit.reliable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        guide = spectrum_guide((energy, scan))
    coordination = [g for g in guide.terms() if isinstance(g, CoordinationGuide)]
    assert coordination and np.allclose(coordination[0].target.numpy(),
                                        [guide.terms()[0].fit.fractions[k] for k in KEYS])


def test_the_measured_guide_compares_predictions_as_the_scan_measures_them(data_dir):
    """``SpectrumFit.response`` maps a DFT cell mean onto the scan (within the misfit), and the guide's residual
    ranks the scan's own cell above a denser one; subtract_edge_step is refused (the model fits the step)."""
    cell = load_cell("d1.5_9", data_dir)
    y = cell.arrays["xanes"].mean(0)
    guide = XANESGuide(simulate_scan(y))
    response, offset = guide.fit.response()
    mask = guide.fit.mask
    assert np.linalg.norm((response @ y + offset - guide.target)[mask]) < 0.03 * np.linalg.norm(guide.target[mask])
    residuals = []
    for atoms in (cell, load_cell("d3.5_2", data_dir)):
        system = System(torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array, dtype=torch.float32)[None],
                        torch.zeros(len(atoms), dtype=torch.long))
        residuals.append(float(guide.residual(torch.tensor(atoms.positions, dtype=torch.float32), system)[0]))
    assert residuals[0] < residuals[1]
    with pytest.raises(ValueError, match="subtract_edge_step"):
        XANESGuide(simulate_scan(y), subtract_edge_step=True)


def test_xanesgen_fit_prints_plots_and_refuses_another_edge(tmp_path, capsys):
    plot, record = tmp_path / "fit.png", tmp_path / "fit.json"
    assert main(["fit", str(DLC_FILE), "--bootstrap", "4", "--plot", str(plot), "--json", str(record)]) == 0
    out = capsys.readouterr().out
    assert "sp3 (CN4)" in out and "+-" in out and "energy offset" in out and "misfit" in out and "pi* estimate" in out
    assert plot.stat().st_size > 10_000
    fit = json.loads(record.read_text())
    assert set(fit["fractions"]) == set(KEYS) and fit["reliable"]
    energy, intensity = np.loadtxt(DLC_FILE, delimiter=",", skiprows=1, encoding="utf-8-sig").T
    nitrogen = tmp_path / "n_edge.csv"
    np.savetxt(nitrogen, np.column_stack([energy + 120.0, intensity]), delimiter=",")
    assert main(["fit", str(nitrogen)]) == 2
    assert "N K-edge" in capsys.readouterr().err


def test_a_graphite_scan_is_flagged(data_dir):
    """Crystal lines are no a-C mix: a graphite scan fits poorly and says so."""
    fit = fit_spectrum(simulate_scan(load_reference("graphite", data_dir).arrays["xanes"].mean(0)), n_bootstrap=0)
    assert not fit.reliable and "fits poorly" in fit.reason
