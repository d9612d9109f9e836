"""Find the checkpoints of earlier runs and load them safely (``weights_only``: a checkpoint cannot run code)."""

import os
import re
from pathlib import Path

import torch

from lightning_app.errors import UserError
from lightning_app.module import MNISTClassifier

LAST = "last.ckpt"
BEST = "best-*.ckpt"
_HINT = "Pass a .ckpt file written by `python -m lightning_app.fit` (logs/<name>/version_N/checkpoints/)."


def run_folders(root: Path) -> list[Path]:
    """The ``version_N`` folders under ``root``, oldest (lowest N) first."""
    folders = [p for p in root.glob("version_*") if p.is_dir() and re.fullmatch(r"version_\d+", p.name)]
    return sorted(folders, key=lambda p: int(p.name.split("_")[1]))


def latest_checkpoint(root: Path, pattern: str = LAST) -> Path:
    """The newest checkpoint matching ``pattern`` in the newest run under ``root`` that has one."""
    for folder in reversed(run_folders(root)):
        candidates = sorted((folder / "checkpoints").glob(pattern), key=os.path.getmtime)
        if candidates:
            return candidates[-1]
    raise UserError(
        f"--ckpt_path asks for the latest run's checkpoint, but no run folder under {root} holds a "
        f"checkpoints/{pattern}. Train first with `python -m lightning_app.fit`, check the logger's save_dir "
        f"and name, or pass the checkpoint file itself with --ckpt_path PATH."
    )


def resolve(spec: str, root: Path | None) -> Path:
    """Turn a --ckpt_path value into a file: ``last`` or ``best`` of the newest run under ``root``, or a path."""
    if spec in ("last", "best"):
        if root is None:
            raise UserError(f"--ckpt_path {spec} needs the TensorBoard logger to find the newest run; pass a file.")
        return latest_checkpoint(root, LAST if spec == "last" else BEST)
    path = Path(spec)
    if not path.is_file():
        raise UserError(
            f"--ckpt_path {spec}: no such checkpoint file. Pass an existing .ckpt file (runs keep them in "
            f"logs/<name>/version_N/checkpoints/), or 'last' or 'best' for the newest run's checkpoints."
        )
    return path


def best_or_last(folder: Path) -> Path:
    """A run's best checkpoint, or its last one if it has no best."""
    candidates = sorted(folder.glob(BEST), key=os.path.getmtime) or sorted(folder.glob(LAST))
    if not candidates:
        raise UserError(f"{folder} holds no checkpoint ({BEST} or {LAST}); pass one with --ckpt_path PATH.")
    return candidates[-1]


ARCHITECTURE = ("conv1_channels", "conv2_channels", "kernel_size", "hidden_units", "batch_norm")


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a Lightning checkpoint with ``weights_only=True``; any problem becomes a one-paragraph ``UserError``."""
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"Checkpoint {path} does not exist. Pass an existing .ckpt file with --ckpt_path.") from None
    except Exception as err:  # torch raises many types for a truncated, corrupt or foreign file
        raise UserError(
            f"Checkpoint {path} cannot be read ({type(err).__name__}): it is truncated, corrupt, not a PyTorch "
            f"checkpoint, or holds objects other than tensors and plain data, which are refused so that a file "
            f"cannot run code. {_HINT}"
        ) from None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not state or not all(key.startswith("model.") for key in state):
        raise UserError(f"{path} is not a checkpoint of this project's model (its weights are not an MNISTCNN's). "
                        f"{_HINT}")
    return checkpoint


def model_hparams(checkpoint: dict) -> dict:
    """The model's constructor arguments saved in a checkpoint (without LightningCLI's private entries)."""
    return {k: v for k, v in checkpoint.get("hyper_parameters", {}).items() if not k.startswith("_")}


def check_architecture(path: str | Path, model_config: dict, resume: bool = True) -> None:
    """Refuse, before anything runs, a checkpoint that the configured model (or run, with ``resume``) cannot use."""
    checkpoint = read_checkpoint(path)
    if resume and ("loops" not in checkpoint or "optimizer_states" not in checkpoint):
        raise UserError(f"{path} holds weights only, not the training state needed to resume. {_HINT}")
    saved = model_hparams(checkpoint)
    differences = [f"{key} {saved[key]} there, {model_config.get(key)} now" for key in ARCHITECTURE
                   if key in saved and saved[key] != model_config.get(key)]
    if differences:
        raise UserError(
            f"{path} holds a network of another shape than the one configured ({'; '.join(differences)}). Resume "
            f"with the settings it was trained with: --config <its run folder>/config.yaml, or the --model options."
        )


def load_classifier(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[MNISTClassifier, int]:
    """Load a checkpoint of this project's model for inference; return the model and the step it was saved at."""
    checkpoint = read_checkpoint(path, map_location)
    try:
        model = MNISTClassifier(**model_hparams(checkpoint))
        model.load_state_dict(checkpoint["state_dict"])
    except (TypeError, ValueError, RuntimeError) as err:
        first_line = str(err).strip().splitlines()[0]
        raise UserError(f"{path} holds a different model than this project's CNN ({first_line}). {_HINT}") from None
    return model.to(map_location), int(checkpoint.get("global_step", 0))
