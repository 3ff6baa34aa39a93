"""Stop training at a wall-clock budget, so that a run on borrowed hardware always ends with a measured model."""

from __future__ import annotations

import logging
import time

from transformers import TrainerCallback

logger = logging.getLogger(__name__)


class DeadlineCallback(TrainerCallback):
    """Ask the Trainer to stop once ``max_train_seconds`` have passed since training began.

    Training then ends as after its last step. The step it stops at is evaluated and saved too (when the run
    evaluates and saves at all, by epoch or by steps), so that with ``load_best_model_at_end`` the model trained up
    to the budget is one of the candidates, not only the checkpoints of the epochs that finished before it. The
    run's ``results.json`` records how many epochs were actually trained.
    """

    def __init__(self, max_train_seconds: float):
        if max_train_seconds <= 0:
            raise ValueError(f"--max_train_seconds {max_train_seconds} must be positive")
        self.max_train_seconds = max_train_seconds
        self.started = None
        self.stopped_early = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.started is not None and time.monotonic() - self.started > self.max_train_seconds:
            if not self.stopped_early:
                logger.warning("time budget of %.0f s reached at epoch %.2f: stopping", self.max_train_seconds,
                               state.epoch or 0.0)
            self.stopped_early = True
            control.should_training_stop = True
            # (with the "epoch" strategies the Trainer already evaluates and saves the cut epoch's end)
            control.should_evaluate = control.should_evaluate or args.eval_strategy == "steps"
            control.should_save = control.should_save or args.save_strategy == "steps"
        return control
