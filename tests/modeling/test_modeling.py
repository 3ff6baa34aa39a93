"""The compressed model classes, driven by one table of model types (tiny BERTs built in code, nothing downloaded).

Every type is built once with ``from_bert`` from the same tiny teacher and saved with a tokenizer; the checks
per type are: output shapes, identical logits after reload through the Auto classes, the same through
``trust_remote_code`` in a fresh interpreter that cannot import this project (plus the NER pipeline), fewer
unique parameters than the teacher and exactly those stored in ``model.safetensors``, and one Trainer step.
The building blocks and the bad-input errors are checked after the table.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors import safe_open
from torch import nn
from transformers import (
    AlbertConfig,
    AlbertForTokenClassification,
    AutoConfig,
    AutoModel,
    AutoModelForTokenClassification,
    BertForTokenClassification,
    BertModel,
    DistilBertConfig,
    DistilBertForTokenClassification,
    Trainer,
    TrainingArguments,
)
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.models.bert.modeling_bert import BertAttention, BertLayer

import modeling
from conftest import LABELS, REPO, make_tiny_bert, make_tiny_tokenizer, tiny_bert_config
from export.vocab_pruning import corpus_vocabulary, prune_vocabulary
from modeling import (
    CompressedBertForTokenClassification,
    FactorizedBertForTokenClassification,
    IndexedEmbedding,
    LowRankBertForTokenClassification,
    LowRankLinear,
    SharedBertForTokenClassification,
    count_unique_parameters,
    factorize_embedding_matrix,
    rank_for_energy,
    recipes,
)
from modeling.modeling_compressed_bert import _FAMILIES

# name -> (model type of modeling.recipes, overrides). Tiny sizes: hidden 32, intermediate 37, so rank 4 and E=16
# compress. First every compressing type of the recipe table, then other settings and combinations; the class follows
# the methods that are on (one: the method's preset, several: CompressedBertForTokenClassification).
TINY = {"factorized": dict(embedding_size=16), "low_rank": dict(rank=4)}
CASES = {
    **{kind: (kind, TINY.get(kind, {})) for kind, recipe in recipes.RECIPES.items()
       if recipe.model_class is not BertForTokenClassification},
    "shared_ffn_mean": ("shared_ffn", dict(share_init="mean")),
    "low_rank_energy": ("low_rank", dict(rank_energy=0.5)),
    "factorized_shared_ffn_low_rank": ("shared_ffn", dict(embedding_size=16, rank=4)),
    "factorized_shared_attention_energy": ("shared_attn", dict(embedding_size=8, rank_energy=0.9)),
    # relaxed sharing: the mean start leaves every layer a nonzero residual, so every correction trains at once
    "relaxed_shared_ffn": ("shared_ffn", dict(share_init="mean", share_delta_rank=4, share_delta_init="svd")),
    # two groups of the two tiny layers: plain BERT's layers, so E=16 is what compresses it
    "factorized_grouped_shared_ffn": ("shared_ffn", dict(num_shared_groups=2, share_init="layer:0", embedding_size=16)),
    "factorized_relaxed_attention_low_rank": ("shared_attn", dict(
        embedding_size=16, share_init="mean", share_delta_rank=4, share_delta_init="svd", rank=4)),
    # factorized position tables: alone (the word table stays V×H), with the factorized preset, and in a 10x-style mix
    "factorized_positions": ("teacher", dict(position_embedding_size=8)),
    "factorized_words_and_positions": ("factorized", dict(embedding_size=16, position_embedding_size=8)),
    "factorized_positions_grouped_low_rank": ("shared_ffn", dict(
        num_shared_groups=2, share_init="layer:0", embedding_size=16, position_embedding_size=4, rank=4)),
}
# Vocabulary pruning with unseen="nearest" after the build (export.vocab_pruning): the word table keeps the rows of
# NER_TEXT's pieces and the special tokens, and the token_index buffer sends every other id to its nearest kept row.
# The teacher is a plain BERT, so pruning converts it to a CompressedBertForTokenClassification.
PRUNED_NEAREST = {"teacher_vocab_nearest": ("teacher", {}),
                  "factorized_vocab_nearest": ("factorized", dict(embedding_size=16))}
CASES.update(PRUNED_NEAREST)
BATCH, LENGTH = 2, 7
NER_TEXT = "the bank said rain moved to the lake port"


def tiny_inputs() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(5, 99, (BATCH, LENGTH), generator=generator)
    attention_mask = torch.ones(BATCH, LENGTH, dtype=torch.long)
    attention_mask[1, -2:] = 0  # one padded row, so that the mask matters
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def build(name: str, source=None):
    model_type, overrides = CASES[name]
    model = recipes.compress(source if source is not None else make_tiny_bert(), model_type, **overrides)
    if name in PRUNED_NEAREST:
        tokenizer = make_tiny_tokenizer()
        keep = corpus_vocabulary(tokenizer, [NER_TEXT.split()], keep_characters=False)
        model, _ = prune_vocabulary(model, tokenizer, keep, unseen="nearest")
    return model.eval()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Every model type built once and saved with the tiny tokenizer: name -> (model, folder)."""
    root = tmp_path_factory.mktemp("saved")
    teacher = make_tiny_bert()
    models = {}
    for name in CASES:
        model = build(name, teacher)
        model.save_pretrained(root / name)
        make_tiny_tokenizer(root / name)
        models[name] = (model, root / name)
    return models


