"""Time the project's training against plain PyTorch loops, configs/fast.yaml against the fastest public recipe, and
the phases of whole commands.

1. Four ways train the project's default network (same model, optimizer, batch size and memory layout) for the
same number of steps, each in a fresh process, interleaved over several repeats:

- ``torchvision``: a plain PyTorch loop over torchvision's MNIST dataset with ToTensor and Normalize in a
  DataLoader (the write-up's way);
- ``in-memory``: a plain PyTorch loop over the project's in-memory uint8 batches, normalised per batch;
- ``lightning``: the project's own ``Trainer`` from ``lightning_app.fit``'s CLI (progress bar, logging and
  checkpoint callbacks included; validation off, as the loops above do none);
- ``lightning-bare``: Lightning's loop alone, the floor of any Lightning project: ``Trainer(barebones=True)``
  (no logger, progress bar or checkpoints) running a ``training_step`` cut down to forward and loss.

2. configs/fast.yaml against benchmarks/recipe.py (tuomaso/train_mnist_fast written in plain PyTorch), seed by seed,
   interleaved, both with glibc's malloc set as the project sets it: test accuracy; the time of the training steps
   (the project's from on_train_start to on_train_end less its evaluation passes, validation and the per-epoch
   test, which are timed apart; the recipe's loop alone); and the whole command, start to exit, each side doing
   what it does (the project also tests its best checkpoint and draws its figures). With fast.yaml's phases.
3. With ``--default_repeats N``: the default run's phases (imports and config, data, training, final test, the rest)
   and its whole command against the time of its epochs.
4. With ``--accuracy CONFIG``: that config trained with seeds 0, 1, ... (``--accuracy_seeds``), one run after another
   (each alone on the machine): the final model's test accuracy, their mean, and each whole command's minutes.
   ``--keep_runs DIR`` keeps their run folders (to reuse as ensemble members, say).

Run it from the repository root with the project installed::

    python benchmarks/benchmark.py --data_dir ../shared/data                        # all of 1 and 2
    python benchmarks/benchmark.py --data_dir ../shared/data --skip_ways --default_repeats 1
    python benchmarks/benchmark.py --data_dir ../shared/data --skip_ways --fast_seeds 0 --accuracy configs/stacked.yaml
"""

import argparse
import contextlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHONPATH = os.environ.get("PYTHONPATH", "")
WAYS = ("torchvision", "in-memory", "lightning", "lightning-bare")
TRAIN_SIZE = 55_000


def plain_loop(batches, parts, steps: int, warmup: int, prepare) -> float:
    """Train for ``warmup + steps`` steps; return the seconds the last ``steps`` took."""
    import torch
    import torch.nn.functional as F

    model, optimizer, _, precision = parts
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)  # in place: the optimizer keeps its parameters
    # The same mixed precision as the Trainer's, when the config asks for it.
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=str(precision).startswith("bf16"))

    def sync() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    model.train()
    done, start = 0, 0.0
    while done < warmup + steps:
        for images, labels in batches():
            if done == warmup:
                start = sync()
            images, labels = prepare(images.to(device, non_blocking=True), labels.to(device, non_blocking=True))
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            done += 1
            if done == warmup + steps:
                break
    return sync() - start


def run_torchvision(data_dir: str, steps: int, warmup: int, config: list[str]) -> tuple[float, int]:
    from torch.utils.data import DataLoader, Subset
    from torchvision import transforms
    from torchvision.datasets import MNIST

    parts = project_parts(data_dir, config)
    # ToTensor gives floats in [0, 1], which the project's module takes and normalises itself.
    transform = transforms.ToTensor()
    dataset = Subset(MNIST(data_dir, train=True, transform=transform), range(TRAIN_SIZE))
    batch_size = parts[2].hparams.batch_size
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    return plain_loop(lambda: loader, parts, steps, warmup, lambda x, y: (x, y)), batch_size


def run_in_memory(data_dir: str, steps: int, warmup: int, config: list[str]) -> tuple[float, int]:
    parts = project_parts(data_dir, config)
    datamodule = parts[2]
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    seconds = plain_loop(lambda: loader, parts, steps, warmup, lambda x, y: (x, y))  # uint8: the module normalises
    return seconds, datamodule.hparams.batch_size


