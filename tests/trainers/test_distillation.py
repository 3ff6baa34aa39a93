"""Knowledge distillation (issue 4): the KL term, label masking, gradient-accumulation scaling, the logged loss parts,
label-map checks, students built from a teacher, a two-process CPU run and the ``--model_type student`` script path;
the attention-relation terms (issue 27): recorded attentions for every model type, masking, head and depth mismatch,
bad weights, and transfer batches.

Every model is a tiny BERT built in code (vocab 99, hidden 32, 2 layers); nothing downloads.
"""

from __future__ import annotations

import copy
import json
import logging
import os

import pytest
import torch
from conftest import DEMO_DIR, LABELS, TINY_MODEL_BUILDERS, make_tiny_bert, make_tiny_tokenizer, tiny_bert_config
from transformers import BertForTokenClassification, Trainer, default_data_collator
from transformers.models.bert.modeling_bert import BertSelfAttention

import modeling
from modeling import recipes
from trainers import DistillationArguments, DistillationTrainer, LayerMatch, default_layer_matches, distillation_kl
from trainers.distillation import (
    check_attention_distillation,
    recorded_projections,
    relation_kl,
    relation_log_probs,
)

NUM_LABELS = len(LABELS)


pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # conftest: torch on one thread


def tiny_bert_without_dropout(seed: int = 0, **overrides) -> BertForTokenClassification:
    """Dropout off, so that train-mode forwards are deterministic and comparable across runs."""
    return make_tiny_bert(seed=seed, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **overrides)


def equal_length_features(num_sentences: int, length: int = 8, seed: int = 0) -> list[dict]:
    """Sentences of one length with the same labelled count each: every micro-batch averages over as many tokens.

    Positions 0 ([CLS]), 2 (a continuation subword) and the last ([SEP]) carry -100.
    """
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(num_sentences):
        input_ids = torch.randint(5, 99, (length,), generator=generator)
        input_ids[0], input_ids[-1] = 2, 3  # [CLS] ... [SEP]
        labels = torch.randint(0, NUM_LABELS, (length,), generator=generator)
        labels[[0, 2, length - 1]] = -100
        rows.append({"input_ids": input_ids.tolist(), "attention_mask": [1] * length, "labels": labels.tolist()})
    return rows


