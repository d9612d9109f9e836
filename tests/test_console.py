"""What a person sees: the console of a real run, and the figures opened in a window on request."""

import os
import time

import pytest

from lightning_app import report
from lightning_app.fit import main

from conftest import run_module

NOISE = [
    "Tip:",  # Lightning's advertisement for a logging service
    "litlogger",
    "LeafSpec",  # a deprecation warning from Lightning's own code
    "is deprecated",
    "not supported by the model summary",
    "MeanMetric",  # metric objects as rows of the model summary
    "MulticlassAccuracy",
    "Traceback",
]


@pytest.mark.subprocess
def test_a_default_runs_console_shows_progress_summary_lines_and_figures_only(small_mnist, tmp_path):
    done = run_module(
        "lightning_app.fit",
        [
            f"--data.data_dir={small_mnist}",
            "--data.val_size=500",
            "--trainer.max_epochs=2",
            f"--trainer.logger.init_args.save_dir={tmp_path / 'logs'}",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    console = done.stdout + done.stderr
    for noise in NOISE:
        assert noise not in console, noise
    assert "| network | MNISTCNN | 317 K" in console  # the model summary: the network, nothing else
    # The progress bar counts epochs as the epoch lines do, without the logger's run number.
    assert "Epoch 1/2: 100%" in console and "Epoch 2/2: 100%" in console and "v_num" not in console
    lines = console.replace("\r", "\n").splitlines()
    assert [line.split(" | ")[0] for line in lines if line.startswith("epoch ")] == ["epoch 1/2", "epoch 2/2"]
    assert any(line.startswith("Final model: test accuracy") for line in lines)
    assert any(line.startswith("Figures: ") for line in lines)


def fake_viewer(folder, monkeypatch):
    """Put an `xdg-open` on PATH that records what it was asked to open."""
    opened = folder / "opened.txt"
    viewer = folder / "bin" / "xdg-open"
    viewer.parent.mkdir()
    viewer.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    viewer.chmod(0o755)
    monkeypatch.setenv("PATH", f"{viewer.parent}{os.pathsep}{os.environ['PATH']}")
    return opened


def wait_for_lines(path, count: int, seconds: float = 10) -> list[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.is_file() and len(path.read_text().splitlines()) >= count:
            break
        time.sleep(0.1)
    return path.read_text().splitlines() if path.is_file() else []


def test_show_figures_opens_the_five_pngs_in_the_image_viewer(fit_args, tmp_path, monkeypatch, capsys):
    opened = fake_viewer(tmp_path, monkeypatch)
    monkeypatch.setenv("DISPLAY", ":0")
    main(fit_args("--trainer.max_epochs=1", "--figures.show=true"))
    assert "Opened the 5 figures" in capsys.readouterr().out
    assert sorted(os.path.basename(line) for line in wait_for_lines(opened, 5)) == sorted(
        f"{name}.png"
        for name in ("accuracy_curves", "confident_mistakes", "confusion_matrix", "loss_curves", "test_predictions")
    )


def test_without_a_display_fit_and_report_say_so_and_end_well(trained_run, tmp_path, monkeypatch, capsys):
    opened = fake_viewer(tmp_path, monkeypatch)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    import shutil

    run = shutil.copytree(trained_run.run_dir, tmp_path / "run")
    report.main([str(run), "--show"])
    assert f"No display here ($DISPLAY is not set), so the figures are not shown; they are in {run}/." in (
        capsys.readouterr().out
    )
    assert not opened.exists()
