"""Shared fixtures: the real a-C cells from ../shared (never copied into the repo)."""

from __future__ import annotations

import pytest
import torch

from ase_xanesgen.data.datasets import default_data_dir, load_cell

DATA = default_data_dir()


def pytest_configure(config):
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def data_dir():
    if not (DATA / "train" / "structures").is_dir():
        pytest.skip(f"shared a-C data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def cell_2g(data_dir):
    return load_cell("d2.0_1", data_dir)
