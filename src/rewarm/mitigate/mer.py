"""Meta-experience replay's Reptile step (Abbes et al. 2025, arXiv 2508.01908,
"Revisiting Replay and Gradient Alignment for Continual Pre-Training of LLMs").

Every k optimizer steps the weights move only part of the way they went:
theta <- theta_before + beta * (theta_after - theta_before), theta_before the weights
k steps earlier (the anchor). beta = 1 is plain training, beta = 0 undoes the k steps.
The step is element-wise, so each rank applies it to its own copy (DDP) or shard
(FSDP2) with no communication; `torch.lerp` makes beta = 1 and beta = 0 exact.
The AdamW moments are left as they are.
"""

from __future__ import annotations

import torch

from rewarm.mitigate.tensors import Weights, local, parameters, snapshot


@torch.no_grad()
def interpolate(model: torch.nn.Module, start: Weights, weight: float) -> None:
    """theta <- start + weight * (theta - start), in place (exact at weight 0 and 1)."""
    for name, p in parameters(model):
        theta = local(p.detach())
        theta.copy_(torch.lerp(start[name], theta, weight))


class Reptile:
    """The anchor of the current k-step block and the step that closes it."""

    def __init__(self, beta: float) -> None:
        self.beta = beta
        self.anchor: Weights | None = None
        self.steps = 0
        """Reptile steps taken in this stage."""

    def start(self, model: torch.nn.Module) -> None:
        self.anchor = snapshot(model)

    def step(self, model: torch.nn.Module) -> None:
        """Close a block: interpolate from the anchor, and anchor the next block there."""
        assert self.anchor is not None, "start() before step()"
        interpolate(model, self.anchor, self.beta)
        self.anchor = snapshot(model)
        self.steps += 1
