"""The CLI's memory settings: a CPU training step reuses the memory freed by the step before, and the garbage
collector leaves the imported libraries alone."""

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


def page_faults_per_step(mode: str) -> float:
    """The median number of minor page faults of a training step on the CPU, in a fresh process."""
    done = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, check=True)
    return float(done.stdout)


@pytest.mark.subprocess
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_training_steps_stop_faulting_in_the_memory_they_freed():
    default, kept = page_faults_per_step("default"), page_faults_per_step("keep")
    # By default glibc hands the freed activations back to the system and every step faults them in again.
    assert kept < 0.05 * default, (default, kept)


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
