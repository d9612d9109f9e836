"""A resumed fit and `report` read their checkpoint file once: checks, weights and state all come from that read."""

import builtins
import io
import shutil
from pathlib import Path

import pytest

from lightning_app import fit, report


@pytest.fixture
def count_reads(monkeypatch):
    """Count the times a file is opened for reading, by its resolved path (torch and fsspec open files this way)."""
    reads: dict[Path, int] = {}
    real_open, real_io_open = builtins.open, io.open

    def counting(real):
        def opened(file, mode="r", *args, **kwargs):
            if isinstance(file, (str, Path)) and "r" in mode and "+" not in mode:
                path = Path(file).resolve()
                reads[path] = reads.get(path, 0) + 1
            return real(file, mode, *args, **kwargs)

        return opened

    monkeypatch.setattr(builtins, "open", counting(real_open))
    monkeypatch.setattr(io, "open", counting(real_io_open))
    return reads


def test_a_resumed_fit_reads_its_checkpoint_once(fit_args, tmp_path, count_reads):
    fit.main(fit_args("--trainer.max_epochs=1"))
    last = (tmp_path / "logs" / "mnist" / "version_0" / "checkpoints" / "last.ckpt").resolve()
    count_reads.clear()
    fit.main(fit_args("--trainer.max_epochs=2", "--ckpt_path=last"))
    assert count_reads.get(last) == 1


def test_report_reads_the_checkpoint_once(trained_run, tmp_path, count_reads):
    run = Path(shutil.copytree(trained_run.run_dir, tmp_path / "run"))  # report redraws into the run folder
    last = (run / "checkpoints" / "last.ckpt").resolve()
    count_reads.clear()
    report.main([str(run)])
    assert count_reads.get(last) == 1
