import argparse

import pytest
from ase.io import read

from ase_xanesgen.cli.main import COMMANDS, main


def test_generate_writes_readable_file(tmp_path, data_dir):
    out = tmp_path / "a-C.extxyz"
    rc = main(["generate", "--density", "2.0", "--atoms", "64", "--n", "2", "--seed", "0", "--steps", "4",
               "--device", "cpu", "-o", str(out)])
    assert rc == 0
    images = read(out, ":")
    assert len(images) == 2 and all(len(a) == 64 for a in images)


def test_generate_rejects_bad_density(tmp_path, capsys):
    assert main(["generate", "--density", "5.0", "--atoms", "64", "--device", "cpu",
                 "-o", str(tmp_path / "x.traj")]) == 2
    assert "density" in capsys.readouterr().err
    assert main(["generate", "--density", "2000", "--atoms", "64", "--device", "cpu",  # kg/m3 by mistake
                 "-o", str(tmp_path / "x.traj")]) == 2
    assert "kg/m3" in capsys.readouterr().err


def test_train_prior_cli_writes_weights(tmp_path, data_dir):
    rc = main(["train", "prior", "--data", str(data_dir), "--out", str(tmp_path), "--steps", "2",
               "--batch-size", "1", "--width", "16", "--layers", "1", "--device", "cpu"])
    assert rc == 0 and (tmp_path / "model.pt").exists() and (tmp_path / "last.pt").exists()


def test_help_lists_commands(capsys, tmp_path):
    import subprocess
    import sys

    with pytest.raises(SystemExit):
        main(["--help"])
    assert "generate" in capsys.readouterr().out
    run = subprocess.run([sys.executable, "-m", "ase_xanesgen", "generate", "--density", "-1", "-o", "x.traj"],
                         capture_output=True, text=True, cwd=tmp_path)  # python -m: the same command line
    assert run.returncode == 2 and "xanesgen generate: error" in run.stderr, run.stderr


def test_generate_with_measured_spectrum_guide(tmp_path, data_dir):
    import numpy as np

    from ase_xanesgen.data.datasets import load_cell
    from ase_xanesgen.data.spectra import energy_grid

    measured = tmp_path / "measured.csv"
    y = load_cell("d2.5_1", data_dir).arrays["xanes"].mean(0)
    np.savetxt(measured, np.column_stack([energy_grid(), 0.01 * y]), delimiter=",", header="energy,intensity")
    out = tmp_path / "guided.extxyz"
    rc = main(["generate", "--density", "2.0", "--atoms", "64", "--steps", "4", "--seed", "0", "--guide",
               str(measured), "--zeta", "5", "--device", "cpu", "-o", str(out)])
    assert rc == 0
    atoms = read(out)
    assert len(atoms) == 64 and np.isfinite(atoms.info["guide_residual"])


@pytest.mark.slow
def test_generate_subtracts_a_measured_background(tmp_path, data_dir):
    """A scan on a flat background warns as a guide; with --subtract-background the run's target is the clean
    spectrum's (recorded in info["guide_targets"]) and nothing warns about the pre-edge."""
    import warnings

    import numpy as np

    from ase_xanesgen.data.datasets import load_cell
    from ase_xanesgen.data.spectra import energy_grid, prepare_target

    y = load_cell("d1.5_1", data_dir).arrays["xanes"].mean(0)
    measured = tmp_path / "measured.csv"
    np.savetxt(measured, np.column_stack([energy_grid(), y + 0.05 * y.max()]), delimiter=",")
    args = ["generate", "--overwrite", "--density", "2.0", "--atoms", "64", "--steps", "2", "--seed", "0", "--measurement", "dft", "--guide",
            str(measured), "--device", "cpu", "-o", str(tmp_path / "g.extxyz")]
    with pytest.warns(UserWarning, match="pre-edge"):
        assert main(args) == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(args + ["--subtract-background"]) == 0
    assert not [w for w in caught if "pre-edge" in str(w.message)]
    target = read(tmp_path / "g.extxyz").info["guide_targets"][0]
    assert np.allclose(target, prepare_target(y), atol=1e-6 * target.max())
    assert main(args[:-6] + ["--subtract-background", "--device", "cpu", "-o", str(tmp_path / "x.traj")]) == 2


