"""ONNX export, int8 quantization, the ONNX Runtime NER pipeline and the post-training flags, on tiny models.

onnx and onnxruntime come with the dev extra; without them these tests skip, except on CI (``CI`` set), where
their absence is a failure.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import logging
import os
import re
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import DEMO_DIR, LABELS, TINY_MODEL_BUILDERS, make_tiny_bert, make_tiny_tokenizer, tiny_bert_config
from transformers import AutoModelForTokenClassification, BertForTokenClassification, pipeline


if not (importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxruntime")):
    if os.environ.get("CI"):
        pytest.fail("onnx/onnxruntime are missing, and CI installs them with the dev extra", pytrace=False)
    pytest.skip("onnx/onnxruntime not installed (pip install -e '.[onnx]')", allow_module_level=True)

from export import OnnxNerPipeline, OnnxTokenClassifier, export_onnx, quantize_dynamic_torch, quantize_onnx_int8
from export.evaluate_variants import VariantSettings, run_post_training
from export.vocab_pruning import corpus_vocabulary, prune_vocabulary
from trainers.ner_data import read_conll

BUILDERS = TINY_MODEL_BUILDERS
# "<kind>+nearest": the model type pruned to the demo training split's pieces with unseen="nearest" (a K-row word
# table read through the token_index buffer), tokenizer unchanged
NEAREST = ["bert+nearest", "factorized+nearest"]
SENTENCES = ["Mara Velden joined Norvane Bank in Port Aldane last Monday .",
             "Shares in Helix Motors rose after Kofi Mensa spoke in Carrow .",
             "the bank said on monday that rain moved the cup to lake port ."]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Every model type saved with the tiny tokenizer, built on demand and kept for the module."""
    root = tmp_path_factory.mktemp("models")
    folders = {}

    def get(kind: str):
        if kind not in folders:
            folders[kind] = root / kind
            builder, _, unseen = kind.partition("+")
            model, tokenizer = BUILDERS[builder](make_tiny_bert()), make_tiny_tokenizer(folders[kind])
            if unseen:
                keep = corpus_vocabulary(tokenizer, [r["tokens"] for r in read_conll(str(DEMO_DIR / "demo_train.txt"))],
                                         keep_characters=False)
                model, _ = prune_vocabulary(model, tokenizer, keep, unseen=unseen)
            model.save_pretrained(folders[kind])
        return folders[kind]

    return get


