"""Ensembles: several trained classifiers answer together by averaging their class probabilities.

``python -m lightning_app.ensemble --members 5 --config configs/best.yaml`` trains the members (the same config with
seeds 0 to 4, each an ordinary run folder ``<name>/member_K``; members already trained are kept) and evaluates the
ensemble of their final models on the validation and test sets. Nothing is chosen by test accuracy.
"""

import sys

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from lightning_app.module import MNISTClassifier
from lightning_app.network import NUM_CLASSES


class Ensemble(pl.LightningModule):
    """Average the class probabilities of several trained ``MNISTClassifier``s (raw images in, as theirs).

    Args:
        members: The trained classifiers.
    """

    def __init__(self, members: list[MNISTClassifier]) -> None:
        super().__init__()
        if not members:
            raise ValueError("members must hold at least one classifier.")
        self.members = nn.ModuleList(members)
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.val_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro")
        self.test_class_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average=None)

    def forward(self, images: Tensor) -> Tensor:
        """The members' mean class probabilities (N, 10)."""
        return torch.stack([member(images).float().softmax(dim=1) for member in self.members]).mean(dim=0)

    @torch.inference_mode()
    def probabilities(self, images: Tensor, batch_size: int = 1000) -> Tensor:
        """Mean class probabilities for raw images, computed on the ensemble's device in batches, in eval mode."""
        self.eval()
        return torch.cat([self(chunk.to(self.device)).cpu() for chunk in images.split(batch_size)])

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        images, labels = batch
        probabilities = self(images)
        loss, accuracy = getattr(self, f"{stage}_loss"), getattr(self, f"{stage}_acc")
        loss.update(F.nll_loss(probabilities.clamp_min(1e-12).log(), labels, reduction="none"))
        accuracy.update(probabilities, labels)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True)
        self.log(f"{stage}/acc", accuracy, on_step=False, on_epoch=True)
        return probabilities

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._evaluate(batch, "val")

    def on_test_epoch_start(self) -> None:
        self.test_class_acc.reset()

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        probabilities = self._evaluate(batch, "test")
        self.test_class_acc.update(probabilities, batch[1])
        return probabilities

    def predict_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        return self(batch[0] if isinstance(batch, (tuple, list)) else batch)


def main(args: list[str] | None = None) -> dict[str, float]:
    """Train the members of an ensemble (or keep those already trained) and evaluate the ensemble.

    Takes ``--members N``, ``--dir FOLDER`` (default ``logs/ensemble``) and any options of ``python -m
    lightning_app.fit`` (a config, the data folder, trainer flags). Member K is trained with ``--seed_everything K``
    into ``FOLDER/member_K``; a member whose run was interrupted continues from its ``last.ckpt``.
    """
    import argparse
    import json
    from pathlib import Path

    from lightning_app import evaluate, fit, runs
    from lightning_app.errors import UserError, report_user_errors

    @report_user_errors
    def run(args: list[str]) -> dict[str, float]:
        parser = argparse.ArgumentParser(prog="python -m lightning_app.ensemble", add_help=False)
        parser.add_argument("--members", type=int, default=5)
        parser.add_argument("--dir", type=Path, default=Path("logs") / "ensemble")
        options, rest = parser.parse_known_args(args)
        if options.members < 1:
            raise UserError(f"--members must be at least 1 (got {options.members}).")
        checkpoints = []
        for member in range(options.members):
            folder = options.dir / f"member_{member}"
            last = folder / runs.CHECKPOINTS / f"{runs.LAST}{runs.EXTENSION}"
            where = [
                f"--trainer.logger.init_args.save_dir={options.dir}",
                "--trainer.logger.init_args.name=",
                f"--trainer.logger.init_args.version={folder.name}",
                f"--seed_everything={member}",
            ]
            if not (folder / "done").is_file():
                print(f"member {member + 1} of {options.members} (seed {member}) in {folder}", flush=True)
                fit.main([*rest, *where, *(["--ckpt_path", str(last)] if last.is_file() else [])])
                (folder / "done").touch()
            checkpoints.append(str(last))
        # evaluate takes fit's options but draws no figures.
        shared = [option for option in rest if not option.startswith("--figures.")]
        return evaluate.main([*shared, f"--ckpt_path={json.dumps(checkpoints)}"])

    return run(args if args is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