@pytest.mark.filterwarnings("ignore:.*still hold carbons")  # two denoising steps: a tiny run, not a clean cell
def test_generate_guide_columns_and_the_guide_settings_recorded(tmp_path, data_dir, capsys):
    """A beamline file (E, I0, TEY, TFY) guides through --guide-columns, and without it the error names the columns
    found; the cells record the guide file, its columns, --energy-shift and --subtract-background beside
    guide_targets, so that the target can be made again."""
    import numpy as np

    from ase_xanesgen.data.datasets import load_cell
    from ase_xanesgen.data.spectra import energy_grid

    y = load_cell("d2.0_1", data_dir).arrays["xanes"].mean(0)
    energy = np.round(np.arange(270.0, 320.0, 0.1), 6)
    tey = np.interp(energy, energy_grid(), y, left=0.0) + 0.05 * y.max()  # on a flat background
    beamline = tmp_path / "beamline.dat"
    np.savetxt(beamline, np.column_stack([energy, np.ones_like(energy), tey, 0.5 * tey]), header="E I0 TEY TFY",
               comments="")
    out = tmp_path / "g.extxyz"
    args = ["generate", "--overwrite", "--density", "2.0", "--atoms", "32", "--steps", "2", "--refine-steps", "0",
            "--max-restarts", "0", "--seed", "0", "--measurement", "dft", "--guide", str(beamline), "--device", "cpu", "-o", str(out)]
    assert main(args) == 2
    assert "4 columns (0: E, 1: I0, 2: TEY, 3: TFY)" in capsys.readouterr().err and not out.exists()
    assert main(args + ["--guide-columns", "0,2", "--energy-shift", "0.1", "--subtract-background"]) == 0
    info = read(out).info
    assert info["guide_file"] == str(beamline) and list(info["guide_columns"]) == [0, 2]
    assert info["guide_energy_shift"] == 0.1 and info["guide_subtract_background"]
    assert info["guide_measurement"] == "dft"
    assert np.shape(info["guide_targets"]) == (1, 100) and not info["guide_subtract_edge_step"]
    from ase_xanesgen.data.unmixing import edge_step_level

    stepped = beamline.with_name("stepped.dat")  # TEY with a 30 % edge step on top
    step = 0.3 * y.max() * (0.5 + np.arctan(energy - 290.0) / np.pi)
    np.savetxt(stepped, np.column_stack([energy, tey - 0.05 * y.max() + step]))
    with pytest.warns(UserWarning, match="edge step"):
        assert main(args[:-5] + [str(stepped), "--device", "cpu", "-o", str(out)]) == 0
    assert edge_step_level(read(out).info["guide_targets"][0]) > 0.2
    assert main(args[:-5] + [str(stepped), "--subtract-edge-step", "--device", "cpu", "-o", str(out)]) == 0
    info = read(out).info
    assert info["guide_subtract_edge_step"] and edge_step_level(info["guide_targets"][0]) < 0.02
    with pytest.raises(SystemExit):
        main(args + ["--guide-columns", "2"])


def test_generate_from_template_file(tmp_path, data_dir):
    from ase.io import write

    from ase_xanesgen.data.datasets import load_cell

    template = tmp_path / "template.vasp"
    write(template, load_cell("d2.0_1", data_dir))
    out = tmp_path / "from_template.traj"
    assert main(["generate", "--template", str(template), "--steps", "3", "--seed", "1", "--device", "cpu",
                 "-o", str(out)]) == 0
    assert len(read(out)) == 216


def test_sampler_options_reach_the_generator():
    """The sampler flags (shared by ``generate`` and the benchmarks) become DiffusionGenerator keywords."""
    import argparse

    from ase_xanesgen.cli.generate import add_sampler_arguments, sampler_options

    parser = argparse.ArgumentParser()
    add_sampler_arguments(parser)
    args = parser.parse_args(["--guided-refine-from", "0.08", "--restart-radius", "0", "--max-restarts", "2"])
    assert sampler_options(args) == {"guided_refine_from": 0.08, "restart_radius": None, "max_restarts": 2}
    args = parser.parse_args(["--t-restart", "0.7", "--no-restart-accept"])
    assert sampler_options(args) == {"t_restart": 0.7, "restart_accept": False}
    assert sampler_options(parser.parse_args(["--restart-accept"])) == {"restart_accept": True}
    assert sampler_options(parser.parse_args([])) == {}
    assert sampler_options(parser.parse_args(["--float32-gradients"])) == {"bf16_gradients": False}


