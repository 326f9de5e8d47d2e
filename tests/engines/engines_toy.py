"""Toy CycleGAN set-up for the engine tests (16x16 images, tiny nets), importable and runnable as a script.

As a script it trains a CycleGANTrainer and writes the final parameters and a few state facts:

    python engines_toy.py --out OUT.pt [--checkpoint-dir D] [--resume auto] [--distributed]
                          [--pause-after N --marker FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from torch import nn
from torch.utils.data import DataLoader

from ctharmonize.engines import (
    CycleGANTrainer,
    RandomSubsetSampler,
    init_distributed,
    make_linear_decay_scheduler,
)


class ToyGenerator(nn.Module):
    """(B, 1, H, W) in [-1, 1] -> (B, 1, H, W) in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3, padding=1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ToyDiscriminator(nn.Module):
    """(B, 1, 16, 16) -> (B, 1, 8, 8) patch scores."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 4, 4, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def toy_data(n: int = 8, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """``n`` unpaired samples: A smooth, B noisy, both (1, 16, 16) in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    data = []
    for _ in range(n):
        base = torch.rand(1, 1, 4, 4, generator=g) * 2 - 1
        smooth = nn.functional.interpolate(base, size=(16, 16), mode="bilinear", align_corners=False)[0]
        noisy = (smooth + 0.3 * torch.randn(1, 16, 16, generator=g)).clamp(-1, 1)
        data.append({"A": smooth, "B": noisy})
    return data


def build_trainer(
    max_epochs: int = 2,
    n_samples: int = 8,
    batch_size: int = 2,
    fraction: float = 0.5,
    seed: int = 0,
    lr: float = 2e-3,
    **kwargs,
) -> CycleGANTrainer:
    """A seeded toy CycleGANTrainer; ``kwargs`` go to the trainer."""
    torch.manual_seed(seed)
    nets = {"G_AB": ToyGenerator(), "G_BA": ToyGenerator(), "D_A": ToyDiscriminator(), "D_B": ToyDiscriminator()}
    opt_g = torch.optim.Adam(list(nets["G_AB"].parameters()) + list(nets["G_BA"].parameters()), lr=lr, betas=(0.5, 0.999))
    opt_da = torch.optim.Adam(nets["D_A"].parameters(), lr=lr, betas=(0.5, 0.999))
    opt_db = torch.optim.Adam(nets["D_B"].parameters(), lr=lr, betas=(0.5, 0.999))
    optimizers = {"G": opt_g, "D_A": opt_da, "D_B": opt_db}
    schedulers = {k: make_linear_decay_scheduler(o, 1, 1) for k, o in optimizers.items()}
    sampler = RandomSubsetSampler(n_samples, fraction=fraction, seed=seed)
    loader = DataLoader(toy_data(n_samples, seed), batch_size=batch_size, sampler=sampler)
    return CycleGANTrainer(
        device="cpu",
        max_epochs=max_epochs,
        train_data_loader=loader,
        generators={"G_AB": nets["G_AB"], "G_BA": nets["G_BA"]},
        discriminators={"D_A": nets["D_A"], "D_B": nets["D_B"]},
        optimizers=optimizers,
        schedulers=schedulers,
        **kwargs,
    )


def state_facts(trainer: CycleGANTrainer) -> dict:
    """Iteration, epoch, Adam step count per optimizer and learning rates: what a resume must restore."""
    steps = {}
    for name, opt in trainer.optimizers.items():
        first = opt.param_groups[0]["params"][0]
        steps[name] = float(opt.state[first]["step"]) if first in opt.state else 0.0
    return {
        "iteration": trainer.state.iteration,
        "epoch": trainer.state.epoch,
        "steps": steps,
        "lr": {n: o.param_groups[0]["lr"] for n, o in trainer.optimizers.items()},
    }


def main() -> None:
    from ignite.engine import Events

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--checkpoint-dir")
    parser.add_argument("--checkpoint-every", type=int, default=0)
    parser.add_argument("--resume")
    parser.add_argument("--max-epochs", type=int, default=2)
    parser.add_argument("--distributed", action="store_true")
    parser.add_argument("--pause-after", type=int, default=0)
    parser.add_argument("--marker")
    parser.add_argument("--identity", type=float, default=0.0)
    parser.add_argument("--adversarial", default="lsgan")
    parser.add_argument("--pool-size", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.distributed:
        init_distributed()  # before the sampler is built, as a multi-GPU bundle's "initialize" does
    trainer = build_trainer(
        max_epochs=args.max_epochs,
        checkpoint_dir=args.checkpoint_dir,
        checkpoint_every=args.checkpoint_every,
        resume_from=args.resume,
        distributed=args.distributed,
        loss_weights={"identity": args.identity},
        adversarial=args.adversarial,
        pool_size=args.pool_size,
    )
    started = {}
    trainer.add_event_handler(Events.STARTED, lambda e: started.update(state_facts(e)))
    if args.pause_after:

        def pause(engine) -> None:  # after the checkpoint handler: wait to be killed
            if engine.state.iteration == args.pause_after:
                with open(args.marker, "w") as f:
                    f.write("ready")
                time.sleep(120)

        trainer.add_event_handler(Events.ITERATION_COMPLETED, pause)
    trainer.run()
    rank = trainer.state.rank
    params = {f"{n}.{k}": v.detach().clone() for n, m in trainer.networks.items() for k, v in m.state_dict().items()}
    torch.save(params, f"{args.out}.rank{rank}.pt")
    with open(f"{args.out}.rank{rank}.json", "w") as f:
        json.dump({"started": started, "final": state_facts(trainer), "world": int(os.environ.get("WORLD_SIZE", 1))}, f)
    if args.distributed:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
