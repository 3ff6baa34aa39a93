"""Bad input through the console entry points: one table, one line per case.

Each case is ``Case(id, command, argv builder, expected fragment, exit code)``. ``command`` picks the entry point
from ``COMMANDS`` ("run": run_ner_compress.cli, "hub_cards": python -m hub_cards); another command that takes the
same inputs (a prediction script, say) adds itself to ``COMMANDS`` and reuses the builders. The builder gets a
``Inputs`` object (shared tiny models and bad files, made once per module) and returns the argv.

Every case must end with the exit code, exactly one line on stderr holding the fragment, no traceback, and no
results.json anywhere in its folder. Almost all fail before any model weights are loaded, so the table is fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import DEMO_DIR, make_tiny_bert, make_tiny_tokenizer

import run_ner_compress
import run_ner_predict

DEMO = {split: str(DEMO_DIR / f"demo_{split}.txt") for split in ("train", "validation", "test")}
QUICK = ["--max_train_samples", "16", "--max_eval_samples", "8", "--max_predict_samples", "8",
         "--per_device_train_batch_size", "8", "--report_to", "none", "--disable_tqdm", "true"]


class Inputs:
    """Tiny models and bad files under one module-wide folder; ``out`` is each case's own output folder."""

    def __init__(self, root: Path):
        self.root = root
        self.out = root / "out"
        self.model = str(root / "tiny-bert")
        make_tiny_bert(root / "tiny-bert")
        make_tiny_bert(root / "other-vocab", vocab_size=50)
        make_tiny_bert(root / "wider", hidden_size=48)
        labels = ["O", "B-DRUG", "I-DRUG"]
        make_tiny_bert(root / "other-labels", num_labels=3, id2label=dict(enumerate(labels)),
                       label2id={label: i for i, label in enumerate(labels)})
        (root / "empty-folder").mkdir()
        (root / "config-only").mkdir()
        (root / "config-only" / "config.json").write_text((root / "tiny-bert" / "config.json").read_text())
        (root / "bad-config").mkdir()
        (root / "bad-config" / "config.json").write_text("{not json")
        (root / "bad-config" / "model.safetensors").write_bytes(b"")
        make_tiny_tokenizer(root / "bad-config")
        (root / "not-bert").mkdir()
        (root / "not-bert" / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 1}))
        (root / "not-bert" / "model.safetensors").write_bytes(b"")
        make_tiny_tokenizer(root / "not-bert")
        (root / "run-folder").mkdir()  # a finished-looking folder for hub_cards with a bad results.json

    def path(self, name: str) -> str:
        return str(self.root / name)

    def write(self, name: str, content: str | bytes) -> str:
        path = self.root / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return str(path)

    def args(self, *extra: str, train=DEMO["train"], validation=DEMO["validation"], test=DEMO["test"],
             model: str | None = None) -> list[str]:
        """A run that would succeed, with ``extra`` flags (later flags win) or one of its files replaced (None: left
        out)."""
        files = [item for flag, path in (("--train_file", train), ("--validation_file", validation),
                                         ("--test_file", test)) if path is not None for item in (flag, path)]
        return ["--model_name_or_path", model or self.model, "--output_dir", str(self.out), *files, *QUICK, *extra]

    def config(self, name: str, content: str | bytes) -> list[str]:
        return [self.write(name, content)]

    def results_folder(self, content: str | bytes) -> list[str]:
        self.write("run-folder/results.json", content)
        return [self.path("run-folder")]


LATIN1 = b"EU B-ORG\nrejects O\nM\xfcller B-PER\n"  # the bad byte on line 3, at offset 20
UTF16 = "EU B-ORG\nrejects O\n".encode("utf-16")
BINARY = bytes(range(256)) * 4


@dataclass(frozen=True)
class Case:
    id: str
    command: str  # a key of COMMANDS
    argv: Callable[[Inputs], list[str]]
    fragment: str  # must appear in the one stderr line
    code: int = 2


