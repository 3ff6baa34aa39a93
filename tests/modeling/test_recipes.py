"""modeling/recipes.py: the one table of model types, read by the script's --model_type and its defaults."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
import torch
from conftest import DEMO_DIR, make_tiny_bert
from transformers import BertConfig, BertForTokenClassification

import run_ner_compress
import cli.arguments
from benchmarks.shapes import NUM_LABELS, SHAPES
from modeling import recipes
from modeling.configuration_compressed_bert import DEFAULT_EMBEDDING_SIZE


@pytest.fixture(scope="module")
def minilm_on_meta():
    """A MiniLM-shaped teacher on the meta device: real shapes, no memory, no weights."""
    with torch.device("meta"):
        return BertForTokenClassification(BertConfig(num_labels=NUM_LABELS, **SHAPES["minilm"]))


def test_the_cli_model_types_are_the_recipe_table():
    model_type = {f.name: f for f in dataclasses.fields(cli.arguments.ModelArguments)}["model_type"]
    assert list(model_type.metadata["choices"]) == list(recipes.RECIPES) + ["teacher"]
    assert list(recipes.RECIPES) == list(recipes.MODEL_TYPES)
    assert recipes.MODEL_TYPES == ("finetune", "factorized", "shared_attn", "shared_ffn", "low_rank", "student")
    for name in recipes.MODEL_TYPES + ("teacher",):
        assert cli.arguments.parse_args(["--model_type", name])[0].model_type == name
    assert recipes.canonical_model_type("teacher") == "finetune"  # the old name reads as the new one


def test_the_script_defaults_are_the_table_defaults():
    arguments = cli.arguments.CompressionArguments()
    settings = recipes.CompressionSettings()
    for name in ("share_init", "share_delta_init", "num_shared_groups", "share_delta_rank", "student_num_layers"):
        assert getattr(arguments, name) == getattr(settings, name), name


@pytest.mark.parametrize("model_type", recipes.MODEL_TYPES)
def test_each_model_type_builds_its_class_with_its_defaults(model_type, minilm_on_meta):
    with torch.device("meta"):  # the new model's tensors too
        model = recipes.compress(minilm_on_meta, model_type)
    assert type(model) is recipes.RECIPES[model_type].model_class
    config = model.config
    if model_type == "factorized":
        assert config.embedding_size == DEFAULT_EMBEDDING_SIZE == 128
    if model_type in ("shared_attn", "shared_ffn"):
        assert config.share_mode == recipes.RECIPES[model_type].settings.share_mode
        assert config.compression_methods == ["shared_" + config.share_mode]  # the third name, formed in one place
    if model_type == "low_rank":
        assert set(config.low_rank_ranks.values()) == {recipes.DEFAULT_RANK} == {48}
    if model_type == "student":
        assert config.num_hidden_layers == recipes.DEFAULT_STUDENT_LAYERS
    if model_type == "finetune":
        assert model is minilm_on_meta


def test_overrides_combine_and_none_keeps_the_default(minilm_on_meta):
    assert recipes.settings_for("factorized", embedding_size=None).embedding_size == DEFAULT_EMBEDDING_SIZE
    energy = recipes.settings_for("low_rank", rank_energy=0.9)
    assert (energy.rank, energy.rank_energy) == (None, 0.9)  # the energy rule replaces the default rank
    assert recipes.settings_for("shared_ffn", embedding_size=64).methods == ["factorized_embeddings", "shared_layers"]
    with torch.device("meta"):
        mixed = recipes.compress(minilm_on_meta, "shared_ffn", embedding_size=64, rank=16)
    assert type(mixed).__name__ == "CompressedBertForTokenClassification"
    with pytest.raises(ValueError, match="model_type='pruned' is not one of"):
        recipes.settings_for("pruned")


def test_the_default_rank_shrinks_to_save_parameters_in_a_tiny_model(caplog):
    with caplog.at_level(logging.WARNING, logger="modeling.recipes"):
        model = recipes.compress(make_tiny_bert(), "low_rank")
    # hidden 32, intermediate 37: r * (32 + 32) < 32 * 32 holds up to r = 15
    assert set(model.config.low_rank_ranks.values()) == {15}
    assert "default rank 48 saves nothing" in caplog.text
    with pytest.raises(ValueError, match="rank=48 must be an integer between 1 and min"):  # a given rank is kept
        recipes.compress(make_tiny_bert(), "low_rank", rank=48)


def test_low_rank_without_a_rank_flag_runs_and_records_the_rank(tiny_bert_dir, tmp_path):
    output_dir = tmp_path / "low_rank"
    results = run_ner_compress.main([
        "--model_type", "low_rank", "--model_name_or_path", str(tiny_bert_dir), "--output_dir", str(output_dir),
        "--train_file", str(DEMO_DIR / "demo_train.txt"), "--validation_file", str(DEMO_DIR / "demo_validation.txt"),
        "--max_train_samples", "8", "--max_eval_samples", "8", "--max_steps", "1", "--save_strategy", "no",
        "--per_device_train_batch_size", "8", "--report_to", "none", "--disable_tqdm", "true",
    ])
    assert results["model_class"] == "LowRankBertForTokenClassification"
    assert results["compression"]["rank"] == 15 and results["compression"]["mean_rank"] == 15  # 48, fitted
    assert results["compression"]["methods"] == ["low_rank"]
    config = json.loads((output_dir / "config.json").read_text())
    assert config["model_type"] == "low_rank_bert" and set(config["low_rank_ranks"].values()) == {15}
