"""A killed run resumes to the uninterrupted result, the same seed gives the same result, one writer per output
folder, no finished-looking folder after a failure while saving, and files that others can read."""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import DEMO_DIR, REPO, make_tiny_bert
from safetensors.torch import load_file

import run_ner_compress
import cli.steps as run_steps
from cli.run_folder import OutputFolderLock, checkpoint_problem, last_complete_checkpoint, remove_checkpoints

SEEDED = [
    "--train_file", str(DEMO_DIR / "demo_train.txt"), "--validation_file", str(DEMO_DIR / "demo_validation.txt"),
    "--test_file", str(DEMO_DIR / "demo_test.txt"), "--max_train_samples", "24", "--max_eval_samples", "8",
    "--max_predict_samples", "8", "--max_seq_length", "64", "--per_device_train_batch_size", "4",
    "--per_device_eval_batch_size", "8", "--report_to", "none", "--disable_tqdm", "true", "--seed", "7",
    "--max_steps", "12", "--save_strategy", "steps", "--save_steps", "3", "--logging_steps", "1",
    "--learning_rate", "1e-3", "--dataloader_num_workers", "0",
]
# What a run measures; runtimes and the command line differ between runs by nature.
METRIC_SUFFIXES = ("_f1", "_precision", "_recall", "_loss", "_accuracy")


def metrics(results: dict) -> dict:
    return {k: v for k, v in results.items() if k.endswith(METRIC_SUFFIXES) or k == "epochs_trained"}


