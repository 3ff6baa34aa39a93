"""Bad input, round 2 (issue 29): the table of tests/cli/test_fuzz.py extended to the transfer flags, the
transfer-cache command (``python -m trainers.cache_transfer``) and wrongly typed results.json keys for
``python -m hub_cards``. Same rules: the exit code, one stderr line holding the fragment, no traceback, nothing
written.
"""

from __future__ import annotations

import json
import sys

import pytest
from conftest import REPO
from test_fuzz import COMMANDS, DEMO, H, P, R, Case, Inputs

from trainers import cache_transfer

T = "cache_transfer"
RESULTS = json.loads((REPO / "results" / "history" / "run1" / "best" / "results.json").read_text())


def results_with(**changes) -> str:
    return json.dumps({**RESULTS, **changes})


def cache_command(argv: list[str]) -> int:
    try:
        cache_transfer.cli(argv)
    except SystemExit as stop:
        return stop.code
    return 0


def transfer(x: Inputs, *extra: str) -> list[str]:
    return x.args("--teacher_name_or_path", x.model, "--transfer_file", x.write("tr.txt", "EU rejects it .\n"),
                  "--transfer_cache_dir", str(x.out / "cache"), *extra)


def garbage_weights(x: Inputs) -> str:
    """The tiny model with its model.safetensors replaced by random bytes (a download cut off, a wrong file)."""
    import random
    import shutil

    folder = x.root / "garbage-weights"
    if not folder.exists():
        shutil.copytree(x.model, folder)
        (folder / "model.safetensors").write_bytes(random.Random(0).randbytes(4096))
    return str(folder)


def smaller_tokenizer(x: Inputs) -> str:
    """A tokenizer of the tiny vocabulary's first 50 pieces: every id fits the model, but means another word."""
    from conftest import tiny_vocab
    from transformers import BertTokenizer

    folder = x.root / "small-tokenizer"
    if not folder.exists():
        BertTokenizer(vocab={piece: i for i, piece in enumerate(tiny_vocab()[:50])},
                      do_lower_case=True).save_pretrained(folder)
    return str(folder)


def garbage_checkpoint(x: Inputs) -> str:
    """A checkpoint folder whose trainer_state.json is not JSON (its weights are whole)."""
    import shutil

    folder = x.root / "checkpoint-garbage"
    if not folder.exists():
        shutil.copytree(x.model, folder)
        (folder / "trainer_state.json").write_text("{not json")
    return str(folder)


def predict(x: Inputs, *extra: str, model: str | None = None) -> list[str]:
    return ["--model", model or x.model, "--input", DEMO["test"], *extra]


def cache(x: Inputs, *extra: str, teacher: str | None = None) -> list[str]:
    return ["--teacher", teacher or x.model, "--transfer_file", x.write("tr.txt", "EU rejects it .\n"),
            "--transfer_cache_dir", str(x.out / "cache"), *extra]


