"""Read checkpoints safely (``weights_only``: a checkpoint cannot run code) and say clearly what is wrong with one."""

import json
from pathlib import Path
from typing import Any

import torch

from lightning_app.errors import UserError
from lightning_app.model.classifier import MNISTClassifier

_HINT = "Pass a .ckpt file written by `python -m lightning_app.fit` (<run folder>/checkpoints/)."


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
            f"cannot run code. {_HINT}"
        ) from None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not any(key.startswith("network.") for key in state):
        raise UserError(
            f"{path} is not a checkpoint of this project's LightningModule (its weights are not those of an "
            f"MNISTClassifier's network). {_HINT}"
        )
    return checkpoint


def network_config(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """The network's ``class_path``/``init_args`` saved in a checkpoint, if it was configured by a config."""
    network = checkpoint.get("hyper_parameters", {}).get("network")
    return network if isinstance(network, dict) else None


def check_network(path: str | Path, configured: dict[str, Any] | None, resume: bool) -> None:
    """Refuse, before anything runs, a checkpoint that the configured network (or run, with ``resume``) cannot use."""
    checkpoint = read_checkpoint(path)
    if resume and ("loops" not in checkpoint or "optimizer_states" not in checkpoint):
        raise UserError(f"{path} holds weights only, not the training state needed to resume. {_HINT}")
    saved = network_config(checkpoint)
    if saved is None or configured is None:
        return
    if saved.get("class_path") != configured.get("class_path"):
        raise UserError(
            f"{path} holds a {saved.get('class_path')} network, but {configured.get('class_path')} is configured. "
            f"Continue with the settings it was trained with: --config <its run folder>/config.yaml."
        )
    # Through JSON, so that a tuple in the config and the list it was saved as compare equal.
    there, now = (
        json.loads(json.dumps(saved.get("init_args") or {})),
        json.loads(json.dumps(configured.get("init_args") or {})),
    )
    differences = [f"{key} {there[key]} there, {now.get(key)} now" for key in there if there[key] != now.get(key)]
    if differences:
        raise UserError(
            f"{path} holds a network of other settings than the one configured ({'; '.join(differences)}). "
            f"Continue with the settings it was trained with: --config <its run folder>/config.yaml, or the "
            f"--model.network options."
        )


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> MNISTClassifier:
    """Load a checkpoint of this project's LightningModule for inference, with Lightning's own loading."""
    read_checkpoint(path)  # the clear errors first
    try:
        model = MNISTClassifier.load_from_checkpoint(path, map_location=device, weights_only=True)
    except (TypeError, ValueError, RuntimeError, ImportError, AttributeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"{path} cannot be loaded as this project's model ({first_line}). If it names a network class of your "
            f"own, make its module importable (run from its folder or add that to PYTHONPATH). {_HINT}"
        ) from None
    return model.eval()