@pytest.fixture(scope="module")
def exported(saved, tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    files = {}

    def get(kind: str):
        if kind not in files:
            files[kind] = export_onnx(str(saved(kind)), str(root / kind / "model.onnx"))
        return files[kind]

    return get


def padded_batch(seed: int = 1):
    """Three rows of 11 (not the export's 2×8), two of them padded."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, 99, (3, 11), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 7:] = 0
    attention_mask[2, 4:] = 0
    return input_ids, attention_mask, torch.zeros_like(input_ids)


@pytest.mark.parametrize("kind", list(BUILDERS) + NEAREST)
def test_onnx_logits_match_pytorch(saved, exported, kind):
    input_ids, attention_mask, token_type_ids = padded_batch()
    model = AutoModelForTokenClassification.from_pretrained(saved(kind)).eval()
    with torch.no_grad():
        expected = model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits
    classifier = OnnxTokenClassifier(exported(kind))
    got = classifier.run_numpy(input_ids.numpy(), attention_mask.numpy(), token_type_ids.numpy())
    keep = attention_mask.bool().numpy()  # padded positions are not compared
    np.testing.assert_allclose(got[keep], expected.numpy()[keep], rtol=1e-4, atol=1e-5)
    assert classifier.config.id2label == dict(enumerate(LABELS))


def test_onnx_graph_has_named_dynamic_axes(exported):
    import onnx

    graph = onnx.load(exported("bert")).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in graph.output] == ["logits"]
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param and dims[1].dim_param  # symbolic batch and sequence


def test_onnx_attention_is_traced_eager(exported):
    """Plain MatMul / Softmax attention, the mask made once: not SDPA's per-layer -inf mask and IsNaN guard."""
    import onnx

    nodes = onnx.load(exported("bert")).graph.node
    assert sum(node.op_type == "Softmax" for node in nodes) == tiny_bert_config().num_hidden_layers
    assert not [node.name for node in nodes if node.op_type in ("Where", "IsNaN") and "/encoder/" in node.name]


def optimized_ops(path: str, saved_as, make_session) -> collections.Counter:
    """The op types of the graph ONNX Runtime runs, after its own rewrites, in the session ``make_session`` makes."""
    import onnx
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(saved_as)
    make_session(path, options)
    return collections.Counter(node.op_type for node in onnx.load(str(saved_as)).graph.node)


def test_cpu_session_keeps_layer_norms_unfused(exported, tmp_path):
    """SkipLayerNormalization is several times slower than Add + LayerNormalization on CPU, so the sessions of
    OnnxNerSession (run_ner_predict, the pipeline) leave that rewrite out; a plain session makes it."""
    from runtime.backends import OnnxNerSession

    import onnxruntime

    int8 = quantize_onnx_int8(exported("bert"), str(tmp_path / "model_int8.onnx"))
    plain = optimized_ops(int8, tmp_path / "plain.onnx", lambda path, options: onnxruntime.InferenceSession(
        path, options, providers=["CPUExecutionProvider"]))
    assert plain["SkipLayerNormalization"] > 0  # the rewrite applies to these graphs
    ours = optimized_ops(int8, tmp_path / "ours.onnx",
                         lambda path, options: OnnxNerSession(path, session_options=options))
    assert ours["SkipLayerNormalization"] == 0
    assert ours["LayerNormalization"] == plain["LayerNormalization"] + plain["SkipLayerNormalization"]
    assert ours["DynamicQuantizeMatMul"] == plain["DynamicQuantizeMatMul"] > 0  # the int8 fusions still apply


def test_int8_onnx_runs_and_mostly_agrees(exported, tmp_path):
    fp32 = exported("bert")
    int8 = quantize_onnx_int8(fp32, str(tmp_path / "model_int8.onnx"))
    assert os.path.getsize(int8) < os.path.getsize(fp32)
    batch = [array.numpy() for array in padded_batch(seed=2)]
    reference, quantized = OnnxTokenClassifier(fp32).run_numpy(*batch), OnnxTokenClassifier(int8).run_numpy(*batch)
    keep = batch[1].astype(bool)
    assert (reference.argmax(-1)[keep] == quantized.argmax(-1)[keep]).mean() >= 0.9
    assert OnnxTokenClassifier(int8).config.id2label == dict(enumerate(LABELS))  # metadata carried over


@pytest.mark.parametrize("kind", ["bert", "factorized"])
def test_onnx_pipeline_gives_the_pytorch_pipelines_spans(saved, exported, kind):
    reference = pipeline("token-classification", model=str(saved(kind)), aggregation_strategy="simple", device=-1)
    runner = OnnxNerPipeline(exported(kind), str(saved(kind)))
    expected, got = reference(SENTENCES), runner(SENTENCES)
    assert any(expected)  # the random tiny model does tag something, so the comparison means something
    for want, have in zip(expected, got):
        assert [(e["entity_group"], e["start"], e["end"], e["word"]) for e in have] == [
            (e["entity_group"], e["start"], e["end"], e["word"]) for e in want
        ]
        np.testing.assert_allclose([e["score"] for e in have], [e["score"] for e in want], rtol=1e-4)


def test_untraceable_model_names_the_folder(saved, tmp_path, monkeypatch):
    plain_forward = BertForTokenClassification.forward

    def forward_with_svd(self, *args, **kwargs):  # linalg_svdvals has no ONNX export
        outputs = plain_forward(self, *args, **kwargs)
        outputs.logits = outputs.logits + torch.linalg.svdvals(outputs.logits).sum()
        return outputs

    monkeypatch.setattr(BertForTokenClassification, "forward", forward_with_svd)
    target = tmp_path / "bad" / "model.onnx"
    with pytest.raises(RuntimeError, match=rf"{re.escape(str(saved('bert')))}.*could not trace.*svdvals"):
        export_onnx(str(saved("bert")), str(target))
    assert not any(target.parent.iterdir())  # nothing half-written


def test_export_of_a_folder_without_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        export_onnx(str(tmp_path), str(tmp_path / "model.onnx"))


@pytest.mark.parametrize("kind", ["low_rank", "relaxed"])
def test_quantize_dynamic_torch(saved, kind):
    model = AutoModelForTokenClassification.from_pretrained(saved(kind)).eval()
    quantized = quantize_dynamic_torch(model)
    assert type(model.classifier) is torch.nn.Linear  # the original is left as it was
    assert type(quantized.classifier).__module__.startswith("torch.ao.nn.quantized")
    if kind == "relaxed":  # a relaxed layer runs the quantized shared weight, not the float original it was built on
        shared = quantized.bert.encoder.layer[0].attention.self.query.shared
        assert type(shared).__module__.startswith("torch.ao.nn.quantized")
    input_ids, attention_mask, _ = padded_batch()
    with torch.no_grad():
        expected = model(input_ids=input_ids, attention_mask=attention_mask).logits.argmax(-1)
        got = quantized(input_ids=input_ids, attention_mask=attention_mask).logits.argmax(-1)
    assert (expected == got)[attention_mask.bool()].float().mean() >= 0.9


@pytest.mark.parametrize("unseen", ["resplit", "nearest"])
def test_post_training_pytorch_int8_on_a_factorized_model(saved, unseen):
    records = read_conll(str(DEMO_DIR / "demo_test.txt"))[:24]
    train = read_conll(str(DEMO_DIR / "demo_train.txt"))
    results = run_post_training(VariantSettings(prune_vocab=True, prune_unseen=unseen, quantize="int8"),
                                str(saved("factorized")), train, records)
    variants = results["variants"]
    assert set(variants) == {"fp32", "vocab_pruned", "torch_int8"}
    assert variants["vocab_pruned"]["test_f1"] == variants["fp32"]["test_f1"]  # the test words' pieces are kept
    assert results["vocab_pruning"]["unseen"] == unseen
    assert results["vocab_pruning"]["vocab_size_after"] < results["vocab_pruning"]["vocab_size_before"]  # rows
    if unseen == "resplit":  # nearest adds a 4-byte index entry per id: more than the 2 rows of 16 it drops here
        assert variants["vocab_pruned"]["size_bytes"] < variants["fp32"]["size_bytes"]
    assert os.path.isfile(variants["torch_int8"]["path"])
    assert results["vocab_pruning"]["test_unk_rate_after"] == 0.0  # single characters are kept
    assert not [name for name in os.listdir(saved("factorized")) if name.startswith(".staging")]


def test_run_script_flags_write_every_variant(tmp_path):
    import run_ner_compress

    make_tiny_bert(tmp_path / "tiny")
    output_dir = tmp_path / "out"
    results = run_ner_compress.main([
        "--model_name_or_path", str(tmp_path / "tiny"), "--output_dir", str(output_dir),
        "--train_file", str(DEMO_DIR / "demo_train.txt"), "--test_file", str(DEMO_DIR / "demo_test.txt"),
        "--max_train_samples", "16", "--max_predict_samples", "16", "--max_seq_length", "64",
        "--max_steps", "1", "--per_device_train_batch_size", "8", "--report_to", "none", "--save_strategy", "no",
        "--disable_tqdm", "true", "--prune_vocab", "--export_onnx", "--quantize", "int8",
    ])
    written = json.loads((output_dir / "results.json").read_text())
    assert written["variants"] == results["variants"]
    assert set(written["variants"]) == {"fp32", "vocab_pruned", "onnx", "onnx_int8"}
    for entry in written["variants"].values():
        assert entry["size_bytes"] > 0 and entry["test_samples_per_second"] > 0 and 0 <= entry["test_f1"] <= 1
    assert written["variants"]["onnx"]["test_f1"] == written["variants"]["fp32"]["test_f1"]
    assert written["fp32_size_bytes"] == written["variants"]["fp32"]["size_bytes"]
    assert written["vocab_pruning"]["vocab_size_after"] < written["vocab_pruning"]["vocab_size_before"]
    assert {"test_unk_rate_after", "test_words_retokenized"} <= set(written["vocab_pruning"])
    assert written["vocab_pruning"]["keep_top"] == 0
    assert written["arguments"]["post_training"]["quantize"] == "int8"
    spans = OnnxNerPipeline(str(output_dir / "onnx" / "model_int8.onnx"), str(output_dir / "onnx"))(SENTENCES[0])
    assert isinstance(spans, list)


def test_post_training_arguments_are_checked(tmp_path):
    from cli.arguments import CompressionArguments, ModelArguments, PostTrainingArguments  # export takes VariantSettings
    from cli.checks import check_pruning

    with pytest.raises(ValueError, match="--quantize"):
        PostTrainingArguments(quantize="int4")
    extra_texts = [str(DEMO_DIR / "demo_train.txt")]
    for flag, post in (("--prune_extra_texts", PostTrainingArguments(prune_extra_texts=extra_texts)),
                       ("--prune_keep_top", PostTrainingArguments(prune_keep_top=100)),
                       ("--prune_unseen", PostTrainingArguments(prune_unseen="nearest"))):
        with pytest.raises(ValueError, match=f"{flag} is only used with --prune_vocab or --prune_student_vocab"):
            check_pruning(ModelArguments(model_type="shared_ffn"), CompressionArguments(), post)
        check_pruning(ModelArguments(model_type="shared_ffn"), CompressionArguments(prune_student_vocab=True), post)
        check_pruning(ModelArguments(), CompressionArguments(), replace(post, prune_vocab=True))
    with pytest.raises(ValueError, match="--prune_keep_top -1"):
        PostTrainingArguments(prune_vocab=True, prune_keep_top=-1)
    with pytest.raises(ValueError, match="--prune_unseen 'closest' must be one of resplit, nearest"):
        PostTrainingArguments(prune_vocab=True, prune_unseen="closest")
    with pytest.raises(ValueError, match="prune_unseen='closest'"):
        VariantSettings(prune_unseen="closest")
    assert PostTrainingArguments(prune_vocab=True, prune_unseen="resplit").settings().prune_unseen == "resplit"
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        PostTrainingArguments(prune_vocab=True, prune_extra_texts=[str(tmp_path / "missing.txt")])
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="empty.txt.*empty"):
        PostTrainingArguments(prune_vocab=True, prune_extra_texts=[str(tmp_path / "empty.txt")])
    assert not PostTrainingArguments().requested
    assert PostTrainingArguments(prune_vocab=True, quantize="int8").settings() == VariantSettings(
        prune_vocab=True, quantize="int8")
    with pytest.raises(ValueError, match="quantize='int4'"):
        VariantSettings(quantize="int4")


