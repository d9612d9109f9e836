"""Train the members of an ensemble and evaluate them together: ``python -m lightning_app.ensemble``.

``python -m lightning_app.ensemble --members 5 --config configs/best.yaml`` trains the members (the same config with
seeds 0 to 4, each an ordinary run folder ``<dir>/member_K``; members already trained are kept);
``--configs A.yaml B.yaml ...`` trains one member per config instead (member K with config K and seed K), so that
they differ in network, kernel sizes or augmentation. The members whose mean answer is most accurate on the
validation set are chosen (greedy forward selection), and that ensemble of their final models
(``lightning_app.model.ensemble.Ensemble``) is evaluated on the validation and test sets. Nothing is chosen by test
accuracy.
"""

import argparse
import contextlib
import json
import sys
from pathlib import Path

from lightning_app import evaluate, fit
from lightning_app.cli.checkpoint_choice import NothingToTrain
from lightning_app.cli.lightning_cli import MNISTCLI
from lightning_app.errors import UserError, report_user_errors
from lightning_app.model.ensemble import choose_members
from lightning_app.model.loading import load_classifier
from lightning_app.settings_files import read_mapping
from lightning_app.training import run_folder
from lightning_app.training.tensorboard_logger import HParamsTensorBoardLogger

MOST_MEMBERS = 5  # the most members an ensemble keeps: more cost more at every prediction, and add less


@report_user_errors
def main(args: list[str] | None = None) -> dict[str, float]:
    """Train the members of an ensemble (or keep those already trained), choose them by validation, evaluate them.

    Takes ``--members N`` or ``--configs A.yaml B.yaml ...``, ``--dir FOLDER`` (default ``logs/ensemble``) and any
    options of ``python -m lightning_app.fit`` (a config, the data folder, trainer flags). Member K is trained with
    ``--seed_everything K`` (and config K) into ``FOLDER/member_K``; a member whose run was interrupted continues
    from its ``last.ckpt``. Of the members, at most ``MOST_MEMBERS`` are chosen by validation accuracy.
    """
    parser = argparse.ArgumentParser(
        prog="python -m lightning_app.ensemble",
        description="Train the members of an ensemble (seeds 0, 1, ..., one config or one config each), choose "
        f"up to {MOST_MEMBERS} of them by validation accuracy, and evaluate them together.",
        epilog="Every other option is fit's (python -m lightning_app.fit --help): each member trains with them.",
        allow_abbrev=False,  # fit's --config must not pass for --configs
    )
    parser.add_argument("--members", type=int, default=None, help="how many members of one config (default 5)")
    parser.add_argument(
        "--configs", nargs="+", default=[], metavar="CONFIG", help="one member per config file, in this order"
    )
    parser.add_argument("--dir", type=Path, default=Path("logs") / "ensemble", help="where the members' runs go")
    options, rest = parser.parse_known_args(sys.argv[1:] if args is None else args)
    if options.configs and options.members not in (None, len(options.configs)):
        raise UserError(
            f"--members {options.members} and {len(options.configs)} --configs disagree: --configs trains one member "
            f"per config, so leave --members out."
        )
    count = len(options.configs) or (5 if options.members is None else options.members)
    if count < 1:
        raise UserError(f"--members must be at least 1 (got {count}).")
    for config in options.configs:
        check_config(config)
    checkpoints = []
    for member in range(count):
        folder = options.dir / f"member_{member}"
        last = folder / run_folder.CHECKPOINTS / f"{run_folder.LAST}{run_folder.EXTENSION}"
        config = options.configs[member] if options.configs else ""
        # A member's own config comes first: the options given apply to every member over it.
        own = [f"--config={config}"] if config else []
        done = folder / "done"
        if done.is_file() and done.read_text().strip() != config:
            trained = done.read_text().strip() or "the options of --members"
            raise UserError(
                f"{folder} holds a member trained with {trained}, not {config or 'the options of --members'}: pass "
                f"another --dir for this ensemble."
            )
        if not done.is_file():
            named = f", {config}" if config else ""
            print(f"{folder.name} ({member + 1} of {count}, seed {member}{named}) in {folder}", flush=True)
            logger = HParamsTensorBoardLogger(save_dir=str(options.dir), name="", version=folder.name)
            resume = ["--ckpt_path", str(last)] if last.is_file() else []
            # A member stopped after its last epoch, before it was marked done, has nothing left to train.
            with contextlib.suppress(NothingToTrain):
                fit.train(
                    MNISTCLI(args=[*own, *rest, f"--seed_everything={member}", *resume], trainer={"logger": logger})
                )
            if last.is_file():
                done.write_text(config)
        checkpoints.append(str(last))
    evaluation = without_figures(rest)
    if len(checkpoints) > 1:
        checkpoints = chosen_by_validation(checkpoints, evaluation)
    return evaluate.main([*evaluation, f"--ckpt_path={json.dumps(checkpoints)}"])


def check_config(path: str) -> None:
    """Refuse a member's config that is missing or not a YAML mapping, before any member trains."""
    try:
        read_mapping(path, f"--configs {path}", "a config maps fit's options to values (configs/*.yaml)")
    except ValueError as err:
        raise UserError(str(err)) from None


def chosen_by_validation(checkpoints: list[str], options: list[str]) -> list[str]:
    """The members whose mean answer is most accurate on the validation set; prints each one's figure and the choice.

    Args:
        checkpoints: The members' checkpoints, member 0 first.
        options: fit's options (the data folder and split), which say what the validation set is.
    """
    cli = evaluate.EvaluateCLI(args=[*options, f"--ckpt_path={json.dumps(checkpoints)}"], save_config_callback=None)
    with cli.data_errors_as_flags():
        cli.datamodule.prepare_data()
        cli.datamodule.setup("validate")
    digits = cli.datamodule.val_set
    probabilities = [load_classifier(path).probabilities(digits.images) for path in checkpoints]
    chosen = choose_members(probabilities, digits.labels, most=MOST_MEMBERS)
    for index, member in enumerate(probabilities):
        accuracy = (member.argmax(dim=1) == digits.labels).float().mean().item()
        mark = "chosen" if index in chosen else "left out"
        print(f"member_{index}: validation accuracy {accuracy:.2%}, {mark}", flush=True)
    return [checkpoints[index] for index in chosen]


def without_figures(options: list[str]) -> list[str]:
    """fit's options without those of its figures (``--figures.show true``, ``--figures=FILE``): evaluate draws none."""
    kept, skip = [], False
    for option in options:
        if skip:
            skip = False
            if not option.startswith("--"):
                continue
        if option.startswith("--figures"):
            skip = "=" not in option
            continue
        kept.append(option)
    return kept


if __name__ == "__main__":
    main()
