import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from ase_xanesgen import DiffusionGenerator, cubic_cell
from ase_xanesgen.data.datasets import load_cell
from ase_xanesgen.diffusion import PriorScore, System
from ase_xanesgen.guidance import CoordinationGuide, GuidedScore, RingStrainGuide, XANESGuide, spectrum_guide
from ase_xanesgen.guidance import base as guidance_base


@pytest.fixture(scope="module")
def gen():
    return DiffusionGenerator(device="cpu")


@pytest.fixture(scope="module")
def target_sp(data_dir):
    return load_cell("d1.5_1", data_dir).arrays["xanes"].mean(0)


def system_of(atoms, dtype=torch.float32) -> System:
    return System(torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array, dtype=dtype)[None],
                  torch.zeros(len(atoms), dtype=torch.long))


def tiny_system(dtype=torch.float64):
    atoms = bulk("C", "diamond", a=3.57, cubic=True) * (2, 1, 1)
    atoms.rattle(0.15, seed=2)
    return atoms, system_of(atoms, dtype), torch.tensor(atoms.positions, dtype=dtype)


@pytest.mark.slow
def test_likelihood_gradient_is_taken_through_x0(gen, target_sp):
    model = gen.model.double()
    try:
        prior = PriorScore(model, gen.sde)
        guide = XANESGuide(target_sp)
        guide.model.double()
        atoms, system, pos = tiny_system()
        t, zeta = 0.3, 2.0
        guided = GuidedScore(prior, guide, zeta)
        likelihood = (guided(pos, t, system) - prior(pos, t, system)).detach()
        sigma2 = gen.sde.sigma(torch.tensor(t)).item() ** 2

        def objective(x):  # N * r(x0(x_t)), the DPS objective on the denoised estimate
            with torch.no_grad():
                return len(atoms) * guide.residual(x + sigma2 * prior(x, t, system), system).sum().item()

        h = 1e-5
        for atom, axis in [(0, 0), (3, 1), (9, 2)]:
            e = torch.zeros_like(pos)
            e[atom, axis] = h
            fd = (objective(pos + e) - objective(pos - e)) / (2 * h)
            assert likelihood[atom, axis].item() == pytest.approx(-zeta * fd, rel=1e-4, abs=1e-8)
        # and it is not the gradient taken on x_t itself
        x = pos.clone().requires_grad_(True)
        (g_xt,) = torch.autograd.grad(len(atoms) * guide.residual(x, system).sum(), x)
        assert not torch.allclose(likelihood, -zeta * g_xt, rtol=1e-2)
    finally:
        gen.model.float()


def test_summed_guides_add_gradients(gen, target_sp):
    prior = PriorScore(gen.model, gen.sde)
    atoms, system, pos = tiny_system(torch.float32)
    a = XANESGuide(target_sp)
    b = CoordinationGuide({"CN3": 0.5, "CN4": 0.5}, weight=0.5)
    prior_score = prior(pos, 0.2, system)
    lik = {name: GuidedScore(prior, g, 10.0, bf16_gradients=False)(pos, 0.2, system) - prior_score for name, g in
           {"a": a, "b": b, "sum": a + b}.items()}
    assert torch.allclose(lik["sum"], lik["a"] + lik["b"], atol=1e-4)


def test_bf16_gradients_approximate_the_likelihood(gen, target_sp, cell_2g):
    """The bfloat16 backward (default on CPUs with bf16 hardware) changes the likelihood term by well under 1 %
    on a real cell; it needs no bf16 hardware to be correct."""
    prior = PriorScore(gen.model, gen.sde)
    system = system_of(cell_2g)
    pos = torch.tensor(cell_2g.positions, dtype=torch.float32)
    pos = pos + 0.3 * torch.randn(pos.shape, generator=torch.Generator().manual_seed(0))
    prior_score = prior(pos, 0.3, system).detach()
    exact, fast = (GuidedScore(prior, spectrum_guide(target_sp), 10.0, bf16_gradients=b)(pos, 0.3, system)
                   - prior_score for b in (False, True))
    assert 0 < (fast - exact).norm() / exact.norm() < 1e-2
    gen.bf16_gradients = False  # the generator passes its choice on (exact float32 on any CPU)
    try:
        assert gen._guided(prior, XANESGuide(target_sp), None).bf16_gradients is False
    finally:
        gen.bf16_gradients = None


