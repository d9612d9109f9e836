"""The CLI's memory settings: a CPU training step reuses the memory freed by the step before, and the garbage
collector leaves the imported libraries alone."""

import os
import subprocess
import sys

import pytest

from conftest import fit_options

STEPS = """
import resource, statistics, sys, torch, torch.nn.functional as F
from lightning_app.training.memory import keep_freed_memory
from lightning_app.model.network import MNISTCNN

if sys.argv[1] == "keep":
    assert keep_freed_memory()
torch.manual_seed(0)
network = MNISTCNN()
optimizer = torch.optim.Adam(network.parameters())
images, labels = torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,))

def step():
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(network(images), labels).backward()
    optimizer.step()

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

for _ in range(3):
    step()
per_step = []
for _ in range(20):
    before = faults()
    step()
    per_step.append(faults() - before)
# The median: now and then one step grows the heap once (a few thousand faults), which a mean would count as if
# every step did.
print(statistics.median(per_step))
"""


# glibc's thresholds, read from the environment at start-up: blocks of a megabyte or more are mapped and unmapped one
# by one, and the heap's top goes back to the system as soon as anything is free there. glibc's default does that to
# a step's buffers in most processes but not all (its thresholds slide with what was freed; 5 of 54 default processes
# here did not fault), so the test sets the behaviour rather than count on it.
GIVES_BACK = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20), "MALLOC_TRIM_THRESHOLD_": "0"}


def page_faults_per_step(mode: str) -> float:
    """The median number of minor page faults of a training step on the CPU, in a fresh process whose malloc gives
    freed memory back to the system at once, unless ``mode`` is "keep"."""
    environment = dict(os.environ, **GIVES_BACK)
    done = subprocess.run(
        [sys.executable, "-c", STEPS, mode], capture_output=True, text=True, check=True, env=environment
    )
    return float(done.stdout)


@pytest.mark.subprocess
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_training_steps_stop_faulting_in_the_memory_they_freed():
    given_back, kept = page_faults_per_step("give back"), page_faults_per_step("keep")
    # Memory handed back to the system is faulted in again, page by page, by the next step; kept memory is reused.
    assert given_back > 1000 and kept < 0.05 * given_back, (given_back, kept)


@pytest.mark.subprocess
def test_the_cli_exempts_the_imported_libraries_from_garbage_collection(small_mnist, tmp_path):
    code = (
        "import gc, sys\n"
        "from lightning_app.cli.lightning_cli import MNISTCLI\n"
        "assert gc.get_freeze_count() == 0\n"
        "MNISTCLI(args=sys.argv[1:])\n"
        "print(gc.get_freeze_count())\n"
    )
    args = fit_options(small_mnist, tmp_path)
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) > 100_000  # torch's and Lightning's objects, out of the collector's walks