# Runs with `python -I -S`: no current folder, no PYTHONPATH, no .pth files (the editable install of this project
# is one), only the site-packages folders passed in. Whatever fails for one model is recorded, not raised.
REMOTE_SCRIPT = textwrap.dedent(
    """
    import json, sys, traceback
    args = json.loads(sys.argv[1])
    sys.path.extend(args["site_packages"])
    result = {"sys_path": sys.path, "models": {}}
    try:
        import modeling
        result["modeling_file"] = modeling.__file__
    except ImportError:
        result["modeling_file"] = None
    import torch, transformers
    inputs = torch.load(args["inputs"])
    for name, folder in args["models"].items():
        try:
            config = transformers.AutoConfig.from_pretrained(folder, trust_remote_code=True)
            model = transformers.AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True)
            with torch.no_grad():
                torch.save(model.eval()(**inputs).logits, f"{args['out']}/{name}.pt")
            base = transformers.AutoModel.from_pretrained(folder, trust_remote_code=True)
            ner = transformers.pipeline("token-classification", model=folder, aggregation_strategy="simple",
                                        trust_remote_code=True)
            entities = [{k: (float(v) if k == "score" else v) for k, v in e.items()} for e in ner(args["text"])]
            result["models"][name] = {"config": type(config).__name__, "model": type(model).__name__,
                                      "module": type(model).__module__, "base": type(base).__name__,
                                      "entities": entities}
        except Exception:
            result["models"][name] = {"error": traceback.format_exc()}
    with open(f"{args['out']}/result.json", "w") as f:
        json.dump(result, f)
    """
)


