"""Layer groups (``num_shared_groups``) and relaxed sharing (``share_delta_rank``, ``share_delta_init``).

Save/reload, the Auto classes, ``trust_remote_code`` and one Trainer step run for these types in the table of
test_modeling.py; ONNX, int8 and vocabulary pruning in the tables of test_export.py and test_vocab_pruning.py.
Here: the exactness checks, the parameter counts, the starts and the bad-input errors.
"""

from __future__ import annotations

import re

import pytest
import torch
from transformers import BertForTokenClassification

from conftest import make_tiny_bert, tiny_bert_config
from modeling import CompressedBertForTokenClassification, SharedBertForTokenClassification, count_unique_parameters
from modeling.relaxed_sharing import RelaxedLinear, SharedDenseWeights
from test_modeling import tiny_inputs

H, I, N, LABELS = 32, 37, 2, 9  # the tiny teacher: hidden 32, intermediate 37, 2 layers, 9 labels


def logits(model):
    with torch.no_grad():
        return model.eval()(**tiny_inputs()).logits


@pytest.mark.parametrize("share", ["attention", "attention_ffn"])
@pytest.mark.parametrize("groups, share_init", [(1, "layer:1"), (1, "mean"), (2, "layer:0")])
def test_relaxed_sharing_at_full_rank_with_the_svd_start_is_the_source(share, groups, share_init):
    source = make_tiny_bert(seed=3)
    full = H  # min(in, out) over the shared dense layers: 32 (the 32×37 FFN layers included)
    model = CompressedBertForTokenClassification.from_bert(
        source, share_mode=share, share_init=share_init, num_shared_groups=groups, share_delta_rank=full,
        share_delta_init="svd")
    torch.testing.assert_close(logits(model), logits(source), rtol=1e-4, atol=1e-4)