def step_timer(steps: int, warmup: int):
    """A callback that times the training steps after ``warmup``, as ``plain_loop`` does."""
    from pytorch_lightning import Callback

    class StepTimer(Callback):
        def on_train_batch_start(self, trainer, *args) -> None:
            if trainer.global_step == warmup:
                self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, *args) -> None:
            if trainer.global_step == warmup + steps:
                self.seconds = time.perf_counter() - self.start

    return StepTimer()


def run_lightning(data_dir: str, steps: int, warmup: int, config: list[str]) -> tuple[float, int]:
    from lightning_app.cli.lightning_cli import MNISTCLI

    timer = step_timer(steps, warmup)
    with tempfile.TemporaryDirectory() as logs:
        cli = MNISTCLI(
            args=[
                f"--data.data_dir={data_dir}",
                f"--trainer.logger.init_args.save_dir={logs}",
                f"--trainer.max_steps={warmup + steps}",
                "--trainer.limit_val_batches=0",
                "--trainer.enable_model_summary=false",
                *config,
            ],
            callbacks=[timer],
        )
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return timer.seconds, cli.datamodule.hparams.batch_size


def run_lightning_bare(data_dir: str, steps: int, warmup: int, config: list[str]) -> tuple[float, int]:
    import types

    import torch.nn.functional as F
    from pytorch_lightning import Trainer

    model, _, datamodule, precision = project_parts(data_dir, config)
    # The step of the plain loops, no metrics or logging: what remains is the cost of Lightning's loop itself.
    model.training_step = types.MethodType(lambda self, batch, idx: F.cross_entropy(self(batch[0]), batch[1]), model)
    timer = step_timer(steps, warmup)
    trainer = Trainer(
        barebones=True, max_steps=warmup + steps, limit_val_batches=0, precision=precision, devices=1, callbacks=[timer]
    )
    trainer.fit(model, datamodule=datamodule)
    return timer.seconds, datamodule.hparams.batch_size


def project_parts(data_dir: str, config: list[str]):
    """The model, optimizer, data module and precision exactly as ``lightning_app.fit`` would build them."""
    from lightning_app.cli.lightning_cli import MNISTCLI

    # No schedule: the loops time steps, and a schedule sized in steps would need a Trainer to know the run's length.
    cli = MNISTCLI(args=[f"--data.data_dir={data_dir}", *config, "--model.scheduler=null"], save_config_callback=None)
    optimizers = cli.model.configure_optimizers()
    optimizer = optimizers["optimizer"] if isinstance(optimizers, dict) else optimizers  # timing: schedule unused
    return cli.model, optimizer, cli.datamodule, cli.config.trainer.precision


def child(way: str, data_dir: str, steps: int, warmup: int, config: list[str]) -> None:
    """Run one way in this process and print its timing and peak memory as JSON."""
    import torch

    torch.manual_seed(0)
    runner = {
        "torchvision": run_torchvision,
        "in-memory": run_in_memory,
        "lightning": run_lightning,
        "lightning-bare": run_lightning_bare,
    }[way]
    seconds, batch_size = runner(data_dir, steps, warmup, config)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"way": way, "seconds": seconds, "batch_size": batch_size, "peak_mib": peak_mib}
    print("RESULT " + json.dumps(result), flush=True)


