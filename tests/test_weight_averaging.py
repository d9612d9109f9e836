"""Lightning's weight averaging (EMA) in a run: the averaged weights are the ones validated, tested and saved."""

import pytest

from lightning_app import evaluate, fit
from lightning_app.model.loading import read_checkpoint

from conftest import fit_options

EMA = "pytorch_lightning.callbacks.EMAWeightAveraging"


def test_the_best_checkpoint_is_tested_with_the_averaged_weights(small_mnist, fit_args, tmp_path, capsys):
    # The worst validation loss as "best": the first epoch's checkpoint, not the final model.
    ema = f'--trainer.callbacks=[{{"class_path": "{EMA}", "init_args": {{"decay": 0.9}}}}]'
    args = fit_args("--trainer.max_epochs=3", ema, "--checkpoint.monitor=val/loss", "--checkpoint.mode=max")
    result = fit.main(args)
    assert "epoch=00" in result["best_ckpt"]
    checkpoint = read_checkpoint(result["best_ckpt"])
    assert "current_model_state" in checkpoint  # the weights trained, beside the averaged ones in state_dict
    printed = capsys.readouterr().out
    assert "WeightAveraging" not in printed
    again = evaluate.main([*fit_options(small_mnist, tmp_path / "logs"), f"--ckpt_path={result['best_ckpt']}"])
    assert again["test_acc"] == pytest.approx(result["best_test_acc"], abs=1e-6)
    assert result["final_test_acc"] > 0.9  # the averaged weights of the final epoch, on real digits
