"""The adaptive augmentation probability of ADA (Karras et al. 2020, §3): the overfitting heuristic
r_t = E[sign(D(x_real))] drives the pipe's p towards r_t = target."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ganforge.errors import UsageError
from ganforge.train.augment.pipe import AugmentPipe

ADA_TARGET = 0.6        # target value of the overfitting heuristic r_t (paper §3)
ADA_INTERVAL = 4        # adjust p every 4 minibatches
ADA_KIMG = 500          # p can go from 0 to 1 in 500k images
ADA_KIMG_TRANSFER = 100  # NVIDIA's train.py uses 100 when fine-tuning from a pretrained network (--resume)


# -- adaptive p -------------------------------------------------------------------------------------

def ada_adjustment(r_t: float, target: float = ADA_TARGET, batch_size: int = 1, interval: int = ADA_INTERVAL,
                   kimg: float = ADA_KIMG) -> float:
    """The ADA step on p (paper §3): p moves by one unit per `kimg` thousand images, towards r_t = target.

    r_t = E[sign(D(x_real))]         (over the real images seen since the last adjustment)
    delta_p = sign(r_t - target) * (batch_size * interval) / (kimg * 1000)
    and the caller applies p <- max(p + delta_p, 0).
    """
    return float(np.sign(r_t - target)) * (batch_size * interval) / (kimg * 1000)


class AdaController:
    """Adaptive augmentation probability: the overfitting heuristic r_t drives the pipe's p (paper §3).

    Usage in a training loop (batch_size = the global minibatch, all ranks together):

        ada = AdaController(pipe, batch_size=64)            # target 0.6, every 4 minibatches, 500 kimg
        ...   real_logits = D(pipe(reals))   ->   ada.accumulate(real_logits)   (every D pass on reals)
        ...   after each minibatch:              ada.step()

    Every `interval` minibatches, r_t = sum(sign(logits)) / count over all logits accumulated since the
    last adjustment (all ranks: the two sums are all-reduced when a torch.distributed process group with
    more than one rank is initialised), and p <- max(p + ada_adjustment(r_t), 0) in the pipe's float32
    buffer. With no logits accumulated, p is left as it is.

    state_dict() carries p, the pending sums and the minibatch counter, so load_state_dict() resumes
    exactly. Under torch.distributed each rank's pending sums are its own: call synchronize() on every
    rank before rank 0 takes the state_dict, and load_state_dict() on every rank (ranks other than 0
    then start with empty sums).
    """

    def __init__(self, pipe: AugmentPipe, batch_size: int, target: float = ADA_TARGET,
                 interval: int = ADA_INTERVAL, kimg: float = ADA_KIMG):
        if batch_size <= 0 or interval <= 0 or kimg <= 0:
            raise UsageError("ADA needs a positive batch size, interval and kimg")
        if not (0 <= target <= 1):
            raise UsageError(f"ADA target must be between 0 and 1, got {target}")
        self.pipe, self.batch_size, self.target = pipe, int(batch_size), float(target)
        self.interval, self.kimg = int(interval), float(kimg)
        self._sums = torch.zeros(2, device=pipe.p.device)  # [sum of signs, number of logits], this rank
        self.batches = 0                                   # minibatches since the last adjustment

    @property
    def p(self) -> float:
        return float(self.pipe.p)

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Add sign(D(x_real)) of one pass: logits of any shape (all elements count)."""
        x = real_logits.detach()
        if self._sums.device != x.device:
            self._sums = self._sums.to(x.device)
        self._sums += torch.stack([x.sign().sum().float(), x.new_tensor(x.numel(), dtype=torch.float32)])

    def _reduced_sums(self) -> torch.Tensor:
        sums = self._sums.clone()
        if _world_size() > 1:
            torch.distributed.all_reduce(sums, op=torch.distributed.ReduceOp.SUM)
        return sums

    def step(self) -> bool:
        """Count one finished minibatch; every `interval`-th call adjust p. Returns whether it adjusted."""
        self.batches += 1
        if self.batches < self.interval:
            return False
        self.batches = 0
        sign_sum, count = self._reduced_sums().tolist()
        self._sums.zero_()
        if count == 0:
            return False
        adjust = ada_adjustment(sign_sum / count, self.target, self.batch_size, self.interval, self.kimg)
        with torch.no_grad():
            self.pipe.p.copy_((self.pipe.p + adjust).clamp_min(0))
        return True

    def synchronize(self) -> None:
        """Collective: gather all ranks' pending sums on rank 0 (zero elsewhere); the next adjustment is unchanged."""
        if _world_size() > 1:
            total = self._reduced_sums()
            self._sums = total if torch.distributed.get_rank() == 0 else torch.zeros_like(total)

    def state_dict(self) -> dict[str, Any]:
        sign_sum, count = self._sums.tolist()
        return {"p": float(self.pipe.p), "sign_sum": sign_sum, "count": count, "batches": self.batches,
                "target": self.target, "interval": self.interval, "kimg": self.kimg, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.pipe.p.fill_(float(state["p"]))
        keep = _world_size() <= 1 or torch.distributed.get_rank() == 0
        sums = [float(state["sign_sum"]), float(state["count"])] if keep else [0.0, 0.0]
        self._sums = torch.tensor(sums, dtype=torch.float32, device=self.pipe.p.device)
        self.batches = int(state["batches"])


def _world_size() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


__all__ = ["ADA_TARGET", "ADA_INTERVAL", "ADA_KIMG", "ADA_KIMG_TRANSFER", "ada_adjustment", "AdaController"]
