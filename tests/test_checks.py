"""Shared input checks: bad numbers fail at the call with their name; warnings name the caller's line."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from ase import Atoms

from ase_xanesgen import XANESCalculator
from ase_xanesgen.analysis import rdf
from ase_xanesgen.checks import check_count, check_fraction, check_non_negative, check_positive, check_structure
from ase_xanesgen.data import spectra as sp
from ase_xanesgen.data.datasets import load_cell
from ase_xanesgen.guidance import CoordinationGuide, XANESGuide
from ase_xanesgen.train.loop import TrainConfig


@pytest.mark.parametrize("value", [1.5, True, "3", None, -1, 0, math.nan])
def test_check_count_refuses_what_is_not_a_whole_number_above_the_minimum(value):
    with pytest.raises(ValueError, match=r"steps must be an integer >= 1"):
        check_count(value, "steps")
    assert check_count(np.int64(3), "steps") == 3 and check_count(4.0, "steps") == 4
    assert check_count(0, "max_restarts", minimum=0) == 0


@pytest.mark.parametrize("value", [0.0, -1.0, math.nan, math.inf, "x", "0.5", None])
def test_positive_and_fraction_checks_refuse_nan_inf_and_out_of_range(value):
    with pytest.raises(ValueError, match=r"fmax must be > 0 eV/A"):
        check_positive(value, "fmax", "eV/A")
    assert check_positive(np.float32(0.5), "fmax") == 0.5
    if value != 0.0:
        with pytest.raises(ValueError, match=r"zeta must be a finite number >= 0"):
            check_non_negative(value, "zeta")
    assert check_non_negative(0, "zeta") == 0.0
    for bad in (value, 1.0):
        with pytest.raises(ValueError, match=r"t_restart must lie in \(0, 1\)"):
            check_fraction(bad, "t_restart")
    assert check_fraction(0.0, "t_min", low_closed=True) == 0.0


def test_public_entry_points_name_the_bad_argument(a_c_cell):
    with pytest.raises(ValueError, match="bins must be an integer"):
        rdf(a_c_cell, bins=10.5)
    with pytest.raises(ValueError, match="spread must be > 0"):
        CoordinationGuide({"CN4": 0.3}, spread=0.0)
    with pytest.raises(ValueError, match="t_min must lie in"):
        CoordinationGuide({"CN4": 0.3}, t_min=1.0)
    with pytest.raises(ValueError, match="fwhm must be a finite number >= 0 eV, got nan"):
        sp.broaden(np.ones(100), np.float64(math.nan))  # the number, not np.float64(nan)
    with pytest.raises(ValueError, match="rmax must be > 0 A, got '5'"):
        rdf(a_c_cell, rmax="5")  # a string once passed the check and failed inside numpy
    assert TrainConfig(steps=10.0).steps == 10 and isinstance(TrainConfig(steps=10.0).steps, int)


def test_warnings_name_the_callers_line_at_any_depth(tmp_path, a_c_cell):
    """The header warning of ``read_spectrum`` reached directly and through ``XANESGuide`` (two frames deeper):
    both point at this file, not into the package."""
    y = a_c_cell.arrays["xanes"].mean(axis=0)
    rows = "\n".join(f"{e:.3f} {i:.6f}" for e, i in zip(sp.energy_grid(), y))
    path = tmp_path / "scan.txt"
    path.write_text(f"Sample a-C\nbeamline 7\nenergy intensity\n{rows}\n")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        sp.read_spectrum(path)
        XANESGuide(path)
    header = [w for w in record if "skipped lines 1-3" in str(w.message)]
    assert len(header) == 2 and {w.filename for w in header} == {__file__}, [(w.filename, w.lineno) for w in header]


def test_calculator_warnings_skip_ases_calculator_code(a_c_cell):
    """``get_property`` reaches ``calculate`` through ASE's calculator module: the warning names this file."""
    squeezed = a_c_cell.copy()
    squeezed.positions[1] = squeezed.positions[0] + [0.5, 0.0, 0.0]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        XANESCalculator().get_property("xanes_mean", squeezed)
    mine = [w for w in record if "A apart" in str(w.message)]
    assert mine and {w.filename for w in mine} == {__file__}, [(w.filename, w.lineno) for w in mine]


@pytest.fixture(scope="module")
def a_c_cell(data_dir):
    return load_cell("d2.0_1", data_dir)


def test_structure_check_flags(a_c_cell):
    """``periodic`` refuses a slab, ``empty_ok`` lets an empty template through, and ``name`` starts every message."""
    assert check_structure(a_c_cell, periodic=True) is a_c_cell
    slab = a_c_cell.copy()
    slab.pbc = [True, True, False]
    with pytest.raises(ValueError, match=r"template is not periodic in all directions"):
        check_structure(slab, "template", periodic=True)
    empty = Atoms(cell=[5.0] * 3, pbc=True)
    assert check_structure(empty, empty_ok=True) is empty
    with pytest.raises(ValueError, match="template is empty"):
        check_structure(empty, "template")
    with pytest.raises(TypeError, match="template must be an ase.Atoms, got list"):
        check_structure([a_c_cell], "template")
