"""Hyperparameter search with Optuna on real digits: pruning, a study that survives kill -9, several processes on one
study, a best configuration that reproduces, clear errors, and no password in any file."""

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml

from lightning_app import tune
from lightning_app.cli.lightning_cli import MNISTCLI
from lightning_app.data import datamodule
from lightning_app.search import storage as study_storage

from conftest import TESTS, fit_options

SPACE = """
model.optimizer.lr: {low: 0.00001, high: 0.01, log: true}
model.network.hidden_units: {choices: [32, 64]}
"""
QUICK = [
    "--trainer.max_epochs=1",
    "--trainer.val_check_interval=0.5",
    "--trainer.limit_train_batches=12",
    "--model.scheduler=null",
]


@pytest.fixture
def space(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(SPACE)
    return path


def search_args(small_mnist, tmp_path, space, *extra: str) -> list[str]:
    fit_args = [option for option in fit_options(small_mnist, tmp_path / "unused") if "logger" not in option]
    return [
        "--search",
        str(space),
        "--dir",
        str(tmp_path / "tune"),
        "--seed",
        "0",
        "--pruning_startup_trials",
        "1",
        *fit_args,
        *QUICK,
        *extra,
    ]


def finished(database) -> list[tuple[int, str]]:
    """The study's trials and their states; none while the search is still creating its database."""
    if not database.is_file():
        return []
    try:
        with sqlite3.connect(database) as connection:
            return connection.execute("SELECT number, state FROM trials ORDER BY number").fetchall()
    except sqlite3.OperationalError:  # the tables are not there yet
        return []


def wait_for_trials(database, count: int, process: subprocess.Popen) -> None:
    """Wait until the search running in ``process`` has finished ``count`` trials (or has ended)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        if sum(state in ("COMPLETE", "PRUNED") for _, state in finished(database)) >= count:
            return
        time.sleep(0.2)


def test_a_search_prunes_writes_the_best_config_and_plots_and_never_reads_the_test_set(
    small_mnist, tmp_path, space, monkeypatch, capsys
):
    read = datamodule.load_split

    def training_split_only(data_dir, train):
        assert train, "a search read the test set"
        return read(data_dir, train)

    monkeypatch.setattr(datamodule, "load_split", training_split_only)
    study = tune.main(search_args(small_mnist, tmp_path, space, "--n_trials", "4"))
    states = [trial.state.name for trial in study.trials]
    assert len(states) == 4 and "PRUNED" in states and "COMPLETE" in states
    folder = tmp_path / "tune" / "search"
    for trial in study.trials:
        assert (folder / f"trial_{trial.number}" / "config.yaml").is_file()  # each trial an ordinary run folder
    for name in ("best.yaml", "optimization_history.png", "param_importances.png"):
        assert (folder / name).is_file(), name
    out = capsys.readouterr().out
    assert out.count("trial ") >= 4 and "the " in out and "best trials" in out

    # The best configuration reproduces its trial's validation accuracy with plain fit.
    monkeypatch.setattr(datamodule, "load_split", read)
    best = yaml.safe_load((folder / "best.yaml").read_text())
    assert best["trainer"]["logger"]["init_args"].get("version") is None
    assert best["data"]["test_every_epoch"] is True  # the search's own setting for its trials is not kept
    cli = MNISTCLI(args=["--config", str(folder / "best.yaml"), f"--trainer.logger.init_args.save_dir={tmp_path}"])
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert float(cli.trainer.callback_metrics["val/acc"]) == pytest.approx(study.best_trial.user_attrs["val_acc"])


def test_time_to_target_ranks_only_trials_that_reached_the_target_on_validation(small_mnist, tmp_path, space, capsys):
    target = ["--objective", "time_to_target", "--n_trials", "3"]
    study = tune.main(search_args(small_mnist, tmp_path, space, *target, "--target", "1.01", "--study_name", "out"))
    assert all(trial.state.name == "COMPLETE" for trial in study.trials)
    out = capsys.readouterr().out
    assert "No trial reached the target on validation" in out and out.count("(short of the target)") == 3
    assert not (tmp_path / "tune" / "out" / "best.yaml").exists()

    accuracies = [trial.user_attrs["val_acc"] for trial in study.trials]
    middle = sorted(accuracies)[1]  # the trials below it fall short of this target, however fast they trained
    study = tune.main(search_args(small_mnist, tmp_path, space, *target, "--target", str(middle), "--seed", "0"))
    reached = [trial for trial in study.trials if trial.user_attrs["val_acc"] >= middle]
    assert study.best_trial in reached
    assert study.best_trial.value == min(trial.user_attrs["training_seconds"] for trial in reached)
    assert f"# The best trial ({study.best_trial.number})" in (tmp_path / "tune" / "search" / "best.yaml").read_text()


@pytest.mark.subprocess
def test_a_search_killed_with_sigkill_continues_with_the_same_command(small_mnist, tmp_path, space):
    command = [
        sys.executable,
        "-m",
        "lightning_app.tune",
        *search_args(small_mnist, tmp_path, space, "--n_trials", "5"),
    ]
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    database = tmp_path / "tune" / "search" / "study.db"
    wait_for_trials(database, 2, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = [(number, state) for number, state in finished(database) if state in ("COMPLETE", "PRUNED")]
    assert len(before) >= 2

    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    after = finished(database)
    assert all(trial in after for trial in before)  # the finished trials are kept as they were
    assert sum(state in ("COMPLETE", "PRUNED") for _, state in after) == 5


@pytest.mark.subprocess
@pytest.mark.parametrize("after_trials", [1, 2])
def test_sigterm_ends_a_search_with_its_summary_whatever_it_was_doing(small_mnist, tmp_path, space, after_trials):
    command = [
        sys.executable,
        "-m",
        "lightning_app.tune",
        *search_args(small_mnist, tmp_path, space, "--n_trials", "50"),
    ]
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    database = tmp_path / "tune" / "search" / "study.db"
    wait_for_trials(database, after_trials, process)
    time.sleep(0.5 * after_trials)  # into training, validation or the start of the next trial
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "Search stopped by SIGTERM; the same command continues it." in err and "Traceback" not in err
    assert "best trials" in out and (tmp_path / "tune" / "search" / "best.yaml").is_file()
    assert sum(state in ("COMPLETE", "PRUNED") for _, state in finished(database)) < 50


@pytest.mark.subprocess
def test_two_processes_share_one_study_without_repeating_trials(small_mnist, tmp_path, space):
    command = [
        sys.executable,
        "-m",
        "lightning_app.tune",
        *search_args(small_mnist, tmp_path, space, "--n_trials", "4"),
    ]
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    processes = [
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert all(process.returncode == 0 for process in processes), [err[-2000:] for _, err in outputs]
    trials = finished(tmp_path / "tune" / "search" / "study.db")
    numbers = [number for number, _ in trials]
    assert len(numbers) == len(set(numbers)) and 4 <= sum(s in ("COMPLETE", "PRUNED") for _, s in trials) <= 5
    # Each trial ran once, in one of the two processes.
    ran = [[match.group(1) for match in re.finditer(r"^trial (\d+):", out, re.M)] for out, _ in outputs]
    assert all(ran)  # both processes worked on the study
    assert sorted(ran[0] + ran[1]) == sorted(set(ran[0] + ran[1])) and len(ran[0] + ran[1]) == len(trials)


def test_opening_a_new_study_waits_for_the_command_that_is_creating_its_tables(tmp_path, monkeypatch):
    import optuna
    from sqlalchemy.exc import IntegrityError

    real, calls = optuna.storages.RDBStorage, []

    def racing(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:  # the other command wrote the schema's version row first
            reason = Exception("UNIQUE constraint failed: alembic_version.version_num")
            raise IntegrityError("INSERT INTO alembic_version", {}, reason)
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    monkeypatch.setattr(study_storage.time, "sleep", lambda seconds: None)
    storage = tune.open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    assert len(calls) == 2 and storage.get_all_studies() == []


@pytest.mark.parametrize(
    "space_text, expected",
    [
        ("model.network.hiden_units: {low: 16, high: 64}\n", "model.network.hiden_units is not an option of fit"),
        ("model.optimizer.lr: {low: 0.01, high: 0.001}\n", "empty range"),
        ("data.batch_size: {choices: []}\n", "choices must be a non-empty list"),
    ],
)
def test_a_bad_search_space_is_a_one_paragraph_error(space_text, expected, small_mnist, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(space_text)
    with pytest.raises(SystemExit) as exit_info:
        tune.main(search_args(small_mnist, tmp_path, path))
    assert exit_info.value.code == 2
    [line] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert expected in line and str(path) in line
    assert not (tmp_path / "tune" / "search" / "study.db").exists()


def test_an_unreachable_storage_is_a_one_paragraph_error_with_the_password_masked(small_mnist, tmp_path, space, capsys):
    with pytest.raises(SystemExit) as exit_info:
        tune.main(search_args(small_mnist, tmp_path, space, "--storage", "postgresql://bob:s3cret@127.0.0.1:9/optuna"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Cannot open the study's database postgresql://bob:***@127.0.0.1:9/optuna" in line
    assert "s3cret" not in err


def test_a_password_in_the_storage_url_lands_in_no_file_and_no_console(
    small_mnist, tmp_path, space, monkeypatch, capsys
):
    given = []
    open_storage = tune.open_storage

    def sqlite_instead(url):  # a real study database, standing in for the PostgreSQL server the URL names
        given.append(url)
        return open_storage(f"sqlite:///{tmp_path / 'stand_in.db'}")

    monkeypatch.setattr(tune, "open_storage", sqlite_instead)
    monkeypatch.setenv(study_storage.PASSWORD_VARIABLE, "s3cret")
    tune.main(
        search_args(
            small_mnist, tmp_path, space, "--n_trials", "2", "--storage", "postgresql://bob@db.example.org/optuna"
        )
    )
    assert given == ["postgresql://bob:s3cret@db.example.org/optuna"]  # the driver gets it from the environment
    console = capsys.readouterr()
    assert "s3cret" not in console.out + console.err and "postgresql://bob:***@db.example.org/optuna" in console.out
    written = [path for path in (tmp_path / "tune").rglob("*") if path.is_file()]
    assert written and not [path for path in written if b"s3cret" in path.read_bytes()]
