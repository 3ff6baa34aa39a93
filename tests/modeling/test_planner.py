"""The budget planner (modeling/planner.py), the named recipes and the default teacher of run_ner_compress.py."""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys

import pytest
import torch
from conftest import DEMO_DIR, LABELS, REPO, make_tiny_bert, make_tiny_tokenizer
from transformers import BertConfig, BertForTokenClassification

import run_ner_compress
from benchmarks.shapes import NUM_LABELS, SHAPES
from modeling import count_unique_parameters, planner, recipes

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
CONLL_ROWS = 16000  # the rows --prune_student_vocab keeps of MiniLM's table on the CoNLL-2003 training split


@pytest.mark.parametrize("shape, ratio, rows", [
    ("minilm", 5, None), ("minilm", 10, CONLL_ROWS), ("minilm", 20, CONLL_ROWS), ("minilm", 10, None),
    ("bert-base", 5, None), ("bert-base", 10, None), ("bert-base", 20, None)])
def test_the_plan_lands_at_or_just_past_the_target(shape, ratio, rows):
    config = BertConfig(num_labels=NUM_LABELS, **SHAPES[shape])
    plan = planner.plan(config, target_ratio=ratio, embedding_rows=rows)
    assert ratio <= plan.ratio <= 1.1 * ratio
    assert plan.num_parameters <= plan.budget
    assert plan.model_type == "shared_ffn" and plan.prune_student_vocab == (rows is not None and plan.rank is not None)
    # the settings build, and the built model has the planned count
    with torch.device("meta"):
        source = BertForTokenClassification(config)
        model = recipes.compress(source, plan.model_type, **plan.compression_settings())
    if not plan.prune_student_vocab:
        assert count_unique_parameters(model) == plan.num_parameters
    assert plan.source_num_parameters == count_unique_parameters(source)


def test_ten_x_on_the_minilm_shape_is_the_measured_recipe():
    plan = planner.plan(BertConfig(num_labels=NUM_LABELS, **SHAPES["minilm"]), target_ratio=10,
                        embedding_rows=CONLL_ROWS)
    recipe = recipes.NAMED_RECIPES["10x"]
    assert {k: v for k, v in plan.flags().items() if k in recipe.compression} == recipe.compression
    assert plan.training == recipe.training
    assert plan.num_parameters == 2_213_257  # results/cpu_full/best10_shared_pos_hlr_tr/results.json


def test_an_unreachable_budget_names_the_smallest_ratio():
    config = BertConfig(num_labels=NUM_LABELS, **TINY)
    smallest = planner.max_ratio(config)
    with pytest.raises(planner.BudgetError, match=rf"\({smallest:.2f}x of"):
        planner.plan(config, target_ratio=5)
    assert planner.plan(config, target_ratio=smallest * 0.99).ratio >= smallest * 0.99
    for bad in (1, 0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="target_ratio"):
            planner.plan(config, target_ratio=bad)


def test_the_planned_count_is_the_real_models_count():
    bert = make_tiny_bert()
    model, plan = planner.compress_to(bert, target_ratio=2)
    assert count_unique_parameters(model) == plan.num_parameters
    assert count_unique_parameters(bert) / count_unique_parameters(model) >= 2


def _command_flags(command: str) -> dict:
    tokens, flags = shlex.split(command)[1:], {}
    for i, token in enumerate(tokens):
        if token.startswith("--"):
            value = tokens[i + 1] if i + 1 < len(tokens) and not tokens[i + 1].startswith("--") else True
            flags[token[2:]] = value
    return flags


@pytest.mark.parametrize("name", list(recipes.NAMED_RECIPES))
def test_each_named_recipe_is_its_committed_row(name):
    recipe = recipes.NAMED_RECIPES[name]
    committed = json.loads((REPO / recipe.results / "results.json").read_text())
    flags = _command_flags(committed["command"])
    for flag, value in recipe.flags().items():
        if flag == "labelled_batch_size":  # the row's batch held as many transfer sentences (ratio 1)
            assert int(flags["per_device_train_batch_size"]) == value * (1 + recipe.training.transfer_ratio)
        elif flag == "transfer_ratio" and "transfer_ratio" not in flags:
            assert value == committed["transfer_ratio"]
        elif isinstance(value, bool):
            assert flags.get(flag, False) is value, flag
        else:
            assert float(flags[flag]) == float(value) if not isinstance(value, str) else flags[flag] == value, flag


# ----------------------------------------------------------------------------------------------------------------
# The script: recipes, plans, the default teacher


def _data_flags(output_dir) -> list[str]:
    return ["--train_file", str(DEMO_DIR / "demo_train.txt"), "--validation_file",
            str(DEMO_DIR / "demo_validation.txt"), "--test_file", str(DEMO_DIR / "demo_test.txt"),
            "--max_train_samples", "16", "--max_eval_samples", "8", "--max_predict_samples", "8",
            "--max_seq_length", "64", "--max_steps", "2", "--per_device_eval_batch_size", "8",
            "--report_to", "none", "--disable_tqdm", "true", "--output_dir", str(output_dir)]