def varied_length_features(num_sentences: int, seed: int = 1) -> list[dict]:
    """Sentences of 5 to 8 subwords (so batches need padding), first and last position unlabelled."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for index in range(num_sentences):
        length = 5 + index % 4
        input_ids = [2] + torch.randint(5, 99, (length - 2,), generator=generator).tolist() + [3]
        labels = [-100] + torch.randint(0, NUM_LABELS, (length - 2,), generator=generator).tolist() + [-100]
        rows.append({"input_ids": input_ids, "attention_mask": [1] * length, "labels": labels})
    return rows


def training_args(output_dir, **overrides) -> DistillationArguments:
    settings = dict(output_dir=str(output_dir), use_cpu=True, report_to="none", save_strategy="no", logging_steps=1,
                    disable_tqdm=True, seed=0)
    settings.update(overrides)
    return DistillationArguments(**settings)


def sgd_args(output_dir, **overrides) -> DistillationArguments:
    """Plain SGD without clipping: unlike Adam's first step, the update is proportional to the gradient's scale."""
    return training_args(output_dir, optim="sgd", learning_rate=0.5, lr_scheduler_type="constant", max_grad_norm=0.0,
                         **overrides)


def training_logs(trainer) -> list[dict]:
    return [entry for entry in trainer.state.log_history if "loss" in entry]


# ----------------------------------------------------------------------------------------------------------------
# The KL term and label masking


def test_kl_is_zero_when_the_student_is_the_teacher():
    logits = torch.randn(2, 6, NUM_LABELS)  # (B, T, C)
    labels = torch.randint(0, NUM_LABELS, (2, 6))
    labels[:, 0] = -100
    for temperature in (1.0, 2.0, 4.0):
        assert distillation_kl(logits, logits.clone(), labels, temperature).abs().item() < 1e-6
    assert distillation_kl(logits, logits.flip(-1), labels, 2.0).item() > 0


def test_compute_loss_is_zero_when_the_student_is_the_teacher(tmp_path):
    teacher = tiny_bert_without_dropout(seed=1)
    student = copy.deepcopy(teacher)  # the same weights, but its own trainable parameters
    matches = [LayerMatch(teacher_layer=0, student_layer=0), LayerMatch(teacher_layer=2, student_layer=2)]
    trainer = DistillationTrainer(model=student, teacher_model=teacher, layer_matches=matches,
                                  args=training_args(tmp_path, alpha=0.0, temperature=3.0, hidden_loss_weight=1.0))
    assert not trainer.teacher.training
    assert not any(p.requires_grad for p in trainer.teacher.parameters())
    assert all(p.requires_grad for p in student.parameters())

    loss = trainer.compute_loss(student.train(), default_data_collator(equal_length_features(3)))
    assert loss.abs().item() < 1e-6
    assert trainer._loss_parts["loss_kl"][-1].abs().item() < 1e-6
    assert trainer._loss_parts["loss_hidden"][-1].abs().item() < 1e-6


def test_kl_ignores_positions_labelled_minus_100():
    student_logits = torch.randn(2, 7, NUM_LABELS)  # (B, T, C)
    teacher_logits = torch.randn(2, 7, NUM_LABELS)
    labels = torch.randint(0, NUM_LABELS, (2, 7))
    labels[:, [0, 3, 6]] = -100
    reference = distillation_kl(student_logits, teacher_logits, labels, 2.0)

    unlabelled = (labels == -100).unsqueeze(-1)  # (B, T, 1)
    noisy_student = torch.where(unlabelled, 50 * torch.randn_like(student_logits), student_logits)
    noisy_teacher = torch.where(unlabelled, 50 * torch.randn_like(teacher_logits), teacher_logits)
    torch.testing.assert_close(distillation_kl(noisy_student, noisy_teacher, labels, 2.0), reference)

    nothing_labelled = torch.full_like(labels, -100)
    assert distillation_kl(student_logits, teacher_logits, nothing_labelled, 2.0).item() == 0.0


def test_extra_padding_does_not_change_the_distillation_loss(tmp_path):
    """Padding carries label -100 and attention 0: CE, KL and the hidden-state term must all ignore it."""
    matches = [LayerMatch(teacher_layer=1, student_layer=1), LayerMatch(teacher_layer=2, student_layer=2)]
    student = tiny_bert_without_dropout(seed=0)
    trainer = DistillationTrainer(model=student, teacher_model=tiny_bert_without_dropout(seed=1), layer_matches=matches,
                                  args=training_args(tmp_path, alpha=0.3, hidden_loss_weight=0.5))
    rows = equal_length_features(2)
    padded = [
        {"input_ids": r["input_ids"] + [0] * 5, "attention_mask": r["attention_mask"] + [0] * 5,
         "labels": r["labels"] + [-100] * 5}
        for r in rows
    ]
    student.train()
    loss = trainer.compute_loss(student, default_data_collator(rows))
    parts = {name: values[-1] for name, values in trainer._loss_parts.items()}
    loss_padded = trainer.compute_loss(student, default_data_collator(padded))
    torch.testing.assert_close(loss_padded, loss, rtol=1e-5, atol=1e-6)
    for name, value in parts.items():
        torch.testing.assert_close(trainer._loss_parts[name][-1], value, rtol=1e-5, atol=1e-6)
    assert set(parts) == {"loss_ce", "loss_kl", "loss_hidden"}


# ----------------------------------------------------------------------------------------------------------------
# Gradient accumulation


def one_sgd_step(output_dir, distil: bool, batch_size: int, accumulation: int, **loss_weights):
    """One optimizer step over the same 4 sentences; returns the training log and the parameters after it."""
    student = tiny_bert_without_dropout(seed=0)
    args = sgd_args(output_dir, per_device_train_batch_size=batch_size, gradient_accumulation_steps=accumulation,
                    max_steps=1, **loss_weights)
    common = dict(model=student, args=args, train_dataset=equal_length_features(4), data_collator=default_data_collator)
    if distil:
        trainer = DistillationTrainer(teacher_model=tiny_bert_without_dropout(seed=1), **common)
    else:
        student.accepts_loss_kwargs = False  # as cli.steps.build_model sets it: BERT's loss is a plain mean
        trainer = Trainer(**common)
    trainer.train()
    return training_logs(trainer)[0], {k: v.detach().clone() for k, v in student.state_dict().items()}


@pytest.mark.parametrize(
    "distil, loss_weights",
    [(True, {}), (False, {}), (True, dict(attention_loss_weight=2.0, value_relation_weight=0.5))],
    ids=["DistillationTrainer", "Trainer-BERT", "DistillationTrainer-attention"],
)
def test_logged_loss_and_update_do_not_depend_on_gradient_accumulation(tmp_path, distil, loss_weights):
    log_1, params_1 = one_sgd_step(tmp_path / "ga1", distil, batch_size=4, accumulation=1, **loss_weights)
    log_2, params_2 = one_sgd_step(tmp_path / "ga2", distil, batch_size=2, accumulation=2, **loss_weights)

    assert log_2["loss"] == pytest.approx(log_1["loss"], rel=1e-5)
    if distil:
        parts = ["loss_ce", "loss_kl"] + ["loss_attention", "loss_value_relation"] * bool(loss_weights)
        for part in parts:
            assert log_2[part] == pytest.approx(log_1[part], abs=2e-4), part
            assert log_1[part] > 0  # the teacher differs from the student: the test exercises every term
    initial = tiny_bert_without_dropout(seed=0).state_dict()
    assert not torch.allclose(params_1["classifier.weight"], initial["classifier.weight"])
    for name, value in params_1.items():
        torch.testing.assert_close(params_2[name], value, rtol=1e-4, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")


# ----------------------------------------------------------------------------------------------------------------
# Attention relations (MiniLM): --attention_loss_weight and --value_relation_weight


def attention_args(output_dir, **overrides) -> DistillationArguments:
    settings = dict(alpha=0.5, attention_loss_weight=1.0, value_relation_weight=1.0)
    settings.update(overrides)
    return training_args(output_dir, **settings)


def relation_parts(trainer) -> dict[str, float]:
    return {part: trainer._loss_parts[part][-1].item() for part in ("loss_attention", "loss_value_relation")}


def padded_batch(length: int = 8, pad: int = 0, seed: int = 0, pad_ids: list[int] | None = None) -> dict:
    """Two sentences of ``length`` subwords plus ``pad`` padded positions holding ``pad_ids`` (default [PAD])."""
    rows = equal_length_features(2, length=length, seed=seed)
    for row in rows:
        ids = pad_ids if pad_ids is not None else [0] * pad
        row.update(input_ids=row["input_ids"] + ids, attention_mask=row["attention_mask"] + [0] * pad,
                   labels=row["labels"] + [-100] * pad)
    return default_data_collator(rows)


def test_recorded_attention_is_berts_own_attention_distribution():
    """softmax(Q Kᵀ/√d) from the recorded projections equals eager BERT's output_attentions, padding included."""
    model = tiny_bert_without_dropout(seed=3)
    model.set_attn_implementation("eager")
    batch = padded_batch(length=6, pad=3)
    with recorded_projections(model) as records:
        attentions = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           output_attentions=True).attentions
    assert len(records["query"]) == len(attentions) == 2
    for query, key, expected in zip(records["query"], records["key"], attentions):
        got = relation_log_probs(query, key, batch["attention_mask"].bool(), num_heads=4).exp()  # (B, h, T, T)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert (got[..., 6:] == 0).all()  # no weight on padded keys
    projections = [getattr(module, name) for module in model.modules() if isinstance(module, BertSelfAttention)
                   for name in ("query", "key", "value")]
    assert not any(projection._forward_hooks for projection in projections)  # the hooks are gone after the block


