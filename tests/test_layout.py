"""The package's import graph (``benchmarks/import_graph.py``): no circle, no import from a lower layer up."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "import_graph.py"


@pytest.fixture(scope="module")
def layout():
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_graph_sees_every_module_and_relative_import(layout):
    graph = layout.import_graph()
    assert "ase_xanesgen.frontends.generator" in graph and "ase_xanesgen.data.datasets" in graph
    assert "ase_xanesgen.geometry" in graph["ase_xanesgen.data.datasets"]  # `from ..geometry import ...`
    assert "ase_xanesgen.nn.checkpoint" in graph["ase_xanesgen.frontends.xanes_calculator"]


def test_checker_finds_a_circle_and_an_upward_import(layout):
    made_up = {"ase_xanesgen.data.a": {"ase_xanesgen.data.b"}, "ase_xanesgen.data.b": {"ase_xanesgen.data.a"},
               "ase_xanesgen.nn.x": {"ase_xanesgen.frontends.y"}, "ase_xanesgen.frontends.y": set()}
    assert layout.circles(made_up) == [["ase_xanesgen.data.a", "ase_xanesgen.data.b"]]
    assert layout.upward_imports(made_up) == [("ase_xanesgen.nn.x", "ase_xanesgen.frontends.y")]


def test_no_import_circle(layout):
    assert layout.circles(layout.import_graph()) == []


def test_no_import_from_a_lower_layer_up(layout):
    assert layout.upward_imports(layout.import_graph()) == []
