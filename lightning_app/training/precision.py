"""Which precision to train in: bf16 where the device computes it natively, and a check that the chosen one runs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lightning_app.errors import UserError, first_line

if TYPE_CHECKING:
    from pytorch_lightning import LightningModule, Trainer


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (x86 AVX512-BF16 or AMX, read from /proc/cpuinfo on Linux)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def default_precision(accelerator: str) -> str:
    """bf16 mixed precision where the device computes in bf16 natively, else full 32-bit precision.

    On CPUs without native bf16, autocast emulates it and runs slower than float32.
    """
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    if accelerator in ("auto", "cpu"):
        return "bf16-mixed" if cpu_has_native_bf16() else "32-true"
    return "32-true"


def check_precision(trainer: Trainer, model: LightningModule) -> None:
    """Run one step of a copy of the model on the Trainer's device and precision, so that a precision the device
    cannot compute fails now with a clear error rather than as a traceback from the first batch."""
    probe = copy.deepcopy(model).to(trainer.strategy.root_device)
    try:
        probe = trainer.precision_plugin.convert_module(probe)
        with trainer.precision_plugin.forward_context():
            output = probe(model.example_input_array.to(trainer.strategy.root_device))
        output.float().sum().backward()
    except (RuntimeError, TypeError, NotImplementedError) as err:
        raise UserError(
            f"--trainer.precision {trainer.precision} cannot run on this machine's {trainer.strategy.root_device.type} "
            f"({first_line(err)}) Use --trainer.precision null to pick what the device computes natively, or "
            f"32-true."
        ) from None