@pytest.mark.parametrize("model_type", sorted(TINY_MODEL_BUILDERS))
def test_every_model_type_records_each_applied_layer(model_type):
    """Shared layers run one module N times: each run is recorded, so every layer has its own attention."""
    teacher = tiny_bert_without_dropout(seed=4)
    model = TINY_MODEL_BUILDERS[model_type](teacher).eval()
    batch = padded_batch(length=6, pad=2)
    with torch.no_grad(), recorded_projections(model, ("query", "key", "value")) as records:
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    layers = model.config.num_hidden_layers
    assert [len(records[name]) for name in ("query", "key", "value")] == [layers] * 3
    distributions = [relation_log_probs(q, k, batch["attention_mask"].bool(), model.config.num_attention_heads).exp()
                     for q, k in zip(records["query"], records["key"])]
    for probs in distributions:  # (B, h, T, T): rows sum to 1 over the real keys
        torch.testing.assert_close(probs.sum(-1), torch.ones_like(probs.sum(-1)))
    if layers > 1:  # the second layer sees the first one's output, not its input again
        assert not torch.allclose(distributions[0], distributions[1])


def test_shared_layers_record_the_attention_of_the_bert_they_equal():
    """A BERT whose two layers are equal, shared as one (attention+FFN): per layer, the same attention as eager BERT."""
    teacher = tiny_bert_without_dropout(seed=5)
    teacher.bert.encoder.layer[1].load_state_dict(teacher.bert.encoder.layer[0].state_dict())
    shared = recipes.compress(teacher, "shared_ffn", share_init="layer:0").eval()
    teacher.set_attn_implementation("eager")
    batch = padded_batch(length=7, pad=1)
    with torch.no_grad(), recorded_projections(shared) as records:
        shared_logits = shared(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        expected = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           output_attentions=True)
    torch.testing.assert_close(shared_logits, expected.logits, rtol=1e-5, atol=1e-5)
    for query, key, attention in zip(records["query"], records["key"], expected.attentions, strict=True):
        got = relation_log_probs(query, key, batch["attention_mask"].bool(), num_heads=4).exp()
        torch.testing.assert_close(got, attention, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model_type", ["bert", "shared_ffn", "combined"])
def test_attention_kl_is_zero_when_the_student_is_the_teacher_and_positive_otherwise(tmp_path, model_type):
    teacher = TINY_MODEL_BUILDERS[model_type](tiny_bert_without_dropout(seed=1))
    batch = padded_batch(pad=3)
    same = DistillationTrainer(model=copy.deepcopy(teacher), teacher_model=teacher, args=attention_args(tmp_path))
    same.compute_loss(same.model.train(), batch)
    assert all(abs(value) < 1e-6 for value in relation_parts(same).values())

    student = TINY_MODEL_BUILDERS[model_type](tiny_bert_without_dropout(seed=2))
    other = DistillationTrainer(model=student, teacher_model=teacher, args=attention_args(tmp_path))
    loss = other.compute_loss(student.train(), batch)
    parts = relation_parts(other)
    assert all(value > 0 for value in parts.values()), parts
    plain = DistillationTrainer(model=student, teacher_model=teacher, args=training_args(tmp_path, alpha=0.5))
    without = plain.compute_loss(student, batch)
    torch.testing.assert_close(loss, without + parts["loss_attention"] + parts["loss_value_relation"])
    loss.backward()  # the attention terms reach the student's query and key projections
    query = next(module.query for module in student.modules() if isinstance(module, BertSelfAttention))
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in query.parameters())