R, H, P = "run", "hub_cards", "predict"
CASES = [
    # Data files: encoding
    Case("train_latin1", R, lambda x: x.args(train=x.write("latin1.txt", LATIN1)), "latin1.txt:3: not UTF-8"),
    Case("train_latin1_offset", R, lambda x: x.args(train=x.write("latin1b.txt", LATIN1)), "at offset 20"),
    Case("train_binary", R, lambda x: x.args(train=x.write("binary.txt", BINARY)), "binary.txt:2: not UTF-8 text: byte 0x80 at offset 128"),
    Case("train_utf16", R, lambda x: x.args(train=x.write("utf16.txt", UTF16)), "utf16.txt:1: not UTF-8 text (UTF-16?)"),
    Case("validation_latin1", R, lambda x: x.args(validation=x.write("val1.txt", LATIN1)), "val1.txt:3"),
    Case("test_latin1", R, lambda x: x.args(test=x.write("test1.txt", LATIN1)), "test1.txt:3"),
    Case("jsonl_latin1", R, lambda x: x.args(train=x.write("l1.jsonl", b'{"tokens": ["M\xfc"], "ner_tags": ["O"]}\n')),
         "l1.jsonl:1: not UTF-8"),
    # Data files: content
    Case("train_missing", R, lambda x: x.args(train=x.path("missing.txt")), "missing.txt: no such file"),
    Case("train_empty", R, lambda x: x.args(train=x.write("empty.txt", b"")), "empty.txt: the file is empty"),
    Case("train_is_folder", R, lambda x: x.args(train=x.path("empty-folder")), "empty-folder: is a folder"),
    Case("single_column", R, lambda x: x.args(train=x.write("one.txt", "EU B-ORG\n\nTalbrook\n")), "one.txt:3"),
    Case("bad_tag", R, lambda x: x.args(train=x.write("tag.txt", "EU X-ORG\n")), "tag.txt:1: tag 'X-ORG'"),
    Case("unknown_test_tag", R, lambda x: x.args(test=x.write("date.txt", "on O\nMonday B-DATE\n")),
         "date.txt:2: tag 'B-DATE'"),
    Case("only_docstart", R, lambda x: x.args(train=x.write("doc.txt", "-DOCSTART- -X- O O\n\n")), "no sentences"),
    Case("jsonl_bad_json", R, lambda x: x.args(train=x.write("bad.jsonl", '{"tokens": [}\n')), "bad.jsonl:1: not valid JSON"),
    Case("jsonl_not_object", R, lambda x: x.args(train=x.write("list.jsonl", "[1, 2]\n")), "list.jsonl:1: expected a JSON"),
    Case("jsonl_length", R, lambda x: x.args(train=x.write("len.jsonl", '{"tokens": ["a"], "ner_tags": []}\n')),
         "len.jsonl:1: 1 tokens but 0"),
    Case("jsonl_tag_ints", R, lambda x: x.args(train=x.write("ints.jsonl", '{"tokens": ["a"], "ner_tags": [0]}\n')),
         "ints.jsonl:1: ner_tags must be tag strings"),
    # Model, teacher and tokenizer folders
    Case("model_empty_folder", R, lambda x: x.args(model=x.path("empty-folder")),
         "--model_name_or_path " + "{root}/empty-folder: the folder holds no config.json"),
    Case("model_missing_folder", R, lambda x: x.args(model=x.path("no-such-model")), "no-such-model: no such folder"),
    Case("model_is_file", R, lambda x: x.args(model=DEMO["train"]), "--model_name_or_path"),
    Case("model_without_weights", R, lambda x: x.args(model=x.path("config-only")), "config-only: the folder holds a config"),
    Case("model_bad_config", R, lambda x: x.args(model=x.path("bad-config")), "bad-config: cannot load a model config"),
    Case("model_not_bert", R, lambda x: x.args(model=x.path("not-bert")), "model_type is 'gpt2'"),
    Case("teacher_empty_folder", R, lambda x: x.args("--teacher_name_or_path", x.path("empty-folder")),
         "--teacher_name_or_path {root}/empty-folder"),
    Case("teacher_missing", R, lambda x: x.args("--teacher_name_or_path", x.path("nope")), "--teacher_name_or_path"),
    Case("tokenizer_empty_folder", R, lambda x: x.args("--tokenizer_name", x.path("empty-folder")),
         "--tokenizer_name {root}/empty-folder: the folder holds no tokenizer"),
    Case("teacher_other_vocab", R, lambda x: x.args("--teacher_name_or_path", x.path("other-vocab")),
         "its vocabulary has 50 entries"),
    Case("student_teacher_other_vocab", R, lambda x: x.args("--model_type", "student", "--teacher_name_or_path",
                                                             x.path("other-vocab"), "--tokenizer_name", x.model),
         "tokenizer"),
    Case("teacher_other_width", R, lambda x: x.args("--teacher_name_or_path", x.path("wider"), "--hidden_loss_weight",
                                                    "1"), "the teacher's width is 48"),
    Case("teacher_other_labels", R, lambda x: x.args("--teacher_name_or_path", x.path("other-labels")), "B-DRUG"),
    # Numeric flags
    *[Case(f"{flag}_{value}", R, lambda x, f=flag, v=value: x.args(f"--{f}", v), f"--{flag} {value}")
      for flag, value in [
          ("num_train_epochs", "-1"), ("num_train_epochs", "nan"), ("num_train_epochs", "inf"),
          ("learning_rate", "inf"), ("learning_rate", "nan"), ("learning_rate", "-0.001"), ("learning_rate", "0"),
          ("max_seq_length", "0"), ("max_seq_length", "1"), ("max_seq_length", "2"), ("max_seq_length", "-5"),
          ("weight_decay", "nan"), ("max_grad_norm", "-1"), ("adam_epsilon", "0"),
          ("per_device_train_batch_size", "0"), ("gradient_accumulation_steps", "0"), ("max_steps", "-7"),
          ("temperature", "nan"), ("temperature", "0"), ("alpha", "2"), ("alpha", "nan"),
          ("hidden_loss_weight", "nan"), ("hidden_loss_weight", "-1"), ("max_train_seconds", "nan"),
          ("max_train_seconds", "0"), ("embedding_size", "0"), ("position_embedding_size", "-2"), ("rank", "-4"), ("rank_energy", "1.5"),
          ("rank_energy", "0"), ("student_num_layers", "0"), ("student_hidden_size", "-1"),
          ("label_smoothing_factor", "2"), ("max_train_samples", "0"), ("prune_keep_top", "-1"),
      ]],
    Case("warmup_steps_negative", R, lambda x: x.args("--warmup_steps", "-3"), "--warmup_steps -3.0 must be >= 0"),
    Case("max_seq_length_over_positions", R, lambda x: x.args("--max_seq_length", "1024"), "max_position_embeddings"),
    Case("max_seq_length_not_int", R, lambda x: x.args("--max_seq_length", "abc"), "--max-seq-length: invalid int value: 'abc'"),
    Case("epochs_not_number", R, lambda x: x.args("--num_train_epochs", "many"), "--num-train-epochs: invalid float value: 'many'"),
    Case("model_type_unknown", R, lambda x: x.args("--model_type", "pruned"), "--model-type: invalid choice: 'pruned'"),
    Case("unknown_flag", R, lambda x: x.args("--epochs", "3"), "--epochs"),
    Case("rank_and_energy", R, lambda x: x.args("--rank", "4", "--rank_energy", "0.5"), "only one of --rank"),
    Case("quantize_unknown", R, lambda x: x.args("--quantize", "int4"), "--quantize: invalid choice: 'int4'"),
    Case("prune_unseen_unknown", R, lambda x: x.args("--prune_vocab", "--prune_unseen", "closest"),
         "--prune-unseen: invalid choice: 'closest'"),
    Case("prune_unseen_alone", R, lambda x: x.args("--prune_unseen", "nearest"),
         "--prune_unseen is only used with --prune_vocab"),
    Case("output_dir_is_file", R, lambda x: x.args("--output_dir", DEMO["train"]), "File exists"),
    Case("resume_missing", R, lambda x: x.args("--resume_from_checkpoint", x.path("nope")),
         "--resume_from_checkpoint {root}/nope: not a complete checkpoint"),
    Case("resume_partial", R, lambda x: x.args("--resume_from_checkpoint", x.path("config-only")),
         "not a complete checkpoint (no trainer_state.json)"),
    # Extra texts for vocabulary pruning: checked before training
    Case("prune_texts_missing", R, lambda x: x.args("--prune_vocab", "--prune_extra_texts", x.path("none.txt")),
         "--prune_extra_texts {root}/none.txt: no such file"),
    Case("prune_texts_empty", R, lambda x: x.args("--prune_vocab", "--prune_extra_texts", x.write("e.txt", b"")),
         "--prune_extra_texts {root}/e.txt: the file is empty"),
    Case("prune_texts_latin1", R, lambda x: x.args("--prune_vocab", "--prune_extra_texts", x.write("p1.txt", LATIN1)),
         "--prune_extra_texts {root}/p1.txt:3: not UTF-8"),
    Case("prune_texts_folder", R, lambda x: x.args("--prune_vocab", "--prune_extra_texts", x.path("empty-folder")),
         "--prune_extra_texts"),
    Case("prune_texts_without_prune", R, lambda x: x.args("--prune_extra_texts", DEMO["train"]), "only used with"),
    # Config files
    Case("config_missing", R, lambda x: [x.path("missing.json")], "missing.json: no such config file"),
    Case("config_bad_json", R, lambda x: x.config("bad.json", '{"model_type": "teacher",}'), "bad.json: Expecting"),
    Case("config_bad_yaml", R, lambda x: x.config("bad.yaml", "model_type: [teacher\n"), "bad.yaml:2: not valid YAML"),
    Case("config_unknown_key", R, lambda x: x.config("unknown.json", '{"epochs": 3}'), "epochs"),
    Case("config_list", R, lambda x: x.config("list.yaml", "- teacher\n"), "list.yaml: the file must hold"),
    Case("config_empty_yaml", R, lambda x: x.config("empty.yaml", ""), "empty.yaml: the file must hold"),
    Case("config_latin1", R, lambda x: x.config("l1.yaml", b"model_type: teacher\ntrain_file: M\xfcller.txt\n"),
         "l1.yaml:2: not UTF-8"),
    Case("config_seq_length_abc", R, lambda x: x.config("abc.yaml", "max_seq_length: abc\n"),
         "abc.yaml: key 'max_seq_length': 'abc'"),
    Case("config_epochs_abc", R, lambda x: x.config("abc.json", '{"num_train_epochs": "abc"}'),
         "abc.json: key 'num_train_epochs'"),
    Case("config_lr_list", R, lambda x: x.config("lr.json", '{"learning_rate": [1]}'), "key 'learning_rate'"),
    Case("config_model_type_int", R, lambda x: x.config("mt.json", '{"model_type": 5}'), "key 'model_type'"),
    Case("config_flag_bool", R, lambda x: x.config("b.yaml", "label_all_tokens: maybe\n"), "key 'label_all_tokens'"),
    Case("config_epochs_nan", R, lambda x: x.config("nan.yaml", f"num_train_epochs: .nan\nmodel_name_or_path: {x.model}\n"),
         "--num_train_epochs nan"),
    # python -m hub_cards: the same kind of inputs (a folder, the results.json in it)
    Case("cards_missing_folder", H, lambda x: [x.path("no-such-run")], "no such file"),
    Case("cards_no_results", H, lambda x: [x.path("empty-folder")], "results.json: no such file"),
    Case("cards_results_not_json", H, lambda x: x.results_folder("{oops"), "results.json: not valid JSON"),
    Case("cards_results_list", H, lambda x: x.results_folder("[1, 2]"), "expected a JSON object"),
    Case("cards_results_latin1", H, lambda x: x.results_folder(b'{"model_type": "M\xfcller"}'),
         "results.json: not valid JSON"),
    Case("cards_results_empty", H, lambda x: x.results_folder(b""), "results.json: not valid JSON"),
    Case("cards_folder_is_file", H, lambda x: [DEMO["train"]], "no such file"),
    Case("cards_unknown_flag", H, lambda x: [x.model, "--bogus"], "unrecognized arguments"),
    # Transfer set and sharing flags (run_ner_compress.py)
    Case("transfer_missing", R, lambda x: x.args("--teacher_name_or_path", x.model, "--transfer_file",
                                                 x.path("none.txt")), "none.txt"),
    Case("transfer_empty", R, lambda x: x.args("--teacher_name_or_path", x.model, "--transfer_file",
                                               x.write("t0.txt", b"")), "t0.txt"),
    Case("transfer_binary", R, lambda x: x.args("--teacher_name_or_path", x.model, "--transfer_file",
                                                x.write("tb.txt", BINARY)), "tb.txt"),
    Case("transfer_latin1", R, lambda x: x.args("--teacher_name_or_path", x.model, "--transfer_file",
                                                x.write("tl.txt", LATIN1)), "tl.txt:3"),
    Case("transfer_no_teacher", R, lambda x: x.args("--transfer_file", x.write("t1.txt", "EU rejects it .\n")),
         "--transfer_file needs a teacher, which labels the transfer set: drop --model_type finetune"),
    Case("transfer_ratio_zero", R, lambda x: x.args("--transfer_ratio", "0"), "--transfer_ratio 0"),
    Case("delta_rank_without_sharing", R, lambda x: x.args("--share_delta_rank", "4"), "--share_delta_rank"),
    Case("delta_rank_negative", R, lambda x: x.args("--model_type", "shared_ffn", "--share_delta_rank", "-1"),
         "--share_delta_rank"),
    Case("delta_rank_too_big", R, lambda x: x.args("--model_type", "shared_ffn", "--share_delta_rank", "1000"),
         "min(in, out)"),
    Case("groups_not_dividing", R, lambda x: x.args("--model_type", "shared_ffn", "--num_shared_groups", "3"),
         "--num_shared_groups 3 must divide"),
    # run_ner_predict: the same kinds of input (a model folder, a text or CoNLL file)
    Case("predict_input_missing", P, lambda x: ["--model", x.model, "--input", x.path("none.txt")], "none.txt"),
    Case("predict_input_latin1", P, lambda x: ["--model", x.model, "--input", x.write("pl.txt", LATIN1)],
         "pl.txt:3: not UTF-8"),
    Case("predict_input_binary", P, lambda x: ["--model", x.model, "--input", x.write("pb.txt", BINARY)], "pb.txt"),
    Case("predict_model_empty_folder", P, lambda x: ["--model", x.path("empty-folder"), "--input", DEMO["test"]],
         "empty-folder"),
    Case("predict_model_missing", P, lambda x: ["--model", x.path("no-such-model"), "--input", DEMO["test"]],
         "no-such-model"),
    Case("predict_onnx_missing", P, lambda x: ["--model", x.path("none.onnx"), "--input", DEMO["test"]], "none.onnx"),
    Case("predict_batch_zero", P, lambda x: ["--model", x.model, "--input", DEMO["test"], "--batch_size", "0"],
         "--batch_size"),
    Case("predict_format_unknown", P, lambda x: ["--model", x.model, "--input", DEMO["test"], "--format", "xml"],
         "--format"),
]


