"""An endless, seeded, shardable index sampler whose position can be saved and restored exactly."""

from __future__ import annotations

import numpy as np
import torch

from ganforge.errors import UsageError

_CHUNK = 4096  # random draws are taken in chunks; numpy's legacy RandomState gives the same values
#                 for randint(w, size=k) as for k calls of randint(w), so chunking changes nothing.


class InfiniteSampler(torch.utils.data.Sampler):
    """Endless stream of dataset indices with a sliding-window shuffle, sharded across ranks.

    The global stream is the same for every rank: start from a seeded random permutation `order` of
    range(dataset_len); at global step p emit order[i] with i = p % n, then swap slot i with slot
    i - r, r drawn by the seeded RNG from the `window = round(n * window_size)` slots at or before i
    (r is folded into [0, i] near the start of the order, so a swap never reaches a slot that is
    still to come in this pass). Each pass of n steps is therefore exactly a permutation of the
    dataset, while the order keeps drifting from pass to pass (NVIDIA's sliding-window idea, minus
    the wrap-around that lets an index repeat within a pass). Rank r of R yields the global steps with
    p % R == r, so within a pass the ranks get disjoint indices that together cover the dataset.

    The state is a single integer, the global position. `state_dict()` / `load_state_dict()` save
    and restore it; a restored sampler continues with exactly the indices the original would have
    given. Restoring replays the swaps (about 0.3 s per million steps). When a DataLoader prefetches
    ahead of what the training loop has consumed, save `state_dict(num_consumed=k)` with k the number
    of indices this rank has actually used since the start of the run.

    dataset_len:  number of items (> 0)
    rank, num_replicas: this process's shard (0 <= rank < num_replicas)
    seed:         seed of the permutation and the window swaps
    shuffle:      False gives 0, 1, 2, ... repeated (no swaps)
    window_size:  fraction of the dataset in the sliding shuffle window (0 = permute once, then
                  repeat that order)
    """

    def __init__(self, dataset_len: int, rank: int = 0, num_replicas: int = 1, seed: int = 0,
                 shuffle: bool = True, window_size: float = 0.5):
        dataset_len = int(dataset_len)
        if dataset_len <= 0:
            raise UsageError("the dataset is empty; there is nothing to sample from")
        if not (num_replicas >= 1 and 0 <= rank < num_replicas):
            raise ValueError(f"bad shard rank={rank} num_replicas={num_replicas}")
        if not 0 <= window_size <= 1:
            raise ValueError(f"window_size must be in [0, 1], got {window_size}")
        self.dataset_len = dataset_len
        self.rank = int(rank)
        self.num_replicas = int(num_replicas)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.window_size = float(window_size)
        self.window = int(round(dataset_len * window_size)) if shuffle else 0
        self.position = 0  # global step of the next index this sampler will produce

    # -- the global stream ------------------------------------------------------------------------
    def _fresh(self):
        order = np.arange(self.dataset_len, dtype=np.int64)
        rnd = np.random.RandomState(self.seed % (1 << 32))
        if self.shuffle:
            rnd.shuffle(order)
        return order.tolist(), rnd

    def _stream(self, start: int):
        """Yield (global_step, index) from global step `start` on, replaying the swaps before it."""
        order, rnd = self._fresh()
        n = self.dataset_len
        w = self.window
        p = 0
        if w < 2:  # no swaps: the order simply repeats
            p = start
            while True:
                yield p, order[p % n]
                p += 1
        # Replay: apply the swaps of steps 0 .. start-1 without yielding.
        while p < start:
            m = min(_CHUNK, start - p)
            draws = rnd.randint(w, size=m).tolist()
            for r in draws:
                i = p % n
                j = i - r if r <= i else i - r % (i + 1)
                order[i], order[j] = order[j], order[i]
                p += 1
        while True:
            draws = rnd.randint(w, size=_CHUNK).tolist()
            for k in range(_CHUNK):
                i = p % n
                yield p, order[i]
                r = draws[k]
                j = i - r if r <= i else i - r % (i + 1)
                order[i], order[j] = order[j], order[i]
                p += 1

    def __iter__(self):
        for p, idx in self._stream(self.position):
            if p % self.num_replicas == self.rank:
                self.position = p + 1
                yield idx

    def __len__(self):  # a DataLoader never needs it for an endless sampler, but some tools ask
        raise TypeError("InfiniteSampler is endless and has no length")

    # -- exact resume -----------------------------------------------------------------------------
    def state_dict(self, num_consumed: int | None = None) -> dict:
        """The sampler's state: {'position', 'seed', 'dataset_len', 'shuffle', 'window_size'}.

        num_consumed: if given, the number of indices THIS rank has used since global position 0;
        the state then points just after them (position = num_consumed * num_replicas), which is
        what a training loop with a prefetching DataLoader should save.
        """
        pos = self.position if num_consumed is None else int(num_consumed) * self.num_replicas
        return {"position": int(pos), "seed": self.seed, "dataset_len": self.dataset_len,
                "shuffle": self.shuffle, "window_size": self.window_size}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a saved state. The dataset length, seed and shuffle settings must match;
        the number of replicas may differ (the global stream is the same)."""
        for key in ("dataset_len", "seed", "shuffle", "window_size"):
            if key in state and state[key] != getattr(self, key):
                raise UsageError(
                    f"cannot resume the data sampler: {key} was {state[key]!r} in the saved run but is "
                    f"{getattr(self, key)!r} now; resume with the same dataset and settings")
        self.position = int(state["position"])