def test_attention_terms_give_the_same_gradients_with_gradient_checkpointing(tmp_path):
    """The recorded projections stay in the graph when checkpointed layers are recomputed in the backward pass."""
    grads = []
    for checkpointing in (False, True):
        student = TINY_MODEL_BUILDERS["shared_ffn"](tiny_bert_without_dropout(seed=2))
        if checkpointing:
            student.gradient_checkpointing_enable()
        trainer = DistillationTrainer(model=student, teacher_model=tiny_bert_without_dropout(seed=1),
                                      args=attention_args(tmp_path, alpha=1.0))  # CE and the attention terms
        trainer.compute_loss(student.train(), padded_batch(pad=2)).backward()
        grads.append(student.bert.encoder.shared_layer.attention.self.key.weight.grad)
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[1], grads[0])


def test_padding_content_and_extra_padding_do_not_change_the_attention_terms(tmp_path):
    student, teacher = tiny_bert_without_dropout(seed=0), tiny_bert_without_dropout(seed=1)
    trainer = DistillationTrainer(model=student, teacher_model=teacher, args=attention_args(tmp_path))
    student.train()
    trainer.compute_loss(student, padded_batch())
    reference = relation_parts(trainer)
    for batch in (padded_batch(pad=5), padded_batch(pad=5, pad_ids=[17, 40, 3, 98, 5]), padded_batch(pad=1)):
        trainer.compute_loss(student, batch)
        assert relation_parts(trainer) == pytest.approx(reference, rel=1e-5, abs=1e-7)


def test_relation_kl_ignores_padded_query_rows_and_key_columns():
    mask = torch.tensor([[True] * 5 + [False] * 2, [True] * 7])  # (B, T)
    student, teacher = torch.randn(2, 4, 7, 5), torch.randn(2, 4, 7, 5)
    student = relation_log_probs(student.flatten(2).view(2, 7, -1), student.flatten(2).view(2, 7, -1), mask, 4)
    teacher = relation_log_probs(teacher.flatten(2).view(2, 7, -1), teacher.flatten(2).view(2, 7, -1), mask, 4)
    reference = relation_kl(student, teacher, mask)
    assert reference > 0
    padded = ~mask[:, None, :, None] | ~mask[:, None, None, :]  # (B, 1, T, T): a padded query or key
    noisy_student = torch.where(padded, 30 * torch.randn_like(student), student)
    noisy_teacher = torch.where(padded, 30 * torch.randn_like(teacher), teacher)
    torch.testing.assert_close(relation_kl(noisy_student, noisy_teacher, mask), reference)
    # The mean is over real (row, head, query) triples: 5 + 7 real queries per head.
    kl_rows = (teacher.exp() * (teacher - student)).masked_fill(~mask[:, None, None, :], 0).sum(-1)  # (B, h, T)
    torch.testing.assert_close(reference, (kl_rows[0, :, :5].sum() + kl_rows[1].sum()) / (4 * 12))


def test_other_head_counts_compare_head_averaged_distributions(tmp_path):
    teacher = tiny_bert_without_dropout(seed=1)  # 4 heads of 8
    student = tiny_bert_without_dropout(seed=2, num_attention_heads=2)  # 2 heads of 16
    trainer = DistillationTrainer(model=student, teacher_model=teacher, args=attention_args(tmp_path))
    trainer.compute_loss(student.train(), padded_batch(pad=2))
    assert all(0 < value < float("inf") for value in relation_parts(trainer).values())

    mask = torch.ones(1, 3, dtype=torch.bool)
    four = torch.randn(1, 4, 3, 3).log_softmax(-1)  # (B, h, T, T)
    averaged = four.exp().mean(1, keepdim=True).log()  # one distribution: the mean of the four heads
    two = torch.randn(1, 2, 3, 3).log_softmax(-1)
    expected = relation_kl(two.exp().mean(1, keepdim=True).log(), averaged, mask)
    torch.testing.assert_close(relation_kl(two, four, mask), expected)


@pytest.mark.parametrize(
    "teacher_layers, student_layers, expected",
    [(4, 2, [(2, 1), (4, 2)]), (2, 2, [(1, 1), (2, 2)]), (2, 3, [(1, 1), (1, 2), (2, 3)]), (6, 1, [(6, 1)])],
)
def test_attention_layers_are_matched_as_the_hidden_states_are(teacher_layers, student_layers, expected):
    teacher = tiny_bert_config(num_hidden_layers=teacher_layers)
    student = tiny_bert_config(num_hidden_layers=student_layers)
    matches = check_attention_distillation(student, teacher, attention_loss_weight=1.0)
    assert [(m.teacher_layer, m.student_layer) for m in matches] == expected
    assert matches == default_layer_matches(teacher_layers, student_layers)


def test_a_teacher_too_shallow_to_map_is_refused_naming_the_flag(tmp_path):
    teacher, student = make_tiny_bert(seed=1, num_hidden_layers=1), make_tiny_bert(num_hidden_layers=3)
    line = r"^--attention_loss_weight 0.5: the student's 3 layers cannot be matched to the teacher's 1 .*embeddings"
    with pytest.raises(ValueError, match=line):
        check_attention_distillation(student.config, teacher.config, 0.5)
    with pytest.raises(ValueError, match=line):
        DistillationTrainer(model=student, teacher_model=teacher,
                            args=attention_args(tmp_path, attention_loss_weight=0.5))
    with pytest.raises(ValueError, match="^--value_relation_weight 2.0: "):
        check_attention_distillation(student.config, teacher.config, 0.0, value_relation_weight=2.0)
    assert check_attention_distillation(student.config, teacher.config, 0.0) == []  # off: nothing to map


