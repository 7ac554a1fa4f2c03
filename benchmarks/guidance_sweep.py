"""Spectrum-guided generation figures: paper Fig. 5 analogue, zeta sweep, composability, cost.

    python benchmarks/guidance_sweep.py [--n 16] [--steps N] [--zetas 0 1 3 10 30] [--plot examples/zeta_sweep.png]
        [--checkpoint prior.pt] [--guided-refine-from 0.1 ...] [--coordination-t-min 0.2] [--ring-strain-weight 0.5]
        [--coordination-tolerance 0] [--seed 0] [--fig5-only [--fig5-plot examples/fig5_guided.png] | --cost-only
        | --composability-only [--composability-n 8] [--composability-seed 2]] [--cost-reps 10]
        [--target-broadening 1.0]   # Fig. 5 targets 1 eV (FWHM) broader than DFT, as a measurement

At 2.0 g/cm3: unguided cells, and cells guided by an sp-rich target (mean DFT spectrum of the held-out
1.5 g/cm3 cell) and by an sp3-rich target (held-out 2.5 g/cm3 cell), with the generator's default guide for a
spectrum (``spectrum_guide``: XANES + coordination fractions unmixed from the spectrum + ring strain) and with the
spectrum alone (``XANESGuide``). Prints CN fractions, defect fraction, GAP mean energy (and per CN), the fraction of
bond angles below 75 degrees (three-membered rings), the relative L2 distance of the predicted mean spectrum to each
target, and the cost of a guided step against an unguided one.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import torch
from ase import Atoms
from torch.utils._python_dispatch import TorchDispatchMode

from ase_xanesgen import DiffusionGenerator, XANESCalculator, cubic_cell, gap_energies
from ase_xanesgen.analysis import bond_angles, hybridisation_fractions
from ase_xanesgen.analysis.coordination import coordination_counts
from ase_xanesgen.cli.generate import add_sampler_arguments, generator_from_args
from ase_xanesgen.data.datasets import load_cell
from ase_xanesgen.data.spectra import broaden
from ase_xanesgen.diffusion import PriorScore
from ase_xanesgen.diffusion.samplers import System
from ase_xanesgen.frontends.generator import DEFAULT_ZETA
from ase_xanesgen.guidance import CoordinationGuide, Guide, GuidedScore, RingStrainGuide, XANESGuide, spectrum_guide
from ase_xanesgen.guidance.xanes import DEFAULT_COORDINATION_WEIGHT, DEFAULT_RING_STRAIN_WEIGHT
from ase_xanesgen.nn import meshgraphnet

#: bond angles below this (degrees) mark three-membered rings, absent from the MD cells
ACUTE_ANGLE = 75.0
#: held-out cells of the topology split (data.datasets.split_by_topology)
TARGETS = {"sp-rich (1.5 g/cm3 d1.5_9)": "d1.5_9", "sp3-rich (2.5 g/cm3 d2.5_4)": "d2.5_4"}


def renoised(gen: DiffusionGenerator, cells: list[Atoms], t: float) -> tuple[System, torch.Tensor]:
    """The batch of ``cells`` and their positions re-noised to ``t`` (one fixed noise draw, seed 0): states the
    sampler visits, for timing and counting single evaluations."""
    system = gen._system(cells[0], len(cells))
    clean = torch.tensor(np.concatenate([a.positions for a in cells]), dtype=torch.float32, device=gen.device)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)).to(clean)
    return system, clean + gen.sde.sigma(torch.tensor(t)).item() * noise


def step_cost(gen: DiffusionGenerator, cells: list[Atoms], guides: dict[str, Guide], reps: int = 10,
              times_t: tuple[float, ...] = (0.9, 0.3, 0.05)) -> dict:
    """Seconds of one unguided and one guided score evaluation per guide at each ``t``, on the ``cells`` re-noised
    to that level (states the sampler visits): best
    of ``reps`` alternating rounds, and the median ratio of each round's pair (a shared machine's speed drifts by 10-30 %
    over minutes)."""
    prior = PriorScore(gen.model, gen.sde)
    fns = {"unguided": prior, **{name: GuidedScore(prior, guide, DEFAULT_ZETA) for name, guide in guides.items()}}
    first = next(iter(guides))
    if fns[first].bf16_on(gen.device):  # the default's bfloat16 backward against float32
        fns[f"{first}, float32 gradients"] = GuidedScore(prior, guides[first], DEFAULT_ZETA, bf16_gradients=False)
    out = {}
    for t in times_t:
        system, pos = renoised(gen, cells, t)
        seconds: dict[str, list[float]] = {label: [] for label in fns}
        for k in range(reps + 1):  # the first round warms up
            for label, fn in fns.items():
                with torch.no_grad() if fn is prior else torch.enable_grad():
                    t0 = time.perf_counter()
                    fn(pos, t, system)
                    if pos.is_cuda:
                        torch.cuda.synchronize()
                if k:
                    seconds[label].append(time.perf_counter() - t0)
        free = seconds["unguided"]
        out[t] = {"unguided_step_s": min(free), "guided": {
            name: {"guided_step_s": min(seconds[name]), "step_ratio": min(seconds[name]) / min(free),
                   "median_pair_ratio": float(np.median(np.divide(seconds[name], free)))} for name in fns
            if name != "unguided"}}
    return out


class _OpCounter(TorchDispatchMode):
    """Counts the tensor operations that reach the kernels (views and allocations aside)."""

    FREE = {"view", "_unsafe_view", "as_strided", "slice", "select", "t", "transpose", "expand", "unsqueeze", "squeeze",
            "detach", "alias", "permute", "split", "split_with_sizes", "unbind", "narrow", "diagonal", "reshape",
            "empty", "empty_strided", "empty_like", "lift_fresh"}

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func.overloadpacket.__name__ not in self.FREE
        return func(*args, **(kwargs or {}))


def op_counts(gen: DiffusionGenerator, cells: list[Atoms], guide: Guide, t: float = 0.3) -> dict:
    """Tensor operations of one unguided and one guided evaluation on the unchunked (GPU) path, on ``cells``
    re-noised to ``t``: the kernel launches that set the cost on a GPU whose batch is too small to fill it (H100, 16
    cells: 3.6-4.0x). The same count on any machine."""
    system, pos = renoised(gen, cells, t)
    prior = PriorScore(gen.model, gen.sde)
    out = {}
    chunk = meshgraphnet.EDGE_CHUNK
    meshgraphnet.EDGE_CHUNK = meshgraphnet.GPU_EDGE_CHUNK  # the GPU's path: no edge chunks without autograd
    try:
        guided = GuidedScore(prior, guide, DEFAULT_ZETA, bf16_gradients=False)  # float32 backward, as on a GPU
        for label, fn in (("unguided", prior), ("guided", guided)):
            with torch.no_grad() if fn is prior else torch.enable_grad(), _OpCounter() as counter:
                fn(pos, t, system)
            out[label] = counter.count
    finally:
        meshgraphnet.EDGE_CHUNK = chunk
    out["ratio"] = out["guided"] / out["unguided"]
    return out


def sampler_step_cost(gen: DiffusionGenerator, template: Atoms, guide: Guide, n: int, seed: int, steps: int | None,
                      rounds: int = 2) -> dict:
    """Seconds per sampler step of a whole unguided and a whole guided run of ``n`` cells without restart cycles:
    each run's time over its score evaluations (``info["score_evaluations"]``: Euler-Maruyama steps, refinement and
    anneal cycles), so every per-step cost of the sampler (noise, wrapping, records, progress) counts, as in use. The
    best of each over ``rounds`` alternating pairs of runs (a single pair can swing from 2.5 to 3.1 with the machine's
    speed)."""
    seconds: dict[str, list[float]] = {"unguided": [], "guided": []}
    out, max_restarts = {}, gen.max_restarts
    gen.max_restarts = 0  # restart cycles run on the defective cells only: their count differs between runs
    try:
        for _ in range(rounds):
            for label, extra in (("unguided", {}), ("guided", {"guide": guide})):
                t0 = time.perf_counter()
                with warnings.catch_warnings():  # restart-free runs keep defects by design
                    warnings.simplefilter("ignore")
                    cells = gen.generate_batch(template, 2.0, n=n, seed=seed, steps=steps, **extra)
                evaluations = cells[0].info["score_evaluations"]
                seconds[label].append((time.perf_counter() - t0) / evaluations)
                out[f"{label}_evaluations"] = evaluations
    finally:
        gen.max_restarts = max_restarts
    out.update({f"{label}_step_s": min(v) for label, v in seconds.items()})
    out["step_ratio"] = out["guided_step_s"] / out["unguided_step_s"]
    out["pair_ratios"] = np.divide(seconds["guided"], seconds["unguided"]).tolist()
    return out


def print_cost(cost: dict, n: int) -> None:
    if "ops" in cost:
        o = cost["ops"]
        print(f"\ncost ({n} cells): tensor operations per evaluation (kernel launches on a GPU), guided / unguided = "
              f"{o['ratio']:.2f} ({o['guided']} / {o['unguided']})")
    if "sampler" in cost:
        s = cost["sampler"]
        print(f"\ncost ({n} cells): sampler step in whole runs without restarts, guided / unguided = "
              f"{s['step_ratio']:.2f} best of each ({s['guided_step_s']:.3f} s x {s['guided_evaluations']} / "
              f"{s['unguided_step_s']:.3f} s x {s['unguided_evaluations']}), pairs "
              + " / ".join(f"{r:.2f}" for r in s["pair_ratios"]))
    if "run_ratio" in cost:
        print(f"\ncost ({n} cells): whole guided run / unguided run (restarts included) = {cost['run_ratio']:.2f}")
    for t, r in cost["steps"].items():
        for name, g in r["guided"].items():
            print(f"  one evaluation at t = {t}, {name}: guided / unguided = {g['step_ratio']:.2f} best of each "
                  f"({g['guided_step_s']:.3f} / {r['unguided_step_s']:.3f} s), "
                  f"{g['median_pair_ratio']:.2f} median of pairs")


def cell_figures(images: list[Atoms], target: np.ndarray, calc: XANESCalculator, broadening: float = 0.0) -> dict:
    """CN fractions, defects, GAP energies, acute angles, and the predicted mean spectrum (broadened by
    ``broadening`` eV FWHM, the target's extra width) with its relative L2 distance to ``target``."""
    fr = [hybridisation_fractions(a) for a in images]
    per_cell = broaden(np.array([calc.get_property("xanes_mean", a) for a in images]), broadening)
    mean = per_cell.mean(axis=0)
    return {"CN2": float(np.mean([f["CN2"] for f in fr])), "CN2_std": float(np.std([f["CN2"] for f in fr])),
            "CN3": float(np.mean([f["CN3"] for f in fr])), "CN3_std": float(np.std([f["CN3"] for f in fr])),
            "CN4": float(np.mean([f["CN4"] for f in fr])), "CN4_std": float(np.std([f["CN4"] for f in fr])),
            "defects": float(np.mean([f["CN<=1"] + f["CN>=5"] for f in fr])),
            "spectrum_rel_l2": float(np.linalg.norm(mean - target) / np.linalg.norm(target)),
            "spectrum_rel_l2_se": spectrum_distance_se(per_cell, target),
            "mean_spectrum": mean.tolist(),
            "acute_angles": float(np.mean(bond_angles(images) < ACUTE_ANGLE)), **gap_by_coordination(images)}


def spectrum_distance_se(per_cell: np.ndarray, target: np.ndarray, reps: int = 1000) -> float:
    """Bootstrap standard error (over the cells) of the relative L2 distance of their mean spectrum to ``target``:
    how far another draw of as many cells could move it (differences between guides below ~2 of these are noise)."""
    draws = np.random.default_rng(0).integers(0, len(per_cell), (reps, len(per_cell)))
    means = per_cell[draws].mean(axis=1)
    return float(np.std(np.linalg.norm(means - target, axis=1) / np.linalg.norm(target)))


def gap_by_coordination(images: list[Atoms]) -> dict:
    """Mean GAP energy per atom, and per atom of each coordination (CN2, CN3, CN4): is an energy excess the
    bonding mix (sp atoms cost ~1 eV more than sp2 / sp3 in MD too) or strained sites?"""
    energy = np.concatenate([gap_energies(a) for a in images])
    cn = np.concatenate([coordination_counts(a) for a in images])
    out = {"gap_mean_eV": float(energy.mean())}
    out.update({f"gap_CN{c}_eV": float(energy[cn == c].mean()) if (cn == c).any() else float("nan")
                for c in (2, 3, 4)})
    return out


def per_cn(r: dict) -> str:
    return " / ".join(f"{r[f'gap_CN{c}_eV']:.2f}" for c in (2, 3, 4))


def composability(gen: DiffusionGenerator, template: Atoms, refs: dict[str, Atoms], calc: XANESCalculator,
                  args: argparse.Namespace) -> dict:
    """Per target cell: the XANES, coordination (towards the cell's true fractions) and ring-strain terms at the
    weights ``spectrum_guide`` sums them with, alone and summed, on its mean spectrum. Prints a table per target
    and, for each sum, whether it beats the single guides of its parts on each target (the strict reading): the
    spectrum closer than the XANES term alone, the CN fractions closer than the structural terms
    alone. CN error: the L2 distance of (CN2, CN3, CN4) to the cell's (``cn_error``), and that of the fraction
    the target moves (``moved_error``, CN2 or CN4 as ``moved``). Returns ``{target: {"guides": {label: figures},
    "strict": {sum: bool}}}``."""
    w_c, w_r = DEFAULT_COORDINATION_WEIGHT, DEFAULT_RING_STRAIN_WEIGHT
    n = args.composability_n or max(2, args.n // 2)
    seed = args.seed + 2 if args.composability_seed is None else args.composability_seed
    results = {}
    for name, ref in refs.items():
        target = ref.arrays["xanes"].mean(0)
        tf = hybridisation_fractions(ref)
        key = "CN2" if "sp-rich" in name else "CN4"
        coord = CoordinationGuide({k: tf[k] for k in ("CN2", "CN3", "CN4")}, weight=w_c,
                                  tolerance=args.coordination_tolerance)
        ring = RingStrainGuide(weight=w_r)
        alone, structure = f"{w_c} x coordination", f"{w_c} x coord + {w_r} x ring strain"
        pair, both = f"xanes + {w_c} x coordination", f"xanes + {w_c} x coord + {w_r} x ring"
        combos = {"xanes": XANESGuide(target), alone: coord, pair: XANESGuide(target) + coord,
                  structure: coord + ring, both: XANESGuide(target) + coord + ring}
        print(f"\ncomposability, {name} ({n} cells, seed {seed}, coordination tolerance "
              f"{args.coordination_tolerance}):\n{'guide':34s} {'specL2 ± se':>13s} {'CN L2':>7s} "
              f"{'|d' + key + '|':>7s} {'defect':>6s} {'<75deg':>6s} {'GAP eV':>7s}")
        rows, strict = {}, {}
        for label, guide in combos.items():
            out = gen.generate_batch(template, 2.0, n=n, seed=seed, steps=args.steps, guide=guide, zeta=args.zeta)
            r = cell_figures(out, target, calc)
            r["cn_error"] = float(np.linalg.norm([r[k] - tf[k] for k in ("CN2", "CN3", "CN4")]))
            r["moved"], r["moved_error"] = key, abs(r[key] - tf[key])
            rows[label] = r
            print(f"{label:34s} {r['spectrum_rel_l2']:7.3f}±{r['spectrum_rel_l2_se']:.3f} {r['cn_error']:7.3f} "
                  f"{r['moved_error']:7.3f} "
                  f"{r['defects']:6.3f} {r['acute_angles']:6.3f} {r['gap_mean_eV']:7.3f}", flush=True)
        for summed, structural in ((pair, alone), (both, structure)):
            s_sum, s_x = rows[summed], rows["xanes"]
            gain = s_x["spectrum_rel_l2"] - s_sum["spectrum_rel_l2"]
            spec, cn = gain > 0, s_sum["cn_error"] < rows[structural]["cn_error"]
            print(f"{summed}: spectrum closer than xanes alone: {spec} (by {gain:+.3f} ± "
                  f"{np.hypot(s_sum['spectrum_rel_l2_se'], s_x['spectrum_rel_l2_se']):.3f}); CN closer than "
                  f"{structural} alone: {cn}")
            strict[summed] = bool(spec and cn)
        results[name] = {"guides": rows, "strict": strict}
    return results


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--steps", type=int, default=None, help="Euler-Maruyama steps (default: the generator's)")
    p.add_argument("--zeta", type=float, default=None, help="zeta for the Fig. 5 runs (default: generator's)")
    p.add_argument("--zetas", type=float, nargs="*", default=[0, 1, 3, 10, 30])
    p.add_argument("--seed", type=int, default=0, help="Fig. 5 runs (the zeta sweep uses seed + 1, composability + 2)")
    p.add_argument("--fig5-only", action="store_true", help="stop after the Fig. 5 runs and the cost")
    p.add_argument("--cost-only", action="store_true", help="only the step cost, on the unguided cells")
    p.add_argument("--composability-only", action="store_true", help="only the composability table")
    p.add_argument("--composability-n", type=int, default=None, help="cells per composability run (default: n / 2)")
    p.add_argument("--composability-seed", type=int, default=None, help="default: seed + 2")
    p.add_argument("--cost-reps", type=int, default=10,
                   help="alternating rounds of the step cost (more: a steadier median on a VM whose speed drifts)")
    p.add_argument("--checkpoint", help="prior model.pt / last.pt (default: shipped weights)")
    p.add_argument("--coordination-t-min", type=float, default=0.0,
                   help="Fig. 5 runs: the default guide's coordination term only while t >= this")
    p.add_argument("--coordination-tolerance", type=float, default=0.0,
                   help="the coordination term's tolerance (Fig. 5 default guide and composability; 0: plain L2)")
    p.add_argument("--ring-strain-weight", type=float, default=DEFAULT_RING_STRAIN_WEIGHT,
                   help="Fig. 5 runs: the default guide's ring-strain weight (0: off)")
    p.add_argument("--target-broadening", type=float, default=0.0,
                   help="Fig. 5 runs: broaden the target spectra by this FWHM (eV), as a measurement at lower "
                        "resolution than DFT (the guide is not told; the reported spectrum distances broaden the "
                        "predictions alike)")
    add_sampler_arguments(p)
    p.add_argument("--device", default=None)
    p.add_argument("--json")
    p.add_argument("--plot", help="zeta sweep figure (PNG)")
    p.add_argument("--fig5-plot",
                   help="Fig. 5 figure (PNG): spectra and CN fractions per target (not with --cost-only)")
    args = p.parse_args(argv)

    gen = generator_from_args(args)

    def fig5_guide(target: np.ndarray) -> Guide:
        return spectrum_guide(target, coordination_t_min=args.coordination_t_min,
                              coordination_tolerance=args.coordination_tolerance,
                              ring_strain_weight=args.ring_strain_weight)

    calc = XANESCalculator(device="cpu")
    template = cubic_cell(216, 2.0)
    results: dict = {}
    refs = {name: load_cell(cell) for name, cell in TARGETS.items()}
    if args.composability_only:
        results["composability"] = composability(gen, template, refs, calc, args)
        return write_json(results, args.json)
    cost_target = list(refs.values())[0].arrays["xanes"].mean(0)  # the step cost's: the sp-rich target
    # the default guide of a spectrum (with the coordination and ring-strain terms) and the plain XANES guide
    cost_guides = {"spectrum_guide": fig5_guide(cost_target), "XANESGuide": XANESGuide(cost_target)}

    gen.generate_batch(template, 2.0, n=2, seed=0, steps=2)  # warm-up: the first call also pays set-up
    t0 = time.perf_counter()
    free = gen.generate_batch(template, 2.0, n=args.n, seed=args.seed, steps=args.steps)
    t_free = time.perf_counter() - t0
    if args.cost_only:
        results["cost"] = {"steps": step_cost(gen, free, cost_guides, args.cost_reps),
                           "ops": op_counts(gen, free, cost_guides["spectrum_guide"]),
                           "sampler": sampler_step_cost(gen, template, cost_guides["spectrum_guide"], args.n,
                                                        args.seed, args.steps)}
        print_cost(results["cost"], args.n)
        return write_json(results, args.json)
    md = [load_cell(n) for n in ("d2.0_1", "d0.0_14", "d0.0_15")]
    md_gap = gap_by_coordination(md)
    results["md_2.0_gap_mean_eV"], results["md_2.0_gap_by_cn"] = md_gap["gap_mean_eV"], md_gap
    print(f"MD 2.0 g/cm3 GAP mean energy: {md_gap['gap_mean_eV']:.3f} eV/atom; " + per_cn(md_gap)
          + f"; bond angles < {ACUTE_ANGLE:.0f} deg: {np.mean(bond_angles(md) < ACUTE_ANGLE):.3f}")
    header = (f"{'run':34s} {'CN2':>12s} {'CN4':>12s} {'defect':>6s} {'specL2':>7s} {'<75deg':>6s} {'GAP eV':>7s}"
              "  GAP per CN2 / CN3 / CN4 atom")
    for name, ref in refs.items():
        target = broaden(ref.arrays["xanes"].mean(0), args.target_broadening)
        tf = hybridisation_fractions(ref)
        t0 = time.perf_counter()
        guided = gen.generate_batch(template, 2.0, n=args.n, seed=args.seed, steps=args.steps, zeta=args.zeta,
                                    guide=fig5_guide(target))
        if not results.get("cost"):
            t_guided = time.perf_counter() - t0
            results["cost"] = {"unguided_run_s": t_free, "guided_run_s": t_guided, "run_ratio": t_guided / t_free}
        xanes_only = gen.generate_batch(template, 2.0, n=args.n, seed=args.seed, steps=args.steps,
                                        guide=XANESGuide(target), zeta=args.zeta)
        rows = {label: cell_figures(images, target, calc, args.target_broadening)
                for label, images in (("unguided", free), ("guided", guided), ("xanes_only", xanes_only))}
        key = "CN2" if "sp-rich" in name else "CN4"
        u = rows["unguided"]
        rows["target_cell"] = {k: tf[k] for k in ("CN2", "CN3", "CN4")}
        rows["target_spectrum"], rows["target_broadening_eV"] = target.tolist(), args.target_broadening
        for label in ("guided", "xanes_only"):
            g = rows[label]
            gap = tf[key] - u[key]
            rows[f"{label}_fraction_moved"] = (g[key] - u[key]) / gap if gap else float("nan")
            rows[f"{label}_beyond_2sigma"] = bool(abs(g[key] - u[key]) > 2 * u[f"{key}_std"])
            rows[f"{label}_spectrum_l2_ratio"] = u["spectrum_rel_l2"] / g["spectrum_rel_l2"]
        results[name] = rows
        print(f"\ntarget {name}: target cell {key} {tf[key]:.3f}\n{header}")
        for label in ("unguided", "guided", "xanes_only"):
            r = rows[label]
            print(f"{label:34s} {r['CN2']:.3f}±{r['CN2_std']:.3f} {r['CN4']:.3f}±{r['CN4_std']:.3f} "
                  f"{r['defects']:6.3f} {r['spectrum_rel_l2']:7.3f} {r['acute_angles']:6.3f} {r['gap_mean_eV']:7.3f}  "
                  f"{per_cn(r)}")
            if label != "unguided":
                print(f"  {label}: moved {rows[f'{label}_fraction_moved']:.2f} of the way to the target {key}; "
                      f"beyond 2 sigma: {rows[f'{label}_beyond_2sigma']}; spectrum distance unguided/guided = "
                      f"{rows[f'{label}_spectrum_l2_ratio']:.2f}")
    if args.fig5_plot:
        plot_fig5(results, calc.energy_grid, args.fig5_plot)
    results["cost"]["steps"] = step_cost(gen, free, cost_guides, args.cost_reps)
    print_cost(results["cost"], args.n)

    if args.fig5_only:
        return write_json(results, args.json)
    # zeta sweep on the sp3-rich target, then composability on both targets
    name, ref = list(refs.items())[1]
    target = ref.arrays["xanes"].mean(0)
    sweep = []
    print(f"\nzeta sweep ({name}):\n{'zeta':>6s} {'specL2':>7s} {'defect':>6s} {'CN4':>6s} {'GAP eV':>7s}")
    n_sweep = max(2, args.n // 4)
    for zeta in args.zetas:
        out = gen.generate_batch(template, 2.0, n=n_sweep, seed=args.seed + 1, steps=args.steps, guide=target,
                                 zeta=zeta)
        r = cell_figures(out, target, calc)
        sweep.append({"zeta": zeta, **r})
        print(f"{zeta:6.1f} {r['spectrum_rel_l2']:7.3f} {r['defects']:6.3f} {r['CN4']:6.3f} {r['gap_mean_eV']:7.3f}",
              flush=True)
    results["zeta_sweep"] = sweep
    results["composability"] = composability(gen, template, refs, calc, args)
    if args.plot:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8, 3.2))
        ax1, ax2 = fig.subplots(1, 2)
        z = [s["zeta"] for s in sweep]
        ax1.plot(z, [s["spectrum_rel_l2"] for s in sweep], "o-")
        ax1.set(xlabel="zeta", ylabel="relative L2 to target spectrum", xscale="symlog")
        ax2.plot(z, [s["defects"] for s in sweep], "o-", color="C3")
        ax2.set(xlabel="zeta", ylabel="CN<=1 + CN>=5 fraction", xscale="symlog")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
    return write_json(results, args.json)


def plot_fig5(results: dict, energy: np.ndarray, path: str) -> None:
    """Paper Fig. 5 analogue: per target, the predicted mean spectra against the target's DFT mean, and the
    CN2 / CN3 / CN4 fractions (mean and spread over the cells) of each run beside the target cell's."""
    from matplotlib.figure import Figure

    runs = {"unguided": ("unguided", "0.55", "-"), "guided": ("guided: spectrum + CN + ring strain", "C0", "-"),
            "xanes_only": ("guided: XANES term only", "C1", "--")}
    targets = [name for name in TARGETS if name in results]
    fig = Figure(figsize=(10, 3.4 * len(targets)))
    axes = fig.subplots(len(targets), 2, squeeze=False)
    for (ax_s, ax_c), name in zip(axes, targets):
        rows = results[name]
        extra = rows.get("target_broadening_eV", 0.0)
        ax_s.plot(energy, rows["target_spectrum"], color="k", lw=2,
                  label="target (DFT cell mean" + (f", and predictions, broadened {extra:g} eV)" if extra else ")"))
        for label, (shown, colour, style) in runs.items():
            ax_s.plot(energy, rows[label]["mean_spectrum"], color=colour, ls=style,
                      label=f"{shown} (rel. L2 {rows[label]['spectrum_rel_l2']:.3f})")
        ax_s.set(xlabel="energy (eV)", ylabel="intensity", title=name)
        ax_s.legend(fontsize=8)
        keys = ("CN2", "CN3", "CN4")
        x = np.arange(len(keys))
        for k, (label, (shown, colour, _)) in enumerate(runs.items()):
            ax_c.bar(x + (k - 1.5) * 0.2, [rows[label][c] for c in keys], 0.2, color=colour, label=shown,
                     yerr=[rows[label][f"{c}_std"] for c in keys], capsize=2)
        ax_c.bar(x + 1.5 * 0.2, [rows["target_cell"][c] for c in keys], 0.2, color="k", label="target cell")
        ax_c.set(xticks=x, xticklabels=keys, ylabel="fraction of atoms", ylim=(0, 1.15))
        ax_c.set_title("CN fractions (± spread of the cells)\ngenerated at 2.0 g/cm3, target cell at its own density",
                       fontsize=10)
        ax_c.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_json(results: dict, path: str | None) -> dict:
    if path:
        with open(path, "w") as fh:
            json.dump(results, fh, indent=1)
    return results


if __name__ == "__main__":
    main()