@pytest.fixture(scope="module")
def remote(saved, tmp_path_factory):
    """Load every saved folder with trust_remote_code in one fresh interpreter that cannot import the project."""
    work = tmp_path_factory.mktemp("remote")
    torch.save(tiny_inputs(), work / "inputs.pt")
    (work / "remote.py").write_text(REMOTE_SCRIPT)
    site_packages = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    args = dict(site_packages=site_packages, inputs=str(work / "inputs.pt"), out=str(work), text=NER_TEXT,
                models={name: str(folder) for name, (_, folder) in saved.items()})
    env = {"HF_HOME": str(work / "hf_home"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    completed = subprocess.run([sys.executable, "-I", "-S", str(work / "remote.py"), json.dumps(args)], cwd=work,
                               env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads((work / "result.json").read_text())
    assert result["modeling_file"] is None, f"the fresh interpreter imported the project: {result['modeling_file']}"
    assert not any(str(REPO) == p for p in result["sys_path"])
    return result, work


@pytest.mark.parametrize("name", CASES)
def test_output_shapes(name, saved):
    model, _ = saved[name]
    num_labels, hidden = model.config.num_labels, model.config.hidden_size
    with torch.no_grad():
        out = model(**tiny_inputs(), output_hidden_states=True)
    assert out.logits.shape == (BATCH, LENGTH, num_labels) == (BATCH, LENGTH, len(LABELS))
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1  # the embeddings, then every layer
    assert all(h.shape == (BATCH, LENGTH, hidden) for h in out.hidden_states)
    labels = torch.zeros(BATCH, LENGTH, dtype=torch.long).masked_fill(tiny_inputs()["attention_mask"] == 0, -100)
    with torch.no_grad():
        as_tuple = model(**tiny_inputs(), labels=labels, return_dict=False)
    assert as_tuple[0].shape == () and torch.isfinite(as_tuple[0])
    torch.testing.assert_close(as_tuple[1], out.logits, rtol=0, atol=0)


@pytest.mark.parametrize("name", CASES)
def test_save_and_reload_with_auto_classes(name, saved):
    model, folder = saved[name]
    config_class = type(model).config_class
    base_class, head_class = _FAMILIES[config_class]
    assert type(model) is head_class
    assert {"modeling_compressed_bert.py", "configuration_compressed_bert.py", "factorized_embeddings.py",
            "low_rank.py", "shared_layers.py", "relaxed_sharing.py", "model.safetensors"} <= {
        p.name for p in folder.iterdir()}
    assert set(json.loads((folder / "config.json").read_text())["auto_map"]) == {
        "AutoConfig", "AutoModel", "AutoModelForTokenClassification"}

    config = AutoConfig.from_pretrained(folder)
    assert type(config) is config_class
    for field in ("embedding_size", "share_mode", "share_init", "low_rank_ranks", "num_shared_groups",
                  "share_delta_rank", "share_delta_init", "embedding_rows", "vocab_size"):
        assert getattr(config, field) == getattr(model.config, field), field

    reloaded = AutoModelForTokenClassification.from_pretrained(folder).eval()
    assert type(reloaded) is head_class
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**tiny_inputs()).logits, model(**tiny_inputs()).logits, rtol=0, atol=0)

    base = AutoModel.from_pretrained(folder).eval()
    assert type(base) is base_class and not hasattr(base, "classifier")
    with torch.no_grad():
        torch.testing.assert_close(base(**tiny_inputs()).last_hidden_state,
                                   model.bert(**tiny_inputs()).last_hidden_state, rtol=0, atol=0)


@pytest.mark.parametrize("name", CASES)
def test_trust_remote_code_in_a_fresh_interpreter(name, saved, remote):
    result, work = remote
    loaded = result["models"][name]
    assert "error" not in loaded, loaded.get("error")
    model, _ = saved[name]
    base_class, head_class = _FAMILIES[type(model).config_class]
    assert loaded["config"] == type(model).config_class.__name__
    assert loaded["model"] == head_class.__name__ and loaded["base"] == base_class.__name__
    assert loaded["module"].startswith("transformers_modules.")  # the copied code, not this project
    with torch.no_grad():
        expected = model(**tiny_inputs()).logits
    # another process may split the matrix products over threads differently: float noise only
    torch.testing.assert_close(torch.load(work / f"{name}.pt"), expected, rtol=1e-5, atol=1e-6)
    # the pipeline ran on the saved folder: word-level entities over the text, with the saved label names
    assert loaded["entities"], "the random tiny model should still tag something"
    for entity in loaded["entities"]:
        assert entity["entity_group"] in {label[2:] for label in LABELS if label != "O"}
        assert NER_TEXT[entity["start"]:entity["end"]] == entity["word"]


@pytest.mark.parametrize("name", CASES)
def test_fewer_unique_parameters_each_stored_once(name, saved):
    model, folder = saved[name]
    assert count_unique_parameters(model) < count_unique_parameters(make_tiny_bert())
    buffers = {name for name, _ in model.named_buffers()}  # a pruned table's token_index is stored, not a parameter
    with safe_open(folder / "model.safetensors", framework="pt") as stored:
        stored_elements = sum(math.prod(stored.get_slice(key).get_shape()) for key in stored.keys()
                              if key not in buffers)
    assert count_unique_parameters(model) == stored_elements  # a shared tensor is stored once


@pytest.mark.parametrize("name", CASES)
def test_one_trainer_step_on_cpu_changes_every_weight(name, tmp_path):
    model = build(name)
    generator = torch.Generator().manual_seed(1)
    examples = []
    for _ in range(4):
        labels = torch.randint(0, len(LABELS), (8,), generator=generator)
        labels[0] = labels[-1] = -100  # [CLS] and [SEP] positions
        examples.append({"input_ids": torch.randint(5, 99, (8,), generator=generator),
                         "attention_mask": torch.ones(8, dtype=torch.long), "labels": labels})
    buffers = {name for name, _ in model.named_buffers()}  # token_index is never trained
    before = {key: value.clone() for key, value in model.state_dict().items() if key not in buffers}
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=4, learning_rate=1e-2,
                             report_to="none", use_cpu=True, save_strategy="no", logging_steps=1, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=examples)
    trainer.train()
    assert trainer.state.global_step == 1
    assert torch.isfinite(torch.tensor(trainer.state.log_history[0]["loss"]))
    unchanged = [key for key, value in model.state_dict().items() if key in before and torch.equal(value, before[key])]
    assert not unchanged, f"not trained: {unchanged}"