@pytest.mark.parametrize("flag", ["attention_loss_weight", "value_relation_weight"])
@pytest.mark.parametrize("value", [-0.5, float("nan"), float("inf")])
def test_bad_attention_weights_are_refused_naming_the_flag(tmp_path, flag, value):
    with pytest.raises(ValueError, match=f"^--{flag} {value} must be (a finite number )?>= 0$"):
        training_args(tmp_path, **{flag: value})


def test_weights_of_zero_record_nothing(tmp_path, monkeypatch):
    """Existing runs pay nothing: no hooks, no extra parts, the loss as before."""
    import trainers.distillation

    def refuse(*args, **kwargs):
        raise AssertionError("recorded_projections must not run when both attention weights are 0")

    monkeypatch.setattr(trainers.distillation, "recorded_projections", refuse)
    student, teacher = tiny_bert_without_dropout(seed=0), tiny_bert_without_dropout(seed=1)
    trainer = DistillationTrainer(model=student, teacher_model=teacher, args=training_args(tmp_path))
    trainer.compute_loss(student.train(), padded_batch(pad=2))
    assert set(trainer._loss_parts) == {"loss_ce", "loss_kl"}
    assert trainer.attention_matches == []


def test_attention_parts_are_logged_in_a_short_run(tmp_path):
    teacher = make_tiny_bert(seed=1)
    student = make_tiny_bert(seed=2, num_hidden_layers=1)  # random, not built from the teacher: the terms are not ~0
    args = attention_args(tmp_path, per_device_train_batch_size=4, max_steps=3, learning_rate=1e-2,
                          attention_loss_weight=2.0, value_relation_weight=0.5)
    trainer = DistillationTrainer(model=student, teacher_model=teacher, args=args,
                                  train_dataset=equal_length_features(8, seed=3), data_collator=default_data_collator)
    assert trainer.attention_matches == [LayerMatch(teacher_layer=2, student_layer=1)]
    trainer.train()
    logs = training_logs(trainer)
    assert len(logs) == 3
    for entry in logs:
        combined = (0.5 * entry["loss_ce"] + 0.5 * entry["loss_kl"] + 2.0 * entry["loss_attention"]
                    + 0.5 * entry["loss_value_relation"])
        assert entry["loss"] == pytest.approx(combined, abs=1e-3)
        assert entry["loss_attention"] > 0 and entry["loss_value_relation"] > 0


# ----------------------------------------------------------------------------------------------------------------
# Attention relations with a transfer set: the labelled rows only


@pytest.fixture
def transfer_batch(tmp_path):
    """4 transfer rows (cached targets of the teacher, seed 1) then 3 labelled rows, padded to one length."""
    from trainers.ner_data import read_conll, tokenize_and_align
    from trainers.transfer import TransferCollator, TransferPool, load_or_build_targets, read_transfer_sentences

    tokenizer = make_tiny_tokenizer(tmp_path / "tokenizer")
    path = tmp_path / "transfer.txt"
    path.write_text("The bank said on Monday it rose.\nJohn met the team at the lake port.\n"
                    "Shares rose 5 pct in talks after the cup.\nRain in the port of the lake.\n")
    teacher = tiny_bert_without_dropout(seed=1)
    sentences = read_transfer_sentences([str(path)], tokenizer)
    targets = load_or_build_targets(teacher, tokenizer, sentences, [str(path)], 64, None, str(tmp_path / "cache"))
    pool = TransferPool.build(sentences, targets, tokenizer, 64)
    labelled = tokenize_and_align(read_conll(str(DEMO_DIR / "demo_train.txt"))[:3], tokenizer,
                                  {label: i for i, label in enumerate(LABELS)}, 64)
    batch = TransferCollator(tokenizer, pad_to_multiple_of=8)([pool.item(i) for i in range(len(pool))] + labelled)
    assert batch["is_transfer"].tolist() == [True] * 4 + [False] * 3
    return teacher, batch


def test_attention_terms_of_a_mixed_batch_cover_its_labelled_rows(tmp_path, transfer_batch):
    teacher, batch = transfer_batch
    student = tiny_bert_without_dropout(seed=2).train()
    trainer = DistillationTrainer(model=student, teacher_model=teacher, args=attention_args(tmp_path))
    trainer.compute_loss(student, dict(batch))
    mixed = relation_parts(trainer)
    assert all(value > 0 for value in mixed.values())
    labelled = {k: batch[k][4:] for k in ("input_ids", "attention_mask", "token_type_ids", "labels")}
    trainer.compute_loss(student, labelled)  # the labelled rows alone, as a plain batch
    assert relation_parts(trainer) == pytest.approx(mixed, rel=1e-5)


