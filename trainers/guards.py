"""Stop a run whose weights or loss stop being finite, before a NaN model is checkpointed or saved as finished."""

from __future__ import annotations

import math

import torch
from transformers import TrainerCallback


class NonFiniteTrainingError(ValueError):
    """Training produced NaN or infinite values: the message names the optimizer step (the script exits 2)."""


class NonFiniteGuard(TrainerCallback):
    """Raise ``NonFiniteTrainingError`` at the first step whose weights (or logged loss) are not finite.

    ``on_step_end`` runs before the Trainer's save of that step, so the last checkpoint on disk is a good one and no
    ``results.json`` is written. The weights are checked rather than the loss because the Trainer hands callbacks
    only the loss it logs (every ``logging_steps``), while a NaN loss always reaches the weights through the step.

        trainer = Trainer(model=model, args=args, callbacks=[NonFiniteGuard()], ...)
    """

    def __init__(self, model: torch.nn.Module):
        self.parameters = [p for p in model.parameters() if p.requires_grad]

    def on_step_end(self, args, state, control, **kwargs):
        # The Trainer's own flow callback has already decided this step's log, evaluation and save. On a GPU the
        # check costs a host sync and a reduction per tensor, so check only on CPU every step, and elsewhere on the
        # steps that would write or report something: no NaN checkpoint is ever saved either way.
        acts = control.should_save or control.should_log or control.should_evaluate or control.should_training_stop
        if not acts and self.parameters and self.parameters[0].device.type != "cpu":
            return control
        with torch.no_grad():
            # One reduction per tensor and one host sync per step: a NaN or inf anywhere makes the sum non-finite
            total = torch.stack([p.detach().float().sum() for p in self.parameters]).sum()
        if not torch.isfinite(total):
            raise NonFiniteTrainingError(
                f"training diverged at step {state.global_step}: the weights are NaN or infinite "
                f"(learning rate {args.learning_rate}); nothing was saved after the last checkpoint"
            )
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if isinstance(loss, float) and not math.isfinite(loss):
            raise NonFiniteTrainingError(
                f"training diverged at step {state.global_step}: the loss is {loss}; "
                "nothing was saved after the last checkpoint"
            )
        return control
