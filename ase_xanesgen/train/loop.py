"""A small resumable training loop shared by the prior and spectrum trainers.

RAdam with linear warm-up and cosine decay, EMA weights, atomic checkpoints (``last.pt`` every
``ckpt_every`` steps, on Ctrl-C / SIGTERM, and at the end), a JSON-lines log, a tqdm progress bar, and
torch.distributed DDP when launched by ``torchrun`` (one process per GPU, ``DistributedSampler``).
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler
from torch.utils.data.distributed import DistributedSampler
from torch_geometric.data import Batch, Data
from tqdm.auto import tqdm

from ..checks import check_count, check_positive, warn_caller
from ..device import resolve_device
from ..diffusion.sde import VESDE
from ..nn.checkpoint import check_fits, load, save_atomic, to_dict


@dataclass
class TrainConfig:
    """Settings of one training run; checked on construction (``ValueError`` names the bad field).

    Attributes:
        steps: optimiser steps in all (a resumed run may raise it). Default 20000.
        batch_size: training cells per step. Default 8.
        lr: peak learning rate of RAdam, reached after ``warmup`` steps. Default 1e-3.
        lr_min: learning rate at the end of the cosine decay, ``0 <= lr_min <= lr``. Default 1e-5.
        warmup: steps of linear warm-up from 0 to ``lr``, ``>= 0``. Default 200.
        ema: decay of the exponential moving average of the weights saved as ``model.pt``, in ``[0, 1)``.
            Default 0.999.
        grad_clip: gradient-norm clip, ``> 0``. Default 10.0.
        ckpt_every: steps between ``last.pt`` checkpoints. Default 500.
        val_every: steps between validations and log lines. Default 500.
        seed: seeds initial weights, noise, rotations and data order (rank ``r`` of a DDP run adds ``1000 r``).
            Default 0.
        time_budget: wall-clock seconds for the whole run, resumes included, or ``None`` (run ``steps``). Default
            ``None``.
    """

    steps: int = 20000
    batch_size: int = 8
    lr: float = 1e-3
    lr_min: float = 1e-5
    warmup: int = 200
    ema: float = 0.999
    grad_clip: float = 10.0
    ckpt_every: int = 500
    val_every: int = 500
    seed: int = 0
    #: wall-clock seconds for the whole run, resumes included: after 50 steps (or 10 % of it) the total step count
    #: is set so the cosine schedule ends on time (its warm-up a tenth of that total at most), and re-set at
    #: 25/50/75 % from the pace since then
    time_budget: float | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "val_every", "ckpt_every"):
            setattr(self, name, check_count(getattr(self, name), name))
        check_positive(self.lr, "the learning rate (lr)")
        if not 0 <= self.lr_min <= self.lr:
            raise ValueError(f"need 0 <= lr_min <= lr, got lr {self.lr}, lr_min {self.lr_min}")
        for name, ok, need in (("warmup", self.warmup >= 0, ">= 0"), ("ema", 0.0 <= self.ema < 1.0, "in [0, 1)"),
                               ("grad_clip", self.grad_clip > 0, "> 0")):
            if not ok:
                raise ValueError(f"{name} must be {need}, got {getattr(self, name)}")
        if self.time_budget is not None:
            check_positive(self.time_budget, "time_budget", "seconds (or None)")


class Interrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C or SIGTERM, after saving ``last.pt`` if it trained at all: rerunning the same
    command resumes it. ``exit_code``: 130 (Ctrl-C) or 143 (SIGTERM), as a shell reports them."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


#: the run settings a resumed run must share with the run it continues (the step count may grow; the warm-up
#: is the checkpoint's, as the command line derives it from the step count)
RESUME_KEYS = ("batch_size", "lr", "lr_min", "ema", "grad_clip", "seed")


#: model settings of an ``init`` run that a fine-tune should share (a warning otherwise)
INIT_KEYS = ("sde", "t_power", "exclude_density")
#: meta a run records about its data (derived from the compared cell lists): a run saved before it was recorded
#: resumes, and its next checkpoint records it
RECORD_KEYS = ("density_range",)
#: settings a run saved before they were recorded trained with: it resumes when asked for the same
UNRECORDED = {"t_range": [VESDE.t_min, 1.0]}


class RepeatDataset(Dataset):
    """The training graphs repeated to ``length`` items, so an epoch holds many full batches."""

    def __init__(self, graphs: list[Data], length: int):
        self.graphs, self.length = graphs, max(length, len(graphs))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, k: int) -> Data:
        return self.graphs[k % len(self.graphs)]


def random_rotations(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """``[n, 3, 3]`` uniformly random proper rotations (QR of Gaussian matrices)."""
    q, r = torch.linalg.qr(torch.randn(n, 3, 3, generator=generator))
    q = q * torch.sign(torch.diagonal(r, dim1=1, dim2=2))[:, None, :]
    q[torch.linalg.det(q) < 0, :, 0] *= -1
    return q.to(device)


def augment(batch: Batch, generator: torch.Generator) -> Batch:
    """Rotate positions and cell of each graph together, and translate each graph at random."""
    rot = random_rotations(batch.num_graphs, generator, batch.pos.device).to(batch.pos.dtype)
    shift = torch.rand(batch.num_graphs, 3, generator=generator).to(batch.pos)
    pos = batch.pos + torch.einsum("ni,nij->nj", shift[batch.batch], batch.cell[batch.batch])
    batch.pos = torch.einsum("ni,nji->nj", pos, rot[batch.batch])
    batch.cell = torch.einsum("bki,bji->bkj", batch.cell, rot)
    return batch


def seeded_init(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``build()`` with the global generator seeded, since initial weights are drawn from it (so ``seed`` repeats a
    run); the generator is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def launched_distributed() -> bool:
    """Whether ``torchrun`` launched this process as one of several (``$WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start_process_group() -> bool:
    """Join the ``torchrun`` process group (NCCL on CUDA, else Gloo) and select this rank's GPU
    (``$LOCAL_RANK``), once per process, before a ``Trainer`` is built. Process-wide; does nothing outside
    ``torchrun`` or when the group already exists. Returns whether training is distributed."""
    if not launched_distributed():
        return False
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return True


LossFn = Callable[[nn.Module, Batch, torch.Generator], dict[str, torch.Tensor]]


class Trainer:
    """Runs ``loss_fn(model, batch, generator) -> {"loss": ..., other scalars}`` for ``config.steps`` steps.

    ``val_fn(model) -> dict`` is evaluated on the EMA model; ``init`` starts from another run's weights;
    ``weights`` (one per training graph) draw graphs with replacement in proportion (e.g. to balance densities).
    The checkpoint holds the raw and EMA weights, optimiser, scheduler, step and generator state;
    ``out/model.pt`` holds the EMA weights only. Building one changes nothing process-wide: under ``torchrun``
    call :func:`start_process_group` first (``train_prior`` and ``train_xanes`` do), else ``RuntimeError``.
    """

    def __init__(self, model: nn.Module, train_graphs: list[Data], loss_fn: LossFn, out: str | Path,
                 config: TrainConfig, *, val_fn: Callable[[nn.Module], dict] | None = None,
                 meta: dict | None = None, device: str | None = None, init: str | Path | None = None,
                 weights: list[float] | None = None):
        self.distributed = launched_distributed()
        if self.distributed and not torch.distributed.is_initialized():
            raise RuntimeError("launched by torchrun (WORLD_SIZE > 1): call start_process_group() before Trainer")
        self.rank = torch.distributed.get_rank() if self.distributed else 0
        if self.distributed and torch.cuda.is_available():
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        self.device = resolve_device(device)
        if not train_graphs:
            raise ValueError("no training cells (every cell left out?)")
        if config.batch_size > len(train_graphs):
            warn_caller(f"batch_size {config.batch_size} is larger than the {len(train_graphs)} training cells: "
                        "each batch repeats cells")
        self.config, self.loss_fn, self.val_fn = config, loss_fn, val_fn
        self.out = Path(out)
        self.meta = dict(meta or {})  # saved with the run's train_config and step
        self.model = model.to(self.device)
        self.ema = torch.optim.swa_utils.AveragedModel(
            self.model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(config.ema))
        self.opt = torch.optim.RAdam(self.model.parameters(), lr=config.lr)
        self._decay_from = (config.warmup, 0.0)  # (step, cosine progress) the decay continues from
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, self._lr_factor)
        self.step = 0
        self.spent = 0.0  # training seconds of earlier invocations of this run (a time budget covers them all)
        self._t0: float | None = None  # when this invocation's fit started
        self.generator = torch.Generator().manual_seed(config.seed + 1000 * self.rank)
        dataset = RepeatDataset(train_graphs, config.batch_size * 64)
        world = torch.distributed.get_world_size() if self.distributed else 1
        if weights is not None:  # indices < len(graphs) suffice (RepeatDataset maps k -> k % n); one stream per rank
            if len(weights) != len(train_graphs):
                raise ValueError(f"weights: expected one per training graph ({len(train_graphs)}), got {len(weights)}")
            sampler = WeightedRandomSampler(torch.tensor(weights, dtype=torch.double), len(dataset) // world,
                                            generator=torch.Generator().manual_seed(config.seed + self.rank))
        else:
            sampler = DistributedSampler(dataset, seed=config.seed) if self.distributed else None
        self.sampler = sampler
        self.loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=sampler is None,
                                 sampler=sampler, collate_fn=Batch.from_data_list, drop_last=True,
                                 generator=torch.Generator().manual_seed(config.seed))
        self.net = (nn.parallel.DistributedDataParallel(self.model) if self.distributed else self.model)
        if self.out.exists() and not self.out.is_dir():
            raise FileExistsError(f"{self.out} is a file: the run folder must be a folder")
        if (self.out / "last.pt").exists():
            if init is not None:
                raise ValueError(f"{self.out} already holds a run (last.pt), which would be resumed and init "
                                 f"{init} ignored: pass a new run folder, or drop init to resume")
            self._resume(self.out / "last.pt")
        elif init is not None:  # fine-tune: weights from another run, fresh optimiser and schedule
            state = load(init)
            check_fits(state.get("ema", state), self.model)
            trained = state.get("ema", state).get("meta", {})
            other = {k: (trained[k], v) for k, v in self.meta.items() if k in INIT_KEYS and k in trained
                     and trained[k] != v}
            if other:
                settings = "; ".join(f"{k} {a} (this run: {b})" for k, (a, b) in other.items())
                warn_caller(f"{init} was trained with {settings}: fine-tuning starts from weights fitted to other "
                            "settings")
            self.model.load_state_dict(state["raw"] if "raw" in state else state["state_dict"])
            self.ema.module.load_state_dict(state["ema"]["state_dict"] if "ema" in state else state["state_dict"])

    def _lr_factor(self, step: int) -> float:
        c = self.config
        if step < c.warmup:
            return (step + 1) / c.warmup
        floor = c.lr_min / c.lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * self._progress(step)))

    def _progress(self, step: int) -> float:
        """Cosine progress in [0, 1]: linear from ``_decay_from`` to ``config.steps``."""
        s0, p0 = self._decay_from
        return min(1.0, p0 + (1 - p0) * max(0, step - s0) / max(1, self.config.steps - s0))

    def _resume(self, path: Path) -> None:
        state = load(path)
        check_fits(state["ema"], self.model)
        saved = state["ema"]["meta"]
        self._check_same_run(saved, path)
        saved_config = saved.get("train_config", {})
        self.config.warmup = saved_config.get("warmup", self.config.warmup)  # the run's schedule
        self._decay_from = tuple(state.get("decay_from", (self.config.warmup, 0.0)))
        self.spent = state.get("elapsed_s", 0.0)
        self.model.load_state_dict(state["raw"])
        self.ema.module.load_state_dict(state["ema"]["state_dict"])
        self.ema.n_averaged.fill_(state["n_averaged"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.step = state["step"]
        self.generator.set_state(state["generator"])
        if self.config.time_budget:  # the total the budget was fitted to, until the pace is measured again
            spent_all = self.spent >= self.config.time_budget
            self.config.steps = self.step if spent_all else saved_config.get("steps", self.config.steps)
        if self.rank == 0:
            print(f"resumed from {path} at step {self.step}")

    def _check_same_run(self, saved: dict, path: Path) -> None:
        """A resumed run keeps its settings: the checkpoint's optimiser and schedule would win over new ones
        while ``model.pt`` recorded the new ones (a wrong ``sigma_max`` there misleads every later sampler)."""
        old_config, new_config = saved.get("train_config", {}), asdict(self.config)
        diff = {k: (old_config.get(k), new_config[k]) for k in RESUME_KEYS if old_config.get(k) != new_config[k]}
        diff.update({k: (saved.get(k, UNRECORDED.get(k)), v) for k, v in self.meta.items()
                     if saved.get(k, UNRECORDED.get(k)) != v and not (k in RECORD_KEYS and k not in saved)})
        if diff:
            said = "; ".join(f"{k} {a} (asked {b})" for k, (a, b) in sorted(diff.items()))
            raise ValueError(f"{path} was started with other settings: {said}. Resume with the same options, or "
                             f"start a new run folder (init={path.parent} starts from its weights)")

    def save(self) -> None:
        """Write ``out/last.pt`` (raw and EMA weights, optimiser, scheduler, step, generator state, time spent)
        and ``out/model.pt`` (EMA weights only), each atomically; rank 0 only."""
        if self.rank != 0:
            return
        ema = to_dict(self.ema.module, dict(self.meta, train_config=asdict(self.config), step=self.step))
        save_atomic({"raw": {k: v.detach().cpu() for k, v in self.model.state_dict().items()}, "ema": ema,
                     "n_averaged": int(self.ema.n_averaged), "optimizer": self.opt.state_dict(),
                     "scheduler": self.sched.state_dict(), "step": self.step,
                     "generator": self.generator.get_state(), "decay_from": list(self._decay_from),
                     "elapsed_s": self._elapsed()}, self.out / "last.pt")
        save_atomic(ema, self.out / "model.pt")

    def _elapsed(self) -> float:
        """Training seconds of the whole run so far, earlier invocations included."""
        return self.spent + (time.time() - self._t0 if self._t0 is not None else 0.0)

    def log(self, record: dict) -> None:
        """Append ``record`` as one JSON line to ``out/log.jsonl``; rank 0 only."""
        if self.rank == 0:
            with open(self.out / "log.jsonl", "a") as fh:
                fh.write(json.dumps(record) + "\n")

    def fit(self) -> nn.Module:
        """Train to ``config.steps`` and return the EMA model. Ctrl-C or SIGTERM saves ``last.pt`` (once a step
        has run) and raises :class:`Interrupted`, a ``KeyboardInterrupt``: a stopped run is not a finished one."""
        self.out.mkdir(parents=True, exist_ok=True)
        stop = {"flag": False}
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
        bar = tqdm(total=self.config.steps, initial=self.step, disable=self.rank != 0, desc="train",
                   dynamic_ncols=True, mininterval=2.0)
        epoch, running, start_step = 0, {}, self.step
        self._t0 = time.time()
        if self.step >= self.config.steps and self.rank == 0:
            print(f"{self.out} is already at step {self.step} of {self.config.steps}: nothing to train (a larger "
                  "--steps continues it)")
        anchor, refits = None, [0.25, 0.5, 0.75]  # (elapsed, steps) at the first fit; later fits as budget fractions
        interrupted = False
        try:
            while self.step < self.config.steps and not stop["flag"]:
                if isinstance(self.sampler, DistributedSampler):
                    self.sampler.set_epoch(epoch)
                epoch += 1
                for batch in self.loader:
                    if self.step >= self.config.steps or stop["flag"]:
                        break
                    metrics = self._train_step(batch.to(self.device))
                    for k, v in metrics.items():
                        running[k] = running.get(k, 0.0) + v
                    running["n"] = running.get("n", 0) + 1
                    bar.update(1)
                    if self.config.time_budget:
                        now, done = time.time() - self._t0, self.step - start_step  # this invocation's pace
                        elapsed = self.spent + now  # the whole run's time (_elapsed)
                        if anchor is None and (done == 50 or now > 0.1 * self.config.time_budget):
                            anchor = (now, done)
                            self._fit_to_budget(elapsed, now / done)
                            # a resumed run: the re-fits it has passed would read the pace of a step or two
                            refits = [f for f in refits if f * self.config.time_budget > elapsed]
                        elif anchor and refits and elapsed > refits[0] * self.config.time_budget:
                            refits.pop(0)
                            self._fit_to_budget(elapsed, (now - anchor[0]) / max(1, done - anchor[1]))
                        if elapsed > self.config.time_budget:
                            self.config.steps = self.step  # hard stop: the budget is spent, also for a resume
                        bar.total = self.config.steps
                    if self.step % 50 == 0:
                        bar.set_postfix(loss=f"{running['loss'] / running['n']:.4f}")
                    if self.step % self.config.val_every == 0 or self.step == self.config.steps:
                        record = {"step": self.step, "time_s": round(self._elapsed(), 1),
                                  "lr": self.sched.get_last_lr()[0]}
                        record.update({f"train_{k}": v / running["n"] for k, v in running.items() if k != "n"})
                        if self.val_fn is not None and self.rank == 0:
                            record.update({f"val_{k}": v for k, v in self.val_fn(self.ema.module).items()})
                        self.log(record)
                        running = {}
                    if self.step % self.config.ckpt_every == 0:
                        self.save()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if self.step > 0:  # nothing lost on a crash; but a run that never trained writes no model
                self.save()
            bar.close()
            signal.signal(signal.SIGTERM, previous)
        if interrupted or stop["flag"]:
            saved = f"saved {self.out / 'last.pt'}" if self.step > 0 else "nothing to save yet"
            raise Interrupted(f"interrupted at step {self.step} of {self.config.steps}: {saved}; rerun the same "
                              "command to resume", exit_code=143 if stop["flag"] else 130)
        return self.ema.module

    def _fit_to_budget(self, elapsed: float, rate: float) -> None:
        """Set the total step count so that the remaining steps at ``rate`` s/step fill the budget."""
        remaining = self.config.time_budget - elapsed
        if self.step >= self.config.warmup:  # the decay goes on from where it is: the learning rate never rises
            self._decay_from = (self.step, self._progress(self.step))
        self.config.steps = self.step + max(0, int(remaining / (rate * 1.05)))
        if self.step < self.config.warmup:  # a tenth of the steps the budget fits (as of a short --steps), not more
            self.config.warmup = max(self.step + 1, min(self.config.warmup, self.config.steps // 10))
            self._decay_from = (self.config.warmup, 0.0)
        if self.rank == 0:
            print(f"time budget: {rate * 1e3:.1f} ms/step -> {self.config.steps} steps in total")

    def _train_step(self, batch: Batch) -> dict[str, float]:
        self.net.train()
        out = self.loss_fn(self.net, batch, self.generator)
        finite = torch.isfinite(out["loss"].detach()).float()
        if self.distributed:  # every rank stops together, or the others would wait in the gradient all-reduce
            torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
        if not finite.item():
            raise FloatingPointError(f"loss is {float(out['loss'].detach())} at step {self.step + 1}: stopped before "
                                     "it reached the weights (lower lr, check sigma_max and the data); the last "
                                     "checkpoint is kept")
        self.opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if not torch.isfinite(norm):
            raise FloatingPointError(f"gradient norm is {float(norm)} at step {self.step + 1}: stopped before it "
                                     "reached the weights; the last checkpoint is kept")
        self.opt.step()
        self.sched.step()
        self.ema.update_parameters(self.model)
        self.step += 1
        return {k: float(v.detach()) for k, v in out.items()}