CASES = [
    Case("transfer_ratio_inf", R, lambda x: transfer(x, "--transfer_ratio", "inf"), "--transfer_ratio inf must be"),
    Case("transfer_ratio_nan", R, lambda x: transfer(x, "--transfer_ratio", "nan"), "--transfer_ratio nan must be"),
    Case("transfer_kl_nan", R, lambda x: transfer(x, "--transfer_kl_weight", "nan"), "--transfer_kl_weight nan"),
    Case("transfer_kl_inf", R, lambda x: transfer(x, "--transfer_kl_weight", "inf"), "--transfer_kl_weight inf"),
    Case("transfer_cache_dir_file", R, lambda x: transfer(x, "--transfer_cache_dir", DEMO["train"]),
         "is a file, not a folder"),
    Case("cache_seq_negative", T, lambda x: cache(x, "--max_seq_length", "-1"), "--max_seq_length -1 must be"),
    Case("cache_seq_zero", T, lambda x: cache(x, "--max_seq_length", "0"), "--max_seq_length 0 must be"),
    Case("cache_seq_huge", T, lambda x: cache(x, "--max_seq_length", "100000"), "max_position_embeddings (512)"),
    Case("cache_batch_zero", T, lambda x: cache(x, "--batch_size", "0"), "--batch_size 0 must be at least 1"),
    Case("cache_teacher_empty", T, lambda x: cache(x, teacher=x.path("empty-folder")), "no config.json"),
    Case("cache_teacher_config_only", T, lambda x: cache(x, teacher=x.path("config-only")), "no model weights"),
    Case("cache_teacher_bad_config", T, lambda x: cache(x, teacher=x.path("bad-config")), "not a readable JSON"),
    Case("cache_teacher_missing", T, lambda x: cache(x, teacher=x.path("no-such-teacher")), "no such folder"),
    Case("cache_cache_dir_file", T, lambda x: cache(x, "--transfer_cache_dir", DEMO["train"]),
         "is a file, not a folder"),
    # checked from the flags and the source's config.json (the model built on the meta device), before any load
    Case("late_rank_huge", R, lambda x: x.args("--model_type", "low_rank", "--rank", "100000"),
         "--rank 100000 must be an integer between 1 and min(in, out)=32"),
    Case("late_embedding_huge", R, lambda x: x.args("--model_type", "factorized", "--embedding_size", "99999"),
         "--embedding_size 99999 must be between 1 and hidden_size-1"),
    Case("late_position_embedding_huge", R, lambda x: x.args("--model_type", "shared_ffn", "--embedding_size", "8",
                                                             "--position_embedding_size", "600"),
         "--position_embedding_size 600"),
    Case("late_share_init_layer", R, lambda x: x.args("--model_type", "shared_ffn", "--embedding_size", "8",
                                                      "--share_init", "layer:99"), "--share_init layer:99 must be"),
    Case("late_target_modules", R, lambda x: x.args("--model_type", "low_rank", "--rank", "4", "--target_modules",
                                                    "bogus"), "--target_modules bogus matches no nn.Linear"),
    Case("late_student_layers", R, lambda x: x.args("--model_type", "student", "--student_num_layers", "7",
                                                    "--teacher_name_or_path", x.model), "--student_num_layers 7"),
    Case("late_groups_and_init", R, lambda x: x.args("--model_type", "shared_ffn", "--embedding_size", "8",
                                                     "--num_shared_groups", "2", "--share_init", "layer:1"),
         "--share_init layer:1 must be 'mean' or 'layer:K' with 0 <= K < 1"),
    Case("late_prune_without_train", R, lambda x: x.args("--model_type", "factorized", "--embedding_size", "8",
                                                         "--prune_student_vocab", train=None),
         "--prune_student_vocab needs a training split"),
    Case("share_delta_init_without_sharing", R, lambda x: x.args("--model_type", "finetune", "--share_delta_init",
                                                                 "svd"), "--share_delta_init svd needs a sharing"),
    Case("resume_garbage_state", R, lambda x: x.args("--resume_from_checkpoint", garbage_checkpoint(x)),
         "trainer_state.json is not a readable JSON object"),
    # weights of random bytes: one line naming the file, before transformers reads it
    Case("run_model_garbage_weights", R, lambda x: x.args(model=garbage_weights(x)), "not a readable safetensors"),
    Case("run_teacher_garbage_weights", R, lambda x: x.args("--teacher_name_or_path", garbage_weights(x)),
         "--teacher_name_or_path"),
    Case("predict_garbage_weights", P, lambda x: predict(x, model=garbage_weights(x)), "not a readable safetensors"),
    Case("cache_teacher_garbage_weights", T, lambda x: cache(x, teacher=garbage_weights(x)),
         "not a readable safetensors"),
    # run_ner_predict's output and tokenizer
    Case("predict_output_proc", P, lambda x: predict(x, "--output", "/proc/x"),
         "--output /proc/x: cannot write a file in /proc"),
    Case("predict_output_dev_full", P, lambda x: predict(x, "--output", "/dev/full"),
         "--output /dev/full: cannot write (No space left on device)"),
    Case("predict_tokenizer_smaller_vocab", P, lambda x: predict(x, "--tokenizer", smaller_tokenizer(x)),
         "not the tokenizer of"),
    # argparse's own errors: its usage block left out, the one line kept
    Case("predict_format_bogus", P, lambda x: predict(x, "--format", "bogus"), "argument --format: invalid choice"),
    Case("predict_unknown_flag", P, lambda x: predict(x, "--bogus"), "unrecognized arguments: --bogus"),
    Case("cache_unknown_flag", T, lambda x: cache(x, "--bogus"), "unrecognized arguments: --bogus"),
    Case("cache_no_teacher", T, lambda x: ["--transfer_file", DEMO["train"]], "the following arguments are required"),
    Case("cards_no_folder", H, lambda x: [], "the following arguments are required: output_dir"),
    Case("cards_arguments_string", H, lambda x: x.results_folder(results_with(arguments="x")), "'arguments' is 'x'"),
    Case("cards_compression_list", H, lambda x: x.results_folder(results_with(compression=[1])), "'compression'"),
    Case("cards_metric_string", H, lambda x: x.results_folder(results_with(test_f1="0.9")), "'test_f1' is '0.9'"),
    Case("cards_runtime_string", H, lambda x: x.results_folder(results_with(test_runtime_s="1s")), "'test_runtime_s'"),
    Case("cards_data_group_list", H, lambda x: x.results_folder(results_with(arguments={"data": [1]})),
         "'arguments.data' is [1]"),
]
COMMANDS_ROUND2 = {**COMMANDS, T: cache_command}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return Inputs(tmp_path_factory.mktemp("fuzz2"))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_one_line_exit_2(case, inputs, monkeypatch, capsys):
    import shutil

    monkeypatch.delenv("NER_COMPRESS_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    shutil.rmtree(inputs.out, ignore_errors=True)
    argv = case.argv(inputs)
    capsys.readouterr()
    code = COMMANDS_ROUND2[case.command](argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == case.code, err
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert case.fragment in lines[0], err
    assert not [p for p in inputs.root.rglob("results.json") if p.parent.name != "run-folder"], "results.json written"
    assert not (inputs.out / "model.safetensors").exists() and not (inputs.out / "cache").exists()
    assert not (inputs.root / "run-folder" / "README.md").exists()


def test_a_device_node_as_output_is_written_in_place_never_replaced(inputs, capsys):
    """--output /dev/null runs and leaves the node a character device (root could replace it with a file)."""
    import stat

    import run_ner_predict

    run_ner_predict.main(predict(inputs, "--output", "/dev/null"))
    assert stat.S_ISCHR(__import__("os").stat("/dev/null").st_mode)
    assert "-> /dev/null" in capsys.readouterr().err


@pytest.mark.parametrize("closed, argv", [("0<&-", ["--input", "-"]), ("1>&-", ["--input", DEMO["test"]])])
def test_closed_stdin_or_stdout_is_one_line_before_any_model_loads(closed, argv, tmp_path):
    """A shell's <&- / >&- leave Python no sys.stdin / sys.stdout: one line, exit 2, before the model loads (so
    fast: the model given does not even exist)."""
    import shlex
    import subprocess

    command = shlex.join([sys.executable, str(REPO / "run_ner_predict.py"), "--model", str(tmp_path / "none.onnx"),
                          *argv])
    done = subprocess.run(f"{command} {closed}", shell=True, capture_output=closed.startswith("0"), text=True,
                          stderr=subprocess.PIPE if closed.startswith("1") else None, timeout=120)
    err = done.stderr
    assert done.returncode == 2, err
    assert [line for line in err.splitlines() if line.strip()] == [
        "run_ner_predict: error: --input -: standard input is closed; pipe text in, or give a file"
        if closed.startswith("0") else "run_ner_predict: error: standard output is closed; give --output FILE"], err


def test_no_network_fails_at_once_in_one_line(monkeypatch, tmp_path, capsys):
    """The design card's bare command with the Hub unreachable: one line that says what to do, before any retry
    (the Hub client retried five times, about 40 s, then printed the reason among its own lines)."""
    import socket

    import huggingface_hub
    from huggingface_hub import constants

    def unreachable(*args, **kwargs):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *args, **kwargs: None)
    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.delenv("NER_COMPRESS_DEBUG", raising=False)
    code = COMMANDS[R](["--model_type", "shared_ffn", "--output_dir", str(tmp_path / "out")])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("run_ner_compress: error: --model_name_or_path bert-base-cased: the Hub")
    assert "Network is unreachable" in lines[0] and "--quickstart" in lines[0] and "HF_HUB_OFFLINE=1" in lines[0]
    assert not (tmp_path / "out").exists()
