"""Copy a trained ``model.pt`` into the package and record its checksum: ``python -m ase_xanesgen.weights.ship``."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from ..nn.checkpoint import from_dict, load

HERE = Path(__file__).parent


def ship(name: str, source: str | Path) -> dict:
    ckpt = load(source)
    ckpt = ckpt.get("ema", ckpt)
    from_dict(ckpt)  # must rebuild
    target = HERE / f"{name}.pt"
    if Path(source).resolve() != target.resolve():
        import torch

        torch.save(ckpt, target)
    registry_file = HERE / "registry.json"
    registry = json.loads(registry_file.read_text()) if registry_file.exists() else {}
    registry[name] = {"file": target.name, "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
                      "model_args": ckpt["model_args"], "step": ckpt["meta"].get("step")}
    registry_file.write_text(json.dumps(registry, indent=2) + "\n")
    return registry[name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", choices=["prior", "xanes"])
    parser.add_argument("checkpoint")
    args = parser.parse_args()
    print(ship(args.name, args.checkpoint))


if __name__ == "__main__":
    main()
