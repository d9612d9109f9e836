"""Checkpoint writing that never leaves a half-written file where a good checkpoint was."""

import os
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins import TorchCheckpointIO

from lightning_app.errors import UserError


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file, fsync it, then rename it over the old one; read each file once.

    A rename within a folder is atomic, so a crash, a kill -9 or a full disk during a save leaves the previous
    checkpoint of that name intact and loadable.

    Args:
        read: Checkpoints already read, by path: the command that checked one before training hands it to the
            Trainer this way instead of the Trainer reading the file again.
    """

    def __init__(self, read: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.read = {str(Path(path).resolve()): checkpoint for path, checkpoint in (read or {}).items()}

    def hand_over(self, path: str | os.PathLike, checkpoint: dict[str, Any]) -> None:
        """Give the next load of ``path`` this checkpoint, already read, instead of reading the file again."""
        self.read[str(Path(path).resolve())] = checkpoint

    def load_checkpoint(self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None):
        checkpoint = self.read.pop(str(Path(path).resolve()), None)
        if checkpoint is None:
            return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)
        return checkpoint

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(temporary, "wb") as file:
                self._write(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except OSError as err:
            temporary.unlink(missing_ok=True)
            raise UserError(
                f"Could not write the checkpoint {path}: {err.strerror or err}. Any earlier checkpoint of that name "
                f"is intact. Free some space (or fix the folder's permissions) and continue the run with "
                f"`python -m lightning_app.fit --ckpt_path last` and the options you started it with."
            ) from None
        _fsync_folder(path.parent)

    @staticmethod
    def _write(checkpoint: dict[str, Any], file) -> None:
        torch.save(checkpoint, file)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (the folder entry), where the platform allows it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
