"""Copy a trained ``model.pt`` into the package and record its checksum: ``python -m ase_xanesgen.weights.ship``.

Several checkpoints are averaged in weight space first (``nn.checkpoint.average``), e.g. the shipped prior:
``python -m ase_xanesgen.weights.ship prior checkpoints/prior/last.pt checkpoints/prior/gpu_s5.pt``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch

from ..nn.checkpoint import average, from_dict, load

HERE = Path(__file__).parent


def ship(name: str, *sources: str | Path) -> dict:
    """Ship the EMA weights of ``sources`` (one checkpoint, or several averaged with equal weights)."""
    ckpts = [c.get("ema", c) for c in map(load, sources)]
    averaged = len(ckpts) > 1
    ckpt = average(ckpts) if averaged else ckpts[0]
    if averaged:
        ckpt["meta"]["average_of"] = [dict(a, source=str(s)) for a, s in zip(ckpt["meta"]["average_of"], sources)]
    from_dict(ckpt)  # must rebuild
    target = HERE / f"{name}.pt"
    if averaged or Path(sources[0]).resolve() != target.resolve():
        torch.save(ckpt, target)
    registry_file = HERE / "registry.json"
    registry = json.loads(registry_file.read_text()) if registry_file.exists() else {}
    registry[name] = {"file": target.name, "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
                      "model_args": ckpt["model_args"],
                      "step": [a["step"] for a in ckpt["meta"]["average_of"]] if averaged
                      else ckpt["meta"].get("step")}
    registry_file.write_text(json.dumps(registry, indent=2) + "\n")
    return registry[name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", choices=["prior", "a-SiO2", "xanes", "potential"])
    parser.add_argument("checkpoints", nargs="+", help="model.pt / last.pt; several are averaged")
    args = parser.parse_args()
    print(ship(args.name, *args.checkpoints))


if __name__ == "__main__":
    main()
