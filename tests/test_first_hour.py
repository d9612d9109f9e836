"""What a newcomer meets first: outputs that exist when fit returns, README's resume, refusals that write nothing."""

import os
import tempfile
import time
from pathlib import Path

import pytest

from lightning_app import fit
from lightning_app.reports.drawing import FIGURES

from conftest import SMALL_VAL, run_module

OFFLINE = dict.fromkeys(("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"), "http://127.0.0.1:9")


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under a folder with its bytes, and every folder (as None): what a command may not change."""
    if not folder.exists():
        return {}
    return {str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None for path in folder.rglob("*")}


def children() -> list[int]:
    """The processes whose parent is this one (Linux's /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if entry.name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from Linux's /proc")
def test_a_scripts_fit_in_a_temporary_folder_has_every_figure_when_main_returns(small_mnist, monkeypatch):
    # A user's own script: fit inside a TemporaryDirectory, which fails to clean up if anything still writes there.
    with tempfile.TemporaryDirectory() as folder:
        monkeypatch.chdir(folder)
        fit.main([f"--data.data_dir={small_mnist}", f"--data.val_size={SMALL_VAL}", "--trainer.max_epochs=1"])
        run = Path(folder) / "logs" / "mnist" / "version_0"
        assert sorted(path.name for path in run.glob("*.png")) == sorted(f"{name}.png" for name in FIGURES)
        assert not list(run.glob(".figures*"))  # the drawing's payload and log are gone: it has finished
        before = tree(run)
        assert not children()  # no process of fit's still runs
        time.sleep(1)
        assert tree(run) == before  # nothing in the run folder changes after fit has returned
        monkeypatch.chdir(os.path.dirname(folder))
    assert before  # and the folder was removed without "Directory not empty"


def test_readmes_resume_command_continues_the_run_with_its_own_settings_offline(small_mnist, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, value in OFFLINE.items():
        monkeypatch.setenv(name, value)
    fit.main([f"--data.data_dir={small_mnist}", f"--data.val_size={SMALL_VAL}", "--trainer.max_epochs=1"])
    resumed = fit.main(["--ckpt_path", "last", "--trainer.max_epochs", "2"])  # no data flags: the run's own
    runs = tmp_path / "logs" / "mnist"
    assert sorted(path.name for path in runs.iterdir()) == ["version_0"] and 0 <= resumed["final_test_acc"] <= 1
    assert not (tmp_path / "data").exists()  # nothing tried to download MNIST into the default folder


@pytest.mark.subprocess
def test_a_refused_resume_leaves_every_file_as_it_was(fit_args, tmp_path):
    fit.main(fit_args("--trainer.max_epochs=1"))
    before = tree(tmp_path / "logs")
    done = run_module("lightning_app.fit", fit_args("--trainer.max_epochs=1", "--ckpt_path=last"), tmp_path)
    assert done.returncode == 2 and "Nothing to train" in done.stderr and "Traceback" not in done.stderr
    assert tree(tmp_path / "logs") == before


@pytest.mark.subprocess
@pytest.mark.parametrize("existing", ["", "data", "data/MNIST", "data/MNIST/raw"])
def test_a_failed_download_leaves_the_tree_as_it_was(tmp_path, existing):
    if existing:
        (tmp_path / existing).mkdir(parents=True)
        (tmp_path / existing / "notes.txt").write_text("mine")
    before = tree(tmp_path)
    done = run_module("lightning_app.fit", ["--data.data_dir", "data"], tmp_path, **OFFLINE)
    assert done.returncode == 2 and "could not download MNIST" in done.stderr and "Traceback" not in done.stderr
    assert tree(tmp_path) == before
