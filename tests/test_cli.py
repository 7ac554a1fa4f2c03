import pytest
from ase.io import read

from ase_xanesgen.cli.main import main


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


def test_train_prior_cli_writes_weights(tmp_path, data_dir):
    rc = main(["train", "prior", "--data", str(data_dir), "--out", str(tmp_path), "--steps", "2",
               "--batch-size", "1", "--width", "16", "--layers", "1", "--device", "cpu"])
    assert rc == 0 and (tmp_path / "model.pt").exists() and (tmp_path / "last.pt").exists()


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "generate" in capsys.readouterr().out
