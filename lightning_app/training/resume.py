"""Exact resume: a run stopped anywhere (SIGTERM, Ctrl-C, kill -9) continues as if it had never stopped.

What a run must remember, and where it is kept:

- the position in the epoch: ``ResumableDataLoader`` (``lightning_app.data.sampling``) counts the batches it has
  handed out and Lightning saves that in every checkpoint (its stateful-loading protocol); on resume the sampler
  skips those samples without loading them, when iteration starts. Shuffling depends only on the seed and the
  epoch, so the order is the same;
- the random generators (dropout): ``ExactResume`` saves them, every process's, and restores them;
- the loops, optimizer and schedule: Lightning's own checkpoint;
- ``last.ckpt``: ``LastCheckpoint`` (``last_checkpoint.py``) keeps it current, every epoch or every N steps, and
  at the end;
- a stop on a signal: ``GracefulStop`` (``graceful_stop.py``) finishes the step, agrees with the other processes
  on where to stop, saves that exact position to ``last.ckpt`` and stops.

A checkpoint written by another number of processes continues from the end of its epoch (``ExactResume``).
"""

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from lightning_app.errors import UserError


class ExactResume(Callback):
    """Save and restore every process's random generators; adapt a checkpoint written by another number of processes.

    Dropout draws from the global generators, so without this a resumed run would continue with other random masks
    than an uninterrupted one.
    """

    _loader_states: list[dict[str, Any]] = []  # noqa: RUF012 - replaced, never changed in place

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
        # The training loader's position, kept to hand it over when training starts (see on_train_start).
        self._loader_states = (
            checkpoint.get("loops", {}).get("fit_loop", {}).get("state_dict", {}).get("combined_loader", [])
        )
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
        # handed to it. Hand it over now, as Lightning does otherwise (the same state twice is the same position);
        # the loader reads it when its first batch is drawn.
        states, self._loader_states = self._loader_states, []
        loaders = trainer.train_dataloader
        loaders = list(loaders.values()) if isinstance(loaders, dict) else loaders
        loaders = loaders if isinstance(loaders, (list, tuple)) else [loaders]
        stateful = [loader for loader in loaders if callable(getattr(loader, "load_state_dict", None))]
        if len(stateful) == len(states):
            for loader, state in zip(stateful, states):
                loader.load_state_dict(state)


def trained_to_the_end(checkpoint: dict[str, Any], max_epochs: int | None, max_steps: int | None) -> bool:
    """Whether a checkpoint's run has already reached these limits, so that resuming it would train nothing."""
    epochs = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
    if max_steps is not None and max_steps >= 0 and checkpoint.get("global_step", 0) >= max_steps:
        return True
    return max_epochs not in (None, -1) and epochs.get("processed", 0) >= max_epochs