@pytest.fixture
def wide_base(tmp_path):
    """A base model (no NER head) wide and deep enough for the 5x recipe's E=64: 6 layers of 256, vocabulary 99."""
    config = BertConfig(vocab_size=99, hidden_size=256, num_hidden_layers=6, num_attention_heads=4,
                        intermediate_size=512, max_position_embeddings=64, architectures=["BertModel"])
    torch.manual_seed(0)
    from transformers import BertModel

    BertModel(config).save_pretrained(tmp_path / "base")
    make_tiny_tokenizer(tmp_path / "base")
    return tmp_path / "base"


def test_the_bare_shared_ffn_fine_tunes_a_teacher_then_distils_the_5x_recipe(wide_base, tmp_path):
    out = tmp_path / "bare"
    results = run_ner_compress.main(["--model_type", "shared_ffn", "--model_name_or_path", str(wide_base),
                                     *_data_flags(out)])
    teacher = json.loads((out / "teacher" / "results.json").read_text())
    assert teacher["model_type"] == "finetune" and not teacher["distilled"]
    assert results["distilled"] and results["teacher_path"] == str(out / "teacher")
    assert results["compression"]["embedding_size"] == 64 and results["compression_ratio"] >= 5
    assert results["arguments"]["recipe"]["name"] == "5x"
    assert results["arguments"]["training"]["learning_rate"] == 2e-4
    assert results["arguments"]["training"]["load_best_model_at_end"] is True
    # a rerun reuses the teacher
    again = run_ner_compress.main(["--model_type", "shared_ffn", "--model_name_or_path", str(wide_base),
                                   *_data_flags(out)])
    assert again["teacher_path"] == str(out / "teacher")
    assert json.loads((out / "teacher" / "results.json").read_text()) == teacher


def test_a_source_with_a_head_is_the_teacher_and_target_ratio_plans(tiny_bert_dir, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="run_ner_compress"):
        results = run_ner_compress.main(["--model_name_or_path", str(tiny_bert_dir), "--target_ratio", "2",
                                         "--learning_rate", "3e-4", *_data_flags(tmp_path / "planned")])
    # the table shows the plan; a given flag that replaces one of its settings is said beside it
    assert any(r.getMessage() == "--target_ratio: given flags replace the plan's --learning_rate 0.0003"
               for r in caplog.records)
    assert results["distilled"] and results["teacher_path"] == str(tiny_bert_dir)
    plan = results["arguments"]["recipe"]["plan"]
    assert plan["num_parameters"] == results["num_parameters"] and results["compression_ratio"] >= 2
    no_teacher = run_ner_compress.main(["--model_name_or_path", str(tiny_bert_dir), "--model_type", "factorized",
                                        "--embedding_size", "16", "--no_distill", *_data_flags(tmp_path / "plain")])
    assert not no_teacher["distilled"]


def test_the_explicit_forms_build_what_they_say(tiny_bert_dir, tmp_path):
    """Given flags override the recipe; an embedding size equal to the width keeps the table whole."""
    results = run_ner_compress.main(["--model_name_or_path", str(tiny_bert_dir), "--model_type", "shared_ffn",
                                     "--embedding_size", "32", "--learning_rate", "1e-3",
                                     *_data_flags(tmp_path / "explicit")])
    assert "embedding_size" not in results["compression"]
    assert results["arguments"]["training"]["learning_rate"] == 1e-3


@pytest.mark.parametrize("flags, message", [
    (["--target_ratio", "1"], "--target_ratio 1.0 must be > 1"),
    (["--target_ratio", "nan"], "--target_ratio nan must be a finite number"),
    (["--target_ratio", "50"], "--target_ratio 50.0: the smallest model the planner reaches"),
    (["--recipe", "3x"], "argument --recipe: invalid choice: '3x' (choose from '5x', '10x')"),
    (["--target_ratio", "2", "--embedding_size", "16"], "--target_ratio plans --embedding_size"),
    (["--target_ratio", "2", "--recipe", "5x"], "--recipe 5x with --target_ratio"),
    (["--target_ratio", "2", "--target_params", "100"], "give one of --target_ratio and --target_params"),
    (["--recipe", "10x", "--model_type", "low_rank"], "--recipe 10x is a shared_ffn model"),
    (["--model_type", "student", "--no_distill"], "drop --no_distill"),
])
def test_bad_budgets_are_one_line_and_exit_2(tiny_bert_dir, tmp_path, flags, message, monkeypatch, capsys):
    argv = ["run_ner_compress.py", "--model_name_or_path", str(tiny_bert_dir), *_data_flags(tmp_path / "bad"), *flags]
    monkeypatch.setattr(sys, "argv", argv)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        run_ner_compress.cli()  # the console entry point, in this process (a subprocess costs 8 s of imports)
    assert stopped.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "bad" / "results.json").exists()


def test_a_head_with_other_labels_is_refused_as_the_default_teacher(tmp_path):
    other = ["O", "B-X", "I-X"]
    bert = BertForTokenClassification(BertConfig(**TINY, num_labels=3, id2label=dict(enumerate(other)),
                                                 label2id={label: i for i, label in enumerate(other)}))
    bert.save_pretrained(tmp_path / "other")
    make_tiny_tokenizer(tmp_path / "other")
    command = [sys.executable, str(REPO / "run_ner_compress.py"), "--model_name_or_path", str(tmp_path / "other"),
               "--model_type", "factorized", "--embedding_size", "16", *_data_flags(tmp_path / "bad")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "cannot be the default teacher" in done.stderr
    assert "Loading weights" not in done.stderr  # refused before any model loads
    assert sorted(LABELS)[0] in done.stderr