def test_generate_output_names_and_formats(tmp_path, capsys):
    """An extension-less POSCAR is written as VASP, not extxyz; several cells in a one-structure format get
    one file each and the message names them."""
    assert main(["generate", "--density", "2.0", "--atoms", "32", "--steps", "2", "--seed", "0", "--device", "cpu",
                 "-o", str(tmp_path / "POSCAR")]) == 0
    assert read(tmp_path / "POSCAR", format="vasp").get_chemical_symbols() == ["C"] * 32
    assert main(["generate", "--density", "2.0", "--atoms", "32", "--n", "2", "--steps", "2", "--seed", "0",
                 "--device", "cpu", "-o", str(tmp_path / "cells.vasp")]) == 0
    said = capsys.readouterr().out
    assert "cells_0.vasp" in said and "cells_1.vasp" in said and not (tmp_path / "cells.vasp").exists()
    assert main(["generate", "--density", "2.0", "--atoms", "32", "--steps", "2", "--device", "cpu",
                 "-o", str(tmp_path / "drawn.vasp")]) == 0  # no --seed: the drawn one is said (.vasp keeps no info)
    seed = int(capsys.readouterr().out.split("seed ")[-1].split()[0])
    assert main(["generate", "--density", "2.0", "--atoms", "32", "--steps", "2", "--device", "cpu", "--seed",
                 str(seed), "-o", str(tmp_path / "again.vasp")]) == 0
    assert (read(tmp_path / "drawn.vasp").positions == read(tmp_path / "again.vasp").positions).all()
    assert len(read(tmp_path / "cells_1.vasp")) == 32


@pytest.mark.parametrize("extra, match", [
    (["--zeta", "5"], "--guide"),                              # a guide option without a guide
    (["--template", "t.vasp", "--atoms", "64"], "--atoms"),     # both ways of sizing the cell
    (["--device", "nodevice"], "device"),
    (["-o", "missing/dir/x.traj"], "folder"),                  # refused before any generation
    (["-o", "x.foo"], "format"),
    (["--energy-shift", "0.3"], "--guide"),
    (["--guide-columns", "0,2"], "--guide"),
    (["--trajectory", "path.xyz"], "ASE .traj file"),                  # the path is always written as .traj
    (["--template", "t.vasp", "--density", "2.0", "-o", "t.vasp"], "overwrite"),
    (["--template", "t_1.vasp", "--density", "2.0", "--n", "2", "-o", "t.vasp"], "overwrite"),  # t_0, t_1.vasp
    (["--trajectory", "x.traj"], "same file"),
    (["--template", "two.extxyz", "--density", "2.0"], "holds 2 structures"),  # ASE would take the last quietly
    (["--template", "slab.extxyz", "--density", "2.0"], "periodic in all three"),  # not silently made bulk
    (["-o", "folder"], "is a folder"),                                       # refused before the run, not after
    (["--guide", "g.csv", "--coordination-weight", "0", "--coordination-tolerance", "0.05"], "--coordination-weight 0"),
])
def test_generate_rejects_conflicting_or_bad_options(tmp_path, capsys, monkeypatch, extra, match):
    from ase import Atoms
    from ase.io import write

    monkeypatch.chdir(tmp_path)
    cell = Atoms("C8", cell=[4.0] * 3, pbc=True, scaled_positions=[[k / 8, 0.5, 0.5] for k in range(8)])
    for name in ("t.vasp", "t_1.vasp"):
        write(name, cell)
    write("two.extxyz", [cell, cell * (2, 1, 1)])
    slab = cell.copy()
    slab.pbc = [True, True, False]
    write("slab.extxyz", slab)
    (tmp_path / "folder").mkdir()
    base = ["generate", "--density", "2.0", "--steps", "2", "--device", "cpu", "--trajectory", "path.traj",
            "-o", "x.traj"]
    assert main(base + extra) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "x.traj").exists() and not (tmp_path / "path.traj").exists()  # no run began


def unwritable_folder(tmp_path):
    """A folder no file can be created in: a read-only one, or /sys where permissions do not bind (root)."""
    import os
    import tempfile

    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, "/sys"):
        try:
            os.close(tempfile.mkstemp(dir=candidate)[0])
        except OSError:
            return candidate
    pytest.skip("no unwritable folder to try")


def test_generate_refuses_an_unwritable_folder_up_front(tmp_path, capsys):
    """An unwritable output folder is refused before the run (rc 2), not found when writing after it."""
    trajectory = tmp_path / "path.traj"
    out = f"{unwritable_folder(tmp_path)}/x.traj"
    assert main(["generate", "--density", "2.0", "--atoms", "32", "--steps", "2", "--device", "cpu", "--trajectory",
                 str(trajectory), "-o", out]) == 2
    assert "xanesgen generate: error: cannot write the output into" in capsys.readouterr().err
    assert not trajectory.exists()