def test_a_batch_of_transfer_rows_only_has_no_attention_terms(tmp_path, transfer_batch):
    """Cached targets hold no attentions: such a batch adds none, and the parts' logged means skip it."""
    teacher, batch = transfer_batch
    only_transfer = {k: v[:4] for k, v in batch.items()}
    student = tiny_bert_without_dropout(seed=2).train()
    trainer = DistillationTrainer(model=student, teacher_model=teacher, args=attention_args(tmp_path))
    loss = trainer.compute_loss(student, dict(only_transfer))
    assert all(torch.isnan(trainer._loss_parts[part][-1]) for part in ("loss_attention", "loss_value_relation"))
    plain = DistillationTrainer(model=student, teacher_model=teacher, args=training_args(tmp_path, alpha=0.5))
    torch.testing.assert_close(loss, plain.compute_loss(student, dict(only_transfer)))


def test_cached_and_live_targets_give_the_same_attention_terms(tmp_path, transfer_batch):
    teacher, batch = transfer_batch
    student = tiny_bert_without_dropout(seed=2).train()
    results = {}
    for mode in ("cached", "live"):
        trainer = DistillationTrainer(model=student, teacher_model=teacher, transfer_targets=mode,
                                      args=attention_args(tmp_path))
        results[mode] = trainer.compute_loss(student, dict(batch)).item(), relation_parts(trainer)
    assert results["live"][1] == pytest.approx(results["cached"][1], rel=1e-5)
    assert results["live"][0] == pytest.approx(results["cached"][0], rel=1e-3)  # fp16 cache: the only difference


# ----------------------------------------------------------------------------------------------------------------
# A short distillation run


@pytest.fixture(scope="module")
def distilled_run(tmp_path_factory):
    """Ten steps of a 1-layer student (built from the teacher) on 8 sentences; the trainer after training."""
    teacher = make_tiny_bert(seed=1)
    student = modeling.build_student(teacher, num_layers=1)
    args = training_args(tmp_path_factory.mktemp("distil"), per_device_train_batch_size=8, max_steps=10,
                         learning_rate=1e-2, alpha=0.5, temperature=2.0)
    trainer = DistillationTrainer(model=student, teacher_model=teacher, args=args,
                                  train_dataset=equal_length_features(8, seed=3), data_collator=default_data_collator)
    trainer.train()
    return trainer


def test_distillation_lowers_the_loss(distilled_run):
    logs = training_logs(distilled_run)
    assert len(logs) == 10
    assert logs[-1]["loss"] < 0.9 * logs[0]["loss"]
    assert not distilled_run.teacher.training


def test_loss_parts_are_logged(distilled_run):
    args = distilled_run.args
    for entry in training_logs(distilled_run):
        assert {"loss_ce", "loss_kl"} <= entry.keys()
        assert "loss_hidden" not in entry  # hidden_loss_weight is 0
        combined = args.alpha * entry["loss_ce"] + (1 - args.alpha) * entry["loss_kl"]
        assert entry["loss"] == pytest.approx(combined, abs=1e-3)
    assert training_logs(distilled_run)[-1]["loss_kl"] > 0


@pytest.mark.parametrize(
    "teacher_labels",
    [list(reversed(LABELS)), LABELS[:5]],
    ids=["same-labels-other-order", "fewer-labels"],
)
def test_teacher_with_another_label_map_is_refused_before_training(tmp_path, teacher_labels):
    teacher = make_tiny_bert(num_labels=len(teacher_labels), id2label=dict(enumerate(teacher_labels)),
                             label2id={label: i for i, label in enumerate(teacher_labels)})
    with pytest.raises(ValueError, match="teacher and student label maps differ.*id2label"):
        DistillationTrainer(model=make_tiny_bert(), teacher_model=teacher, args=training_args(tmp_path),
                            train_dataset=equal_length_features(2))


def test_hidden_loss_weight_without_matches_matches_by_relative_depth(tmp_path):
    teacher = make_tiny_bert(seed=1, num_hidden_layers=4)
    student = modeling.build_student(teacher, num_layers=2)
    trainer = DistillationTrainer(model=student, teacher_model=teacher, train_dataset=equal_length_features(4),
                                  data_collator=default_data_collator,
                                  args=training_args(tmp_path, hidden_loss_weight=1.0, per_device_train_batch_size=2,
                                                     max_steps=3, logging_steps=2))
    assert trainer.layer_matches == [LayerMatch(teacher_layer=2, student_layer=1),
                                     LayerMatch(teacher_layer=4, student_layer=2)]
    trainer.train()
    (entry,) = training_logs(trainer)
    assert entry["loss_hidden"] > 0 and entry["step"] == 2
    assert not trainer._loss_parts  # step 3 was never logged: it must not leak into a later train()


def test_layer_match_out_of_range_is_refused(tmp_path):
    with pytest.raises(ValueError, match="out of range.*teacher has layers 0..2"):
        DistillationTrainer(model=make_tiny_bert(), teacher_model=make_tiny_bert(seed=1),
                            layer_matches=[LayerMatch(teacher_layer=3, student_layer=1)],
                            args=training_args(tmp_path, hidden_loss_weight=1.0))


# ----------------------------------------------------------------------------------------------------------------
# Students built from a teacher


