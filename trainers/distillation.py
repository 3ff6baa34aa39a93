"""Knowledge distillation with the Hugging Face Trainer: hard-label CE plus temperature-scaled KL to a teacher.

``loss = alpha · CE(labels) + (1 − alpha) · τ² · KL(softmax(teacher/τ) ‖ softmax(student/τ))``, over labelled
positions only, plus optional hidden-state matching (MSE between chosen layers of the same width).

With a transfer set (trainers/transfer.py), unlabelled rows join the batches: they carry the teacher's cached
word-level logits and get only the KL term, ``w · (1 − alpha) · τ² · KL``, with ``w`` = ``--transfer_kl_weight``.

```python
>>> args = DistillationArguments(output_dir="out", temperature=2.0, alpha=0.5)
>>> trainer = DistillationTrainer(teacher_model=teacher, model=student, args=args, train_dataset=train)
>>> trainer.train()
```
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import Trainer, TrainingArguments

from .transfer import TRANSFER_KEYS


@dataclass
class DistillationArguments(TrainingArguments):
    """TrainingArguments plus the distillation settings (used only when a teacher is given)."""

    temperature: float = field(default=2.0, metadata={"help": "Softmax temperature τ of the KL term; above 1 softens."})
    alpha: float = field(default=0.5, metadata={"help": "Weight of the hard-label CE; the KL term gets 1 - alpha."})
    hidden_loss_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of the hidden-state MSE between matched layers (0 turns it off)."},
    )

    def __post_init__(self):
        super().__post_init__()
        if self.temperature <= 0:
            raise ValueError(f"--temperature {self.temperature} must be positive")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"--alpha {self.alpha} must be in [0, 1]")
        if self.hidden_loss_weight < 0:
            raise ValueError(f"--hidden_loss_weight {self.hidden_loss_weight} must be >= 0")


@dataclass(frozen=True)
class LayerMatch:
    """Match the student's hidden state after ``student_layer`` to the teacher's after ``teacher_layer``.

    Index 0 is the embedding output, i the output of layer i (as in ``output_hidden_states``).
    """

    teacher_layer: int
    student_layer: int
    weight: float = 1.0


def default_layer_matches(num_teacher_layers: int, num_student_layers: int) -> list[LayerMatch]:
    """Each student step matched to the teacher layer at the same relative depth (last to last)."""
    return [
        LayerMatch(teacher_layer=round(s * num_teacher_layers / num_student_layers), student_layer=s)
        for s in range(1, num_student_layers + 1)
    ]


def distillation_kl(student_logits, teacher_logits, labels, temperature: float) -> torch.Tensor:
    """τ² · KL(teacher ‖ student) averaged over the positions whose label is not -100."""
    return masked_kl(student_logits, teacher_logits, labels != -100, temperature)


def masked_kl(student_logits, teacher_logits, mask, temperature: float) -> torch.Tensor:
    """τ² · KL(teacher ‖ student) averaged over the positions where ``mask`` (B, T) is true."""
    if not mask.any():
        return student_logits.sum() * 0.0
    student_log_probs = F.log_softmax(student_logits[mask].float() / temperature, dim=-1)  # (N, C)
    teacher_log_probs = F.log_softmax(teacher_logits[mask].float() / temperature, dim=-1)  # (N, C)
    kl = F.kl_div(student_log_probs, teacher_log_probs, log_target=True, reduction="batchmean")
    return kl * temperature**2


class DistillationTrainer(Trainer):
    """A Trainer whose ``compute_loss`` adds a temperature-scaled KL term to a fixed teacher.

    The teacher stays in eval mode on the student's device, is never wrapped for DDP, and runs under no_grad.
    The logged ``loss`` is joined by ``loss_ce``, ``loss_kl`` (and ``loss_hidden``) averaged over the logging window.
    With ``hidden_loss_weight > 0`` and no ``layer_matches``, layers are matched by ``default_layer_matches``.

    **Transfer set.** Batches made by ``trainers.transfer.TransferCollator`` over a ``TransferMixDataset`` also carry
    unlabelled rows: ``is_transfer`` (B,) marks them and ``teacher_logits`` (B, T, C) holds the teacher's cached
    logits at each word's first subword (NaN elsewhere). How they mix: each epoch is every labelled sentence once
    plus ``round(transfer_ratio × N_labelled)`` transfer sentences, a fresh slice of the transfer pool each epoch
    (cycling through it), shuffled together by the Trainer's own sampler; so ``num_train_epochs`` counts labelled
    epochs. Per micro-batch, each part is a mean over its own positions::

        loss = alpha · CE(labelled) + (1 − alpha) · KL(labelled, live teacher) [+ w_h · hidden MSE(labelled)]
               + transfer_kl_weight · (1 − alpha) · KL(transfer, cached targets)

    so a transfer row gets no CE and no hidden loss, and at weight 1 its soft targets count as much per batch as
    the labelled rows'. The teacher runs only on the labelled rows (``transfer_targets="live"`` runs it on the
    transfer rows too, to measure what the cache saves), and ``loss_kl_transfer`` is logged apart. A part absent
    from a micro-batch counts 0 in the loss and is left out of its logged mean.
    """

    # Each part is a mean over its micro-batch: let the Trainer divide by the accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(self, *args, teacher_model=None, layer_matches: list[LayerMatch] | None = None,
                 transfer_kl_weight: float = 1.0, transfer_targets: str = "cached", **kwargs):
        super().__init__(*args, **kwargs)
        if transfer_targets not in ("cached", "live"):
            raise ValueError(f"transfer_targets={transfer_targets!r}: expected 'cached' or 'live'")
        self.transfer_kl_weight, self.transfer_targets = transfer_kl_weight, transfer_targets
        if self.args.remove_unused_columns:  # keep the transfer keys: the column filter only knows forward()'s
            self._set_signature_columns_if_needed()
            self._signature_columns += [key for key in TRANSFER_KEYS if key not in self._signature_columns]
        # (labelled, transfer) rows trained on by this process in this run
        self.sentences_seen = torch.zeros(2, dtype=torch.int64, device=self.args.device)
        if teacher_model is None:
            raise ValueError("DistillationTrainer needs teacher_model=...")
        student_labels = dict(self.model.config.id2label)
        teacher_labels = dict(teacher_model.config.id2label)
        if {int(k): v for k, v in student_labels.items()} != {int(k): v for k, v in teacher_labels.items()}:
            raise ValueError(
                f"teacher and student label maps differ: teacher id2label={teacher_labels}, "
                f"student id2label={student_labels}"
            )
        self.layer_matches = []
        if self.args.hidden_loss_weight > 0:
            # A weight without matches would silently do nothing: default to matching by relative depth.
            self.layer_matches = list(layer_matches or default_layer_matches(
                teacher_model.config.num_hidden_layers, self.model.config.num_hidden_layers))
        for match in self.layer_matches:  # hidden_states has num_hidden_layers + 1 entries (0 = embeddings)
            if not (0 <= match.teacher_layer <= teacher_model.config.num_hidden_layers
                    and 0 <= match.student_layer <= self.model.config.num_hidden_layers):
                raise ValueError(
                    f"{match} is out of range: the teacher has layers 0..{teacher_model.config.num_hidden_layers} "
                    f"and the student 0..{self.model.config.num_hidden_layers} (0 is the embedding output)"
                )
        if self.layer_matches and teacher_model.config.hidden_size != self.model.config.hidden_size:
            raise ValueError(
                f"hidden-state matching needs equal widths: teacher hidden_size={teacher_model.config.hidden_size}, "
                f"student hidden_size={self.model.config.hidden_size}"
            )
        self.teacher = teacher_model.to(self.args.device).eval()
        self.teacher.requires_grad_(False)
        self._loss_parts = defaultdict(list)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:  # evaluation reports the plain task loss, and skips the teacher
            inputs = {k: v for k, v in inputs.items() if k not in TRANSFER_KEYS}
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if "is_transfer" in inputs:
            return self._mixed_loss(model, inputs, return_outputs)
        self.sentences_seen[0] += inputs["labels"].shape[0]
        want_hidden = bool(self.layer_matches)
        outputs = model(**inputs, output_hidden_states=want_hidden or None)
        labels = inputs["labels"]
        with torch.no_grad():
            teacher_inputs = {k: v for k, v in inputs.items() if k != "labels"}
            teacher_outputs = self.teacher(**teacher_inputs, output_hidden_states=want_hidden or None)
        args = self.args
        hard = outputs.loss
        soft = distillation_kl(outputs.logits, teacher_outputs.logits, labels, args.temperature)
        loss = args.alpha * hard + (1 - args.alpha) * soft
        self._loss_parts["loss_ce"].append(hard.detach())
        self._loss_parts["loss_kl"].append(soft.detach())
        if self.layer_matches:
            token_mask = inputs["attention_mask"].bool() if "attention_mask" in inputs else labels.new_ones(labels.shape).bool()
            hidden = sum(
                match.weight
                * F.mse_loss(
                    outputs.hidden_states[match.student_layer][token_mask],
                    teacher_outputs.hidden_states[match.teacher_layer][token_mask].to(outputs.logits.dtype),
                )
                for match in self.layer_matches
            )
            loss = loss + args.hidden_loss_weight * hidden
            self._loss_parts["loss_hidden"].append(hidden.detach())
        return (loss, outputs) if return_outputs else loss

    def _mixed_loss(self, model, inputs, return_outputs: bool):
        """The loss of a batch with transfer rows (see the class docstring)."""
        inputs = dict(inputs)
        cached, is_transfer = inputs.pop("teacher_logits"), inputs.pop("is_transfer").bool()  # (B, T, C), (B,)
        labelled = ~is_transfer  # (B,)
        labels = inputs["labels"]  # (B, T): all -100 on transfer rows
        self.sentences_seen += torch.stack([labelled.sum(), is_transfer.sum()]).to(self.sentences_seen.device)
        want_hidden = bool(self.layer_matches)
        outputs = model(**inputs, output_hidden_states=want_hidden or None)
        args, nan = self.args, outputs.logits.new_tensor(float("nan"))
        live = self.transfer_targets == "live"
        teacher_rows = torch.ones_like(labelled) if live else labelled  # the cache spares the teacher these rows
        teacher_outputs = None
        if teacher_rows.any():
            with torch.no_grad():
                teacher_inputs = {k: v[teacher_rows] for k, v in inputs.items() if k != "labels"}
                teacher_outputs = self.teacher(**teacher_inputs, output_hidden_states=want_hidden or None)
        # Rows of the teacher's outputs that are labelled rows of the batch.
        own = labelled[teacher_rows] if teacher_outputs is not None else None  # (B_teacher,)

        has_labels = bool((labels != -100).any())
        hard = outputs.loss if has_labels else outputs.logits.sum() * 0.0  # CE is a mean over labelled positions
        soft = outputs.logits.sum() * 0.0
        if labelled.any():
            soft = distillation_kl(outputs.logits[labelled], teacher_outputs.logits[own], labels[labelled],
                                   args.temperature)
        soft_transfer = outputs.logits.sum() * 0.0
        if is_transfer.any():
            targets = teacher_outputs.logits[~own] if live else cached[is_transfer]  # (B_t, T, C)
            transfer_mask = torch.isfinite(cached[is_transfer][..., 0])  # (B_t, T): word starts with a target
            soft_transfer = masked_kl(outputs.logits[is_transfer], targets.to(outputs.logits.dtype), transfer_mask,
                                      args.temperature)
        loss = (args.alpha * hard + (1 - args.alpha) * soft
                + self.transfer_kl_weight * (1 - args.alpha) * soft_transfer)
        self._loss_parts["loss_ce"].append(hard.detach() if has_labels else nan)
        self._loss_parts["loss_kl"].append(soft.detach() if labelled.any() else nan)
        self._loss_parts["loss_kl_transfer"].append(soft_transfer.detach() if is_transfer.any() else nan)
        if self.layer_matches:
            hidden = outputs.logits.sum() * 0.0
            if labelled.any():
                token_mask = inputs["attention_mask"][labelled].bool() if "attention_mask" in inputs \
                    else labels[labelled].new_ones(labels[labelled].shape).bool()  # (B_l, T)
                hidden = sum(
                    match.weight
                    * F.mse_loss(
                        outputs.hidden_states[match.student_layer][labelled][token_mask],
                        teacher_outputs.hidden_states[match.teacher_layer][own][token_mask].to(outputs.logits.dtype),
                    )
                    for match in self.layer_matches
                )
            loss = loss + args.hidden_loss_weight * hidden
            self._loss_parts["loss_hidden"].append(hidden.detach() if labelled.any() else nan)
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict, *args, **kwargs) -> None:
        # Training logs carry "loss": add the parts averaged over the same window, then start a new window.
        if "loss" in logs and self._loss_parts:
            for name, values in self._loss_parts.items():
                # Every process adds one value per micro-batch to every part (NaN where the part was absent), so
                # the gathered tensors have one shape; the NaNs are left out of the mean.
                mean = self.accelerator.gather(torch.stack(values).float()).nanmean()
                if not torch.isnan(mean):
                    logs[name] = round(mean.item(), 4)
            self._loss_parts.clear()
        elif "train_loss" in logs:  # end of train(): a last window too short to log must not leak into the next run
            self._loss_parts.clear()
        super().log(logs, *args, **kwargs)
