"""Distillation on an unlabelled transfer set (issue 14): reading, the cached word-level teacher targets and their
invalidation, the KL-only loss of transfer rows, cached against live targets, a pruned-vocabulary student, the
epoch slices, the script's flags, results and bad input, and .gz pruning text.

Every model is a tiny BERT built in code (vocab 99, hidden 32, 2 layers); nothing downloads.
"""

from __future__ import annotations

import copy
import gzip
import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import DEMO_DIR, LABELS, REPO, make_tiny_bert, make_tiny_tokenizer
from transformers import AutoModelForTokenClassification, AutoTokenizer

import run_ner_compress
import cli.checks
import cli.budget
import cli.arguments
from trainers import DistillationArguments, DistillationTrainer, masked_kl
from trainers.transfer import (
    TransferCollator,
    TransferEpochCallback,
    TransferMixDataset,
    TransferPool,
    compute_word_logits,
    load_or_build_targets,
    read_transfer_sentences,
    select_sentences,
)

SENTENCES = ["The bank said on Monday it rose.", "", "John met the team at the lake port.",
             "Shares rose 5 pct in talks after the cup.", "Rain in the port of the lake."]


pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # conftest: torch on one thread


@pytest.fixture
def tokenizer(tmp_path):
    return make_tiny_tokenizer(tmp_path / "tokenizer")


@pytest.fixture
def transfer_file(tmp_path):
    path = tmp_path / "transfer.txt"
    path.write_text("\n".join(SENTENCES) + "\n")
    return path