def test_evenly_spaced_layers_keep_first_and_last():
    from modeling.student import evenly_spaced_layers

    assert evenly_spaced_layers(6, 3) == [0, 3, 5]
    assert evenly_spaced_layers(12, 6) == [0, 2, 4, 7, 9, 11]
    assert evenly_spaced_layers(4, 4) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="student_num_layers=7"):
        evenly_spaced_layers(6, 7)


@pytest.mark.parametrize("hidden_size", [None, 32], ids=["default-width", "teacher-width-given"])
def test_build_student_copies_the_chosen_teacher_layers(hidden_size):
    teacher = make_tiny_bert(num_hidden_layers=6)
    student = modeling.build_student(teacher, num_layers=3, hidden_size=hidden_size)

    assert student.config.num_hidden_layers == 3
    assert student.config.intermediate_size == teacher.config.intermediate_size
    assert student.config.id2label == teacher.config.id2label
    for own, index in zip(student.bert.encoder.layer, [0, 3, 5]):
        theirs = teacher.bert.encoder.layer[index].state_dict()
        for name, value in own.state_dict().items():
            torch.testing.assert_close(value, theirs[name], rtol=0, atol=0)
    for module in ("bert.embeddings", "classifier"):
        theirs = teacher.get_submodule(module).state_dict()
        for name, value in student.get_submodule(module).state_dict().items():
            torch.testing.assert_close(value, theirs[name], rtol=0, atol=0)
    assert modeling.count_unique_parameters(student) < modeling.count_unique_parameters(teacher)


def test_build_student_with_a_smaller_hidden_size_starts_from_random_weights():
    teacher = make_tiny_bert()
    student = modeling.build_student(teacher, num_layers=1, hidden_size=16).eval()

    assert (student.config.hidden_size, student.config.intermediate_size) == (16, 64)
    assert student.config.id2label == teacher.config.id2label
    input_ids = torch.randint(5, 99, (2, 7))
    with torch.no_grad():
        assert student(input_ids=input_ids).logits.shape == (2, 7, NUM_LABELS)
    assert modeling.count_unique_parameters(student) < modeling.count_unique_parameters(teacher)


# ----------------------------------------------------------------------------------------------------------------
# Two processes on CPU


def labelled_by(model, rows: list[dict]) -> list[dict]:
    """The rows with ``model``'s predictions as labels (where labelled): the entity scores are then not all zero."""
    labelled = []
    with torch.no_grad():
        for row in rows:
            predicted = model.eval()(input_ids=torch.tensor([row["input_ids"]])).logits.argmax(-1)[0].tolist()
            labels = [p if label != -100 else -100 for p, label in zip(predicted, row["labels"])]
            labelled.append(dict(row, labels=labels))
    return labelled


def distil_then_predict(model_dir: str, result_file: str) -> None:
    """Two SGD distillation steps over 4 sentences (4 per step in all), then predict 7 padded sentences.

    Training comes first: in this transformers/accelerate pair, an ``evaluate()`` before ``train()`` marks the model
    as prepared, and training then runs without DDP (each process keeps its own gradients).
    """
    from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification

    from trainers.metrics import build_compute_metrics

    student = AutoModelForTokenClassification.from_pretrained(model_dir, hidden_dropout_prob=0.0,
                                                              attention_probs_dropout_prob=0.0)
    student.accepts_loss_kwargs = False
    teacher = tiny_bert_without_dropout(seed=1)
    args = sgd_args(os.path.join(os.path.dirname(result_file), "out"), per_device_eval_batch_size=2, max_steps=2)
    args.per_device_train_batch_size = 4 // args.world_size
    trainer = DistillationTrainer(
        model=student, teacher_model=teacher, args=args, train_dataset=equal_length_features(4),
        data_collator=DataCollatorForTokenClassification(AutoTokenizer.from_pretrained(model_dir)),
        compute_metrics=build_compute_metrics(student.config.id2label),
    )
    trainer.train()
    prediction = trainer.predict(labelled_by(teacher, varied_length_features(7)))
    if trainer.is_world_process_zero():
        trained = trainer.accelerator.unwrap_model(trainer.model)
        torch.save(
            {"world_size": args.world_size, "metrics": prediction.metrics, "logs": training_logs(trainer),
             "predictions": prediction.predictions, "label_ids": prediction.label_ids,
             "teacher": (type(trainer.teacher).__name__, trainer.teacher.training),
             "state": {k: v.detach().clone() for k, v in trained.state_dict().items()}},
            result_file,
        )


def launched(model_dir: str, result_file: str) -> None:
    """The body of each forked process of ``accelerate.debug_launcher``."""
    from accelerate.state import AcceleratorState

    # A child forked after the parent ran OpenMP threads hangs in its first parallel kernel; with OMP_NUM_THREADS
    # set, accelerate does not raise the thread count again when it sets up the process group.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    AcceleratorState._reset_state(reset_partial_state=True)  # the fork copied the parent's single-process state
    distil_then_predict(model_dir, result_file)


