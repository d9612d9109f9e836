"""Search hyperparameters with Optuna: ``python -m lightning_app.tune --config configs/fast.yaml --search
configs/search/fast.yaml --n_trials 20``.

Each trial is an ordinary run folder, ``<dir>/<study>/trial_N`` (TensorBoard's HParams tab compares them). The study
lives in a database: SQLite beside the run folders by default, or any database SQLAlchemy reaches
(``--storage postgresql://user@host/db``, the password from the environment variable LIGHTNING_APP_STORAGE_PASSWORD),
so a killed search continues with the same command, and any number of processes or machines work on one study.
Trials are judged by validation only: the test set is never read during a search.
"""

import argparse
import contextlib
import io
import logging
import math
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import yaml

from lightning_app import runs
from lightning_app.errors import UserError, report_user_errors
from lightning_app.resume import GracefulStop, TrainingInterrupted
from lightning_app.search_space import Parameter, load

PASSWORD_VARIABLE = "LIGHTNING_APP_STORAGE_PASSWORD"
HEARTBEAT_SECONDS = 10  # a trial silent for twice this is a crashed one: the next command retries it
TOP = 5
STORAGE_ATTEMPTS = 5  # tries to open a study whose tables another command is creating at the same moment


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
    """The options fit accepts with these arguments (``model.network.hidden_units`` ...), and its resolved config."""
    from lightning_app.fit import main as fit

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.suppress(SystemExit):
        fit([*fit_args, "--print_config"])
    config = yaml.safe_load(printed.getvalue())
    if not isinstance(config, dict):
        raise UserError("fit's options for the search are not valid; run fit with them alone to see why.")
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


def with_password(url: str) -> str:
    """The storage URL, with the password from LIGHTNING_APP_STORAGE_PASSWORD when it names none."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    password = os.environ.get(PASSWORD_VARIABLE)
    if password and parsed.password is None and parsed.username:
        parsed = parsed.set(password=password)
    return parsed.render_as_string(hide_password=False)


def masked(url: str) -> str:
    """A storage URL safe to show: its password as ***."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: show its scheme only
        return url.split("://")[0] + "://***"


def open_storage(url: str):
    """Optuna's storage in the database at ``url``, with heartbeats so that a killed process's trial is retried."""
    import optuna
    from sqlalchemy.exc import IntegrityError, SQLAlchemyError

    for attempt in range(STORAGE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None,
                    heartbeat_interval=HEARTBEAT_SECONDS,
                    grace_period=2 * HEARTBEAT_SECONDS,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
                )
        except SQLAlchemyError as err:
            # Two commands starting a new study at once both create its tables: the later one fails with "table ...
            # already exists", or on the schema's version row ("UNIQUE constraint failed: alembic_version"), and
            # finds them complete a moment later.
            racing = isinstance(err, IntegrityError) or "already exists" in str(err)
            if not racing or attempt == STORAGE_ATTEMPTS - 1:
                raise
            time.sleep(1.0)


class Objective:
    """One trial: fit with the sampled settings into its own run folder; return its validation figure."""

    def __init__(self, options: argparse.Namespace, fit_args: list[str], parameters: list[Parameter], folder: Path):
        self.options = options
        self.fit_args = fit_args
        self.parameters = parameters
        self.folder = folder
        self.stopped: int | None = None  # the signal that ends the search, once one has arrived
        self.study: Any = None

    def on_signal(self, signum: int, frame: Any) -> None:
        """SIGTERM outside training: finish what is being done, then end the search (only flags are set here)."""
        self.stopped = signum
        if self.study is not None:
            self.study.stop()

    def __call__(self, trial: Any) -> float:
        import optuna
        from pytorch_lightning.utilities.exceptions import SIGTERMException

        from lightning_app.console import EpochSummary
        from lightning_app.fit import FitCLI
        from lightning_app.pruning import OptunaPruning

        settings = [parameter.flag(parameter.suggest(trial)) for parameter in self.parameters]
        run = [
            f"--trainer.logger.init_args.save_dir={self.folder}",
            "--trainer.logger.init_args.name=",
            f"--trainer.logger.init_args.version=trial_{trial.number}",
            "--data.test_every_epoch=false",  # the test set is never read during a search
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
        ]
        try:
            cli = FitCLI(args=[*self.fit_args, *settings, *run])
        except UserError as err:  # a combination fit refuses (a kernel too large, say): this trial fails alone
            raise optuna.TrialPruned(f"fit refused these settings: {err}") from None
        if self.options.objective == "val_acc":
            cli.trainer.callbacks.append(OptunaPruning(trial, "val/acc"))
        if self.stopped is not None:  # the signal came while this trial was being set up
            raise TrainingInterrupted(self.stopped, None, 0)
        try:
            cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        except SIGTERMException:  # Lightning's own stop, for a SIGTERM in its sanity check or a validation
            raise TrainingInterrupted(signal.SIGTERM, None, 0) from None
        finally:
            # A signal that fit received but did not stop on (it came during the final validation, or the trial was
            # pruned first) still ends the search once this trial is recorded.
            graceful = next(c for c in cli.trainer.callbacks if isinstance(c, GracefulStop))
            if graceful.received is not None:
                self.stopped = graceful.received
                trial.study.stop()
        if "val/acc" not in cli.trainer.callback_metrics:
            raise optuna.TrialPruned("no validation ran (check --trainer.limit_val_batches)")
        accuracy = float(cli.trainer.callback_metrics["val/acc"])
        seconds = next(c for c in cli.trainer.callbacks if isinstance(c, EpochSummary)).training_seconds
        trial.set_user_attr("val_acc", accuracy)
        trial.set_user_attr("training_seconds", seconds)
        if self.options.objective == "val_acc":
            return accuracy
        # Optuna's constrained optimisation: a trial short of the target is infeasible, so it never ranks above one
        # that reached it however fast it was, and the sampler learns where the target is reached.
        trial.set_constraint("target", self.options.target - accuracy)
        return seconds