# The building blocks.


@pytest.mark.parametrize("out_features, in_features, bias", [(37, 32, True), (32, 37, True), (16, 16, False)])
def test_full_rank_low_rank_linear_reproduces_the_linear(out_features, in_features, bias):
    torch.manual_seed(0)
    linear = nn.Linear(in_features, out_features, bias=bias)
    pair = LowRankLinear.from_linear(linear, rank=min(in_features, out_features))
    x = torch.randn(3, 5, in_features)  # (B, T, in)
    with torch.no_grad():
        torch.testing.assert_close(pair(x), linear(x), rtol=1e-5, atol=1e-5)
    assert pair.down.bias is None  # the bias stays whole, on the second layer
    if bias:
        assert torch.equal(pair.up.bias, linear.bias)
    else:
        assert pair.up.bias is None


def test_low_rank_linear_is_exact_at_the_true_rank():
    torch.manual_seed(0)
    rank = 3
    linear = nn.Linear(32, 37)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(37, rank) @ torch.randn(rank, 32))  # (out, in) of rank 3
    assert rank_for_energy(linear.weight, 1.0) == rank
    pair = LowRankLinear.from_linear(linear, rank=rank)
    torch.testing.assert_close(pair.up.weight @ pair.down.weight, linear.weight, rtol=1e-5, atol=1e-5)
    x = torch.randn(4, 32)
    with torch.no_grad():
        torch.testing.assert_close(pair(x), linear(x), rtol=1e-5, atol=1e-5)


def test_rank_for_energy():
    weight = torch.diag(torch.tensor([3.0, 2.0, 1.0]))  # energies 9, 4, 1 of 14
    assert [rank_for_energy(weight, e) for e in (0.5, 9 / 14, 0.7, 13 / 14, 0.99, 1.0)] == [1, 1, 2, 2, 3, 3]
    assert rank_for_energy(torch.zeros(5, 4), 0.9) == 1  # nothing to keep: never above min(out, in)


def test_svd_factorized_embedding_at_e_h_minus_1_is_close():
    source = make_tiny_bert()
    weight = source.bert.embeddings.word_embeddings.weight.detach()  # (V, H)
    hidden = weight.shape[1]
    table, projection, bias = factorize_embedding_matrix(weight, hidden - 1)
    assert table.shape == (weight.shape[0], hidden - 1) and projection.shape == (hidden, hidden - 1)
    error = (table @ projection.T + bias - weight).norm()
    centred = weight - weight.mean(0)
    # Eckart-Young: the error is exactly the dropped singular value of the centred table, and small
    torch.testing.assert_close(error, torch.linalg.svdvals(centred)[-1], rtol=1e-4, atol=1e-6)
    assert error / centred.norm() < 0.1
    model = FactorizedBertForTokenClassification.from_bert(source, embedding_size=hidden - 1).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(**tiny_inputs()).logits, source(**tiny_inputs()).logits, rtol=0, atol=0.03)


@pytest.mark.parametrize("embedding_size", [None, 8])
def test_factorized_positions_are_exact_when_the_table_has_that_rank(embedding_size):
    """A 16-position table factorized at E=15: the centred table has rank 15 at most, so nothing is lost; with
    the word table factorized too, only the word table's loss remains."""
    source = _lossless_source(max_position_embeddings=16)
    model = CompressedBertForTokenClassification.from_bert(source, position_embedding_size=15,
                                                           embedding_size=embedding_size).eval()
    positions = model.bert.embeddings.position_embeddings
    assert (positions.table.weight.shape, positions.projection.weight.shape) == ((16, 15), (32, 15))
    assert model.config.compression_methods == ["factorized_embeddings"] * bool(embedding_size) + ["factorized_positions"]
    with torch.no_grad():
        torch.testing.assert_close(model(**tiny_inputs()).logits, source(**tiny_inputs()).logits, rtol=1e-4, atol=1e-5)
    assert sum(p.numel() for p in positions.parameters()) == 16 * 15 + 15 * 32 + 32  # table, projection, bias