def test_two_cpu_processes_match_a_single_process(tmp_path):
    from accelerate import debug_launcher

    make_tiny_bert(tmp_path / "tiny-bert", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model_dir = str(tmp_path / "tiny-bert")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    distil_then_predict(model_dir, str(tmp_path / "one" / "result.pt"))
    debug_launcher(launched, args=(model_dir, str(tmp_path / "two" / "result.pt")), num_processes=2)

    one = torch.load(tmp_path / "one" / "result.pt", weights_only=False)
    two = torch.load(tmp_path / "two" / "result.pt", weights_only=False)
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert two["teacher"] == ("BertForTokenClassification", False)  # never wrapped for DDP, still in eval mode

    assert len(two["logs"]) == len(one["logs"]) == 2
    for log_one, log_two in zip(one["logs"], two["logs"]):
        for key in ("loss", "loss_ce", "loss_kl"):
            assert log_two[key] == pytest.approx(log_one[key], abs=2e-4), key
    for name, value in one["state"].items():
        torch.testing.assert_close(two["state"][name], value, rtol=1e-4, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")

    # The gathered predictions hold each sentence once (the one repeated to fill the last process is dropped).
    assert two["label_ids"].shape[0] == one["label_ids"].shape[0] == 7
    labelled = one["label_ids"] != -100
    assert (two["label_ids"][labelled] == one["label_ids"][labelled]).all()
    torch.testing.assert_close(torch.from_numpy(two["predictions"][labelled]),
                               torch.from_numpy(one["predictions"][labelled]), rtol=1e-4, atol=1e-5)
    # test_loss is a mean of per-batch means, so only the entity scores must agree.
    scores = {k: v for k, v in one["metrics"].items() if k.endswith(("precision", "recall", "f1"))}
    assert 0 < scores["test_f1"] <= 1
    assert {k: two["metrics"][k] for k in scores} == pytest.approx(scores, abs=1e-9)


# ----------------------------------------------------------------------------------------------------------------
# The entry script


def script_args(model_dir, output_dir, *extra) -> list[str]:
    return [
        "--model_name_or_path", str(model_dir), "--output_dir", str(output_dir),
        "--train_file", str(DEMO_DIR / "demo_train.txt"), "--validation_file", str(DEMO_DIR / "demo_validation.txt"),
        "--test_file", str(DEMO_DIR / "demo_test.txt"),
        "--max_train_samples", "16", "--max_eval_samples", "8", "--max_predict_samples", "8", "--max_seq_length", "64",
        "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8", "--max_steps", "2",
        "--learning_rate", "1e-3", "--use_cpu", "--report_to", "none", "--save_strategy", "no",
        "--disable_tqdm", "true",
        *extra,
    ]


def test_student_without_teacher_fine_tunes_one_first_and_reuses_it(tmp_path, tiny_bert_dir, caplog):
    from run_ner_compress import main

    base = tmp_path / "base"  # a base model (no NER head): the teacher is fine-tuned from it first
    make_tiny_bert().bert.save_pretrained(base)
    make_tiny_tokenizer(base)
    output_dir = tmp_path / "student"
    argv = script_args(base, output_dir, "--model_type", "student", "--student_num_layers", "1")
    with caplog.at_level(logging.INFO, logger="run_ner_compress"):
        results = main(argv)
    teacher_dir = output_dir / "teacher"
    teacher_results = json.loads((teacher_dir / "results.json").read_text())
    assert teacher_results["model_type"] == "finetune" and "test_f1" in teacher_results
    assert "fine-tuning a teacher" in caplog.text

    written = json.loads((output_dir / "results.json").read_text())
    assert written == json.loads(json.dumps(results, default=str))
    assert written["distilled"] is True
    assert written["teacher_path"] == str(teacher_dir)
    assert written["teacher_num_parameters"] == teacher_results["num_parameters"]
    assert written["teacher_test_f1"] == teacher_results["test_f1"]
    teacher_f1 = teacher_results["test_f1"]  # a 2-step tiny teacher may well score 0: retention is then undefined
    assert written["f1_retention"] == (round(written["test_f1"] / teacher_f1, 4) if teacher_f1 else None)
    assert written["num_parameters"] < written["teacher_num_parameters"]
    assert written["compression"]["student_num_layers"] == 1

    teacher_files = {p.name: p.stat().st_mtime_ns for p in teacher_dir.iterdir()}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="run_ner_compress"):
        again = main(argv)
    assert "reusing the teacher" in caplog.text and "fine-tuning a teacher" not in caplog.text
    assert {p.name: p.stat().st_mtime_ns for p in teacher_dir.iterdir()} == teacher_files
    assert again["teacher_test_f1"] == teacher_results["test_f1"]


def test_teacher_path_turns_on_distillation_for_a_compressed_model(tmp_path, tiny_bert_dir):
    from run_ner_compress import main

    output_dir = tmp_path / "shared"
    results = main(script_args(tiny_bert_dir, output_dir, "--model_type", "shared_ffn",
                               "--teacher_name_or_path", str(tiny_bert_dir), "--temperature", "3", "--alpha", "0.25"))
    written = json.loads((output_dir / "results.json").read_text())
    assert results["distilled"] is written["distilled"] is True
    assert (written["temperature"], written["alpha"]) == (3.0, 0.25)
    assert written["teacher_path"] == str(tiny_bert_dir)
    assert written["num_parameters"] < written["teacher_num_parameters"]
    assert "validation_f1" in written and "test_f1" in written
