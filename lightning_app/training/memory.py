"""How a training process manages its memory: malloc keeps what each step frees, and the garbage collector leaves
the imported libraries alone.

A training step on the CPU allocates and frees the same few-megabyte activation and gradient buffers every step.
glibc's malloc, by default, serves blocks of that size from the top of its heap and gives the heap's top back to the
system when it is freed (its trim threshold follows its mmap threshold, which grows with the largest block freed),
so in most processes (not all: it depends on how the heap lies) the next step asks the system for the same pages
again and the kernel zeroes every one of them: page faults that can cost a third of a small network's step.
PyTorch's CPU performance guide recommends another allocator (jemalloc or tcmalloc, loaded with LD_PRELOAD) for the
same reason; fixing glibc's thresholds does it without one.

Python's garbage collector, for its part, walks every object that the imports created (torch, Lightning,
torchmetrics, torchvision: nearly half a million) in each full collection and again when the interpreter exits,
which then takes longer than a second. None of them is ever garbage: ``gc.freeze`` moves them out of its sight.
"""

import ctypes
import ctypes.util
import gc
import sys

M_TRIM_THRESHOLD = -1  # mallopt's parameter numbers, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest: blocks up to 32 MiB come from the heap and are reused
TRIM_THRESHOLD = 1 << 30  # give memory back only when 1 GiB lies free at the heap's top


def keep_freed_memory() -> bool:
    """Make glibc's malloc reuse the memory freed by each training step; True if it did (Linux with glibc only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def freeze_imports() -> None:
    """Exempt every object that exists now (the imported libraries, once imported) from garbage collection."""
    # No collection first: it would take as long as the walk it saves, and the little garbage that imports leave
    # behind stays allocated until the process ends.
    gc.freeze()


def tune_memory() -> None:
    """Both settings, for a process about to train: called by the CLI once the libraries are imported."""
    keep_freed_memory()
    freeze_imports()