def measure(way: str, options, config: list[str]) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        way,
        "--data_dir",
        options.data_dir,
        "--steps",
        str(options.steps),
        "--warmup",
        str(options.warmup),
        *(f"--set={c}" for c in config),
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        sys.exit(f"{way} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def compare_ways(options) -> None:
    runs = {way: [] for way in WAYS}
    for repeat in range(options.repeats):
        for way in WAYS if repeat % 2 == 0 else reversed(WAYS):  # interleaved, alternating order
            runs[way].append(measure(way, options, options.set))
            print(f"  repeat {repeat + 1} {way:14s} {runs[way][-1]['seconds']:.2f} s", flush=True)
    batch = runs[WAYS[0]][0]["batch_size"]  # the config's, the same for every way
    steps_per_epoch = TRAIN_SIZE / batch
    print(
        f"\n{options.steps} steps of batch {batch}, median of {options.repeats} (after {options.warmup} warm-up steps)"
    )
    print(f"{'way':14s} {'s/epoch':>8s} {'samples/s':>10s} {'peak MiB':>9s}")
    medians = {}
    for way in WAYS:
        seconds = statistics.median(run["seconds"] for run in runs[way])
        medians[way] = seconds / options.steps * steps_per_epoch
        peak = max(run["peak_mib"] for run in runs[way])
        print(f"{way:14s} {medians[way]:8.2f} {options.steps * batch / seconds:10.0f} {peak:9.0f}")
    print(f"lightning / torchvision      = {medians['lightning'] / medians['torchvision']:.3f}")
    print(f"lightning / in-memory        = {medians['lightning'] / medians['in-memory']:.3f}")
    print(f"lightning-bare / in-memory   = {medians['lightning-bare'] / medians['in-memory']:.3f}")


def run_fit(options, config: list[str], seed: int, keep_in: str | None = None) -> dict:
    """Run ``python -m lightning_app.fit`` with ``config`` in a fresh process; return its figures and phase times.

    The run folder is kept under ``keep_in`` if given (as ``seed_K``), else removed.
    """
    timer = json.dumps({"class_path": "phases.PhaseTimer"})
    keeping = contextlib.nullcontext(keep_in) if keep_in else tempfile.TemporaryDirectory()
    with keeping as logs:
        start = time.time()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "lightning_app.fit",
                *config,
                f"--data.data_dir={options.data_dir}",
                f"--seed_everything={seed}",
                f"--trainer.logger.init_args.save_dir={logs}",
                *(
                    ["--trainer.logger.init_args.name=", f"--trainer.logger.init_args.version=seed_{seed}"]
                    if keep_in
                    else []
                ),
                "--trainer.enable_progress_bar=false",
                f"--trainer.callbacks+={timer}",
                *options.set,
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "benchmarks"), PYTHONPATH]))},
        )
        end = time.time()
    if done.returncode:
        sys.exit(f"fit {' '.join(config)} failed:\n{done.stderr[-4000:]}")
    marks, evaluations = {}, []
    for line in done.stdout.splitlines():
        if line.startswith("PHASE "):
            _, name, moment = line.split()
            marks.setdefault(name, float(moment))  # the first test pass, if there are several
            if name == "validation_start":
                evaluations.append(-float(moment))
            elif name == "validation_end":
                evaluations[-1] += float(moment)
    accuracy = float(re.search(r"Final model[^:\n]*: test accuracy ([\d.]+)%", done.stdout).group(1))
    tested = "test_start" in marks
    phases = {
        "imports and config": marks["built"] - start,
        "data and setup": marks["fit_start"] - marks["built"],
        "before training (sanity check, model summary)": marks["train_start"] - marks["fit_start"],
        "training steps": marks["train_end"] - marks["train_start"] - sum(evaluations),
        "evaluation during training (validation, per-epoch test)": sum(evaluations),
        "final test": marks["test_end"] - marks["test_start"] if tested else 0.0,
        "the rest (checkpoint test, figures, exit)": end - (marks["test_end"] if tested else marks["train_end"]),
    }
    return {
        "accuracy": accuracy,
        "training": phases["training steps"],
        "epochs_s": marks["train_end"] - marks["train_start"],
        "process": end - start,
        "phases": phases,
        "epochs": re.findall(r"^epoch .*\| ([\d.]+) s$", done.stdout, re.M),
    }