def test_generate_notes_a_template_refilled_at_another_count(tmp_path, capsys, data_dir):
    """--density refills a template's cell: 216 atoms at 2.0 g/cm3 become 325 at 3.0, which is said."""
    import argparse

    from ase.io import write

    from ase_xanesgen.cli.generate import template_for
    from ase_xanesgen.data.datasets import load_cell
    from ase_xanesgen.geometry import density_of

    path = tmp_path / "d2.0_1.vasp"
    write(path, load_cell("d2.0_1", data_dir))
    template = template_for(argparse.Namespace(template=str(path), atoms=None, density=3.0))
    assert len(template) == 216
    assert "refills the template's cell with 325 atoms (it holds 216, 2.00 g/cm3)" in capsys.readouterr().err
    own = round(density_of(read(path)), 4)  # 1.9952: at 2.0 the cell takes 217
    template_for(argparse.Namespace(template=str(path), atoms=None, density=own))
    assert "refills" not in capsys.readouterr().err  # same count: nothing to say


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_option_has_help_that_shows_its_default(command, capsys):
    """Each option explains itself and its default (flags are off by default, required options have none)."""
    from ase_xanesgen.cli.main import build_parser

    parser = build_parser([command])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    for action in sub._actions:
        assert action.help, f"{command} {action.option_strings or action.dest}: no help text"
        if action.option_strings and not action.required and action.nargs != 0:  # takes a value, may be left out
            text = sub.formatter_class(command)._get_help_string(action)
            assert "default" in text, f"{command} {action.option_strings}: help shows no default"
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "(default: " in capsys.readouterr().out


def test_generate_keeps_existing_files_and_small_cells_unless_asked(tmp_path, capsys):
    """An existing -o or --trajectory file is kept (rc 2, before any sampling) unless --overwrite; a cell too small
    for the model's cut-off is refused unless --force."""
    out, path = tmp_path / "a.extxyz", tmp_path / "d.traj"
    quick = ["generate", "--density", "2.0", "--steps", "2", "--refine-steps", "0", "--max-restarts", "0",
             "--device", "cpu", "--seed", "0"]
    for existing, extra in ((out, []), (path, ["--trajectory", str(path)])):
        existing.write_text("mine")
        assert main(quick + ["--atoms", "64", "-o", str(out)] + extra) == 2
        assert "exists: pass --overwrite" in capsys.readouterr().err and existing.read_text() == "mine"
        existing.unlink()
    assert main(quick + ["--atoms", "64", "-o", str(out), "--trajectory", str(path)]) == 0
    assert main(quick + ["--atoms", "64", "-o", str(out), "--trajectory", str(path), "--overwrite"]) == 0
    assert len(read(out)) == 64 and len(read(path, ":")) > 2
    small = tmp_path / "small.extxyz"
    assert main(quick + ["--atoms", "3", "-o", str(small)]) == 2
    assert "--force" in capsys.readouterr().err and not small.exists()
    with pytest.warns(UserWarning, match="thick"):
        assert main(quick + ["--atoms", "3", "-o", str(small), "--force"]) == 0
    assert len(read(small)) == 3


def test_sampler_option_defaults_are_the_generators():
    import inspect

    from ase_xanesgen import DiffusionGenerator
    from ase_xanesgen.cli.generate import add_sampler_arguments

    parser = argparse.ArgumentParser()
    add_sampler_arguments(parser)
    defaults = inspect.signature(DiffusionGenerator).parameters
    for action in parser._actions:
        if action.dest in defaults:
            default = defaults[action.dest].default  # None: the generator picks one, which the help names in words
            assert ("default: " if default is None else f"default: {default:g})") in action.help, action.dest


@pytest.mark.slow
def test_readme_quick_start_runs_headless(tmp_path, monkeypatch, data_dir):
    """The README's quick-start commands, as written (the data path pointed at the data found, the examples at the
    repository's), exit 0 without a display and write what they name."""
    import re
    import shlex
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    block = re.search(r"## Quick start\s+```bash\n(.*?)```", readme, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert [c.split()[:2] for c in commands] == [["xanesgen", "generate"], ["xanesgen", "predict"],
                                                 ["xanesgen", "analyze"], ["xanesgen", "fit"]]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XANESGEN_DEVICE", "cpu")
    for command in commands:
        command = command.replace("../shared/data/a-C", str(data_dir)).replace(" examples/", f" {root}/examples/")
        argv = shlex.split(command)[1:]
        assert main(argv) == 0, command
    assert len(read("a-C.traj")) == 216
    assert {p.name for p in tmp_path.iterdir()} >= {"a-C.traj", "spectra.csv", "spectrum.png", "report.png", "fit.png"}
