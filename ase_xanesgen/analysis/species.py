"""Structure of multi-element cells: partial g_ab(r), per-pair coordination, bond angles per triplet, rings of a
bond network, and the total (neutron / X-ray weighted) g(r), G(r) and S(Q).

All functions take one periodic ``Atoms`` or a list (pooled); species are chemical symbols; lengths in A,
angles in degrees.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from matscipy.neighbours import neighbour_list

from ..checks import check_count, check_positive
from ..data.scattering import scattering_weights
from ._common import as_structures, repeat_to_width


def _z(symbol: str) -> int:
    if symbol not in atomic_numbers:
        raise ValueError(f"unknown chemical symbol {symbol!r}")
    return atomic_numbers[symbol]


def _edges(rmax: float, bins: int) -> np.ndarray:
    check_positive(rmax, "rmax", "A")
    return np.linspace(0.0, rmax, check_count(bins, "bins") + 1)


def partial_rdf(atoms_or_list: Atoms | Sequence[Atoms], a: str, b: str, rmax: float = 6.0, bins: int = 300
                ) -> tuple[np.ndarray, np.ndarray]:
    """Partial ``g_ab(r)``: b atoms around a atoms, normalised by the b number density (-> 1 at large r).

    Returns bin centres ``[bins]`` (A) and ``g_ab [bins]``; zeros where the cells hold no a or no b.
    """
    za, zb = _z(a), _z(b)
    edges = _edges(rmax, bins)
    counts, norm = np.zeros(bins), 0.0
    for atoms in as_structures(atoms_or_list):
        i, j, d = neighbour_list("ijd", atoms, rmax)
        z = atoms.numbers
        counts += np.histogram(d[(z[i] == za) & (z[j] == zb)], edges)[0]
        norm += (z == za).sum() * (z == zb).sum() / atoms.get_volume()
    shell = 4.0 / 3.0 * np.pi * np.diff(edges**3)
    return 0.5 * (edges[1:] + edges[:-1]), counts / (norm * shell) if norm else np.zeros(bins)


def first_peak(r: np.ndarray, g: np.ndarray, window: tuple[float, float], smooth: float = 0.03) -> float:
    """Position (A) of the maximum of ``g`` inside ``window`` after Gaussian smoothing (``smooth`` A), refined by
    a parabola through the top three bins; NaN when ``g`` is zero there."""
    from scipy.ndimage import gaussian_filter1d

    from ..data.peaks import parabolic_peak

    g = gaussian_filter1d(g, smooth / (r[1] - r[0]), mode="constant") if smooth > 0 else g
    inside = np.flatnonzero((r >= window[0]) & (r <= window[1]))
    if not np.any(g[inside] > 0):
        return float("nan")
    return parabolic_peak(r, g, inside)[1]


def partial_coordination(atoms_or_list: Atoms | Sequence[Atoms], centre: str, neighbour: str, cutoff: float
                         ) -> np.ndarray:
    """Number of ``neighbour`` atoms within ``cutoff`` of every ``centre`` atom: int ``[n_centres]`` pooled."""
    check_positive(cutoff, "cutoff", "A")
    zc, zn = _z(centre), _z(neighbour)
    out = []
    for atoms in as_structures(atoms_or_list):
        i, j = neighbour_list("ij", atoms, cutoff)
        z = atoms.numbers
        cn = np.bincount(i[z[j] == zn], minlength=len(atoms))
        out.append(cn[z == zc])
    return np.concatenate(out)


def fractions(counts: np.ndarray, upto: int = 8) -> np.ndarray:
    """Fraction of ``counts`` equal to 0, 1, ..., ``upto`` (the last bin holds ``upto`` and more)."""
    counts = np.minimum(np.asarray(counts, dtype=int), upto)
    return np.bincount(counts, minlength=upto + 1) / max(len(counts), 1)


def triplet_angles(atoms_or_list: Atoms | Sequence[Atoms], end: str, centre: str, cutoff: float,
                   other_end: str | None = None) -> np.ndarray:
    """Every ``end``-``centre``-``other_end`` angle (degrees) between bonds shorter than ``cutoff`` sharing a
    centre (``other_end`` defaults to ``end``: O-Si-O is ``("O", "Si", 2.0)``, Si-O-Si ``("Si", "O", 2.0)``)."""
    check_positive(cutoff, "cutoff", "A")
    ze, zc = _z(end), _z(centre)
    zo = ze if other_end is None else _z(other_end)
    out = []
    for atoms in as_structures(atoms_or_list):
        i, j, vec = neighbour_list("ijD", atoms, cutoff)
        z = atoms.numbers
        keep = (z[i] == zc) & np.isin(z[j], [ze, zo])
        i, j, vec = i[keep], j[keep], vec[keep]
        unit = vec / np.linalg.norm(vec, axis=1)[:, None]
        for c in np.unique(i):
            sel = np.flatnonzero(i == c)
            p, q = np.triu_indices(len(sel), 1)
            a, b = sel[p], sel[q]
            ok = ((z[j[a]] == ze) & (z[j[b]] == zo)) | ((z[j[a]] == zo) & (z[j[b]] == ze))
            cos = np.einsum("ij,ij->i", unit[a[ok]], unit[b[ok]])
            out.append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    return np.concatenate(out) if out else np.zeros(0)


def network_rings(atoms_or_list: Atoms | Sequence[Atoms], bonds: dict[tuple[str, str], float],
                  maxlength: int = 20) -> np.ndarray:
    """Shortest-path rings (Franzblau, matscipy) of the bond network ``bonds`` (``{("Si", "O"): 2.0}``: only these
    pairs bond), by ring length in atoms, summed over structures: int ``[maxlength + 1]``.

    In silica a ring of n Si holds 2n atoms (``counts[2 * n]``). A cell narrower than half the longest ring's
    path (``maxlength`` x the longest cut-off / 2) is searched as a supercell and the counts divided by the copies.
    """
    from matscipy.rings import ring_statistics as _franzblau

    maxlength = check_count(maxlength, "maxlength", minimum=3)
    cutoff = {}
    for (a, b), r in bonds.items():
        check_positive(r, f"{a}-{b} cut-off", "A")
        cutoff[(_z(a), _z(b))] = cutoff[(_z(b), _z(a))] = float(r)
    search = maxlength + 1 if maxlength % 2 else maxlength + 2
    total = np.zeros(maxlength + 1, dtype=int)
    for atoms in as_structures(atoms_or_list):
        big, copies = repeat_to_width(atoms, maxlength * max(cutoff.values()) / 2)
        counts = np.asarray(_franzblau(big, cutoff, maxlength=search))[: maxlength + 1]
        total[: len(counts)] += np.rint(counts / copies).astype(int)
    return total


def total_rdf(atoms_or_list: Atoms | Sequence[Atoms], weighting: str = "neutron", rmax: float = 10.0,
              bins: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Total g(r) weighted for a scattering experiment: ``sum_ab c_a c_b w_a w_b g_ab(r) / (sum_a c_a w_a)^2`` with
    ``w`` the neutron scattering lengths, atomic numbers (``"xray"``) or 1 (``"number"``: ``analysis.rdf``).

    Returns bin centres ``[bins]`` (A) and ``g [bins]`` (-> 1 at large r).
    """
    edges = _edges(rmax, bins)
    counts, norm = np.zeros(bins), 0.0
    for atoms in as_structures(atoms_or_list):
        w = scattering_weights(atoms.numbers, weighting)
        i, j, d = neighbour_list("ijd", atoms, rmax)
        counts += np.histogram(d, edges, weights=w[i] * w[j])[0]
        norm += w.sum() ** 2 / atoms.get_volume()
    shell = 4.0 / 3.0 * np.pi * np.diff(edges**3)
    return 0.5 * (edges[1:] + edges[:-1]), counts / (norm * shell)