def run_recipe(options, seed: int) -> dict:
    """Run benchmarks/recipe.py (the public recipe in plain PyTorch) in a fresh process."""
    start = time.time()
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "recipe.py"), "--data_dir", options.data_dir, "--seed", str(seed)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    end = time.time()
    if done.returncode:
        sys.exit(f"recipe failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"accuracy": 100 * result["test_acc"], "training": result["training_s"], "process": end - start}


def fast_against_recipe(options) -> None:
    """configs/fast.yaml and the recipe for the same seeds, interleaved; medians of training and process times."""
    rows = {"recipe": [], "fast.yaml": []}
    for seed in range(options.fast_seeds):
        order = ("recipe", "fast.yaml") if seed % 2 == 0 else ("fast.yaml", "recipe")
        for way in order:
            result = (
                run_recipe(options, seed)
                if way == "recipe"
                else run_fit(options, ["--config", str(ROOT / "configs" / "fast.yaml")], seed)
            )
            rows[way].append(result)
            print(
                f"  seed {seed} {way:9s}: test accuracy {result['accuracy']:.2f}%, "
                f"training steps {result['training']:.2f} s, whole command {result['process']:.2f} s",
                flush=True,
            )
    medians = {
        way: {key: statistics.median(r[key] for r in results) for key in ("accuracy", "training", "process")}
        for way, results in rows.items()
    }
    for way, median in medians.items():
        print(
            f"{way:9s} median of {options.fast_seeds}: test accuracy {median['accuracy']:.2f}%, "
            f"training steps {median['training']:.2f} s, whole command {median['process']:.2f} s"
        )
    fast, recipe = medians["fast.yaml"], medians["recipe"]
    print(
        f"fast.yaml / recipe training steps = {fast['training'] / recipe['training']:.3f} (target <= 0.75); whole "
        f"command "
        f"{fast['process'] - recipe['process']:+.2f} s (target <= +4 s)"
    )
    breakdown("configs/fast.yaml", rows["fast.yaml"])


def breakdown(name: str, results: list[dict]) -> None:
    """Print the median seconds of each phase of a command."""
    print(f"{name}, phases (median of {len(results)}):")
    for phase in results[0]["phases"]:
        print(f"  {phase:45s} {statistics.median(r['phases'][phase] for r in results):7.2f} s")
    print(f"  {'whole command':45s} {statistics.median(r['process'] for r in results):7.2f} s")


def default_run(options) -> None:
    """The default run (configs/default.yaml): its whole command against the time of its epochs."""
    results = [run_fit(options, [], 42) for _ in range(options.default_repeats)]
    breakdown("default run", results)
    for result in results:
        print(
            f"  test accuracy {result['accuracy']:.2f}%, whole command / epochs = "
            f"{result['process'] / result['epochs_s']:.3f} (target <= 1.08)"
        )


def accuracy_over_seeds(options) -> None:
    """A config's final test accuracy over seeds 0, 1, ..., each run alone, and the minutes of each whole command."""
    results = []
    for seed in range(options.accuracy_seeds):
        keep_in = str(Path(options.keep_runs) / Path(options.accuracy).stem) if options.keep_runs else None
        result = run_fit(options, [f"--config={options.accuracy}"], seed, keep_in)
        results.append(result)
        epochs = [float(seconds) for seconds in result["epochs"]]
        print(
            f"  seed {seed}: test accuracy {result['accuracy']:.2f}%, whole command {result['process'] / 60:.1f} min, "
            f"{statistics.median(epochs):.1f} s per epoch (median of {len(epochs)})",
            flush=True,
        )
    mean = statistics.mean(result["accuracy"] for result in results)
    longest = max(result["process"] for result in results) / 60
    print(f"{options.accuracy}: mean test accuracy of {len(results)} seeds {mean:.3f}%, longest run {longest:.1f} min")


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="folder holding MNIST/raw/ with the full data set")
    parser.add_argument("--steps", type=int, default=300, help="timed training steps per way and repeat")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fast_seeds", type=int, default=3, help="seeds of fast.yaml and the recipe (0 skips them)")
    parser.add_argument("--default_repeats", type=int, default=0, help="default runs to time by phase (0: none)")
    parser.add_argument("--skip_ways", action="store_true", help="skip the per-step comparison of training loops")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="--KEY=VALUE",
        help="extra fit options for all ways, e.g. --set=--trainer.precision=bf16-mixed",
    )
    parser.add_argument("--accuracy", metavar="CONFIG", help="a config to train with seeds 0, 1, ... one after another")
    parser.add_argument("--accuracy_seeds", type=int, default=3, help="how many seeds of --accuracy")
    parser.add_argument("--keep_runs", metavar="DIR", help="keep --accuracy's run folders in DIR/<config>/seed_K")
    parser.add_argument("--child", choices=WAYS, help=argparse.SUPPRESS)
    options = parser.parse_args(args)
    if options.child:
        child(options.child, options.data_dir, options.steps, options.warmup, options.set)
        return
    if not options.skip_ways:
        compare_ways(options)
    if options.fast_seeds:
        fast_against_recipe(options)
    if options.default_repeats:
        default_run(options)
    if options.accuracy:
        accuracy_over_seeds(options)


if __name__ == "__main__":
    main()
