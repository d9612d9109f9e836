"""Load trained models from checkpoints: read safely (``weights_only``: a file cannot run code), errors said clearly.

Each checkpoint file is read once: the model is built from the dictionary that was read, with its network's
``class_path`` and settings, the way Lightning's ``load_from_checkpoint`` builds it.
"""

from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.cli import instantiate_module

from lightning_app.errors import UserError
from lightning_app.model.classifier import MNISTClassifier
from lightning_app.model.ensemble import Ensemble

CHECKPOINT_HINT = "Pass a .ckpt file written by `python -m lightning_app.fit` (<run folder>/checkpoints/)."


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a Lightning checkpoint with ``weights_only=True``; any problem becomes a one-paragraph ``UserError``."""
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"Checkpoint {path} does not exist. Pass an existing .ckpt file with --ckpt_path.") from None
    except Exception as err:  # torch raises many types for a truncated, corrupt or foreign file
        raise UserError(
            f"Checkpoint {path} cannot be read ({type(err).__name__}): it is truncated, corrupt, not a PyTorch "
            f"checkpoint, or holds objects other than tensors and plain data, which are refused so that a file "
            f"cannot run code. {CHECKPOINT_HINT}"
        ) from None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not any(key.startswith("network.") for key in state):
        raise UserError(
            f"{path} is not a checkpoint of this project's LightningModule (its weights are not those of an "
            f"MNISTClassifier's network). {CHECKPOINT_HINT}"
        )
    return checkpoint


def classifier_from(
    checkpoint: dict[str, Any], device: str | torch.device = "cpu", name: str = "", test_time_shifts: int | None = None
) -> MNISTClassifier:
    """The trained ``MNISTClassifier`` that a checkpoint (read by ``read_checkpoint``) holds, in eval mode; with
    ``test_time_shifts`` in place of the checkpoint's own, if given."""
    # As Lightning's load_from_checkpoint does with a LightningCLI checkpoint: the saved init arguments through
    # jsonargparse (which builds the network from its class_path), then the weights.
    settings = {key: value for key, value in checkpoint.get("hyper_parameters", {}).items() if key != "_instantiator"}
    if test_time_shifts is not None:
        settings["test_time_shifts"] = test_time_shifts
    try:
        model = instantiate_module(MNISTClassifier, settings)
        model.on_load_checkpoint(checkpoint)
        model.load_state_dict(checkpoint["state_dict"])
    except (TypeError, ValueError, RuntimeError, ImportError, AttributeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"{name or 'The checkpoint'} cannot be loaded as this project's model ({first_line}). If it names a "
            f"network class of your own, make its module importable (run from its folder or add that to "
            f"PYTHONPATH). {CHECKPOINT_HINT}"
        ) from None
    return model.to(device).eval()


def load_classifier(
    path: str | Path, device: str | torch.device = "cpu", test_time_shifts: int | None = None
) -> MNISTClassifier:
    """Load a checkpoint file of this project's LightningModule for inference (``classifier_from``)."""
    return classifier_from(read_checkpoint(path), device, str(path), test_time_shifts)


def load_model(
    paths: list[str | Path], device: str | torch.device = "cpu", test_time_shifts: int | None = None
) -> MNISTClassifier | Ensemble:
    """One checkpoint's classifier, or the ensemble of several that answer together (``classifier_from``)."""
    members = [load_classifier(path, device, test_time_shifts) for path in paths]
    return members[0] if len(members) == 1 else Ensemble(members).to(device).eval()