def no_dropout_bert(seed: int = 0):
    return make_tiny_bert(seed=seed, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def training_args(output_dir, **overrides) -> DistillationArguments:
    settings = dict(output_dir=str(output_dir), use_cpu=True, report_to="none", save_strategy="no", logging_steps=1,
                    disable_tqdm=True, seed=0)
    settings.update(overrides)
    return DistillationArguments(**settings)


def labelled_features(tokenizer, count: int = 4) -> list[dict]:
    from trainers.ner_data import read_conll, tokenize_and_align

    records = read_conll(str(DEMO_DIR / "demo_train.txt"))[:count]
    return tokenize_and_align(records, tokenizer, {label: i for i, label in enumerate(LABELS)}, 64)


def transfer_batch(teacher, tokenizer, transfer_file, tmp_path, labelled: int = 0):
    sentences = read_transfer_sentences([str(transfer_file)], tokenizer)
    targets = load_or_build_targets(teacher, tokenizer, sentences, [str(transfer_file)], 64, None, str(tmp_path / "c"))
    pool = TransferPool.build(sentences, targets, tokenizer, 64)
    items = [pool.item(i) for i in range(len(pool))] + labelled_features(tokenizer, labelled)
    return TransferCollator(tokenizer, pad_to_multiple_of=8)(items)


# ----------------------------------------------------------------------------------------------------------------
# Reading


def test_raw_lines_are_split_by_the_tokenizers_pre_tokenizer(tokenizer, tmp_path, transfer_file):
    sentences = read_transfer_sentences([str(transfer_file)], tokenizer)
    assert len(sentences) == 4  # the blank line is skipped
    assert sentences[0] == ["The", "bank", "said", "on", "Monday", "it", "rose", "."]  # case kept, "." split off
    gz = tmp_path / "transfer.txt.gz"
    with gzip.open(gz, "wt") as f:
        f.write("\n".join(SENTENCES) + "\n\u200b\n")  # a line the normalizer erases entirely is no sentence
    assert read_transfer_sentences([str(gz)], tokenizer) == sentences
    both = read_transfer_sentences([str(gz), str(transfer_file)], tokenizer, max_sentences=6)
    assert both == sentences + sentences[:2]


def test_conll_and_jsonl_files_are_read_with_their_labels_ignored(tokenizer, tmp_path):
    conll = read_transfer_sentences([str(DEMO_DIR / "demo_train.txt")], tokenizer, max_sentences=3)
    from trainers.ner_data import read_conll

    assert conll == [r["tokens"] for r in read_conll(str(DEMO_DIR / "demo_train.txt"))[:3]]
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text(json.dumps({"tokens": ["the", "bank"], "ner_tags": ["O", "B-ORG"]}) + "\n")
    assert read_transfer_sentences([str(jsonl)], tokenizer) == [["the", "bank"]]


@pytest.mark.parametrize("kind", ["missing", "empty", "binary", "bad_gzip", "latin1"])
def test_bad_transfer_files_name_the_file(tokenizer, tmp_path, kind):
    path = tmp_path / ("t.txt.gz" if kind == "bad_gzip" else "t.txt")
    content = {"empty": b"", "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00", "bad_gzip": b"plain text, not gzip\n",
               "latin1": "the bank\ncaf\xe9 port\n".encode("latin-1")}
    if kind != "missing":
        path.write_bytes(content[kind])
    with pytest.raises((ValueError, OSError)) as error:
        read_transfer_sentences([str(path)], tokenizer)
    assert str(path) in str(error.value)
    if kind == "latin1":
        assert f"{path}:2" in str(error.value)


# ----------------------------------------------------------------------------------------------------------------
# Targets and their cache


def test_targets_are_the_teachers_logits_at_each_words_first_subword(tokenizer):
    teacher = no_dropout_bert()
    sentences = [["the", "bank", "moved"], ["rain"] * 40]  # "moved" has two pieces; the second is cut at 16
    targets = compute_word_logits(teacher, tokenizer, sentences, max_seq_length=16, batch_size=1)
    assert targets.logits.dtype == torch.float16 and targets.offsets.tolist() == [0, 3, 3 + 14]
    encoding = tokenizer(sentences[0], is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        full = teacher(**encoding).logits[0]  # (T, C)
    first = [encoding.word_ids().index(w) for w in range(3)]
    torch.testing.assert_close(targets.sentence(0).float(), full[first], atol=2e-3, rtol=2e-3)


def test_cache_is_reused_and_invalidated_by_teacher_file_and_corruption(tokenizer, tmp_path, transfer_file, caplog):
    cache = str(tmp_path / "cache")
    teacher = no_dropout_bert()
    calls = []
    import trainers.transfer as transfer_module

    real = transfer_module.compute_word_logits

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    def load(model, path=transfer_file):
        sentences = read_transfer_sentences([str(path)], tokenizer)
        return load_or_build_targets(model, tokenizer, sentences, [str(path)], 64, None, cache)

    transfer_module.compute_word_logits = counting
    try:
        first = load(teacher)
        again = load(teacher)
        assert len(calls) == 1 and again.path == first.path
        torch.testing.assert_close(again.logits, first.logits)

        other_teacher = no_dropout_bert(seed=5)
        changed = load(other_teacher)
        assert len(calls) == 2 and changed.path != first.path
        assert not torch.equal(changed.logits, first.logits)

        transfer_file.write_text("\n".join(SENTENCES[::-1]) + "\n")  # same sentences, other bytes
        load(teacher)
        assert len(calls) == 3

        transfer_file.write_text("\n".join(SENTENCES) + "\n")
        with open(first.path, "wb") as f:  # a damaged file under the right name
            f.write(b"not a safetensors file")
        with caplog.at_level(logging.WARNING, logger="trainers.transfer"):
            rebuilt = load(teacher)
        assert len(calls) == 4 and "stale or corrupt" in caplog.text
        torch.testing.assert_close(rebuilt.logits, first.logits)
        assert load(teacher).path == first.path and len(calls) == 4  # the rebuilt file is good again

        from safetensors.torch import save_file  # right name, wrong key (a stale file): rebuilt too
        save_file({"logits": first.logits, "offsets": first.offsets}, first.path, metadata={"key": "0" * 64})
        load(teacher)
        assert len(calls) == 5
    finally:
        transfer_module.compute_word_logits = real
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".tmp")]


def test_selection_keeps_sentences_with_enough_entities(tokenizer):
    from trainers.transfer import TransferTargets

    def onehot(tags):
        logits = torch.full((len(tags), len(LABELS)), -5.0)
        logits[range(len(tags)), [LABELS.index(t) for t in tags]] = 5.0
        return logits

    sentences = [["O", "O"], ["B-PER", "I-PER", "O", "I-LOC"], ["B-ORG", "O"]]
    rows = [onehot(tags) for tags in sentences]
    targets = TransferTargets(torch.cat(rows).half(), torch.tensor([0, 2, 6, 8]))
    id2label = dict(enumerate(LABELS))
    assert select_sentences(targets, id2label, 0) == [0, 1, 2]
    assert select_sentences(targets, id2label, 1) == [1, 2]
    assert select_sentences(targets, id2label, 2) == [1]  # I-LOC after O opens an entity, as seqeval counts it