@pytest.mark.slow
def test_guides_act_only_above_their_t_min(gen, target_sp):
    """A term with ``t_min`` drops out of the posterior score below it (the rest of the sum stays), and a guided
    score whose every term is off is the prior's."""
    prior = PriorScore(gen.model, gen.sde)
    atoms, system, pos = tiny_system(torch.float32)
    a = XANESGuide(target_sp)
    late = CoordinationGuide({"CN3": 0.5, "CN4": 0.5}, t_min=0.25)
    for t, expected in ((0.2, a), (0.3, a + CoordinationGuide({"CN3": 0.5, "CN4": 0.5}))):
        got = GuidedScore(prior, a + 2.0 * late * 0.5, 10.0)(pos, t, system)
        assert torch.allclose(got, GuidedScore(prior, expected, 10.0)(pos, t, system), atol=1e-5)
    assert not torch.allclose(GuidedScore(prior, late, 10.0)(pos, 0.3, system), prior(pos, 0.3, system), atol=1e-4)
    assert torch.equal(GuidedScore(prior, late, 10.0)(pos, 0.2, system), prior(pos, 0.2, system))
    # zeta 0: the prior's score, and the guide's residual on record (as at zeta 10), without autograd
    grad_mode = []

    class Watched(XANESGuide):
        def residual(self, x0, system):
            grad_mode.append(torch.is_grad_enabled())
            return super().residual(x0, system)

    watched = Watched(target_sp)
    off, on = GuidedScore(prior, watched, 0.0), GuidedScore(prior, watched, 10.0)
    assert torch.allclose(off(pos, 0.2, system), prior(pos, 0.2, system), atol=1e-6)
    on(pos, 0.2, system)
    assert grad_mode == [False, True]
    assert off.history[0]["likelihood_norm"] == 0.0
    assert off.history[0]["residual"] == pytest.approx(on.history[0]["residual"], rel=1e-4)
    with pytest.raises(ValueError, match="t_min"):
        CoordinationGuide({"CN3": 1.0}, t_min=1.5)
    with pytest.raises(ValueError, match="coordination_t_min"):
        spectrum_guide(target_sp, coordination_weight=0.0, coordination_t_min=-0.1)
    assert spectrum_guide(target_sp, coordination_t_min=0.2).terms()[1].t_min == 0.2


@pytest.mark.slow
def test_guided_runs_refine_from_their_own_noise_level(gen, target_sp):
    short = DiffusionGenerator(gen.model, gen.sde, device="cpu", guided_refine_steps=3, max_restarts=0)
    out = short.generate(cubic_cell(64, 2.0), 2.0, seed=0, steps=4, guide=XANESGuide(target_sp))
    t = out.info["guide_history"][:, 0]
    assert len(t) == 7 and t[4] == pytest.approx(short.guided_refine_from) and t[-1] == pytest.approx(0.01)


@pytest.mark.slow
def test_guided_steps_lower_spectrum_residual(gen, target_sp):
    template = cubic_cell(64, 2.0)
    guide = XANESGuide(target_sp)
    free = gen.generate_batch(template, 2.0, n=4, seed=0, steps=24, guide=guide, zeta=0.0)
    guided = gen.generate_batch(template, 2.0, n=4, seed=0, steps=24, guide=guide, zeta=10.0)
    r_free = np.mean([a.info["guide_residual"] for a in free])
    r_guided = np.mean([a.info["guide_residual"] for a in guided])
    assert r_guided < 0.8 * r_free  # measured: 0.052 vs 0.116
    assert guided[0].info["guide_history"].shape[1] == len(guided[0].info["guide_history_columns"].split()) == 4
    assert guided[0].info["zeta"] == 10.0 and guided[0].info["guide"] == repr(guide)
    assert guided[0].info["bf16_gradients"] == GuidedScore(None, guide, 1.0).bf16_gradients  # the resolved choice
    assert np.array_equal(guided[0].info["guide_targets"], [guide.target])