def progress(study: Any, trial: Any) -> None:
    """One line per finished trial."""
    settings = ", ".join(f"{key.split('.')[-1]}={format_value(value)}" for key, value in trial.params.items())
    if trial.state.name == "COMPLETE":
        accuracy, seconds = trial.user_attrs.get("val_acc", math.nan), trial.user_attrs.get("training_seconds", 0.0)
        best = best_trial(study)
        print(
            f"trial {trial.number}: val acc {accuracy:.2%} in {seconds:.1f} s of training"
            f"{'' if feasible(trial) else ' (short of the target)'}; best so far "
            f"{f'trial {best.number} ({best.value:.4g})' if best else 'none'}  {settings}",
            flush=True,
        )
    else:
        print(f"trial {trial.number}: {trial.state.name.lower()}  {settings}", flush=True)


def feasible(trial: Any) -> bool:
    """Whether a trial met its constraints (for time_to_target: reached the target on validation)."""
    return all(value <= 0 for value in trial.constraints.values())


def best_trial(study: Any) -> Any:
    """The study's best trial that met its constraints, or None while there is none."""
    try:
        return study.best_trial
    except ValueError:  # no trial completed, or none reached the target
        return None


def format_value(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def summarize(study: Any, folder: Path, fit_config_defaults: dict) -> None:
    """Print the best trials, write the best configuration as YAML and the study's plots into ``folder``."""
    import optuna

    done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    counts = {
        state: sum(t.state.name == state for t in study.get_trials(deepcopy=False))
        for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")
    }
    print(
        f"study {study.study_name}: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} "
        f"failed, {counts['RUNNING']} running"
    )
    if not done:
        return
    sign = -1 if study.direction.name == "MAXIMIZE" else 1
    ranked = sorted(done, key=lambda t: (not feasible(t), sign * t.value))[:TOP]
    keys = list(ranked[0].params)
    rows = [["trial", "value", "val acc", "train s", *(key.split(".")[-1] for key in keys)]]
    for trial in ranked:
        rows.append(
            [
                str(trial.number),
                f"{trial.value:.4g}",
                f"{trial.user_attrs.get('val_acc', math.nan):.2%}{'' if feasible(trial) else ' (short)'}",
                f"{trial.user_attrs.get('training_seconds', math.nan):.1f}",
                *(format_value(trial.params.get(key)) for key in keys),
            ]
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    print(f"the {len(ranked)} best trials:")
    for row in rows:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))
    best = best_trial(study)
    if best is None:
        print(
            "No trial reached the target on validation, so no best.yaml was written: lower --target, or widen the "
            "search space (more epochs, wider networks)."
        )
    config_file = folder / f"trial_{best.number}" / runs.CONFIG if best else None
    if config_file and config_file.is_file():
        config = yaml.safe_load(config_file.read_text())
        # What fit writes by default, so that `fit --config best.yaml` makes an ordinary run folder of its own.
        config["trainer"]["logger"] = fit_config_defaults["trainer"]["logger"]
        for key in ("enable_progress_bar", "enable_model_summary"):
            config["trainer"][key] = fit_config_defaults["trainer"][key]
        config["data"]["test_every_epoch"] = fit_config_defaults["data"]["test_every_epoch"]
        best_yaml = folder / "best.yaml"
        header = (
            f"# The best trial ({best.number}) of study {study.study_name}: value {best.value:.6g}, "
            f"validation accuracy {best.user_attrs.get('val_acc', math.nan):.4%}.\n"
            f"# python -m lightning_app.fit --config {best_yaml}\n"
        )
        best_yaml.write_text(header + yaml.safe_dump(config, sort_keys=False))
        print(f"best configuration: {best_yaml}")
    plots = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        from lightning_app.plots import pyplot

        pyplot()  # files only
        from optuna.visualization import matplotlib as optuna_plots

        plots["optimization_history"] = optuna_plots.plot_optimization_history(study)
        if len(done) > 1 and best and best.params:
            with contextlib.suppress(RuntimeError, ValueError):  # too few distinct trials to rank the settings
                plots["param_importances"] = optuna_plots.plot_param_importances(study)
    for name, axes in plots.items():
        axes.figure.savefig(folder / f"{name}.png", dpi=100, bbox_inches="tight")
        print(f"plot: {folder / f'{name}.png'}")


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
    return not isinstance(error, (KeyboardInterrupt, TrainingInterrupted))


def is_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def storage_problem(url: str, err: BaseException) -> str:
    """A one-paragraph explanation of why the study's database cannot be used."""
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    first = first.replace(url, masked(url))
    return (
        f"Cannot open the study's database {masked(url)} ({type(err).__name__}: {first[:300]}). Check that the "
        f"server is running and reachable, the database exists, its driver is installed (psycopg2 for PostgreSQL, "
        f"PyMySQL for MySQL), and the password is in {PASSWORD_VARIABLE}; or leave --storage out for SQLite in "
        f"the study's folder."
    )


if __name__ == "__main__":
    main()