# ----------------------------------------------------------------------------------------------------------------
# The loss


def test_a_transfer_batch_contributes_kl_and_no_ce(tokenizer, tmp_path, transfer_file):
    teacher, student = no_dropout_bert(seed=1), no_dropout_bert(seed=2)
    batch = transfer_batch(teacher, tokenizer, transfer_file, tmp_path)
    assert batch["is_transfer"].all() and (batch["labels"] == -100).all()
    trainer = DistillationTrainer(model=student, teacher_model=teacher, transfer_kl_weight=0.7,
                                  args=training_args(tmp_path, alpha=0.3, temperature=2.0))
    loss = trainer.compute_loss(student.train(), dict(batch))
    with torch.no_grad():
        logits = student(**{k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}).logits
    mask = torch.isfinite(batch["teacher_logits"][..., 0])
    expected = 0.7 * (1 - 0.3) * masked_kl(logits, batch["teacher_logits"], mask, 2.0)
    torch.testing.assert_close(loss.detach(), expected)
    assert loss.item() > 0
    assert torch.isnan(trainer._loss_parts["loss_ce"][-1]) and torch.isnan(trainer._loss_parts["loss_kl"][-1])
    trainer.transfer_kl_weight = 0.0
    assert trainer.compute_loss(student, dict(batch)).item() == 0.0  # no CE hides behind the KL
    loss.backward()
    assert student.classifier.weight.grad.abs().sum() > 0


def test_mixed_batch_adds_the_labelled_loss_and_logs_the_parts(tokenizer, tmp_path, transfer_file):
    teacher, student = no_dropout_bert(seed=1), no_dropout_bert(seed=2)
    batch = transfer_batch(teacher, tokenizer, transfer_file, tmp_path, labelled=3)
    assert batch["is_transfer"].tolist() == [True] * 4 + [False] * 3
    trainer = DistillationTrainer(model=student, teacher_model=teacher, args=training_args(tmp_path, alpha=0.5))
    loss = trainer.compute_loss(student.train(), dict(batch))
    parts = {name: values[-1].item() for name, values in trainer._loss_parts.items()}
    torch.testing.assert_close(loss.item(), 0.5 * parts["loss_ce"] + 0.5 * parts["loss_kl"]
                               + 0.5 * parts["loss_kl_transfer"], rtol=1e-5, atol=1e-6)
    labelled = {k: batch[k][4:] for k in ("input_ids", "attention_mask", "token_type_ids", "labels")}
    plain = DistillationTrainer(model=student, teacher_model=teacher, args=training_args(tmp_path, alpha=0.5))
    plain.compute_loss(student, labelled)  # the labelled rows alone give the same CE and KL
    assert abs(plain._loss_parts["loss_ce"][-1].item() - parts["loss_ce"]) < 1e-5
    assert abs(plain._loss_parts["loss_kl"][-1].item() - parts["loss_kl"]) < 1e-5
    assert trainer.sentences_seen.tolist() == [3, 4]


@pytest.mark.parametrize("hidden", [0.0, 1.0])
def test_cached_and_live_teacher_targets_give_the_same_loss(tokenizer, tmp_path, transfer_file, hidden):
    teacher, student = no_dropout_bert(seed=1), no_dropout_bert(seed=2)
    batch = transfer_batch(teacher, tokenizer, transfer_file, tmp_path, labelled=2)
    losses = {}
    for mode in ("cached", "live"):
        trainer = DistillationTrainer(model=student, teacher_model=teacher, transfer_targets=mode,
                                      args=training_args(tmp_path, alpha=0.5, hidden_loss_weight=hidden))
        losses[mode] = trainer.compute_loss(student.train(), dict(batch)).item()
    assert losses["cached"] > 0
    assert abs(losses["cached"] - losses["live"]) < 1e-3 * losses["cached"]  # fp16 storage is the only difference


