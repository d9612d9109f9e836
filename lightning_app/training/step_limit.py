"""A run cut short of its epoch by ``max_steps`` ends as an epoch does: validated, its per-epoch test figures logged."""

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback


class ValidateAtStepLimit(Callback):
    """Validate the model reached at ``Trainer(max_steps=...)`` when that limit falls within an epoch.

    Lightning validates at the end of each epoch only, so a run stopped within its first epoch by ``max_steps`` would
    have no validation score, no best checkpoint and no test figures (Lightning #9855, "working as intended").
    Asking the Trainer to stop at the limit is its public way to end an epoch early, and it validates then, unless
    ``check_val_every_n_epoch`` skips that epoch's validation anyway.
    """

    def on_train_batch_end(self, trainer: "pl.Trainer", *args) -> None:
        if 0 <= trainer.max_steps <= trainer.global_step:
            trainer.should_stop = True