def number_density(atoms_or_list: Atoms | Sequence[Atoms]) -> float:
    """Atoms per A^3 over all structures."""
    structures = as_structures(atoms_or_list)
    return sum(len(a) for a in structures) / sum(a.get_volume() for a in structures)


def reduced_pdf(r: np.ndarray, g: np.ndarray, rho: float) -> np.ndarray:
    """``G(r) = 4 pi r rho (g(r) - 1)`` (1/A^2) of a g(r) at number density ``rho`` (1/A^3)."""
    return 4 * np.pi * np.asarray(r) * rho * (np.asarray(g) - 1)


def structure_factor(r: np.ndarray, g: np.ndarray, rho: float, q: np.ndarray, lorch: bool = True) -> np.ndarray:
    """``S(Q) = 1 + 4 pi rho int r (g(r) - 1) sin(Q r) / Q dr`` over the given r grid (uniform), with the Lorch
    window ``sin(pi r / R) / (pi r / R)`` against termination ripples (``lorch``). ``q [m]`` in 1/A."""
    r, g, q = (np.asarray(x, dtype=float) for x in (r, g, q))
    dr = r[1] - r[0]
    window = np.sinc(r / (r[-1] + dr / 2)) if lorch else np.ones_like(r)
    integrand = r * (g - 1) * window
    return 1 + 4 * np.pi * rho * (np.sin(np.outer(q, r)) @ integrand) * dr / q