def test_pruned_vocabulary_student_trains_against_word_level_targets(tokenizer, tmp_path):
    from export.vocab_pruning import corpus_vocabulary, prune_vocabulary

    teacher = no_dropout_bert(seed=1)
    student, student_tokenizer = prune_vocabulary(copy.deepcopy(teacher), tokenizer,
                                                  corpus_vocabulary(tokenizer, [["the", "rose", "port"]]),
                                                  unseen="resplit")  # a student tokenizer of its own
    sentences = [["the", "bank", "rose"], ["port", "talks", "joined"]] * 4
    assert tokenizer.tokenize("bank") == ["bank"] and student_tokenizer.tokenize("bank") == ["b", "##a", "##n", "##k"]
    targets = compute_word_logits(teacher, tokenizer, sentences, 64)
    pool = TransferPool.build(sentences, targets, student_tokenizer, 64)
    item = pool.item(0)
    rows = torch.isfinite(item["teacher_logits"][:, 0]).nonzero().flatten().tolist()
    assert rows == [1, 2, 6]  # [CLS] the b ##a ##n ##k rose: each word's first student subword
    torch.testing.assert_close(item["teacher_logits"][rows], targets.sentence(0).float())

    dataset = TransferMixDataset(labelled_features(student_tokenizer, 4), pool, ratio=1.0)
    trainer = DistillationTrainer(model=student, teacher_model=copy.deepcopy(student), train_dataset=dataset,
                                  data_collator=TransferCollator(student_tokenizer),
                                  callbacks=[TransferEpochCallback(dataset)],
                                  args=training_args(tmp_path, alpha=0.5, per_device_train_batch_size=4,
                                                     num_train_epochs=2, learning_rate=1e-2))
    before = student.classifier.weight.detach().clone()
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert any("loss_kl_transfer" in entry for entry in logs)
    assert all(torch.isfinite(torch.tensor(entry["loss"])) for entry in logs)
    assert not torch.equal(before, student.classifier.weight)
    assert trainer.sentences_seen.tolist() == [8, 8]


def test_each_epoch_takes_a_fresh_slice_of_the_pool(tokenizer):
    from trainers.transfer import TransferTargets

    sentences = [["the"] * (i + 1) for i in range(5)]
    targets = TransferTargets(torch.zeros(15, len(LABELS), dtype=torch.float16),
                              torch.tensor([0, 1, 3, 6, 10, 15]))
    pool = TransferPool.build(sentences, targets, tokenizer, 64)
    dataset = TransferMixDataset([{"input_ids": [2, 3]}] * 4, pool, ratio=0.5)
    assert len(dataset) == 6 and dataset.num_transfer == 2
    callback = TransferEpochCallback(dataset)
    seen = []
    for epoch in (0.0, 1.0, 2.0, 2.5):  # 2.5: resumed in the middle of the third epoch
        callback.on_epoch_begin(None, type("State", (), {"epoch": epoch})(), None)
        seen.append([dataset.transfer_index(i) for i in range(4, 6)])
    assert seen == [[0, 1], [2, 3], [4, 0], [4, 0]]


# ----------------------------------------------------------------------------------------------------------------
# The script


def script_args(teacher_dir, output_dir, *extra) -> list[str]:
    return [
        "--model_type", "low_rank", "--rank", "4", "--model_name_or_path", str(teacher_dir),
        "--output_dir", str(output_dir),
        "--train_file", str(DEMO_DIR / "demo_train.txt"), "--validation_file", str(DEMO_DIR / "demo_validation.txt"),
        "--test_file", str(DEMO_DIR / "demo_test.txt"), "--max_train_samples", "8", "--max_eval_samples", "4",
        "--max_predict_samples", "4", "--max_seq_length", "64", "--per_device_train_batch_size", "4",
        "--report_to", "none", "--disable_tqdm", "true", "--save_strategy", "no", *extra,
    ]