@pytest.mark.parametrize("target, match", [
    (np.full(100, np.nan), "NaN"), (-np.ones(100), "negative"), (np.ones(50), "100"),
])
def test_bad_targets_raise(target, match):
    with pytest.raises(ValueError, match=match):
        XANESGuide(target)


def test_spectrum_guide_warns_once_and_names_the_likely_cause(data_dir):
    """The guide's target is prepared (and its calibration checked) once, not again for the unmixing; the poor-fit
    warning rounds the fractions and names what the checks see. A spectrum 2 eV off in energy: one offset warning,
    one poor-fit warning naming the offset (both printed twice before, the offset missed, 16-digit fractions)."""
    import re
    import warnings

    from ase_xanesgen.data.spectra import energy_grid

    y = load_cell("d1.5_9", data_dir).arrays["xanes"].mean(0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        spectrum_guide(np.interp(energy_grid() - 2.0, energy_grid(), y))  # its features 2 eV high
    messages = [str(w.message) for w in record]
    assert len(messages) == len(set(messages))
    assert len([m for m in messages if m.startswith("the target spectrum: ")]) == 1
    (poor,) = [m for m in messages if "poor mix" in m]
    assert "energy offset (shift its energies by -2.00 eV" in poor and "coordination_weight=0" in poor
    assert not re.search(r"\d\.\d{3}", poor)


def test_bad_energy_range_and_zeta_raise(gen, target_sp):
    with pytest.raises(ValueError):
        XANESGuide(np.ones(100), energy=np.linspace(200, 240, 100))
    with pytest.raises(ValueError, match="zeta"):
        gen.generate(Atoms(cell=[8.0] * 3, pbc=True), 2.0, steps=2, guide=target_sp, zeta=-1.0)
    with pytest.raises(ValueError, match="fractions"):
        CoordinationGuide({"CN4": 1.5})
    with pytest.raises(ValueError, match="fractions"):
        CoordinationGuide({"CN4": float("nan")})
    for bad in (float("nan"), float("inf")):  # refused up front, not as a crash deep in sampling
        with pytest.raises(ValueError, match="zeta"):
            gen.generate(Atoms(cell=[8.0] * 3, pbc=True), 2.0, steps=2, guide=target_sp, zeta=bad)
        with pytest.raises(ValueError, match="weight"):
            XANESGuide(target_sp, weight=bad)
    with pytest.raises(ValueError, match="weight"):
        RingStrainGuide(weight=-1.0)


@pytest.mark.slow
def test_guides_sum_with_sum_and_measured_files_guide_generate(gen, target_sp, tmp_path):
    """``sum(guides)`` is the ``+`` sum; ``generate`` takes a measured file or an (energy, intensity) pair as its
    guide, and a scan that starts after the pre-edge is accepted (padded with zero) everywhere."""
    from ase_xanesgen.data.spectra import energy_grid
    from ase_xanesgen.data.unmixing import unmix_coordination

    summed = sum([XANESGuide(target_sp), RingStrainGuide()])
    assert [type(g) for g in summed.terms()] == [XANESGuide, RingStrainGuide]
    late = energy_grid() >= 280.0
    measured = tmp_path / "late.csv"
    np.savetxt(measured, np.column_stack([energy_grid()[late], target_sp[late]]), delimiter=",")
    assert np.all(XANESGuide(measured).target[~late] == 0.0)
    assert unmix_coordination(measured) == unmix_coordination(target_sp[late], energy_grid()[late])
    for guide in (measured, (energy_grid()[late], target_sp[late])):
        atoms = gen.generate(cubic_cell(32, 2.0), 2.0, steps=2, seed=0, guide=guide)
        assert np.isfinite(atoms.info["guide_residual"])
    # a scan that starts past the pi* onset (or an axis shifted by +10 eV) would have its pi* region invented
    for energy, intensity in ((energy_grid()[energy_grid() >= 295.0], target_sp[energy_grid() >= 295.0]),
                              (energy_grid() + 10.0, target_sp)):
        with pytest.raises(ValueError, match="pi\\* onset"):
            XANESGuide(intensity, energy)


def test_rdf_guide_matches_analysis_and_rejects_bad_targets(cell_2g):
    from ase_xanesgen.analysis import rdf
    from ase_xanesgen.guidance import RDFGuide

    r, g = rdf(cell_2g, rmax=5.0, bins=250)
    guide = RDFGuide(r, g, smear=0.03)
    system = system_of(cell_2g, torch.float64)
    pos = torch.tensor(cell_2g.positions)
    smooth = guide.rdf(pos, system)[0].numpy()
    # the cell's smoothed g(r) meets its own histogram g(r) smoothed alike (measured 0.012; unsmoothed 0.16, and
    # 0.19-0.31 at the default smear), against 0.4 for a stretched cell
    assert guide.residual(pos, system).item() < 0.03
    assert RDFGuide(r, g, smear=0.03, smooth_target=False).residual(pos, system).item() > 0.1
    assert guide.residual(pos * 1.05, System(system.z, system.cell * 1.05, system.batch)).item() > 0.4
    assert np.all(np.isfinite(smooth))
    with pytest.raises(ValueError, match="cover"):
        RDFGuide(np.linspace(1.5, 3, 10), np.ones(10))
    with pytest.raises(ValueError, match="NaN"):
        RDFGuide(np.linspace(0, 5, 10), np.full(10, np.nan))
    with pytest.raises(ValueError, match="smear"):
        RDFGuide(r, g, smear=0.0)
    with pytest.raises(ValueError, match="r_min"):
        RDFGuide(r, g, r_min=0.0)


def test_pdf_guide_matches_its_own_cell_and_pulls_a_stretched_one_back(cell_2g):
    """PDFGuide takes a reduced PDF G(r) = 4 pi r rho (g(r) - 1), negative below the first peak; a cell meets its
    own G(r) and the gradient of a cell stretched by 3 % points back towards it."""
    from ase_xanesgen.analysis import rdf
    from ase_xanesgen.guidance import PDFGuide, RDFGuide

    r, g = rdf(cell_2g, rmax=5.0, bins=250)
    rho = len(cell_2g) / cell_2g.get_volume()
    guide = PDFGuide(r, 4 * np.pi * r * rho * (g - 1))
    system = system_of(cell_2g, torch.float64)
    pos = torch.tensor(cell_2g.positions)
    assert guide.residual(pos, system).item() < 0.03  # measured 0.011
    stretched = (pos * 1.03).requires_grad_(True)
    residual = guide.residual(stretched, system)  # same cell, bonds 3 % longer (and wrapped by the graph)
    assert residual.item() > 0.3
    (grad,) = torch.autograd.grad(residual.sum(), stretched)
    step = stretched.detach() - 0.02 * grad / grad.norm(dim=1).max()
    assert guide.residual(step, system).item() < residual.item()
    with pytest.raises(ValueError, match="PDFGuide"):
        RDFGuide(r, 4 * np.pi * r * rho * (g - 1))  # a G(r) given to the g(r) guide


def test_ring_strain_guide_counts_acute_angles_and_opens_them(cell_2g, data_dir):
    from ase_xanesgen.analysis import bond_angles
    from ase_xanesgen.guidance.ring_strain import bond_angle_pairs

    guide = RingStrainGuide()
    fractions = []
    for atoms in (cell_2g, load_cell("d2.5_4", data_dir)):
        system = system_of(atoms)
        pos = torch.tensor(atoms.positions, dtype=torch.float32, requires_grad=True)
        # one pair per two bonds of a centre, as analysis.bond_angles (673 and 831 pairs)
        assert int((bond_angle_pairs(pos, system)[0] > 0.5).sum()) == len(bond_angles(atoms))
        frac = guide.acute_fraction(pos, system)
        # the soft fraction is the hard count of angles below 75 degrees (0.0361 vs 0.0357, 0.0086 vs 0.0072;
        # at 70 or 80 degrees it would be 0.002-0.004 off)
        assert frac.item() == pytest.approx(np.mean(bond_angles(atoms) < 75.0), abs=0.0016)
        fractions.append(frac.item())
        (grad,) = torch.autograd.grad(guide.residual(pos, system).sum(), pos)
        step = pos.detach() - 0.1 * grad / grad.norm(dim=1).max()  # at most 0.1 A down the gradient
        assert guide.acute_fraction(step, system).item() < 0.97 * frac.item()  # measured 0.95x and 0.86x
    assert fractions[1] < fractions[0]  # the sp3-rich 2.5 g/cm3 cell has fewer three-rings than the 2.0 one
    system = system_of(cell_2g)
    pos = torch.tensor(cell_2g.positions, dtype=torch.float32)
    assert RingStrainGuide(max_fraction=0.2).residual(pos, system).item() == 0.0
    pos[1] = pos[0]  # two atoms on one spot: finite residual and gradient
    pos.requires_grad_(True)
    (grad,) = torch.autograd.grad(guide.residual(pos, system).sum(), pos)
    assert torch.isfinite(grad).all()
    for bad in ({"max_fraction": 1.0}, {"angle": 0.0}, {"t_min": -0.1}):
        with pytest.raises(ValueError):
            RingStrainGuide(**bad)


def test_coordination_guide_leaves_keys_not_given_free(cell_2g):
    """{"CN4": 0.4} constrains CN4 only (a target of 0 for CN2 and CN3 doubled the two-fold atoms of guided cells);
    given fractions that sum to 1 leave none for the others."""
    system = system_of(cell_2g)
    pos = torch.tensor(cell_2g.positions, dtype=torch.float32)
    fractions = CoordinationGuide({"CN2": 0.0}).fractions(pos, system)[0]
    one = CoordinationGuide({"CN4": 0.4}, tolerance=0)
    assert one.residual(pos, system).item() == pytest.approx(abs(fractions[2] - 0.4))
    both = CoordinationGuide({"CN3": 0.6, "CN4": 0.4}, tolerance=0)
    assert both.residual(pos, system).item() == pytest.approx((fractions - torch.tensor([0, 0.6, 0.4])).norm())
    assert repr(both).startswith("CoordinationGuide({'CN2': 0.0, 'CN3': 0.6, 'CN4': 0.4}")
    with pytest.raises(ValueError, match="no target"):
        CoordinationGuide({})


def test_coordination_pull_fades_within_its_tolerance(cell_2g, target_sp):
    """Pseudo-Huber residual: the L2 distance d far from the target (a full pull), d^2 / (2 tolerance) near it, and
    no pull, not a NaN, at the target itself."""
    system = system_of(cell_2g)
    pos = torch.tensor(cell_2g.positions, dtype=torch.float32, requires_grad=True)
    own = CoordinationGuide({"CN2": 0.0}).fractions(pos, system)[0].tolist()
    pulls = {}
    for shift in (0.2, 0.01, 0.0):
        fractions = {"CN3": own[1] - shift, "CN4": own[2] + shift}  # soft memberships overlap: CN2 left free
        plain = CoordinationGuide(fractions, tolerance=0).residual(pos, system)
        soft = CoordinationGuide(fractions, tolerance=0.05).residual(pos, system)
        d = plain.detach()
        assert soft.item() == pytest.approx((torch.sqrt(d**2 + 0.05**2) - 0.05).item(), abs=1e-6)
        (grad,) = torch.autograd.grad(soft.sum(), pos)
        assert torch.isfinite(grad).all()
        pulls[shift] = grad.norm().item() / max(torch.autograd.grad(plain.sum(), pos)[0].norm().item(), 1e-12)
    assert pulls[0.2] > 0.95 and pulls[0.01] < 0.4 and pulls[0.0] < 1e-3
    with pytest.raises(ValueError, match="tolerance"):
        CoordinationGuide({"CN4": 0.3}, tolerance=-0.1)
    with pytest.raises(ValueError, match="coordination_tolerance"):
        spectrum_guide(target_sp, coordination_tolerance=float("nan"))
    assert spectrum_guide(target_sp, coordination_tolerance=0.02).terms()[1].tolerance == 0.02


def test_geometric_guides_match_finite_differences_and_share_their_bonds(cell_2g, target_sp):
    """Coordination (a free key included) and ring-strain gradients against finite differences on a tiny cell; in one
    step the two terms build one set of soft bonds, and the sum's gradient is the same as term by term."""
    _, tiny, x = tiny_system()
    for guide in (CoordinationGuide({"CN3": 0.5, "CN4": 0.3}), RingStrainGuide()):
        assert torch.autograd.gradcheck(lambda p: guide.residual(p, tiny), x.requires_grad_(True))
    system = system_of(cell_2g, torch.float64)
    pos = torch.tensor(cell_2g.positions).requires_grad_(True)
    guide = CoordinationGuide({"CN4": 0.4}) + RingStrainGuide()
    (alone,) = torch.autograd.grad(guide.residual(pos, system).sum(), pos)
    with guidance_base.shared_graphs():
        residual = guide.residual(pos, system)
        assert sum(key[0][0] == "soft_bonds" for key in guidance_base._step_cache.get() if len(key) == 3) == 1
    (shared,) = torch.autograd.grad(residual.sum(), pos)
    torch.testing.assert_close(shared, alone)


def test_summed_guides_share_one_graph_of_x0(cell_2g, target_sp, monkeypatch):
    """Within one posterior step the terms of a sum build one graph of x0 (the spectrum's 3 A graph, filtered for
    the 2.35 A terms) and give the residuals of graphs built term by term; outside a step nothing is kept."""
    built = []
    real = guidance_base.radius_graph_pbc
    monkeypatch.setattr(guidance_base, "radius_graph_pbc", lambda *args: built.append(args[-1]) or real(*args))
    guide = spectrum_guide(target_sp)
    system = system_of(cell_2g)
    x0 = torch.tensor(cell_2g.positions, dtype=torch.float32)
    with guidance_base.shared_graphs():
        shared = guide.residual(x0, system)
        assert built == [guide.terms()[0].model.cutoff]
        guide.residual(x0, System(system.z, system.cell * 1.02, system.batch))  # another system: its own graph
        assert len(built) == 2
    separate = guide.residual(x0, system)
    assert len(built) == 5  # one graph per term
    assert torch.allclose(shared, separate, atol=1e-6)
    with torch.inference_mode(), guidance_base.shared_graphs():
        assert torch.allclose(guide.residual(x0.clone(), system), shared, atol=1e-6)


@pytest.mark.slow
def test_custom_guide_example_steers_the_mean_bond_length():
    """examples/custom_guide.py: a user-written Guide subclass plugs into generate and moves its target
    (measured: mean C-C bond 1.458 -> 1.480 A towards 1.50, CN4 0.10 -> 0.15; 4 cells of 64 atoms)."""
    import runpy
    from pathlib import Path

    example = runpy.run_path(str(Path(__file__).parents[1] / "examples" / "custom_guide.py"))
    results = example["main"]()
    assert results["guided"]["bond_length"] > results["unguided"]["bond_length"] + 0.015
    assert results["guided"]["CN4"] > results["unguided"]["CN4"]
