"""Multi-panel figure (paper Fig. 3 style) drawn only from a :func:`build_report` dict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

STYLE = {"generated": {"color": "C3", "label": "generated"}, "reference": {"color": "k", "label": "reference"}}


def _stairs(ax, panel: dict[str, Any], **kwargs) -> None:
    for side, style in STYLE.items():
        ax.stairs(panel[side], panel["edges"], **style, **kwargs)


def plot_report(report: dict[str, Any], path: str | Path, *, dpi: int = 120, overwrite: bool = False) -> None:
    """Write a 2x3 figure to ``path`` (format from its extension): CN, g(r), bond angles, q4/q6, Voronoi volumes,
    GAP energies.

    Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend change).

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False (the default).
    """
    if Path(path).exists() and not overwrite:
        raise FileExistsError(f"{path} exists: pass overwrite=True to replace it")
    # matplotlib is slow to import: loaded only where a figure is drawn
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = report["panels"]
    fig = Figure(figsize=(13, 7.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3).ravel()

    ax, p = axes[0], panels["coordination"]
    cn = np.asarray(p["cn"])
    for k, (side, style) in enumerate(STYLE.items()):
        ax.bar(cn + (k - 0.5) * 0.4, p[side], width=0.4, **style)
    ax.set(xlabel="coordination number", ylabel="fraction of atoms", xticks=cn)

    ax, p = axes[1], panels["rdf"]
    for side, style in STYLE.items():
        ax.plot(p["r"], p[side], **style)
    ax.axhline(1.0, color="0.7", lw=0.8)
    ax.set(xlabel="r (Å)", ylabel="g(r)")

    _stairs(axes[2], panels["angles"])
    axes[2].set(xlabel="bond angle (°)", ylabel="density (1/°)", xlim=(40, 180))

    ax = axes[3]
    for l, ls in (("q4", "-"), ("q6", "--")):
        for side, style in STYLE.items():
            ax.stairs(panels[l][side], panels[l]["edges"], color=style["color"], ls=ls, label=f"{l} {side}")
    ax.set(xlabel="Steinhardt $q_l$", ylabel="density")

    _stairs(axes[4], panels["voronoi"])
    axes[4].set(xlabel="Voronoi volume (Å$^3$)", ylabel="density (1/Å$^3$)")

    ax = axes[5]
    if "energy" in panels:
        _stairs(ax, panels["energy"])
        ax.set(xlabel="GAP energy per atom (eV)", ylabel="density (1/eV)")
    else:
        ax.text(0.5, 0.5, "GAP energies not computed", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()

    for ax in axes[:5]:
        ax.legend(fontsize="small", frameon=False)
    gen, ref = report["generated"], report["reference"]
    fig.suptitle(
        f"generated: {gen['n_structures']} structure(s), {gen['n_atoms']} atoms, {gen['density_g_cm3']:.2f} g/cm³"
        f"  |  reference: {ref['n_structures']} structure(s), {ref['n_atoms']} atoms, {ref['density_g_cm3']:.2f} g/cm³"
    )
    fig.savefig(path, dpi=dpi)
