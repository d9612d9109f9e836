"""Search hyperparameters with Optuna: ``python -m lightning_app.tune --config configs/fast.yaml --search
configs/search/fast.yaml --n_trials 20``.

Each trial is an ordinary run folder, ``<dir>/<study>/trial_N`` (TensorBoard's HParams tab compares them). The study
lives in a database: SQLite beside the run folders by default, or any database SQLAlchemy reaches
(``--storage postgresql://user@host/db``, the password from the environment variable LIGHTNING_APP_STORAGE_PASSWORD),
so a killed search continues with the same command, and any number of processes or machines work on one study.
Trials are judged by validation only: the test set is never read during a search.
"""

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from lightning_app.errors import UserError, report_user_errors
from lightning_app.search.objective import Objective
from lightning_app.search.space import load
from lightning_app.search.storage import masked, open_storage, storage_problem, with_password
from lightning_app.search.summary import progress, summarize
from lightning_app.training.graceful_stop import TrainingInterrupted


def parse(args: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The search's own options, and the rest for fit."""
    parser = argparse.ArgumentParser(
        prog="python -m lightning_app.tune",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Every other option is fit's (--config, --data.data_dir, --trainer.*): each trial trains with them.",
    )
    parser.add_argument("--search", required=True, type=Path, help="the search space, a YAML file (configs/search/)")
    parser.add_argument("--n_trials", type=int, default=20, help="trials the study should have in all (done or pruned)")
    parser.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    parser.add_argument("--study_name", default="search", help="the study's name, and its folder's under --dir")
    parser.add_argument("--dir", type=Path, default=Path("logs") / "tune", help="where studies keep their folders")
    parser.add_argument("--storage", help="SQLAlchemy URL of the study's database (default: SQLite in its folder)")
    parser.add_argument(
        "--objective",
        choices=("val_acc", "time_to_target"),
        default="val_acc",
        help="maximise the final validation accuracy, or minimise the training time to reach --target on validation",
    )
    parser.add_argument("--target", type=float, default=0.99, help="validation accuracy that time_to_target aims for")
    parser.add_argument("--pruning_startup_trials", type=int, default=3, help="trials finished before any is pruned")
    parser.add_argument("--seed", type=int, default=None, help="the sampler's seed, for a repeatable search")
    return parser.parse_known_args(args)


def fit_options(fit_args: list[str]) -> tuple[set[str], dict]:
    """The options fit accepts with these arguments (``model.network.hidden_units`` ...), and its resolved config,
    from fit's own command line."""
    from lightning_app.cli.lightning_cli import MNISTCLI

    config = MNISTCLI(args=fit_args, trainer={"logger": False}, save_config_callback=None).config.as_dict()
    known: set[str] = set()

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "init_args":
                    walk(prefix, value)
                elif key != "class_path":
                    walk(f"{prefix}.{key}" if prefix else key, value)
        known.add(prefix)

    walk("", config)
    return known - {""}, config


@report_user_errors
def main(args: list[str] | None = None) -> Any:
    """Run (or continue) a search; print the best trials, write the best configuration and the study's plots."""
    options, fit_args = parse(sys.argv[1:] if args is None else args)
    if options.n_trials < 1:
        raise UserError(f"--n_trials must be at least 1 (got {options.n_trials}).")
    known, config = fit_options(fit_args)
    try:
        parameters = load(options.search, known)
    except ValueError as err:
        raise UserError(f"{err} See configs/search/fast.yaml for the form.") from None

    import optuna

    folder = options.dir / options.study_name
    folder.mkdir(parents=True, exist_ok=True)
    url = with_password(options.storage or f"sqlite:///{(folder / 'study.db').resolve()}")
    try:
        storage = open_storage(url)
        direction = "maximize" if options.objective == "val_acc" else "minimize"
        study = optuna.create_study(
            study_name=options.study_name,
            storage=storage,
            direction=direction,
            load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=options.seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=options.pruning_startup_trials)
            if options.objective == "val_acc"
            else optuna.pruners.NopPruner(),
        )
    except (ImportError, ValueError, RuntimeError, OSError) as err:
        raise UserError(storage_problem(url, err)) from None
    except Exception as err:  # SQLAlchemy's errors: an unreachable server, a refused login, a missing folder
        if type(err).__module__.split(".")[0] != "sqlalchemy":
            raise
        raise UserError(storage_problem(url, err)) from None
    if study.direction.name.lower() != direction:
        raise UserError(
            f"Study {options.study_name} in {masked(url)} {study.direction.name.lower()}s, but --objective "
            f"{options.objective} asks to {direction}. Use another --study_name or the study's own objective."
        )
    print(f"study {options.study_name} in {masked(url)}: {len(study.trials)} trials so far, run folders in {folder}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress line below says what Optuna would
    for handler in logging.getLogger("optuna").handlers:
        handler.addFilter(quiet_interruptions)
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    callbacks = [optuna.study.MaxTrialsCallback(options.n_trials, states=states), progress]
    stopped = None
    objective = Objective(options, fit_args, parameters, folder)
    objective.study = study
    # SIGTERM outside training ends the search once the trial in hand is recorded; in training, fit's graceful stop.
    previous = signal.signal(signal.SIGTERM, objective.on_signal) if is_main_thread() else None
    try:
        if sum(t.state in states for t in study.get_trials(deepcopy=False)) < options.n_trials:
            study.optimize(objective, timeout=options.timeout, callbacks=callbacks)
    except KeyboardInterrupt:
        stopped = signal.SIGINT
    except TrainingInterrupted as stop:  # fit's graceful stop on Ctrl-C or SIGTERM ends the search too
        stopped = stop.signum
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    stopped = stopped or objective.stopped
    summarize(study, folder, config)
    if stopped is not None:
        print(f"Search stopped by {signal.Signals(stopped).name}; the same command continues it.", file=sys.stderr)
        raise SystemExit(128 + stopped)
    return study


def quiet_interruptions(record: logging.LogRecord) -> bool:
    """Leave out Optuna's report, traceback and all, of a trial cut short by Ctrl-C or SIGTERM: the search says so."""
    error = record.exc_info[1] if record.exc_info else None
    return not isinstance(error, (KeyboardInterrupt, TrainingInterrupted, UserError))


def is_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    main()
