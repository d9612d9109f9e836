"""How each process draws its batches: the training loader and sampler whose position Lightning saves and restores
(its stateful-loading protocol), and the evaluation's shards."""

from typing import Any

from torch.utils.data import DataLoader, DistributedSampler, Sampler


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



class EvaluationShard(DistributedSampler):
    """This process's share of an evaluation set: every ``num_replicas``-th image, each image in exactly one share.

    Torch's DistributedSampler pads the shares to equal length by repeating images, which would count some twice. A
    DistributedSampler still, so that Lightning keeps it rather than wrapping it in one of its own.
    """

    def __init__(self, dataset: Any, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        self.num_samples = len(range(rank, len(dataset), num_replicas))

    def __iter__(self):
        return iter(range(self.rank, len(self.dataset), self.num_replicas))
