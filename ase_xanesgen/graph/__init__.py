"""Periodic neighbour graphs (numpy via matscipy, torch cell list) and Atoms -> PyG conversion."""

from .convert import atoms_to_data, batch_atoms
from .neighbours import edge_vectors, neighbour_graph, radius_graph_pbc, wrap_positions

__all__ = ["atoms_to_data", "batch_atoms", "edge_vectors", "neighbour_graph", "radius_graph_pbc", "wrap_positions"]