# ----------------------------------------------------------------------------------------------------------------
# Issue 29: int8 quantizes the shared weights and the embedding tables, and keeps ONNX Runtime's routine lines out


BIG_VOCAB = 30522  # BERT's vocabulary: the word table dominates, as in every real BERT (MiniLM: 30522 × 384)


@pytest.fixture(scope="module")
def big_vocab_exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("big_vocab")
    files = {}

    def get(kind: str) -> str:
        if kind not in files:
            folder = root / kind
            BUILDERS[kind](make_tiny_bert(vocab_size=BIG_VOCAB)).save_pretrained(folder)
            files[kind] = export_onnx(str(folder), str(folder / "onnx" / "model.onnx"))
        return files[kind]

    return get


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_int8_is_over_3x_smaller_for_every_recipe_and_agrees(big_vocab_exports, tmp_path, kind):
    import onnx
    fp32 = big_vocab_exports(kind)
    int8 = quantize_onnx_int8(fp32, str(tmp_path / "model_int8.onnx"))
    assert os.path.getsize(int8) < os.path.getsize(fp32) / 3, (os.path.getsize(fp32), os.path.getsize(int8))
    # No weight is left fp32: shared weights reach their MatMuls through the exporter's Identity nodes.
    graph = onnx.load(int8).graph
    float_weights = {t.name: tuple(t.dims) for t in graph.initializer  # matrices; biases and norms stay fp32
                     if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) >= 2}
    assert not float_weights, float_weights
    generator = torch.Generator().manual_seed(3)
    input_ids = torch.randint(5, BIG_VOCAB, (4, 16), generator=generator).numpy()
    mask, types = np.ones_like(input_ids), np.zeros_like(input_ids)
    reference = OnnxTokenClassifier(fp32).run_numpy(input_ids, mask, types)
    quantized = OnnxTokenClassifier(int8).run_numpy(input_ids, mask, types)
    assert np.abs(quantized - reference).max() < 0.1 * np.abs(reference).max() + 0.05
    assert (reference.argmax(-1) == quantized.argmax(-1)).mean() >= 0.85


def test_int8_drops_only_the_quantizers_routine_log_lines(exported, tmp_path, caplog, monkeypatch):
    import onnxruntime.quantization

    real = onnxruntime.quantization.quantize_dynamic

    def with_a_real_warning(*args, **kwargs):
        logging.warning("a real problem")  # as ONNX Runtime logs: on the root logger
        return real(*args, **kwargs)

    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", with_a_real_warning)
    with caplog.at_level(logging.INFO):
        quantize_onnx_int8(exported("shared_ffn"), str(tmp_path / "model_int8.onnx"))
        logging.info("Ignore MatMul due to non constant B: after the call")  # the filter is gone again
    messages = [record.getMessage() for record in caplog.records]
    assert "a real problem" in messages
    assert [m for m in messages if "Ignore MatMul" in m] == ["Ignore MatMul due to non constant B: after the call"]
    assert not [m for m in messages if "pre-processing before quantization" in m or "not specified" in m]
