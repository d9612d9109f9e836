"""The run's figures (PNG files and TensorBoard images), `report` redrawing them, and `evaluate` on a checkpoint."""

import shutil
import struct
import time

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_app import evaluate, fit, report
from lightning_app.model.loading import read_checkpoint
from lightning_app.reports.drawing import FIGURES, PAYLOAD, curves_figure


def png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def test_fit_writes_five_readable_pngs_and_the_same_images_to_tensorboard(trained_run):
    for name in FIGURES:
        width, height = png_size(trained_run.run_dir / f"{name}.png")
        assert 500 <= width <= 2000 and 350 <= height <= 2000, (name, width, height)
    events = EventAccumulator(str(trained_run.run_dir))
    events.Reload()
    assert sorted(events.Tags()["images"]) == sorted(f"write-up/{name}" for name in FIGURES)


def test_curves_plot_the_figures_of_each_epoch(trained_run):
    history = report.history_of(read_checkpoint(trained_run.run_dir / "checkpoints" / "last.ckpt"))
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[-1]["test/acc"] == pytest.approx(trained_run.result["final_test_acc"])
    lines = {line.get_label(): line for line in curves_figure(history, "acc").axes[0].lines}
    assert sorted(lines) == ["test", "training", "validation"]
    assert list(lines["validation"].get_xdata()) == [1, 2, 3]
    assert list(lines["validation"].get_ydata()) == pytest.approx([row["val/acc"] for row in history])
    assert curves_figure(history, "acc").axes[0].yaxis.get_major_formatter()(0.99, 0) == "99.0%"


def test_report_redraws_an_earlier_run(trained_run, tmp_path):
    run_dir = shutil.copytree(trained_run.run_dir, tmp_path / "run")
    for name in FIGURES:
        (run_dir / f"{name}.png").unlink()
    paths = report.main([str(run_dir)])
    assert sorted(p.name for p in paths) == sorted(f"{name}.png" for name in FIGURES)
    assert all(p.is_file() for p in paths)


def test_report_of_a_folder_that_is_not_a_run_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert "holds no checkpoint" in capsys.readouterr().err


def test_evaluate_reproduces_the_test_accuracy_fit_reported(trained_run):
    result, common = trained_run.result, trained_run.args
    evaluated = evaluate.main([*common, f"--ckpt_path={result['best_ckpt']}"])
    assert evaluated["test_acc"] == pytest.approx(result["best_test_acc"], abs=1e-6)
    assert evaluated["test_loss"] == pytest.approx(result["best_test_loss"], rel=1e-5)
    assert len(evaluated["class_acc"]) == 10 and min(evaluated["class_acc"]) > 0.5
    by_name = evaluate.main([*common, "--ckpt_path=best"])
    assert by_name["test_acc"] == pytest.approx(result["best_test_acc"], abs=1e-6)
    assert evaluate.main([*common, "--ckpt_path=last"])["test_acc"] == pytest.approx(result["final_test_acc"], abs=1e-6)
    assert sorted(p.name for p in trained_run.run_dir.parent.iterdir()) == ["version_0"]  # no new run folder


def test_figures_drawn_in_the_background_appear_without_keeping_the_command_waiting(fit_args, tmp_path):
    fit.main([*fit_args("--trainer.max_epochs=1"), "--figures.background=true"])
    run = tmp_path / "logs" / "mnist" / "version_0"
    deadline = time.monotonic() + 60
    while (run / PAYLOAD).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not (run / PAYLOAD).exists(), "the drawing process did not finish"
    for name in FIGURES:
        png_size(run / f"{name}.png")
    events = EventAccumulator(str(run))
    events.Reload()
    assert sorted(events.Tags()["images"]) == sorted(f"write-up/{name}" for name in FIGURES)
