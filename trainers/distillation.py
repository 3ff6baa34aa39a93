"""Knowledge distillation with the Hugging Face Trainer: hard-label CE plus temperature-scaled KL to a teacher.

``loss = alpha · CE(labels) + (1 − alpha) · τ² · KL(softmax(teacher/τ) ‖ softmax(student/τ))``, over labelled
positions only, plus optional hidden-state matching (MSE between chosen layers of the same width) and optional
attention-relation terms (MiniLM, Wang et al. 2020, arXiv 2002.10957): KL between the teacher's and the student's
self-attention distributions ``softmax(Q Kᵀ/√d)`` and value relations ``softmax(V Vᵀ/√d)`` of matched layers.

With a transfer set (trainers/transfer.py), unlabelled rows join the batches: they carry the teacher's cached
word-level logits and get only the KL term, ``w · (1 − alpha) · τ² · KL``, with ``w`` = ``--transfer_kl_weight``.

```python
>>> args = DistillationArguments(output_dir="out", temperature=2.0, alpha=0.5)
>>> trainer = DistillationTrainer(teacher_model=teacher, model=student, args=args, train_dataset=train)
>>> trainer.train()
```
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForTokenClassification, Trainer, TrainingArguments
from transformers.models.bert.modeling_bert import BertSelfAttention

from modeling import load_bert, model_labels
from modeling.modeling_compressed_bert import _FAMILIES

from runtime.fields import Bounds, check_fields

from .transfer import TRANSFER_KEYS

logger = logging.getLogger(__name__)


# Bounds of TrainingArguments' numeric flags, which it does not check itself (NaN, inf and negative values would
# train garbage); DistillationArguments.BOUNDS adds its own fields'.
TRAINING_BOUNDS = {
    "num_train_epochs": Bounds(min=0), "learning_rate": Bounds(above=0), "weight_decay": Bounds(min=0),
    "max_grad_norm": Bounds(min=0), "adam_epsilon": Bounds(above=0), "adam_beta1": Bounds(min=0, max=1),
    "adam_beta2": Bounds(min=0, max=1), "warmup_steps": Bounds(min=0), "label_smoothing_factor": Bounds(min=0, max=1),
    "per_device_train_batch_size": Bounds(min=1), "per_device_eval_batch_size": Bounds(min=1),
    "gradient_accumulation_steps": Bounds(min=1),
}


@dataclass
class DistillationArguments(TrainingArguments):
    """TrainingArguments plus the distillation settings (used only when a teacher is given)."""

    # The numeric flags' bounds, checked by runtime.fields.check_fields in __post_init__ (config files too)
    BOUNDS: ClassVar[dict] = {
        **TRAINING_BOUNDS, "temperature": Bounds(above=0), "alpha": Bounds(min=0, max=1), "hidden_loss_weight": Bounds(min=0),
        "attention_loss_weight": Bounds(min=0), "value_relation_weight": Bounds(min=0),
    }

    temperature: float = field(
        default=2.0, metadata={"help": "Softmax temperature τ of the KL term; above 1 softens."}
    )
    alpha: float = field(
        default=0.5, metadata={"help": "Weight of the hard-label CE; the KL term gets 1 - alpha."}
    )
    hidden_loss_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of the hidden-state MSE between matched layers (0 turns it off)."},
    )
    attention_loss_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of the KL between teacher and student self-attention distributions of matched "
                          "layers (MiniLM; 0 turns it off)."},
    )
    value_relation_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of the KL between teacher and student value relations softmax(V Vᵀ/√d) of matched "
                          "layers (MiniLM; 0 turns it off)."},
    )

    def __post_init__(self):
        # Every field's bounds, TrainingArguments' own numbers included, before they are derived from
        check_fields(self)
        if self.max_steps < -1:
            raise ValueError(f"--max_steps {self.max_steps} must be -1 or 0 (off: train --num_train_epochs) or positive")
        super().__post_init__()


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


# The compressed model types of this project (registered with the Auto classes by ``import modeling``).
COMPRESSED_MODEL_TYPES = tuple(sorted(config_class.model_type for config_class in _FAMILIES))


def load_teacher(path: str, flag: str, label_list: list[str], cache_dir: str | None = None) -> torch.nn.Module:
    """A teacher: a BERT (``modeling.load_bert``) or, for a teacher-assistant chain, a compressed model of this project.

    A compressed teacher must already have ``label_list`` in its own order (the run script takes the teacher's
    order), since its head is used as it is.
    """
    labels = model_labels(path, flag, cache_dir)  # reads the config: a missing folder fails here, naming the flag
    model_type = AutoConfig.from_pretrained(path, cache_dir=cache_dir).model_type
    if model_type == "bert":
        return load_bert(path, flag, label_list, cache_dir)
    if model_type not in COMPRESSED_MODEL_TYPES:
        raise ValueError(f"{flag} {path}: model_type is {model_type!r}, but a teacher must be a BERT or one of "
                         f"{', '.join(COMPRESSED_MODEL_TYPES)}")
    if labels != list(label_list):
        raise ValueError(f"{flag} {path}: its labels {labels} are not {list(label_list)} in this order")
    model = AutoModelForTokenClassification.from_pretrained(path, cache_dir=cache_dir)
    model.accepts_loss_kwargs = False  # as load_bert: the loss is a plain mean
    return model


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


# ----------------------------------------------------------------------------------------------------------------
# Attention relations (MiniLM)


def check_attention_distillation(student_config, teacher_config, attention_loss_weight: float,
                                 value_relation_weight: float = 0.0) -> list[LayerMatch]:
    """The layer matches of the attention-relation terms ([] when both weights are 0), or one ValueError line.

    Layers are matched as the hidden states are (``default_layer_matches``). A student layer that would fall on
    the teacher's embeddings (index 0, no attention: a student over twice as deep as its teacher) is refused.
    Head counts may differ: the terms then compare head-averaged distributions (see ``relation_kl``).
    """
    if not (attention_loss_weight > 0 or value_relation_weight > 0):
        return []
    flag, weight = (("--attention_loss_weight", attention_loss_weight) if attention_loss_weight > 0
                    else ("--value_relation_weight", value_relation_weight))
    teacher_layers, student_layers = teacher_config.num_hidden_layers, student_config.num_hidden_layers
    matches = default_layer_matches(teacher_layers, student_layers)
    unmapped = [match.student_layer for match in matches if match.teacher_layer < 1]
    if unmapped:
        raise ValueError(
            f"{flag} {weight}: the student's {student_layers} layers cannot be matched to the teacher's "
            f"{teacher_layers} (student layer {unmapped[0]} falls on the teacher's embeddings, which have no "
            f"attention); use a teacher at least half as deep as the student, or {flag} 0"
        )
    return matches


@contextlib.contextmanager
def recorded_projections(model: torch.nn.Module, names: tuple[str, ...] = ("query", "key")):
    """Record the outputs of every self-attention's ``query`` / ``key`` / ``value`` projections, in call order.

    Inside the block, ``records[name][i]`` (B, T, heads · d) is the projection of the i-th self-attention call: one
    per applied layer, so a shared layer run N times gives N entries. The projections come from forward hooks on
    the ``nn.Linear`` (or low-rank or relaxed replacement) that each ``BertSelfAttention`` calls, so this works
    whatever the attention implementation (sdpa included) and for every compressed model type.
    """
    modules = [module for module in model.modules() if isinstance(module, BertSelfAttention)]
    if not modules:
        raise ValueError(f"{type(model).__name__} has no BertSelfAttention: attention relations need a BERT")
    records = {name: [] for name in names}
    handles = []
    for module in modules:
        for name in names:
            hook = lambda _module, _inputs, output, name=name: records[name].append(output)  # noqa: E731
            handles.append(getattr(module, name).register_forward_hook(hook))
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


def relation_log_probs(left, right, attention_mask, num_heads: int) -> torch.Tensor:
    """log softmax(left_h · right_hᵀ / √d) per head h: (B, T, heads · d) twice, (B, T) -> (B, heads, T, T).

    With (query, key) these are the attention distributions (before dropout), with (value, value) MiniLM's value
    relations. Padded keys get the dtype's minimum before the softmax, as BERT's mask does: probability 0.
    """
    batch, length, width = left.shape
    head_size = width // num_heads
    left = left.float().view(batch, length, num_heads, head_size).transpose(1, 2)  # (B, h, T, d)
    right = right.float().view(batch, length, num_heads, head_size).transpose(1, 2)  # (B, h, T, d)
    scores = left @ right.transpose(-1, -2) / math.sqrt(head_size)  # (B, h, T, T)
    scores = scores.masked_fill(~attention_mask[:, None, None, :], torch.finfo(scores.dtype).min)
    return scores.log_softmax(-1)


def relation_kl(student_log_probs, teacher_log_probs, attention_mask) -> torch.Tensor:
    """KL(teacher ‖ student) of each real query row over the real keys, averaged over heads and query rows.

    (B, h_s, T, T), (B, h_t, T, T), (B, T) -> scalar. With other head counts, the per-head distributions cannot be
    paired: both sides are first averaged over their heads (a mean of distributions is one).
    """
    if student_log_probs.shape[1] != teacher_log_probs.shape[1]:
        student_log_probs = student_log_probs.logsumexp(1, keepdim=True) - math.log(student_log_probs.shape[1])
        teacher_log_probs = teacher_log_probs.logsumexp(1, keepdim=True) - math.log(teacher_log_probs.shape[1])
    terms = teacher_log_probs.exp() * (teacher_log_probs - student_log_probs)  # (B, h, T, T)
    kl_rows = terms.masked_fill(~attention_mask[:, None, None, :], 0.0).sum(-1)  # (B, h, T): padded keys add nothing
    real_queries = attention_mask[:, None, :].expand_as(kl_rows)  # (B, h, T): padded query rows left out
    return kl_rows[real_queries].mean()


class DistillationTrainer(Trainer):
    """A Trainer whose ``compute_loss`` adds a temperature-scaled KL term to a fixed teacher.

    The teacher stays in eval mode on the student's device, is never wrapped for DDP, and runs under no_grad.
    The logged ``loss`` is joined by ``loss_ce``, ``loss_kl`` (and ``loss_hidden``) averaged over the logging window.
    With ``hidden_loss_weight > 0`` and no ``layer_matches``, layers are matched by ``default_layer_matches``.

    **Attention relations.** With ``attention_loss_weight`` w_a > 0 (and/or ``value_relation_weight`` w_v > 0) the
    loss adds ``w_a · KL(attention) + w_v · KL(value relation)``, each the mean over the layers matched by
    ``check_attention_distillation`` of ``relation_kl`` (real query rows and keys only; per head, or head-averaged
    when the head counts differ), logged as ``loss_attention`` and ``loss_value_relation``. The distributions are
    rebuilt from the recorded query/key/value projections (``recorded_projections``): no ``output_attentions``, no
    eager attention, dropout-free, and the same for every compressed model type, as student or as teacher. With both
    weights 0 nothing is recorded.

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
    from a micro-batch counts 0 in the loss and is left out of its logged mean. The attention-relation terms, like
    the hidden loss, cover the labelled rows only: the cache holds logits, not attentions, and ``"live"`` keeps the
    same rows so that both modes give one loss.
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
        self.attention_matches = check_attention_distillation(
            self.model.config, teacher_model.config, self.args.attention_loss_weight, self.args.value_relation_weight)
        self._relation_names = ()  # the projections to record: none when both attention weights are 0
        if self.args.attention_loss_weight > 0:
            self._relation_names += ("query", "key")
        if self.args.value_relation_weight > 0:
            self._relation_names += ("value",)
        heads = self.model.config.num_attention_heads, teacher_model.config.num_attention_heads
        if self.attention_matches and heads[0] != heads[1]:
            logger.info("attention relations: the student has %d heads and the teacher %d, so the head-averaged "
                        "distributions are compared", *heads)
        self.teacher = teacher_model.to(self.args.device).eval()
        self.teacher.requires_grad_(False)
        self._loss_parts = defaultdict(list)

    def _recording(self, model):
        """Record the projections the attention-relation terms need (see ``recorded_projections``), if any."""
        return recorded_projections(model, self._relation_names) if self._relation_names else contextlib.nullcontext()

    def _relation_weight(self, part: str) -> float:
        return self.args.attention_loss_weight if part == "loss_attention" else self.args.value_relation_weight

    def _relation_losses(self, student_records, teacher_records, student_rows, teacher_rows, attention_mask):
        """{"loss_attention": ..., "loss_value_relation": ...} (those with a weight) over the chosen batch rows.

        ``student_rows`` / ``teacher_rows`` index the rows of each model's batch (the teacher may have run on fewer),
        ``attention_mask`` (B_rows, T) is theirs.
        """
        for who, records, config in (("student", student_records, self.model.config),
                                     ("teacher", teacher_records, self.teacher.config)):
            calls = len(records[self._relation_names[0]])
            if calls != config.num_hidden_layers:  # e.g. a layer skipped, or a forward run twice
                raise RuntimeError(f"the {who} ran {calls} self-attention calls for {config.num_hidden_layers} layers")
        heads = self.model.config.num_attention_heads, self.teacher.config.num_attention_heads
        pairs = {"loss_attention": ("query", "key"), "loss_value_relation": ("value", "value")}
        losses = {}
        for part, (left, right) in pairs.items():
            if self._relation_weight(part) <= 0:
                continue
            kls = []
            for match in self.attention_matches:  # LayerMatch counts layers from 1 (0 is the embedding output)
                s, t = match.student_layer - 1, match.teacher_layer - 1
                student = relation_log_probs(student_records[left][s][student_rows],
                                             student_records[right][s][student_rows], attention_mask, heads[0])
                teacher = relation_log_probs(teacher_records[left][t][teacher_rows],
                                             teacher_records[right][t][teacher_rows], attention_mask, heads[1])
                kls.append(match.weight * relation_kl(student, teacher, attention_mask))
            losses[part] = torch.stack(kls).mean()
        return losses

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:  # evaluation reports the plain task loss, and skips the teacher
            inputs = {k: v for k, v in inputs.items() if k not in TRANSFER_KEYS}
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if "is_transfer" in inputs:
            return self._mixed_loss(model, inputs, return_outputs)
        self.sentences_seen[0] += inputs["labels"].shape[0]
        want_hidden = bool(self.layer_matches)
        with self._recording(model) as student_records:
            outputs = model(**inputs, output_hidden_states=want_hidden or None)
        labels = inputs["labels"]
        with torch.no_grad(), self._recording(self.teacher) as teacher_records:
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
        if self._relation_names:
            attention_mask = inputs["attention_mask"].bool() if "attention_mask" in inputs \
                else labels.new_ones(labels.shape).bool()  # (B, T)
            everything = slice(None)
            for part, value in self._relation_losses(student_records, teacher_records, everything, everything,
                                                     attention_mask).items():
                loss = loss + self._relation_weight(part) * value
                self._loss_parts[part].append(value.detach())
        return (loss, outputs) if return_outputs else loss

    def _mixed_loss(self, model, inputs, return_outputs: bool):
        """The loss of a batch with transfer rows (see the class docstring)."""
        inputs = dict(inputs)
        cached, is_transfer = inputs.pop("teacher_logits"), inputs.pop("is_transfer").bool()  # (B, T, C), (B,)
        labelled = ~is_transfer  # (B,)
        labels = inputs["labels"]  # (B, T): all -100 on transfer rows
        self.sentences_seen += torch.stack([labelled.sum(), is_transfer.sum()]).to(self.sentences_seen.device)
        want_hidden = bool(self.layer_matches)
        with self._recording(model) as student_records:
            outputs = model(**inputs, output_hidden_states=want_hidden or None)
        args, nan = self.args, outputs.logits.new_tensor(float("nan"))
        live = self.transfer_targets == "live"
        teacher_rows = torch.ones_like(labelled) if live else labelled  # the cache spares the teacher these rows
        teacher_outputs = None
        if teacher_rows.any():
            with torch.no_grad(), self._recording(self.teacher) as teacher_records:
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
        if self._relation_names:  # labelled rows only: the cache holds no attentions (see the class docstring)
            if labelled.any():
                attention_mask = inputs["attention_mask"][labelled].bool() if "attention_mask" in inputs \
                    else labels[labelled].new_ones(labels[labelled].shape).bool()  # (B_l, T)
                relations = self._relation_losses(student_records, teacher_records, labelled, own, attention_mask)
            else:
                relations = {part: None for part in ("loss_attention", "loss_value_relation")
                             if self._relation_weight(part) > 0}
            for part, value in relations.items():
                if value is not None:
                    loss = loss + self._relation_weight(part) * value
                self._loss_parts[part].append(value.detach() if value is not None else nan)
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
