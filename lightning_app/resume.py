"""Exact resume: a run stopped anywhere (SIGTERM, Ctrl-C, kill -9) continues as if it had never stopped.

What a run must remember, and where it is kept:

- the position in the epoch: ``ResumableDataLoader`` counts the batches it has handed out and Lightning saves that
  in every checkpoint (its stateful-loading protocol); on resume the sampler skips those samples without loading
  them, when iteration starts. Shuffling depends only on the seed and the epoch, so the order is the same;
- the random generators (dropout): ``ExactResume`` saves them, every process's, and restores them;
- the loops, optimizer and schedule: Lightning's own checkpoint;
- ``last.ckpt``: ``LastCheckpoint`` keeps it current, every epoch or every N steps, and at the end;
- a stop on a signal: ``GracefulStop`` finishes the step, agrees with the other processes on where to stop, saves
  that exact position to ``last.ckpt`` and stops.

A checkpoint written by another number of processes continues from the end of its epoch (``ExactResume``).
"""

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader, DistributedSampler

from lightning_app import runs
from lightning_app.errors import UserError
from lightning_app.weights import fingerprint, unchanged


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


class ExactResume(Callback):
    """Save and restore every process's random generators; adapt a checkpoint written by another number of processes.

    Dropout draws from the global generators, so without this a resumed run would continue with other random masks
    than an uninterrupted one.
    """

    def state_dict(self) -> dict[str, Any]:
        # Tensors only, so that checkpoints stay loadable with torch.load(weights_only=True).
        state = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        trainer = getattr(self, "_trainer", None)
        if trainer is not None and trainer.world_size > 1:
            # Every process saves through this call (rank zero alone writes the file): gather all their generators.
            state["torch_per_rank"] = trainer.strategy.all_gather(state["torch"]).cpu()
        state["world_size"] = torch.tensor(trainer.world_size if trainer is not None else 1)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        trainer = getattr(self, "_trainer", None)
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        per_rank = state_dict.get("torch_per_rank")
        if per_rank is not None and len(per_rank) == world_size:
            torch.set_rng_state(per_rank[rank].clone())
        else:
            torch.set_rng_state(state_dict["torch"])
        cuda = state_dict.get("cuda")
        if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)

    def setup(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        self._trainer = trainer

    def on_load_checkpoint(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", checkpoint: dict[str, Any]
    ) -> None:
        state = checkpoint.get("callbacks", {}).get(self.state_key, {})
        saved = int(state.get("world_size", 1))
        if saved == trainer.world_size or "loops" not in checkpoint:
            return
        # Another number of processes splits an epoch into another number of steps and shards, so a position inside
        # an epoch has no equivalent. From the end of an epoch the run continues with the next one.
        loop = checkpoint["loops"]["fit_loop"]
        batches = loop["epoch_loop.batch_progress"]
        if not batches["is_last_batch"]:
            raise UserError(
                f"This checkpoint was saved in the middle of an epoch by {saved} process(es); it can only be "
                f"continued by {saved}. Resume with --trainer.devices/--trainer.num_nodes giving {saved} processes, "
                f"or from a checkpoint saved at the end of an epoch (last.ckpt is one unless the run was stopped "
                f"mid-epoch or saves every N steps)."
            )
        batches["current"] = dict.fromkeys(batches["current"], 0)
        batches["is_last_batch"] = False
        for counts in (loop["epoch_progress"]["current"], loop["epoch_progress"]["total"]):
            counts["completed"] = counts["processed"]

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        # Lightning bug #20550: when configure_optimizers asks for trainer.estimated_stepping_batches (OneCycleLR),
        # the training loader is built before the checkpoint is restored, and the loader's saved position is never
        # handed to it. Hand it over now; the loader reads it when its first batch is drawn.
        trainer.fit_loop._load_combined_loader_states()


class LastCheckpoint(ModelCheckpoint):
    """Keep ``last.ckpt`` current: every epoch (or every ``every_n_train_steps``), and at the end of training.

    A plain ModelCheckpoint with ``every_n_train_steps`` would leave the final steps out of ``last.ckpt`` when the
    run does not end on a multiple of N.
    """

    def __init__(self, filename: str = runs.LAST, enable_version_counter: bool = False, **kwargs: Any) -> None:
        super().__init__(
            filename=filename, monitor=None, save_top_k=1, enable_version_counter=enable_version_counter, **kwargs
        )

    _saved_weights: torch.Tensor | None = None

    def _save_checkpoint(self, trainer: "pl.Trainer", filepath: str) -> None:
        # ModelCheckpoint saves only through this protected method, and Lightning has no public hook that follows
        # a callback's own save: what the save held is recorded here.
        super()._save_checkpoint(trainer, filepath)
        self._saved_weights = fingerprint(trainer.lightning_module)

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        """Save the final state unless the last scheduled save already holds it (or this is a dry run).

        The last save may be of this step and still not hold it (``lightning_app.weights`` says why); checkpoint
        callbacks run after the others.
        """
        super().on_train_end(trainer, pl_module)
        if trainer.fast_dev_run or not self.dirpath:
            return
        same = unchanged(trainer, self._saved_weights)  # every process asks: it is a collective call
        if self._last_global_step_saved == trainer.global_step and same:
            return
        trainer.save_checkpoint(Path(self.dirpath) / f"{self.filename}{self.FILE_EXTENSION}", weights_only=False)
        self._last_global_step_saved, self._saved_weights = trainer.global_step, fingerprint(pl_module)


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving a checkpoint of the exact position."""

    def __init__(self, signum: int, checkpoint: Path | None, step: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}")
        self.signum = signum
        self.checkpoint = checkpoint
        self.step = step


class GracefulStop(Callback):
    """On SIGINT (Ctrl-C) or SIGTERM, finish the current step, save a resumable checkpoint, and stop.

    Under DDP the processes agree after every step whether any of them was signalled (as Lightning does before
    acting on a signal), so that all save at the same step and none waits for the others. A second Ctrl-C exits at
    once: checkpoints are written atomically, so nothing is left half-written.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self.saved: Path | None = None
        self.stopping = False
        self._previous: dict[int, Any] = {}

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self.received, self.saved, self.stopping = None, None, False
        if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
            self._previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            if signum == signal.SIGINT:
                os._exit(128 + signum)
            return
        self.received = signum
        print(
            f"\n{signal.Signals(signum).name} received: stopping after this step and saving a checkpoint "
            f"(press Ctrl-C again to quit at once).",
            file=sys.stderr,
            flush=True,
        )

    def on_train_batch_end(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # Only where an optimizer step has just been taken: gradients accumulated over part of a step are in no
        # checkpoint. Saved here, where Lightning's own mid-epoch checkpoints are saved, so that the resumed loops
        # continue with the next batch and the same logging steps.
        if self.stopping:
            return
        if (batch_idx + 1) % trainer.accumulate_grad_batches and not trainer.is_last_batch:
            return
        stop = self.received is not None
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop:
            self.received = self.received or signal.SIGTERM
            self.stopping = True
            if trainer.checkpoint_callbacks:  # with --trainer.enable_checkpointing false, nothing is saved
                self.saved = runs.checkpoint_dir(trainer) / f"{runs.LAST}{runs.EXTENSION}"
                trainer.save_checkpoint(self.saved, weights_only=False)

    def on_train_batch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", *args: Any) -> None:
        # Stopped only now, after Lightning has written the finished step's logs, so that the resumed run's curves
        # have no gap.
        if self.stopping:
            raise TrainingInterrupted(self.received, self.saved, trainer.global_step)

    def teardown(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        self._restore_handlers()

    def on_exception(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", exception: BaseException) -> None:
        # Lightning skips the teardown hooks when fit ends in an exception (a pruned trial, a stop, an error):
        # the handlers of a finished fit must not catch the signals meant for what runs next.
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
