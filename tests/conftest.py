"""Shared fixtures: the real a-C cells from ../shared (never copied into the repo).

A test that reads the shared data carries the ``needs_data`` marker (those using the ``data_dir`` fixture get it
automatically). Where the data is missing such a test is skipped, naming the path looked at; with ``CI=true`` it
fails instead, so a broken data path cannot pass in CI.
"""

from __future__ import annotations

import os

import pytest
import torch

from ase_xanesgen.data.datasets import default_data_dir, load_cell

DATA = default_data_dir()


def pytest_configure(config):
    torch.set_num_threads(2)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "data_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.needs_data)


def pytest_runtest_setup(item):
    if item.get_closest_marker("needs_data") is None:
        return
    missing = [p for p in (DATA / "train" / "structures", DATA / "reference") if not p.is_dir()]
    if missing:
        reason = f"shared a-C data not found: {', '.join(map(str, missing))} (set XANESGEN_DATA)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true requires it", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def data_dir():
    return DATA


@pytest.fixture(scope="session")
def cell_2g(data_dir):
    return load_cell("d2.0_1", data_dir)
