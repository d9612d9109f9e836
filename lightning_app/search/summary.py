"""What a search reports: a line per trial, the best trials, the best configuration as YAML, the study's plots."""

import contextlib
import math
import warnings
from pathlib import Path
from typing import Any

import yaml

from lightning_app.training import run_folder

TOP = 5


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
    config_file = folder / f"trial_{best.number}" / run_folder.CONFIG if best else None
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
        from lightning_app.reports.drawing import pyplot

        pyplot()  # files only
        from optuna.visualization import matplotlib as optuna_plots

        plots["optimization_history"] = optuna_plots.plot_optimization_history(study)
        if len(done) > 1 and best and best.params:
            with contextlib.suppress(RuntimeError, ValueError):  # too few distinct trials to rank the settings
                plots["param_importances"] = optuna_plots.plot_param_importances(study)
    for name, axes in plots.items():
        axes.figure.savefig(folder / f"{name}.png", dpi=100, bbox_inches="tight")
        print(f"plot: {folder / f'{name}.png'}")