def test_factorized_positions_keep_the_svd_error_of_the_position_table():
    """At a rank below the table's, the start is the best rank-E approximation of the centred table (Eckart-Young)."""
    source = make_tiny_bert()
    weight = source.bert.embeddings.position_embeddings.weight.detach()  # (512, 32)
    model = CompressedBertForTokenClassification.from_bert(source, position_embedding_size=8)
    positions = model.bert.embeddings.position_embeddings
    approx = positions.projection(positions.table.weight).detach()  # (512, 32)
    dropped = torch.linalg.svdvals(weight - weight.mean(0))[8:]
    torch.testing.assert_close((approx - weight).norm(), dropped.norm(), rtol=1e-4, atol=1e-6)


def _lossless_source(**overrides):
    """A tiny BERT that every method compresses without loss: a rank-8 (plus mean) word table, equal layers."""
    source = make_tiny_bert(**overrides)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        vocab, hidden = source.config.vocab_size, source.config.hidden_size
        table = torch.randn(vocab, 8, generator=generator) @ torch.randn(8, hidden, generator=generator) * 0.02
        source.bert.embeddings.word_embeddings.weight.copy_(table + torch.randn(hidden, generator=generator) * 0.02)
        for layer in source.bert.encoder.layer[1:]:
            layer.load_state_dict(source.bert.encoder.layer[0].state_dict())
    return source.eval()


@pytest.mark.parametrize("model_class, settings", [
    (FactorizedBertForTokenClassification, dict(embedding_size=8)),
    (SharedBertForTokenClassification, dict(share_mode="attention")),
    (SharedBertForTokenClassification, dict(share_mode="attention_ffn", share_init="mean")),
    (SharedBertForTokenClassification, dict(share_mode="attention_ffn", share_init="layer:1")),
    (LowRankBertForTokenClassification, dict(rank=32)),  # full rank: min(32, 37)
    (CompressedBertForTokenClassification, dict(embedding_size=8, share_mode="attention_ffn", rank=32)),
])
def test_from_bert_loses_nothing_when_nothing_need_be_lost(model_class, settings):
    source = _lossless_source()
    model = model_class.from_bert(source, **settings).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(**tiny_inputs()).logits, source(**tiny_inputs()).logits, rtol=1e-4, atol=1e-5)


def test_shared_weights_are_one_set_in_the_state_dict():
    source = make_tiny_bert()
    config = source.config
    layer_keys = len(BertLayer(config).state_dict())

    whole = SharedBertForTokenClassification.from_bert(source, share_mode="attention_ffn", share_init="layer:1")
    keys = list(whole.state_dict())
    assert not [k for k in keys if "encoder.layer." in k]
    assert len([k for k in keys if k.startswith("bert.encoder.shared_layer.")]) == layer_keys
    assert [k for k in keys if ".encoder." in "." + k] == [k for k in keys if "encoder.shared_layer." in k]
    shared_state = whole.bert.encoder.shared_layer.state_dict()
    for key, value in source.bert.encoder.layer[1].state_dict().items():  # layer:1 copies layer 1
        assert torch.equal(shared_state[key], value), key

    attention = SharedBertForTokenClassification.from_bert(source, share_mode="attention", share_init="mean")
    keys = list(attention.state_dict())
    attention_keys = [k for k in keys if ".attention." in k]
    assert all(k.startswith("bert.encoder.shared_layer.attention.") for k in attention_keys)
    assert len(attention_keys) == len(BertAttention(config).state_dict())  # exactly one attention block
    for i in range(config.num_hidden_layers):  # each layer keeps its own feed-forward block
        assert f"bert.encoder.layer.{i}.intermediate.dense.weight" in keys
        assert f"bert.encoder.layer.{i}.output.dense.weight" in keys
    mean = torch.stack([layer.attention.self.query.weight for layer in source.bert.encoder.layer]).mean(0)
    torch.testing.assert_close(attention.bert.encoder.shared_layer.attention.self.query.weight, mean)
    default = SharedBertForTokenClassification.from_bert(source, share_mode="attention")  # layer:1, chosen on validation
    assert torch.equal(default.bert.encoder.shared_layer.attention.self.query.weight,
                       source.bert.encoder.layer[1].attention.self.query.weight)


