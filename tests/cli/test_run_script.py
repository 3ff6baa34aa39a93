"""The entry script end to end on a tiny BERT and the demo files: results, output folder, resuming, config files,
and bad input that ends in one message and exit status 2."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
import torch
from conftest import DEMO_DIR, LABELS, REPO, make_tiny_bert

import run_ner_compress
import cli.steps
import modeling
import cli.run_folder
import cli.arguments

QUICK = [
    "--max_train_samples", "16", "--max_eval_samples", "8", "--max_predict_samples", "8",
    "--max_seq_length", "64", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8",
    "--report_to", "none", "--disable_tqdm", "true",
]


def demo_args(model_dir, output_dir, *extra: str) -> list[str]:
    return [
        "--model_name_or_path", str(model_dir), "--output_dir", str(output_dir),
        "--train_file", str(DEMO_DIR / "demo_train.txt"), "--validation_file", str(DEMO_DIR / "demo_validation.txt"),
        "--test_file", str(DEMO_DIR / "demo_test.txt"), *QUICK, *extra,
    ]


def looks_finished(output_dir) -> bool:
    return any(os.path.exists(os.path.join(output_dir, name)) for name in ("results.json", "model.safetensors"))


def test_teacher_run_end_to_end(tiny_bert_dir, tmp_path):
    output_dir = tmp_path / "teacher"
    results = run_ner_compress.main(demo_args(tiny_bert_dir, output_dir, "--num_train_epochs", "1",
                                              "--save_strategy", "no"))

    with open(output_dir / "results.json") as f:
        saved = json.load(f)
    assert saved == json.loads(json.dumps(results, default=str))
    assert saved["model_type"] == "finetune"
    tiny_parameters = sum(p.numel() for p in make_tiny_bert().parameters())
    assert saved["num_parameters"] == tiny_parameters
    for key in ("validation_f1", "test_f1", "test_precision", "test_recall", "test_strict_f1",
                *(f"test_{entity_type}_f1" for entity_type in ("PER", "ORG", "LOC", "MISC"))):
        assert isinstance(saved[key], float) and 0.0 <= saved[key] <= 1.0, key
    assert saved["test_runtime_s"] > 0 and saved["test_samples_per_second"] > 0
    assert saved["test_samples"] == 8
    assert saved["arguments"]["model"]["model_type"] == "finetune"  # given as teacher, the old name
    assert saved["arguments"]["data"]["max_train_samples"] == 16
    assert saved["arguments"]["training"]["num_train_epochs"] == 1

    files = set(os.listdir(output_dir))
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "results.json"} <= files
    assert not [name for name in files if name.startswith(".saving-") or name.endswith(".tmp")]
    with open(output_dir / "config.json") as f:
        config = json.load(f)
    assert config["id2label"] == {str(i): label for i, label in enumerate(LABELS)}  # O, then by type, B- before I-
    assert config["label2id"] == {label: i for i, label in enumerate(LABELS)}


def test_resume_from_checkpoint(tiny_bert_dir, tmp_path, caplog):
    output_dir = tmp_path / "resumed"
    # a finished run removes its checkpoints unless --keep_checkpoints: kept, a later run can train it further
    steps = ["--save_strategy", "steps", "--save_steps", "2", "--logging_steps", "1",
             "--per_device_train_batch_size", "4", "--keep_checkpoints"]
    run_ner_compress.main(demo_args(tiny_bert_dir, output_dir, *steps, "--max_steps", "2"))
    state_file = output_dir / "checkpoint-2" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    assert state["global_step"] == 2
    # Mark the checkpoint: a run that resumes from it carries the mark on; a fresh run could not know it
    state["log_history"].append({"step": 2, "resume_mark": 1.0})
    state_file.write_text(json.dumps(state))

    with caplog.at_level(logging.INFO, logger="run_ner_compress"):
        run_ner_compress.main(demo_args(tiny_bert_dir, output_dir, *steps, "--max_steps", "4"))
    assert any("resuming from" in r.getMessage() and "checkpoint-2" in r.getMessage() for r in caplog.records)
    state = json.loads((output_dir / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert {"step": 2, "resume_mark": 1.0} in state["log_history"]
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry] == [1, 2, 3, 4]
    assert looks_finished(output_dir)


def test_max_steps_trains_even_with_zero_epochs(tiny_bert_dir, tmp_path):
    # TrainingArguments: a positive max_steps overrides num_train_epochs
    output_dir = tmp_path / "steps"
    run_ner_compress.main(demo_args(tiny_bert_dir, output_dir, "--num_train_epochs", "0", "--max_steps", "1",
                                    "--save_strategy", "steps", "--save_steps", "1", "--keep_checkpoints"))
    assert (output_dir / "checkpoint-1").is_dir()


@pytest.mark.parametrize("strategy", ["epoch", "steps"])
def test_a_run_cut_by_its_time_budget_evaluates_and_keeps_the_step_it_stopped_at(tiny_bert_dir, tmp_path, strategy):
    """--max_train_seconds stops at the first step here (2 steps an epoch, 3 epochs); that step is evaluated once and
    saved, so load_best_model_at_end chooses among the model trained up to the budget too, with either strategy."""
    output_dir = tmp_path / strategy
    results = run_ner_compress.main(demo_args(
        tiny_bert_dir, output_dir, "--model_type", "shared_ffn", "--num_train_epochs", "3", "--max_train_seconds",
        "1e-9", "--eval_strategy", strategy, "--save_strategy", strategy, "--eval_steps", "100", "--save_steps", "100",
        "--load_best_model_at_end", "True", "--metric_for_best_model", "f1", "--keep_checkpoints"))
    assert results["stopped_at_time_budget"] and results["epochs_trained"] == 0.5
    state = json.loads((output_dir / "checkpoint-1" / "trainer_state.json").read_text())
    assert [entry["step"] for entry in state["log_history"] if "eval_f1" in entry] == [1]
    assert state["best_model_checkpoint"].endswith("checkpoint-1")


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_single_config_file_argument(tiny_bert_dir, tmp_path, suffix):
    output_dir = tmp_path / "from_config"
    argv = demo_args(tiny_bert_dir, output_dir, "--num_train_epochs", "1", "--save_strategy", "no")
    settings = {}
    for flag, value in zip(argv[::2], argv[1::2]):
        key = flag.removeprefix("--")
        settings[key] = int(value) if value.isdigit() else {"true": True}.get(value, value)
    config_file = tmp_path / f"run{suffix}"
    if suffix == ".json":
        config_file.write_text(json.dumps(settings))
    else:
        import yaml

        config_file.write_text(yaml.safe_dump(settings))
    results = run_ner_compress.main([str(config_file)])
    assert results["arguments"]["data"]["max_train_samples"] == 16
    assert results["arguments"]["training"]["output_dir"] == str(output_dir)
    assert "test_f1" in results and looks_finished(output_dir)


def test_fine_tuned_head_in_another_label_order_keeps_its_meaning(tmp_path):
    # The Hub's CoNLL order differs from ours; a head loaded under our id2label must be reordered, not renamed
    hub_order = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    original = make_tiny_bert(tmp_path / "hub-order", id2label=dict(enumerate(hub_order)),
                              label2id={label: i for i, label in enumerate(hub_order)})
    loaded = modeling.load_bert(str(tmp_path / "hub-order"), "--model_name_or_path", LABELS).eval()
    assert loaded.config.id2label == dict(enumerate(LABELS))
    input_ids = torch.tensor([[2, 10, 20, 30, 3]])
    with torch.no_grad():
        expected = original(input_ids).logits  # (1, T, 9) in the Hub order
        logits = loaded(input_ids).logits  # (1, T, 9) in our order
    for i, label in enumerate(LABELS):
        torch.testing.assert_close(logits[..., i], expected[..., hub_order.index(label)])


# ---------------------------------------------------------------------------------------------------------------
# Bad input: one message and exit status 2. Each case goes through cli(), the console entry point, in this process
# (a fresh interpreter pays seconds for importing torch); one case also runs as a real `python run_ner_compress.py`.


def write_lines(path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def write_empty(path) -> str:
    path.write_bytes(b"")
    return str(path)


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    """case -> (command-line arguments, fragments the error line must hold)."""
    root = tmp_path_factory.mktemp("bad_input")
    model_dir = root / "tiny-bert"
    make_tiny_bert(model_dir)
    other_labels = ["O", "B-DRUG", "I-DRUG"]
    make_tiny_bert(root / "other-labels", num_labels=3, id2label=dict(enumerate(other_labels)),
                   label2id={label: i for i, label in enumerate(other_labels)})
    demo = {split: str(DEMO_DIR / f"demo_{split}.txt") for split in ("train", "validation", "test")}

    def files(train=demo["train"], test=demo["test"]):
        return ["--model_name_or_path", str(model_dir), "--report_to", "none",
                "--train_file", train, "--validation_file", demo["validation"], "--test_file", test]

    return {
        "missing_file": (files(train=str(root / "missing.txt")), ["missing.txt: no such file"]),
        "empty_file": (files(train=write_empty(root / "empty.txt")), ["empty.txt: the file is empty"]),
        "single_column": (files(train=write_lines(root / "single.txt", ["Joss B-PER", "rose O", "", "Talbrook"])),
                          ["single.txt:4", "single column"]),
        "unknown_test_tag": (
            files(test=write_lines(root / "test.txt", ["-DOCSTART- O", "", "Joss B-PER", "", "on O", "Monday B-DATE"])),
            ["test.txt:6", "'B-DATE'"],
        ),
        "teacher_labels": (files() + ["--teacher_name_or_path", str(root / "other-labels")],
                           ["--teacher_name_or_path", "other-labels", "B-DRUG"]),
        "model_type": (files() + ["--model_type", "pruned"], ["--model_type", "pruned"]),
        "config_file": ([str(root / "missing.json")], ["missing.json: no such config file"]),
        "config_bad_json": ([write_lines(root / "bad.json", ['{"model_type": "teacher",}'])], ["bad.json: Expecting"]),
        "config_bad_yaml": ([write_lines(root / "bad.yaml", ["model_type: [teacher"])], ["bad.yaml:2: not valid YAML"]),
        "config_unknown_key": ([write_lines(root / "unknown.json", ['{"epochs": 3}'])], ["unknown.json:", "epochs"]),
        "config_not_mapping": ([write_lines(root / "list.yaml", ["- teacher"])], ["list.yaml: the file must hold"]),
        "zero_samples": (files() + ["--max_train_samples", "0"], ["--max_train_samples 0"]),
        "delta_rank_without_sharing": (files() + ["--model_type", "low_rank", "--rank", "4", "--share_delta_rank",
                                                  "4"], ["--share_delta_rank 4 needs a sharing type"]),
        "delta_rank_too_high": (files() + ["--model_type", "shared_ffn", "--share_delta_rank", "33"],
                                ["--share_delta_rank 33", "min(in, out)=32"]),
        "delta_rank_negative": (files() + ["--model_type", "shared_ffn", "--share_delta_rank", "-1"],
                                ["--share_delta_rank -1", "must be >= 0"]),
        "groups_do_not_divide": (files() + ["--model_type", "shared_attn", "--num_shared_groups", "3"],
                                 ["--num_shared_groups 3 must divide num_hidden_layers=2"]),
        "positions_too_wide": (files() + ["--model_type", "shared_ffn", "--position_embedding_size", "32"],
                               ["--position_embedding_size=32", "hidden_size-1 (hidden_size=32)"]),
        "groups_without_sharing": (files() + ["--num_shared_groups", "2"], ["--num_shared_groups 2 needs a sharing"]),
        "delta_init_unknown": (files() + ["--model_type", "shared_ffn", "--share_delta_rank", "4",
                                          "--share_delta_init", "lora"], ["--share_delta_init", "lora"]),
        "prune_student_teacher": (files() + ["--prune_student_vocab"],
                                  ["--prune_student_vocab with --model_type finetune"]),
        "prune_student_resplit": (files() + ["--model_type", "shared_ffn", "--prune_student_vocab", "--prune_unseen",
                                             "resplit"], ["--prune_student_vocab with --prune_unseen resplit"]),
        "prune_student_twice": (files() + ["--model_type", "shared_ffn", "--prune_student_vocab", "--prune_vocab"],
                                ["--prune_student_vocab with --prune_vocab"]),
        "prune_student_no_train": (["--model_name_or_path", str(model_dir), "--report_to", "none", "--test_file",
                                    demo["test"], "--model_type", "shared_ffn", "--prune_student_vocab"],
                                   ["--prune_student_vocab needs a training split"]),
        "prune_top_alone": (files() + ["--prune_keep_top", "5"],
                            ["--prune_keep_top is only used with --prune_vocab or --prune_student_vocab"]),
    }


def check_one_error(stderr: str, expected: list[str]) -> None:
    assert "Traceback" not in stderr, stderr
    error_lines = [line for line in stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1, stderr
    for fragment in expected:
        assert fragment in error_lines[0], stderr


@pytest.mark.parametrize(
    "case",
    ["missing_file", "empty_file", "single_column", "unknown_test_tag", "teacher_labels", "model_type",
     "zero_samples", "config_file", "config_bad_json", "config_bad_yaml", "config_unknown_key",
     "config_not_mapping", "delta_rank_without_sharing", "delta_rank_too_high", "delta_rank_negative",
     "groups_do_not_divide", "groups_without_sharing", "delta_init_unknown", "prune_student_teacher",
     "prune_student_resplit", "prune_student_twice", "prune_student_no_train", "prune_top_alone"],
)
def test_bad_input_exits_2_with_one_message(bad_inputs, case, tmp_path, monkeypatch, capsys):
    argv, expected = bad_inputs[case]
    output_dir = tmp_path / "out"
    if not case.startswith("config"):
        argv = ["--output_dir", str(output_dir), *argv]
    monkeypatch.delenv("NER_COMPRESS_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["run_ner_compress.py", *argv])
    with pytest.raises(SystemExit) as exit_info:
        run_ner_compress.cli()
    assert exit_info.value.code == 2
    check_one_error(capsys.readouterr().err, expected)
    assert not looks_finished(output_dir)


def test_bad_input_from_the_real_command_line(bad_inputs, tmp_path):
    argv, expected = bad_inputs["unknown_test_tag"]  # the last check before any model is loaded
    output_dir = tmp_path / "out"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.pop("NER_COMPRESS_DEBUG", None)
    process = subprocess.run([sys.executable, "run_ner_compress.py", "--output_dir", str(output_dir), *argv],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert process.returncode == 2, process.stderr
    check_one_error(process.stderr, expected)
    assert not looks_finished(output_dir)


def test_share_init_default_is_the_one_chosen_in_modeling():
    from modeling.shared_layers import DEFAULT_SHARE_DELTA_INIT, DEFAULT_SHARE_INIT

    assert cli.arguments.CompressionArguments().share_init == DEFAULT_SHARE_INIT
    assert cli.arguments.CompressionArguments().share_delta_init == DEFAULT_SHARE_DELTA_INIT


def test_relaxed_grouped_distilled_run_records_its_sharing(tiny_bert_dir, tmp_path):
    output_dir = tmp_path / "relaxed"
    results = run_ner_compress.main(demo_args(
        tiny_bert_dir, output_dir, "--model_type", "shared_ffn", "--num_shared_groups", "2", "--share_init", "mean",
        "--share_delta_rank", "4", "--share_delta_init", "svd", "--embedding_size", "16",
        "--teacher_name_or_path", str(tiny_bert_dir), "--max_steps", "1", "--save_strategy", "no"))
    compression = results["compression"]
    assert compression["num_shared_groups"] == 2 and compression["share_delta_rank"] == 4
    assert compression["share_delta_init"] == "svd" and compression["share_init"] == "mean"
    assert {"layer_groups", "relaxed_sharing", "factorized_embeddings"} <= set(compression["methods"])
    with open(output_dir / "config.json") as f:
        config = json.load(f)
    assert (config["num_shared_groups"], config["share_delta_rank"], config["share_delta_init"]) == (2, 4, "svd")


def test_pruned_student_vocabulary_is_the_model_trained_saved_and_counted(tiny_bert_dir, tmp_path, monkeypatch):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from export.vocab_pruning import corpus_vocabulary
    from modeling import count_unique_parameters

    # Few words, so that real pieces ("lake", "port", ...) are dropped, not only ids no tokenizer makes
    tagged = [[("World", "B-MISC"), ("Cup", "I-MISC"), ("Bank", "B-ORG"), ("Group", "I-ORG"), ("rose", "O")],
              [("Joss", "B-PER"), ("Mare", "I-PER"), ("met", "O"), ("in", "O"), ("Lake", "B-LOC"), ("Ard", "I-LOC")]]
    sentences = [[word for word, _ in sentence] for sentence in tagged]
    lines = [line for sentence in tagged for line in [f"{word} {tag}" for word, tag in sentence] + [""]]
    train_file = write_lines(tmp_path / "train.txt", lines)
    student = ("--train_file", train_file, "--model_type", "shared_ffn", "--embedding_size", "16",
               "--hidden_loss_weight", "1", "--teacher_name_or_path", str(tiny_bert_dir), "--max_steps", "1",
               "--save_strategy", "no")
    full = run_ner_compress.main(demo_args(tiny_bert_dir, tmp_path / "full", *student))
    trained = {}
    save_final_model = cli.run_folder.save_final_model

    def keep_model(trainer, tokenizer, output_dir):
        trained["model"] = trainer.model
        save_final_model(trainer, tokenizer, output_dir)

    monkeypatch.setattr(cli.steps, "save_final_model", keep_model)
    output_dir = tmp_path / "pruned"
    results = run_ner_compress.main(demo_args(tiny_bert_dir, output_dir, *student, "--prune_student_vocab"))

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    rows = len(corpus_vocabulary(tokenizer, sentences))
    loaded = AutoModelForTokenClassification.from_pretrained(output_dir).eval()
    assert loaded.config.embedding_rows == rows < len(tokenizer) <= loaded.config.vocab_size
    assert len(AutoTokenizer.from_pretrained(output_dir)) == len(tokenizer)  # the teacher's tokenizer, unchanged
    ids = torch.arange(loaded.config.vocab_size)[None]  # (1, V): the dropped ids too
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, trained["model"].eval()(input_ids=ids).logits,
                                   rtol=0, atol=0)
    assert results["num_parameters"] == count_unique_parameters(loaded)
    assert full["num_parameters"] - results["num_parameters"] == (loaded.config.vocab_size - rows) * 16  # (V-K)×E
    assert results["compression"]["embedding_rows"] == rows and "embedding_rows" not in full["compression"]
    assert results["teacher_path"] == str(tiny_bert_dir)
    assert json.loads((output_dir / "results.json").read_text())["num_parameters"] == results["num_parameters"]


# --do_train / --do_eval / --do_predict, as in transformers' run_ner.py; none given: every phase its split allows.


def test_phases_given_are_obeyed(tiny_bert_dir, tmp_path):
    evaluated = run_ner_compress.main(demo_args(tiny_bert_dir, tmp_path / "eval", "--do_eval"))
    assert evaluated["epochs_trained"] == 0 and "train_runtime_s" not in evaluated
    assert "validation_f1" in evaluated and "test_f1" not in evaluated

    trained = run_ner_compress.main(demo_args(tiny_bert_dir, tmp_path / "train", "--do_train", "--do_predict",
                                              "--max_steps", "1", "--save_strategy", "no"))
    assert trained["epochs_trained"] > 0 and trained["train_runtime_s"] is not None
    assert "test_f1" in trained and "validation_f1" not in trained


def test_no_phase_given_runs_every_phase_with_a_split(tiny_bert_dir, tmp_path):
    results = run_ner_compress.main(demo_args(tiny_bert_dir, tmp_path / "all", "--max_steps", "1",
                                              "--save_strategy", "no"))
    assert results["epochs_trained"] > 0 and "validation_f1" in results and "test_f1" in results


def test_a_phase_without_its_split_is_refused_before_any_model_loads(tiny_bert_dir, tmp_path):
    argv = ["--model_name_or_path", str(tiny_bert_dir), "--output_dir", str(tmp_path / "out"),
            "--train_file", str(DEMO_DIR / "demo_train.txt"), *QUICK, "--do_predict"]
    with pytest.raises(ValueError, match="--do_predict needs a test split"):
        run_ner_compress.main(argv)
    assert not looks_finished(tmp_path / "out")