def console(cli: Callable[[], None], prog: str) -> Callable[[list[str]], int]:
    """A console script called as from a shell: its exit status (0 when it returns)."""
    def call(argv: list[str]) -> int:
        sys.argv = [prog, *argv]
        try:
            cli()
        except SystemExit as stop:
            return stop.code
        return 0
    return call


run_cli = console(run_ner_compress.cli, "run_ner_compress.py")


def hub_cards_cli(argv: list[str]) -> int:
    from hub_cards.__main__ import main

    try:
        return main(argv)
    except SystemExit as stop:  # argparse's own errors
        return stop.code


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    R: run_cli, H: hub_cards_cli, P: console(run_ner_predict.cli, "run_ner_predict")}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return Inputs(tmp_path_factory.mktemp("fuzz"))


def test_table_is_large_and_ids_unique():
    assert len(CASES) >= 60
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_one_line_exit_2(case, inputs, monkeypatch, capsys):
    monkeypatch.delenv("NER_COMPRESS_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    shutil_rmtree(inputs.out)
    argv = case.argv(inputs)
    capsys.readouterr()
    code = COMMANDS[case.command](argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == case.code, err
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert case.fragment.format(root=inputs.root) in lines[0], err
    written = [path for path in inputs.root.rglob("results.json") if path.parent.name != "run-folder"]  # hub_cards'
    assert not written, "results.json written"
    assert not (inputs.out / "model.safetensors").exists()


def shutil_rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def test_non_finite_training_stops_with_one_line_and_keeps_the_last_good_checkpoint(inputs, tmp_path, capsys,
                                                                                     monkeypatch):
    """A learning rate that is finite but absurd: the guard stops at the step the weights overflow."""
    out = tmp_path / "diverged"
    argv = inputs.args("--learning_rate", "1e30", "--max_steps", "6", "--save_strategy", "steps", "--save_steps", "1",
                       "--output_dir", str(out), "--warmup_steps", "0")
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    capsys.readouterr()
    code = run_cli(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]  # loading a model draws a progress bar too
    assert code == 2 and "Traceback" not in err and len(lines) == 1 and "training diverged at step" in lines[0], err
    step = int(lines[0].split("at step ")[1].split(":")[0])
    assert not (out / "results.json").exists() and not (out / "model.safetensors").exists()
    assert not (out / f"checkpoint-{step}").exists()  # the step that diverged is never checkpointed
    from safetensors.torch import load_file

    for checkpoint in out.glob("checkpoint-*"):  # the ones left are all finite
        weights = load_file(checkpoint / "model.safetensors")
        assert all(t.isfinite().all() for t in weights.values()), checkpoint