@pytest.mark.parametrize("share, dense_layers", [(None, 2 * 6), ("attention", 4 + 2 * 2), ("attention_ffn", 6)])
def test_default_targets_reach_every_dense_layer_in_every_sharing_mode(share, dense_layers):
    # BERT's names are kept under the shared modules too, so the default suffixes match them
    model = CompressedBertForTokenClassification.from_bert(make_tiny_bert(), share_mode=share, rank=4)
    assert len(model.config.low_rank_ranks) == dense_layers
    encoder = model.bert.encoder
    still_dense = [name for name, module in encoder.named_modules() if isinstance(module, nn.Linear)
                   and not isinstance(encoder.get_submodule(name.rpartition(".")[0]), LowRankLinear)]
    assert not still_dense


@pytest.mark.parametrize("share", [None, "attention", "attention_ffn"])
def test_activation_checkpointing_gives_the_same_gradients(share):
    source = make_tiny_bert(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    labels = torch.zeros(BATCH, LENGTH, dtype=torch.long)
    gradients = []
    for checkpointing in (False, True):
        model = CompressedBertForTokenClassification.from_bert(source, share_mode=share, rank=4).train()
        if checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            blocks = [m for m in model.bert.encoder.modules() if isinstance(m, GradientCheckpointingLayer)]
            assert blocks and all(block.gradient_checkpointing for block in blocks)
        model(**tiny_inputs(), labels=labels).loss.backward()
        gradients.append({name: p.grad for name, p in model.named_parameters()})
    for name, gradient in gradients[0].items():
        torch.testing.assert_close(gradients[1][name], gradient, msg=name)


def test_meta_device_counts_match_real_counts():
    real = CompressedBertForTokenClassification.from_bert(make_tiny_bert(), share_mode="attention_ffn", embedding_size=16,
                                                          rank=4)
    with torch.device("meta"):  # from_bert runs on meta tensors too: how benchmarks/param_count.py counts
        on_meta = CompressedBertForTokenClassification.from_bert(
            BertForTokenClassification(tiny_bert_config()), share_mode="attention_ffn", embedding_size=16, rank=4)
    assert next(on_meta.parameters()).is_meta
    assert count_unique_parameters(on_meta) == count_unique_parameters(real)


# from_bert's key check: every source tensor is used or deliberately dropped.


@pytest.mark.parametrize("where", ["bert", "bert.embeddings", "bert.encoder.layer.1.output",
                                   "bert.encoder.layer.1.attention.self"])
@pytest.mark.parametrize("settings", [dict(), dict(embedding_size=8), dict(share_mode="attention"),
                                      dict(share_mode="attention_ffn"), dict(share_mode="attention_ffn", share_init="layer:1"),
                                      dict(share_mode="attention_ffn", share_delta_rank=4, share_delta_init="svd"),
                                      dict(share_mode="attention", share_delta_rank=4, share_delta_init="zero",
                                           share_init="layer:1"),
                                      dict(share_mode="attention_ffn", num_shared_groups=2, share_init="layer:0")],
                         ids=["plain", "factorized", "shared_attention", "shared_ffn_mean", "shared_ffn_layer1",
                              "relaxed_svd", "relaxed_attention_zero", "grouped"])
def test_from_bert_rejects_a_source_tensor_it_would_lose(where, settings):
    source = make_tiny_bert()
    source.get_submodule(where).register_parameter("extra", nn.Parameter(torch.zeros(3)))
    with pytest.raises(RuntimeError, match="extra"):
        CompressedBertForTokenClassification.from_bert(source, **settings)


def test_from_bert_drops_the_unchosen_layers_and_the_pooler_deliberately():
    source = BertModel(tiny_bert_config())  # a headless BERT with a pooler
    source.encoder.layer[0].attention.self.register_parameter("extra", nn.Parameter(torch.zeros(3)))
    model = SharedBertForTokenClassification.from_bert(source, share_mode="attention", share_init="layer:1")
    assert model.config.share_init == "layer:1"
    source.encoder.layer[1].attention.self.register_parameter("extra", nn.Parameter(torch.zeros(3)))
    with pytest.raises(RuntimeError, match="extra"):
        SharedBertForTokenClassification.from_bert(source, share_mode="attention", share_init="layer:1")


def test_from_bert_rejects_cross_attention_it_cannot_run():
    source = BertModel(tiny_bert_config(is_decoder=True, add_cross_attention=True))
    with pytest.raises(RuntimeError, match="crossattention"):
        SharedBertForTokenClassification.from_bert(source, share_mode="attention")


# Bad input: one ValueError that names the value.


def _albert():
    return AlbertForTokenClassification(AlbertConfig(vocab_size=99, embedding_size=16, hidden_size=32,
                                                     num_hidden_layers=2, num_attention_heads=4, intermediate_size=37))


def _distilbert():
    return DistilBertForTokenClassification(DistilBertConfig(vocab_size=99, dim=32, n_layers=2, n_heads=4,
                                                             hidden_dim=37))


@pytest.mark.parametrize("model_class, settings, source, message", [
    (LowRankBertForTokenClassification, dict(rank=0), None, "rank=0"),
    (LowRankBertForTokenClassification, dict(rank=33), None, "rank=33"),  # above min(32, 37)
    (LowRankBertForTokenClassification, dict(rank_energy=0), None, "fraction 0 "),
    (LowRankBertForTokenClassification, dict(rank_energy=1.5), None, "fraction 1.5 "),
    (LowRankBertForTokenClassification, dict(rank=4, rank_energy=0.5), None, "exactly one of rank"),
    (LowRankBertForTokenClassification, dict(), None, "needs rank"),
    (FactorizedBertForTokenClassification, dict(embedding_size=32), None, "embedding_size=32"),
    (FactorizedBertForTokenClassification, dict(embedding_size=48), None, "embedding_size=48"),
    (FactorizedBertForTokenClassification, dict(), None, "embedding_size=128"),  # the preset's E, above H=32
    (CompressedBertForTokenClassification, dict(position_embedding_size=32), None, "position_embedding_size=32"),
    (CompressedBertForTokenClassification, dict(position_embedding_size=0), None, "position_embedding_size=0"),
    (CompressedBertForTokenClassification, dict(position_embedding_size=20), lambda: make_tiny_bert(
        max_position_embeddings=16), "position_embedding_size=20"),  # below H=32 but above the 16 positions
    (SharedBertForTokenClassification, dict(share_mode="ffn"), None, "share_mode='ffn'"),
    (SharedBertForTokenClassification, dict(share_init="layer:5"), None, "share_init='layer:5'"),
    (SharedBertForTokenClassification, dict(share_init="median"), None, "share_init='median'"),
    (LowRankBertForTokenClassification, dict(rank=4, target_modules=["pooler.dense", "nothing"]), None, "nothing"),
    (LowRankBertForTokenClassification, dict(rank=4, target_modules="encoder.layer.9.*"), None,
     "target_modules='encoder.layer.9.*'"),
    (CompressedBertForTokenClassification, dict(share_mode="attention"), _albert, "model_type='albert'"),
    (CompressedBertForTokenClassification, dict(share_mode="attention"), _distilbert, "model_type='distilbert'"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_bad_settings_raise_a_value_error_naming_the_value(model_class, settings, source, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        model_class.from_bert(source() if source is not None else make_tiny_bert(), **settings)


@pytest.mark.parametrize("make, message", [
    (lambda: modeling.CompressedBertConfig(share_mode="ffn"), "share_mode='ffn'"),
    (lambda: modeling.CompressedBertConfig(hidden_size=32, num_attention_heads=4, embedding_size=32),
     "embedding_size=32"),
    (lambda: modeling.CompressedBertConfig(low_rank_ranks={"encoder.layer.0.output.dense": 0}), "=0"),
    (lambda: LowRankLinear(32, 37, 0), "rank=0"),
    (lambda: LowRankLinear(32, 37, 33), "rank=33"),
    (lambda: LowRankLinear.from_linear(nn.Linear(32, 37), 40), "rank=40"),
    (lambda: rank_for_energy(torch.eye(3), 0.0), "0.0"),
    (lambda: factorize_embedding_matrix(torch.zeros(10, 8), 8), "embedding_size=8"),
    (lambda: modeling.CompressedBertConfig(vocab_size=99, embedding_rows=0), "embedding_rows=0"),
    (lambda: modeling.CompressedBertConfig(vocab_size=99, embedding_rows=100), "embedding_rows=100"),
    (lambda: modeling.FactorizedBertConfig(vocab_size=99, embedding_rows=2.5), "embedding_rows=2.5"),
    (lambda: IndexedEmbedding(99, 100, 8), "num_rows=100"),
    (lambda: IndexedEmbedding.from_rows(torch.zeros(3, 8), torch.tensor([0, 3, 1])), "outside 0..2"),
])
def test_bad_building_block_settings_raise_a_value_error(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


# Presets hold their own method only, so that a checkpoint's model_type says what it is.


@pytest.mark.parametrize("model_class, settings, message", [
    (FactorizedBertForTokenClassification, dict(embedding_size=8, share_mode="attention"), "share_mode='attention'"),
    (FactorizedBertForTokenClassification, dict(embedding_size=8, rank_energy=0.9), "rank_energy=0.9"),
    (SharedBertForTokenClassification, dict(share_mode="attention_ffn", embedding_size=16), "embedding_size=16"),
    (SharedBertForTokenClassification, dict(share_mode="attention", rank=4), "rank=4"),
    (LowRankBertForTokenClassification, dict(rank=4, share_mode="attention_ffn"), "share_mode='attention_ffn'"),
    (LowRankBertForTokenClassification, dict(rank=4, num_shared_groups=2), "num_shared_groups=2"),
    (LowRankBertForTokenClassification, dict(rank=4, share_delta_rank=4), "share_delta_rank=4"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_a_preset_refuses_the_settings_of_another_method(model_class, settings, message):
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        model_class.from_bert(make_tiny_bert(), **settings)
    assert f"{model_class.__name__}.from_bert" in str(error.value)
    assert "CompressedBertForTokenClassification" in str(error.value)  # where combinations go (CASES has some)


@pytest.mark.parametrize("make, message", [
    (lambda: modeling.FactorizedBertConfig(share_mode="attention"), "share_mode='attention'"),
    (lambda: modeling.SharedBertConfig(embedding_size=64), "embedding_size=64"),
    (lambda: modeling.SharedBertConfig(low_rank_ranks={"encoder.layer.0.output.dense": 4}), "low_rank_ranks="),
    (lambda: modeling.LowRankBertConfig(share_mode="attention_ffn"), "share_mode='attention_ffn'"),
    (lambda: modeling.LowRankBertConfig(embedding_size=64), "embedding_size=64"),
    (lambda: modeling.SharedBertConfig(position_embedding_size=16), "position_embedding_size=16"),
])
def test_a_preset_config_refuses_the_settings_of_another_method(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_a_saved_preset_config_that_would_lie_is_refused_on_load(saved, tmp_path):
    _, folder = saved["factorized"]
    config = json.loads((folder / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "share_mode": "attention_ffn"}))
    with pytest.raises(ValueError, match="share_mode='attention_ffn' belongs to shared_layers"):
        AutoConfig.from_pretrained(tmp_path)
    for path in sorted(REPO.glob("results/**/config.json")):  # committed checkpoints (none today) still load
        AutoConfig.from_pretrained(path.parent)


SAVED_MODEL_TYPE = {  # one method: its preset's model_type; several: compressed_bert
    "factorized": "factorized_bert", "shared_attn": "shared_bert", "shared_ffn": "shared_bert",
    "low_rank": "low_rank_bert", "shared_ffn_mean": "shared_bert", "low_rank_energy": "low_rank_bert",
    "relaxed_shared_ffn": "shared_bert", "factorized_shared_ffn_low_rank": "compressed_bert",
    "factorized_shared_attention_energy": "compressed_bert", "factorized_grouped_shared_ffn": "compressed_bert",
    "factorized_relaxed_attention_low_rank": "compressed_bert",
    "teacher_vocab_nearest": "compressed_bert", "factorized_vocab_nearest": "factorized_bert",
    # positions alone: not the factorized preset, whose word table would be factorized at E=128 by default
    "factorized_positions": "compressed_bert", "factorized_words_and_positions": "factorized_bert",
    "factorized_positions_grouped_low_rank": "compressed_bert",
}


@pytest.mark.parametrize("name", CASES)
def test_the_saved_model_type_says_which_methods_the_model_holds(name, saved):
    _, folder = saved[name]
    assert json.loads((folder / "config.json").read_text())["model_type"] == SAVED_MODEL_TYPE[name]