def test_script_end_to_end_with_a_transfer_file(tiny_bert_dir, tmp_path, transfer_file):
    output_dir = tmp_path / "out"
    results = run_ner_compress.main(script_args(
        tiny_bert_dir, output_dir, "--teacher_name_or_path", str(tiny_bert_dir), "--num_train_epochs", "2",
        "--transfer_file", str(transfer_file), "--transfer_ratio", "0.5", "--transfer_kl_weight", "2",
        "--transfer_cache_dir", str(tmp_path / "cache")))
    saved = json.loads((output_dir / "results.json").read_text())
    assert saved["transfer_files"] == [str(transfer_file)] and saved["transfer_sentences"] == 4
    assert saved["transfer_ratio"] == 0.5 and saved["transfer_kl_weight"] == 2.0
    assert saved["labelled_sentences_seen"] == 16 and saved["transfer_sentences_seen"] == 8  # 2 × (8 + 4)
    assert saved["train_runtime_s"] > 0 and results["transfer_per_epoch"] == 4
    assert "Transfer set" in (output_dir / "README.md").read_text()
    from benchmarks.compare import describe_settings

    settings = describe_settings(saved)
    assert "transfer 4 sent." in settings and "seen 16 labelled + 8 transfer" in settings


def run_cli(argv, monkeypatch, capsys) -> str:
    monkeypatch.delenv("NER_COMPRESS_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["run_ner_compress.py", *argv])
    with pytest.raises(SystemExit) as exit_info:
        run_ner_compress.cli()
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize("kind", ["missing", "empty", "binary"])
def test_bad_transfer_file_exits_2_naming_the_file(tiny_bert_dir, tmp_path, kind, monkeypatch, capsys):
    path = tmp_path / "transfer.txt"
    if kind != "missing":
        path.write_bytes(b"" if kind == "empty" else b"\x00\x01\x02binary")
    line = run_cli(script_args(tiny_bert_dir, tmp_path / "out", "--teacher_name_or_path", str(tiny_bert_dir),
                               "--transfer_file", str(path)), monkeypatch, capsys)
    assert f"--transfer_file {path}" in line
    assert not (tmp_path / "out" / "results.json").exists()


def test_transfer_file_without_a_teacher_exits_2_naming_the_flag(tiny_bert_dir, tmp_path, transfer_file,
                                                                  monkeypatch, capsys):
    line = run_cli(script_args(tiny_bert_dir, tmp_path / "out", "--transfer_file", str(transfer_file),
                               "--no_distill"), monkeypatch, capsys)
    assert "--transfer_file needs a teacher, which labels the transfer set: drop --no_distill" in line


def run_cache_command(*argv) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "trainers.cache_transfer", *map(str, argv)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cache_command_fills_the_cache_a_run_reads_and_names_a_bad_file(tiny_bert_dir, tmp_path, transfer_file,
                                                                       monkeypatch):
    cache = tmp_path / "cache"
    done = run_cache_command("--teacher", tiny_bert_dir, "--transfer_file", transfer_file, "--max_seq_length", 64,
                             "--transfer_cache_dir", cache)
    assert done.returncode == 0, done.stderr
    assert "RuntimeWarning" not in done.stderr  # python -m on a module the package had already imported warned
    path = done.stdout.strip().splitlines()[-1].split(": ")[0]
    assert Path(path).parent == cache and Path(path).is_file()

    import trainers.transfer as transfer_module

    def no_teacher_run(*args, **kwargs):
        raise AssertionError("the cache filled by the command was not reused")

    monkeypatch.setattr(transfer_module, "compute_word_logits", no_teacher_run)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    teacher = AutoModelForTokenClassification.from_pretrained(tiny_bert_dir)
    sentences = read_transfer_sentences([str(transfer_file)], tokenizer)
    assert load_or_build_targets(teacher, tokenizer, sentences, [str(transfer_file)], 64, None, str(cache)).path == path

    missing = tmp_path / "nowhere.txt"
    failed = run_cache_command("--teacher", tiny_bert_dir, "--transfer_file", missing, "--transfer_cache_dir", cache)
    assert failed.returncode == 2
    assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert failed.stderr.startswith("trainers.cache_transfer: error:") and str(missing) in failed.stderr


# ----------------------------------------------------------------------------------------------------------------
# Pruning text and compare.py rows


def test_gz_extra_pruning_text_is_read(tokenizer, tmp_path):
    from export.vocab_pruning import corpus_vocabulary, read_text_file

    gz = tmp_path / "extra.txt.gz"
    with gzip.open(gz, "wt") as f:
        f.write("the bank\n\nshares rose\n")
    assert read_text_file(str(gz)) == ["the bank", "shares rose"]
    keep = corpus_vocabulary(tokenizer, [["the"]], text_files=[str(gz)], keep_characters=False)
    assert {"bank", "shares", "rose"} <= set(keep) and "lake" not in keep
    bad = tmp_path / "bad.txt.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="bad.txt.gz"):
        read_text_file(str(bad))


def test_compare_transfer_rows_get_the_transfer_flags_and_parse(tmp_path, transfer_file):
    from benchmarks import compare

    args = compare.parse_args(["--output_dir", str(tmp_path), "--train_file", "t.txt", "--transfer_file",
                               str(transfer_file), "--max_transfer_samples", "100",
                               "--rows", ",".join(row.name for row in compare.ROWS)])  # the history rows too
    planned = dict((row.name, command) for row, command in compare.plan(args))
    assert {"best_low_rank_tr", "best10_low_rank_tr", "best_shared_tr", "best10_shared_nv_tr2"} <= set(planned)
    for name, command in planned.items():
        row = next(r for r in compare.ROWS if r.name == name)
        assert ("--transfer_file" in command) == row.transfer, name
        args = cli.arguments.RunArguments(*cli.arguments.parse_args(command), argv=command,
                                             given=cli.arguments.given_flags(command))
        cli.budget.apply_recipe(args)  # the recipe rows (--recipe 5x / 10x) set their flags here
        model_args, compression_args, post, transfer_args = args.model, args.compression, args.post, args.transfer
        if row.transfer:
            assert transfer_args.transfer_file == [str(transfer_file)] and transfer_args.max_transfer_samples == 100
        # a student pruning its own table keeps the training split's pieces only (the transfer text's would cost
        # the 10x ratio), as gpu_transfer.sh's pruned teacher does
        assert compression_args.prune_student_vocab == name.startswith(("best10_shared_nv", "best10_shared_pos")), name
        assert post.prune_extra_texts is None, name
        cli.checks.check_pruning(model_args, compression_args, post)
    with pytest.raises(SystemExit):
        compare.parse_args(["--output_dir", str(tmp_path), "--rows", "best_shared_tr"])


# ----------------------------------------------------------------------------------------------------------------
# Several processes


def distil_with_transfer(model_dir: str, transfer_path: str, cache_dir: str, result_file: str) -> None:
    """Two epochs over 4 labelled + 4 transfer sentences, 4 rows per step in all, the cache filled by process 0."""
    from transformers import AutoTokenizer

    from trainers.transfer import TransferArguments, prepare_transfer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    teacher, student = no_dropout_bert(seed=1), no_dropout_bert(seed=2)
    args = training_args(os.path.join(os.path.dirname(result_file), "out"), num_train_epochs=2, learning_rate=1e-2)
    args.per_device_train_batch_size = 4 // args.world_size
    setup = prepare_transfer(TransferArguments(transfer_file=[transfer_path], transfer_cache_dir=cache_dir),
                             teacher, model_dir, tokenizer, labelled_features(tokenizer, 4), 64, args)
    trainer = DistillationTrainer(model=student, teacher_model=teacher, args=args, train_dataset=setup.dataset,
                                  data_collator=setup.collator, callbacks=[setup.callback])
    trainer.train()
    seen = trainer.accelerator.reduce(trainer.sentences_seen, "sum").tolist()
    if trainer.is_world_process_zero():
        torch.save({"world_size": args.world_size, "seen": seen, "logs": training_logs(trainer),
                    "epoch": setup.dataset.epoch}, result_file)


def training_logs(trainer) -> list[dict]:
    return [entry for entry in trainer.state.log_history if "loss" in entry]


def launched_with_transfer(*args) -> None:
    from accelerate.state import AcceleratorState

    os.environ["OMP_NUM_THREADS"] = "1"  # as in test_distillation: a forked child must not start OpenMP threads
    torch.set_num_threads(1)
    AcceleratorState._reset_state(reset_partial_state=True)
    distil_with_transfer(*args)


def test_two_cpu_processes_train_on_the_transfer_set(tmp_path, transfer_file):
    from accelerate import debug_launcher

    make_tiny_bert(tmp_path / "tiny-bert")
    (tmp_path / "two").mkdir()
    debug_launcher(launched_with_transfer, num_processes=2, args=(
        str(tmp_path / "tiny-bert"), str(transfer_file), str(tmp_path / "cache"), str(tmp_path / "two" / "r.pt")))
    two = torch.load(tmp_path / "two" / "r.pt", weights_only=False)
    assert two["world_size"] == 2 and two["seen"] == [8, 8] and two["epoch"] == 1
    assert len(two["logs"]) == 4 and all(math.isfinite(entry["loss"]) for entry in two["logs"])
    assert any("loss_kl_transfer" in entry for entry in two["logs"])
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 1


def test_a_batch_of_labelled_rows_from_the_mix_is_still_a_transfer_batch(tokenizer, tmp_path, transfer_file):
    """Every training batch carries the transfer keys, so that every process logs the same loss parts."""
    teacher, student = no_dropout_bert(seed=1), no_dropout_bert(seed=2)
    sentences = read_transfer_sentences([str(transfer_file)], tokenizer)
    targets = compute_word_logits(teacher, tokenizer, sentences, 64)
    dataset = TransferMixDataset(labelled_features(tokenizer, 3), TransferPool.build(sentences, targets, tokenizer, 64))
    collator = TransferCollator(tokenizer, num_labels=len(LABELS))
    batch = collator([dataset[i] for i in range(3)])
    assert batch["is_transfer"].tolist() == [False] * 3 and torch.isnan(batch["teacher_logits"]).all()
    assert "is_transfer" not in collator(labelled_features(tokenizer, 2))  # evaluation batches stay plain
    trainer = DistillationTrainer(model=student, teacher_model=teacher, args=training_args(tmp_path))
    plain = DistillationTrainer(model=student, teacher_model=teacher, args=training_args(tmp_path))
    loss = trainer.compute_loss(student.train(), dict(batch))
    reference = plain.compute_loss(student, {k: v for k, v in batch.items()
                                             if k not in ("teacher_logits", "is_transfer")})
    torch.testing.assert_close(loss, reference)
    assert torch.isnan(trainer._loss_parts["loss_kl_transfer"][-1])


# ----------------------------------------------------------------------------------------------------------------
# Issue 29: bounded transfer flags, the cache folder checked up front, the cache's checksum, the cache command


def read_only_folder(tmp_path) -> Path:
    """A folder this process cannot write in: mode 555, or /sys for root (whom modes do not stop)."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder / "cache"
    return Path("/sys/bert-ner-compress-cache")


@pytest.mark.parametrize("flags, message", [
    (["--transfer_ratio", "inf"], "--transfer_ratio inf must be a finite number > 0"),
    (["--transfer_ratio", "nan"], "--transfer_ratio nan must be a finite number > 0"),
    (["--transfer_kl_weight", "nan"], "--transfer_kl_weight nan must be a finite number >= 0"),
    (["--transfer_kl_weight", "inf"], "--transfer_kl_weight inf must be a finite number >= 0"),
    (["--transfer_cache_dir", "{file}"], "--transfer_cache_dir {file}: {file} is a file, not a folder"),
    (["--transfer_cache_dir", "{read_only}"], "--transfer_cache_dir {read_only}: cannot write in"),
])
def test_bad_transfer_settings_exit_2_naming_the_flag_before_the_teacher_runs(tiny_bert_dir, tmp_path, transfer_file,
                                                                             flags, message, monkeypatch, capsys):
    import trainers.transfer as transfer_module

    def no_teacher_run(*args, **kwargs):
        raise AssertionError("the teacher ran before the flags were checked")

    monkeypatch.setattr(transfer_module, "compute_word_logits", no_teacher_run)
    names = {"file": str(transfer_file), "read_only": str(read_only_folder(tmp_path))}
    flags = [flag.format(**names) for flag in flags]
    line = run_cli(script_args(tiny_bert_dir, tmp_path / "out", "--teacher_name_or_path", str(tiny_bert_dir),
                               "--transfer_file", str(transfer_file), *flags), monkeypatch, capsys)
    assert message.format(**names) in line
    assert not (tmp_path / "out").exists()


def test_a_cache_with_overwritten_values_is_rebuilt_with_a_warning(tokenizer, tmp_path, transfer_file, caplog):
    from safetensors import safe_open
    from safetensors.torch import save_file

    teacher, cache = no_dropout_bert(), str(tmp_path / "cache")
    sentences = read_transfer_sentences([str(transfer_file)], tokenizer)
    first = load_or_build_targets(teacher, tokenizer, sentences, [str(transfer_file)], 64, None, cache)
    with safe_open(first.path, framework="pt") as f:
        metadata = f.metadata()
    assert len(metadata["values_sha256"]) == 64
    for values_sha256 in (metadata["values_sha256"], None):  # tampered values; an older cache without a checksum
        tampered = {**metadata, "values_sha256": values_sha256} if values_sha256 else {
            k: v for k, v in metadata.items() if k != "values_sha256"}
        save_file({"logits": torch.zeros_like(first.logits), "offsets": first.offsets}, first.path, metadata=tampered)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="trainers.transfer"):
            rebuilt = load_or_build_targets(teacher, tokenizer, sentences, [str(transfer_file)], 64, None, cache)
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "rebuilding them" in warnings[0]
        assert ("do not match their checksum" if values_sha256 else "no checksum") in warnings[0]
        torch.testing.assert_close(rebuilt.logits, first.logits)  # the teacher's values again, not the zeros


def make_teacher_variants(root: Path) -> dict[str, Path]:
    """Folders that are not usable NER teachers: empty, a base model (default labels), a bare encoder, bad weights."""
    from transformers import BertForTokenClassification, BertModel

    from conftest import tiny_bert_config

    folders = {name: root / name for name in ("empty", "base", "bare", "random_weights")}
    folders["empty"].mkdir(parents=True)
    BertForTokenClassification(tiny_bert_config(num_labels=2)).save_pretrained(folders["base"])  # LABEL_0, LABEL_1
    BertModel(tiny_bert_config()).save_pretrained(folders["bare"])
    make_tiny_bert(folders["random_weights"])
    (folders["random_weights"] / "model.safetensors").write_bytes(os.urandom(4096))
    for name in ("base", "bare"):
        make_tiny_tokenizer(folders[name])
    return folders


def test_cache_command_checks_every_flag_and_the_teacher_before_it_runs(tiny_bert_dir, tmp_path, transfer_file):
    teachers = make_teacher_variants(tmp_path / "teachers")
    cases = [
        (["--teacher", tiny_bert_dir, "--max_seq_length", -1], "--max_seq_length -1 must be at least 3"),
        (["--teacher", tiny_bert_dir, "--max_seq_length", 0], "--max_seq_length 0 must be at least 3"),
        (["--teacher", tiny_bert_dir, "--max_seq_length", 100000],
         "--max_seq_length 100000 is above the teacher's max_position_embeddings (512)"),
        (["--teacher", tiny_bert_dir, "--batch_size", 0], "--batch_size 0 must be at least 1"),
        (["--teacher", teachers["empty"]], f"--teacher {teachers['empty']}: not a saved model (no config.json)"),
        (["--teacher", teachers["base"]], f"--teacher {teachers['base']}: not a fine-tuned NER model"),
        (["--teacher", teachers["bare"]], f"--teacher {teachers['bare']}: not a fine-tuned NER model (BertModel"),
        (["--teacher", teachers["random_weights"]],
         f"--teacher {teachers['random_weights'] / 'model.safetensors'}: not a readable safetensors file"),
        (["--teacher", tiny_bert_dir, "--transfer_cache_dir", transfer_file],
         f"--transfer_cache_dir {transfer_file}: {transfer_file} is a file, not a folder"),
        (["--teacher", tiny_bert_dir, "--transfer_cache_dir", read_only_folder(tmp_path)], "cannot write in"),
    ]
    cache = tmp_path / "cache"
    for argv, message in cases:
        argv = argv if "--transfer_cache_dir" in argv else [*argv, "--transfer_cache_dir", cache]
        failed = run_cache_command("--transfer_file", transfer_file, *argv)
        assert failed.returncode == 2, (argv, failed.stderr)
        assert failed.stderr.strip().splitlines() == [f"trainers.cache_transfer: error: {message}"] or (
            len(failed.stderr.strip().splitlines()) == 1 and message in failed.stderr), (argv, failed.stderr)
        assert not cache.exists(), argv  # nothing cached, not even the folder
