"""Train the members of an ensemble and evaluate them together: ``python -m lightning_app.ensemble``.

``python -m lightning_app.ensemble --members 5 --config configs/best.yaml`` trains the members (the same config with
seeds 0 to 4, each an ordinary run folder ``<dir>/member_K``; members already trained are kept) and evaluates the
ensemble of their final models (``lightning_app.model.ensemble.Ensemble``) on the validation and test sets.
Nothing is chosen by test accuracy.
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
from lightning_app.training import run_folder
from lightning_app.training.tensorboard_logger import HParamsTensorBoardLogger


@report_user_errors
def main(args: list[str] | None = None) -> dict[str, float]:
    """Train the members of an ensemble (or keep those already trained) and evaluate the ensemble.

    Takes ``--members N``, ``--dir FOLDER`` (default ``logs/ensemble``) and any options of ``python -m
    lightning_app.fit`` (a config, the data folder, trainer flags). Member K is trained with ``--seed_everything K``
    into ``FOLDER/member_K``; a member whose run was interrupted continues from its ``last.ckpt``.
    """
    parser = argparse.ArgumentParser(
        prog="python -m lightning_app.ensemble",
        description="Train the members of an ensemble (seeds 0, 1, ...) and evaluate them together.",
        epilog="Every other option is fit's (python -m lightning_app.fit --help): each member trains with them.",
    )
    parser.add_argument("--members", type=int, default=5, help="how many members (default 5)")
    parser.add_argument("--dir", type=Path, default=Path("logs") / "ensemble", help="where the members' runs go")
    options, rest = parser.parse_known_args(sys.argv[1:] if args is None else args)
    if options.members < 1:
        raise UserError(f"--members must be at least 1 (got {options.members}).")
    checkpoints = []
    for member in range(options.members):
        folder = options.dir / f"member_{member}"
        last = folder / run_folder.CHECKPOINTS / f"{run_folder.LAST}{run_folder.EXTENSION}"
        if not (folder / "done").is_file():
            print(f"member {member + 1} of {options.members} (seed {member}) in {folder}", flush=True)
            logger = HParamsTensorBoardLogger(save_dir=str(options.dir), name="", version=folder.name)
            resume = ["--ckpt_path", str(last)] if last.is_file() else []
            # A member stopped after its last epoch, before it was marked done, has nothing left to train.
            with contextlib.suppress(NothingToTrain):
                fit.train(MNISTCLI(args=[*rest, f"--seed_everything={member}", *resume], trainer={"logger": logger}))
            if last.is_file():
                (folder / "done").touch()
        checkpoints.append(str(last))
    return evaluate.main([*without_figures(rest), f"--ckpt_path={json.dumps(checkpoints)}"])


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
