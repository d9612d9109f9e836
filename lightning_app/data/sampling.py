"""The training loader and sampler whose position in the epoch Lightning saves and restores (its stateful-loading protocol)."""

from typing import Any

from torch.utils.data import DataLoader, DistributedSampler


class ResumableSampler(DistributedSampler):
    """Shuffle by seed and epoch (each process its own shard), starting ``skip`` samples into the epoch.

    A ``DistributedSampler`` also for one process: Lightning then keeps it under DDP instead of wrapping it, so the
    skip applies to this process's own shard.
    """

    def __init__(self, dataset: Any, num_replicas: int = 1, rank: int = 0, shuffle: bool = True, seed: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.skip = 0

    def __iter__(self):
        skip, self.skip = self.skip, 0
        return iter(list(super().__iter__())[skip:])


class ResumableDataLoader(DataLoader):
    """A DataLoader whose position in the epoch Lightning saves in checkpoints and restores on resume.

    It counts the batches it hands out; ``load_state_dict`` makes the next pass over the same epoch start after them.
    The position is read when iteration starts (the first batch), not when the loader or its iterator is built.
    """

    _batches = 0
    _resume: dict[str, int] | None = None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": getattr(self.sampler, "epoch", 0), "batches": self._batches}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self._resume = dict(state_dict)

    def __iter__(self):
        resume, self._resume = self._resume, None
        skip = 0
        if resume and isinstance(self.sampler, ResumableSampler) and resume["epoch"] == self.sampler.epoch:
            skip = resume["batches"] if resume["batches"] < len(self) else 0
            self.sampler.skip = skip * self.batch_size
        self._batches = skip
        for batch in super().__iter__():
            self._batches += 1
            yield batch