def read_results(output_dir) -> dict:
    with open(os.path.join(output_dir, "results.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("reliability") / "tiny-bert"
    make_tiny_bert(path)
    return path


def seeded_args(model_dir, output_dir, *extra) -> list[str]:
    return ["--model_name_or_path", str(model_dir), "--output_dir", str(output_dir), *SEEDED, *extra]


@pytest.fixture(scope="module")
def uninterrupted(model_dir, tmp_path_factory):
    """One full seeded run, in a subprocess like the runs it is compared with (same threads, same start-up)."""
    output_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    subprocess.run([sys.executable, "run_ner_compress.py", *seeded_args(model_dir, output_dir)], cwd=REPO,
                   env=subprocess_env(), check=True, capture_output=True, timeout=300)
    return output_dir


def subprocess_env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.pop("NER_COMPRESS_DEBUG", None)
    return env


# Slows every optimizer step so that the test can kill the run between two checkpoints; the numbers are untouched.
SLOW_RUN = """
import sys, time
sys.path.insert(0, {repo!r})
import transformers
step = transformers.Trainer.training_step
def slow_step(self, *args, **kwargs):
    time.sleep(0.4)
    return step(self, *args, **kwargs)
transformers.Trainer.training_step = slow_step
import run_ner_compress
sys.argv = ["run_ner_compress.py", *{argv!r}]
run_ner_compress.cli()
"""


def test_killed_run_resumes_to_the_uninterrupted_result(model_dir, uninterrupted, tmp_path):
    output_dir = tmp_path / "killed"
    argv = seeded_args(model_dir, output_dir)
    process = subprocess.Popen([sys.executable, "-c", SLOW_RUN.format(repo=str(REPO), argv=argv)], cwd=REPO,
                               env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (output_dir / "checkpoint-3" / "trainer_state.json").exists():
            assert process.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (output_dir / "results.json").exists() and not (output_dir / "model.safetensors").exists()
    assert not (output_dir / "checkpoint-12").exists()
    killed_at = last_complete_checkpoint(str(output_dir))

    rerun = subprocess.run([sys.executable, "run_ner_compress.py", *argv], cwd=REPO, env=subprocess_env(),
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming from {killed_at}" in rerun.stderr
    # Identical on CPU: the checkpoint holds the optimizer, scheduler and RNG states, and the Trainer skips the
    # batches already seen, so the resumed steps see the same batches, dropout masks and updates.
    assert metrics(read_results(output_dir)) == metrics(read_results(uninterrupted))
    resumed, reference = load_file(output_dir / "model.safetensors"), load_file(uninterrupted / "model.safetensors")
    assert resumed.keys() == reference.keys()
    for name in reference:
        assert torch.equal(resumed[name], reference[name]), name


def test_a_checkpoint_cut_off_while_saving_is_not_resumed_from(tmp_path):
    from safetensors.torch import save_file

    def checkpoint(step: int, state: str | None = "{}", weights: bytes | None = None) -> Path:
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if state is not None:
            (folder / "trainer_state.json").write_text(state)
        if weights is None:
            save_file({"w": torch.zeros(2)}, folder / "model.safetensors")
        elif weights:
            (folder / "model.safetensors").write_bytes(weights)
        return folder

    checkpoint(3)
    checkpoint(6, state=None, weights=b"partial")  # killed before trainer_state.json, which the Trainer writes last
    checkpoint(9, state="{garbage")  # a damaged trainer state
    checkpoint(12, state="[]")  # JSON, but not the Trainer's object
    checkpoint(15, weights=b"")  # no weights file at all
    checkpoint(18, weights=bytes(range(256)) * 8)  # weights of random bytes
    assert last_complete_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-3")
    assert last_complete_checkpoint(str(tmp_path / "missing")) is None
    assert checkpoint_problem(str(tmp_path / "checkpoint-3")) is None
    assert "not a readable JSON object" in checkpoint_problem(str(tmp_path / "checkpoint-9"))
    assert "no model weights" in checkpoint_problem(str(tmp_path / "checkpoint-15"))
    assert "not a readable safetensors file" in checkpoint_problem(str(tmp_path / "checkpoint-18"))
    assert remove_checkpoints(str(tmp_path)) == 6 and not list(tmp_path.iterdir())


def test_same_seed_same_results(model_dir, uninterrupted, tmp_path):
    rerun = tmp_path / "again"
    subprocess.run([sys.executable, "run_ner_compress.py", *seeded_args(model_dir, rerun, "--keep_checkpoints")],
                   cwd=REPO, env=subprocess_env(), check=True, capture_output=True, timeout=300)
    # a finished run removes its checkpoint-* folders, unless --keep_checkpoints
    assert not list(uninterrupted.glob("checkpoint-*")) and list(rerun.glob("checkpoint-*"))
    first, second = read_results(uninterrupted), read_results(rerun)
    assert metrics(first) and metrics(first) == metrics(second)
    for name, tensor in load_file(uninterrupted / "model.safetensors").items():
        assert torch.equal(tensor, load_file(rerun / "model.safetensors")[name]), name


def test_every_output_file_is_readable_by_others(uninterrupted):
    for root, dirs, files in os.walk(uninterrupted):
        for name in files:
            mode = stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode)
            assert mode & 0o044 == 0o044, (name, oct(mode))
    assert stat.S_IMODE(os.stat(uninterrupted / "model.safetensors").st_mode) == 0o644


# ---------------------------------------------------------------------------------------------------------------
# One writer per output folder


def cli(argv, monkeypatch) -> int:
    monkeypatch.setattr(sys, "argv", ["run_ner_compress.py", *argv])
    monkeypatch.delenv("NER_COMPRESS_DEBUG", raising=False)
    try:
        run_ner_compress.cli()
    except SystemExit as stop:
        return stop.code
    return 0


def test_second_run_into_a_busy_folder_refuses(model_dir, tmp_path, monkeypatch, capsys):
    output_dir = tmp_path / "busy"
    with OutputFolderLock(str(output_dir)):  # another open file: flock conflicts as with another process
        code = cli(seeded_args(model_dir, output_dir), monkeypatch)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, lines
    assert f"--output_dir {output_dir}: another run (pid {os.getpid()}) is writing into this folder" in lines[0]
    assert not (output_dir / "results.json").exists() and not list(output_dir.glob("checkpoint-*"))


def test_a_killed_holder_releases_the_lock(tmp_path):
    output_dir = tmp_path / "crashed"
    holder = ("import os, signal, sys; sys.path.insert(0, sys.argv[1]); from cli.run_folder import "
              "OutputFolderLock; lock = OutputFolderLock(sys.argv[2]).__enter__(); os.kill(os.getpid(), signal.SIGKILL)")
    process = subprocess.run([sys.executable, "-c", holder, str(REPO), str(output_dir)], timeout=120)
    assert process.returncode == -signal.SIGKILL and (output_dir / ".run.lock").exists()
    with OutputFolderLock(str(output_dir)):
        pass


# ---------------------------------------------------------------------------------------------------------------
# A failure while saving, exporting or writing the card leaves no results.json


def quick_args(model_dir, output_dir, *extra) -> list[str]:
    return seeded_args(model_dir, output_dir, "--max_steps", "1", "--save_strategy", "no", *extra)


def fail(*args, **kwargs):
    raise OSError("injected failure: disk full")


def test_failure_while_saving_the_model_leaves_no_model_and_no_results(model_dir, tmp_path, monkeypatch):
    from transformers import Trainer

    def half_save(self, output_dir=None, _internal_call=False):
        with open(os.path.join(output_dir, "model.safetensors"), "wb") as f:
            f.write(b"half a model")
        fail()

    monkeypatch.setattr(Trainer, "save_model", half_save)
    output_dir = tmp_path / "save"
    with pytest.raises(OSError, match="injected"):
        run_ner_compress.main(quick_args(model_dir, output_dir))
    assert not (output_dir / "results.json").exists() and not (output_dir / "model.safetensors").exists()
    assert not [p for p in os.listdir(output_dir) if p.startswith(".saving-")]


@pytest.mark.parametrize("stage", ["card", "export"])
def test_failure_after_the_model_is_saved_leaves_no_results(model_dir, tmp_path, monkeypatch, stage):
    output_dir = tmp_path / stage
    (output_dir).mkdir()
    (output_dir / "results.json").write_text("{}")  # from an earlier run: must not survive next to a new model
    if stage == "card":  # the script imports its steps at the top: patch its names
        monkeypatch.setattr(run_steps, "write_model_card", fail)
        extra = []
    else:
        monkeypatch.setattr(run_steps, "run_post_training", fail)
        extra = ["--quantize", "int8"]
    with pytest.raises(OSError, match="injected"):
        run_ner_compress.main(quick_args(model_dir, output_dir, *extra))
    assert not (output_dir / "results.json").exists()


def test_over_long_test_sentence_is_truncated_with_a_warning(tmp_path, caplog):
    model_dir = tmp_path / "short-positions"
    make_tiny_bert(model_dir, max_position_embeddings=24)
    long_sentence = "\n".join(f"talks{i % 10} O" for i in range(200)) + "\nBank B-ORG\n"
    test_file = tmp_path / "long_test.txt"
    test_file.write_text(long_sentence)
    output_dir = tmp_path / "long"
    with caplog.at_level(logging.WARNING):
        results = run_ner_compress.main(quick_args(model_dir, output_dir, "--max_seq_length", "24",
                                                   "--test_file", str(test_file)))
    assert results["test_samples"] == 1 and "test_f1" in results
    assert any("longer than max_seq_length=24" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------------------------------------------
# benchmarks/seed_spread.py drives compare.py's runner, once per seed


def test_seed_spread_runs_compare_rows_per_seed_and_summarizes(tmp_path, monkeypatch, capsys):
    from benchmarks import compare, seed_spread

    calls = []

    def fake_run_rows(args):  # compare.py's runner, minus the training: a results.json per row with a seed's F1
        calls.append((args.seed, args.rows, args.output_dir, args.epochs))
        row_dir = os.path.join(args.output_dir, args.rows[0])
        os.makedirs(row_dir, exist_ok=True)
        with open(os.path.join(row_dir, "results.json"), "w") as f:
            json.dump({"num_parameters": 1000, "test_f1": 0.80 + (args.seed - 42) / 100, "validation_f1": 0.85,
                       "f1_retention": None}, f)  # num_parameters: the one field every results.json must have
        return {"trained": args.rows, "skipped": [], "failed": []}

    monkeypatch.setattr(compare, "run_rows", fake_run_rows)
    report = seed_spread.main(["--output_dir", str(tmp_path), "--seeds", "42,43,44", "--quickstart", "--epochs", "2"])
    assert [c[0] for c in calls] == [42, 43, 44] and all(c[1] == ["best_low_rank"] and c[3] == 2.0 for c in calls)
    assert os.path.islink(tmp_path / "seed43" / "teacher")  # one teacher shared by every seed
    test_f1 = report["metrics"]["test_f1"]
    assert test_f1["mean"] == pytest.approx(0.81) and test_f1["std"] == pytest.approx(0.01)
    assert "f1_retention" not in report["metrics"]
    assert "| test_f1 | 0.8100 ± 0.0100 |" in capsys.readouterr().out
    assert (tmp_path / "SEED_SPREAD.md").is_file()


def test_peak_memory_measures_the_child_peak():
    from benchmarks.peak_memory import markdown, measure

    from benchmarks.peak_memory import HWM

    report = "json.dump({'cuda_peak': None, 'vm_hwm_kib': VM_HWM()}, open(sys.argv[1], 'w'))"
    row = measure(HWM + "import json, sys\nblock = b'x' * (200 * 2**20)\n" + report, dict(os.environ))  # 200 MiB
    idle = measure(HWM + "import json, sys\n" + report, dict(os.environ))  # not the (large) pytest parent's RSS
    assert idle["peak_rss_mib"] < 100 and row["peak_rss_mib"] >= idle["peak_rss_mib"] + 190
    assert row["cuda_peak_mib"] is None
    table = markdown([{"model": "m", "job": "j", **row}])
    assert table.splitlines()[0] == "| model | job | peak RSS (MiB) |" and "| m | j |" in table