def test_relaxed_sharing_at_full_rank_stays_exact_with_full_rank_pairs_in_the_shared_layer():
    source = make_tiny_bert(seed=3)
    model = CompressedBertForTokenClassification.from_bert(
        source, share_mode="attention_ffn", share_delta_rank=H, share_delta_init="svd", rank=H)
    assert all(name.startswith("encoder.shared_layer.") for name in model.config.low_rank_ranks)
    torch.testing.assert_close(logits(model), logits(source), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("share", ["attention", "attention_ffn"])
def test_as_many_groups_as_layers_is_the_source(share):
    source = make_tiny_bert(seed=3)
    model = SharedBertForTokenClassification.from_bert(source, share_mode=share, num_shared_groups=N, share_init="layer:0")
    torch.testing.assert_close(logits(model), logits(source), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=re.escape("share_init='layer:1' must be 'mean' or 'layer:K' with 0 <= K < 1")):
        SharedBertForTokenClassification.from_bert(source, share_mode=share, num_shared_groups=N, share_init="layer:1")


@pytest.mark.parametrize("relaxed", [0, 4])
def test_each_group_starts_from_its_own_run(relaxed):
    source = make_tiny_bert(num_hidden_layers=6)  # three groups of two layers: runs 0-1, 2-3, 4-5
    model = SharedBertForTokenClassification.from_bert(source, share_mode="attention_ffn", num_shared_groups=3,
                                                       share_init="layer:1", share_delta_rank=relaxed)
    encoder, layers = model.bert.encoder, source.bert.encoder.layer
    assert [encoder.group_of(i) for i in range(6)] == [0, 0, 1, 1, 2, 2]
    for group, picked in enumerate((1, 3, 5)):  # layer:1 is the second layer of each run
        shared = encoder.shared_layer[group].intermediate.dense.weight
        assert torch.equal(shared, layers[picked].intermediate.dense.weight)
    mean = SharedBertForTokenClassification.from_bert(source, share_mode="attention_ffn", num_shared_groups=3,
                                                      share_init="mean", share_delta_rank=relaxed)
    expected = (layers[2].attention.self.key.weight + layers[3].attention.self.key.weight) / 2
    torch.testing.assert_close(mean.bert.encoder.shared_layer[1].attention.self.key.weight, expected)


@pytest.mark.parametrize("share_init", ["layer:1", "mean"])
def test_the_zero_start_and_rank_0_are_plain_sharing(share_init):
    source = make_tiny_bert(seed=3)
    plain = SharedBertForTokenClassification.from_bert(source, share_mode="attention_ffn", share_init=share_init)
    zero = SharedBertForTokenClassification.from_bert(source, share_mode="attention_ffn", share_init=share_init,
                                                      share_delta_rank=4, share_delta_init="zero")
    assert zero.config.share_delta_init == "zero" and zero.config.share_delta_rank == 4
    torch.testing.assert_close(logits(zero), logits(plain), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(logits(zero), logits(source), atol=1e-3)  # and that is not the source

    rank_0 = SharedBertForTokenClassification.from_bert(source, share_mode="attention_ffn", share_init=share_init,
                                                        share_delta_rank=0, share_delta_init="svd")
    assert rank_0.config.share_delta_init is None  # nothing started, nothing recorded
    assert rank_0.state_dict().keys() == plain.state_dict().keys()
    assert torch.equal(logits(rank_0), logits(plain))


def test_the_zero_start_trains_its_corrections():
    source = make_tiny_bert(seed=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = SharedBertForTokenClassification.from_bert(source, share_mode="attention_ffn", share_delta_rank=4,
                                                       share_delta_init="zero").train()
    model(**tiny_inputs(), labels=torch.zeros(2, 7, dtype=torch.long)).loss.backward()
    for i, layer in enumerate(model.bert.encoder.layer):
        for name, module in layer.named_modules():
            if isinstance(module, RelaxedLinear):
                assert not module.delta.up.weight.any(), f"layer {i} {name}: B_i must start at 0"
                assert module.delta.up.weight.grad.abs().sum() > 0, f"layer {i} {name}: B_i gets no gradient"


def test_the_svd_start_keeps_a_trainable_correction_where_the_residual_is_zero():
    source = make_tiny_bert(seed=3)
    model = SharedBertForTokenClassification.from_bert(source, share_mode="attention_ffn", share_init="layer:1",
                                                       share_delta_rank=4, share_delta_init="svd")
    picked = model.bert.encoder.layer[1].attention.self.query  # layer 1 is the shared start: zero residual
    assert not picked.delta.up.weight.any()
    torch.testing.assert_close(picked.delta.down.weight @ picked.delta.down.weight.T, torch.eye(4))  # A_i orthonormal
    other = model.bert.encoder.layer[0].attention.self.query
    assert other.delta.up.weight.abs().sum() > 0


def _layer_parameters() -> int:
    attention = 4 * (H * H + H) + 2 * H  # query, key, value, output dense; the attention LayerNorm
    ffn = (H * I + I) + (I * H + H) + 2 * H  # intermediate, output dense; the output LayerNorm
    return attention + ffn


def _outside_the_encoder(source) -> int:
    return count_unique_parameters(source) - N * _layer_parameters()


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("rank", [1, 4, 32])
def test_relaxed_parameter_counts(groups, rank):
    source = make_tiny_bert()
    outside = _outside_the_encoder(source)
    shared_dense = [(H, H)] * 4 + [(H, I), (I, H)]  # (in, out) of the six dense layers

    ffn = CompressedBertForTokenClassification.from_bert(source, share_mode="attention_ffn", num_shared_groups=groups,
                                                         share_init="layer:0", share_delta_rank=rank)
    weights = sum(i * o for i, o in shared_dense)  # W, once per group
    per_layer = sum(o + rank * (i + o) for i, o in shared_dense) + 2 * (2 * H)  # b_i, A_i, B_i; two LayerNorms
    assert count_unique_parameters(ffn) == outside + groups * weights + N * per_layer

    attention = CompressedBertForTokenClassification.from_bert(source, share_mode="attention", num_shared_groups=groups,
                                                               share_init="layer:0", share_delta_rank=rank)
    weights = 4 * H * H
    per_layer = 4 * (H + rank * 2 * H) + 2 * H + (H * I + I + I * H + H + 2 * H)  # + its own feed-forward block
    assert count_unique_parameters(attention) == outside + groups * weights + N * per_layer


@pytest.mark.parametrize("share, groups", [("attention_ffn", 1), ("attention_ffn", 2), ("attention", 2)])
def test_grouped_parameter_counts(share, groups):
    source = make_tiny_bert()
    model = CompressedBertForTokenClassification.from_bert(source, share_mode=share, num_shared_groups=groups,
                                                           share_init="layer:0")
    attention = 4 * (H * H + H) + 2 * H
    ffn = _layer_parameters() - attention
    shared, per_layer = (_layer_parameters(), 0) if share == "attention_ffn" else (attention, ffn)
    assert count_unique_parameters(model) == _outside_the_encoder(source) + groups * shared + N * per_layer


def test_shared_weights_are_stored_once_and_meta_counts_match():
    source = make_tiny_bert()
    settings = dict(share_mode="attention_ffn", num_shared_groups=2, share_init="layer:0", share_delta_rank=4,
                    embedding_size=16, rank=8)
    model = CompressedBertForTokenClassification.from_bert(source, **settings)
    keys = list(model.state_dict())
    assert len(keys) == len(set(keys)) == len({id(p) for p in model.parameters()})
    shared = [k for k in keys if ".shared_layer." in k]
    assert len(shared) == 2 * 6 * 2  # groups × dense layers × (down, up) of the rank-8 pair; no bias
    assert isinstance(model.bert.encoder.shared_layer[1], SharedDenseWeights)
    assert model.bert.encoder.layer[1].output.dense.shared is model.bert.encoder.shared_layer[1].output.dense
    with torch.device("meta"):
        on_meta = CompressedBertForTokenClassification.from_bert(BertForTokenClassification(tiny_bert_config()),
                                                                 **settings)
    assert count_unique_parameters(on_meta) == count_unique_parameters(model)


def test_from_bert_accounts_for_the_zero_start_dropping_per_layer_norms():
    # the zero start takes biases and LayerNorms from the shared start: layer 0's own are dropped on purpose,
    # and its dense weights are used (A_0 comes from its residual)
    source = make_tiny_bert()
    model = SharedBertForTokenClassification.from_bert(source, share_mode="attention_ffn", share_init="layer:1",
                                                       share_delta_rank=4, share_delta_init="zero")
    own = model.bert.encoder.layer[0].output.LayerNorm.weight
    assert torch.equal(own, source.bert.encoder.layer[1].output.LayerNorm.weight)


@pytest.mark.parametrize("settings, message", [
    (dict(share_mode="attention_ffn", share_delta_rank=-1), "share_delta_rank=-1 must be an integer between 0 and "
                                                       "min(in, out)=32"),
    (dict(share_mode="attention_ffn", share_delta_rank=33), "share_delta_rank=33 must be an integer between 0"),
    (dict(share_mode="attention", share_delta_rank=33), "min(in, out)=32"),
    (dict(share_delta_rank=4), "share_delta_rank=4 needs a sharing type"),
    (dict(num_shared_groups=2), "num_shared_groups=2 needs a sharing type"),
    (dict(share_mode="attention_ffn", num_shared_groups=3), "num_shared_groups=3 must divide num_hidden_layers=2"),
    (dict(share_mode="attention_ffn", num_shared_groups=0), "num_shared_groups=0 must divide"),
    (dict(share_mode="attention_ffn", share_delta_rank=4, share_delta_init="lora"), "share_delta_init='lora'"),
    (dict(share_mode="attention_ffn", num_shared_groups=2, share_init="layer:1"), "share_init='layer:1'"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_bad_settings_raise_a_value_error_naming_the_value(settings, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        CompressedBertForTokenClassification.from_bert(make_tiny_bert(), **settings)
