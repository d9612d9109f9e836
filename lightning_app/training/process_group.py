"""A data-parallel process destroys its process group before the interpreter shuts down, whatever the backend.

Lightning destroys the group at exit for NCCL only (``lightning_fabric.utilities.distributed``, Lightning #19931).
A Gloo group left alive is torn down during interpreter finalization instead: one of its worker threads may then
drop a finished broadcast whose tensors still refer to Python objects, wait for the interpreter that is shutting down,
and abort the process with "terminate called without an active exception" (exit status -6, seen in about one 2-process
run in six here; PyTorch #179291 proposed this same handler in ``init_process_group`` and was abandoned).
``torch.distributed.destroy_process_group`` is the documented way to end a group, once per process, when no more
collectives will run.
"""

import atexit
import functools

import torch.distributed as dist


def _destroy_if_initialized() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@functools.cache
def destroy_process_group_at_exit() -> None:
    """Destroy the process group, if one was initialized, when the interpreter exits normally (registered once)."""
    atexit.register(_destroy_if_initialized)
