"""run_ner_predict on tiny models: offsets, CoNLL round trip and its F1, the torch-free ONNX path, windows for long
lines, piping, and bad input that ends in one line and exit status 2."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import (DEMO_DIR, LABELS, REPO, export_with_tokenizer, make_tiny_bert, make_tiny_tokenizer,
                      require_onnxruntime, run_without_torch)

import run_ner_compress
import run_ner_predict
import runtime.predict
from cli.quickstart import DEMO_LINES as QUICKSTART_LINES
from runtime.backends import load_tokenizer_file
from runtime.predict import PredictArguments, predict_file
from runtime.windows import NerPredictor

require_onnxruntime()

DEMO_LINES = ["Mara Velden joined Norvane Bank in Port Aldane last Monday .",
              "Shares in Helix Motors rose after Kofi Mensa spoke in Carrow ."]
# Accents, an emoji, runs of spaces and a tab: the offsets must still index the original line
TRICKY = "Crème  brûlée\tà 😀 Zoë   naïve.  Ünïcode"
TRICKY_WORDS = ["Crème", "brûlée", "à", "😀", "Zoë", "naïve", ".", "Ünïcode"]
SCORE_LINE = re.compile(r"precision ([\d.]+), recall ([\d.]+), f1 ([\d.]+)")


def biased_bert(directory, label: str):
    """A tiny BERT that tags every subword ``label``: its spans then show exactly where words begin and end."""
    model = make_tiny_bert()
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.bias[LABELS.index(label)] = 5.0
    model.save_pretrained(directory)
    make_tiny_tokenizer(directory)
    return directory


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    make_tiny_bert(root / "random", seed=3)
    onnx_fp32 = export_with_tokenizer(root / "random", root / "random" / "onnx")
    onnx_int8 = export_with_tokenizer(root / "random", root / "random" / "onnx", int8=True)
    return {"random": root / "random", "fp32": onnx_fp32, "int8": onnx_int8,
            "B-PER": biased_bert(root / "bper", "B-PER"), "I-PER": biased_bert(root / "iper", "I-PER")}


def run_cli(monkeypatch, capsys, *argv: str):
    """run_ner_predict's console entry in this process: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["run_ner_predict", *map(str, argv)])
    status = 0
    try:
        run_ner_predict.cli()
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def read_jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_offsets_round_trip_on_accents_emoji_spaces_and_tabs(models, tmp_path, monkeypatch, capsys):
    source = tmp_path / "in.txt"
    source.write_text(f"{TRICKY}\n\n  {TRICKY}\t\n", encoding="utf-8")
    status, out, _ = run_cli(monkeypatch, capsys, "--model", models["B-PER"], "--input", source)
    assert status == 0
    records = read_jsonl(out)
    assert [r["text"] for r in records] == [TRICKY, "", f"  {TRICKY}\t"]
    assert records[1]["entities"] == []  # an empty line is no error
    for record in (records[0], records[2]):
        assert [e["text"] for e in record["entities"]] == TRICKY_WORDS  # every word is one B-PER entity
        for entity in record["entities"]:
            assert record["text"][entity["start"]:entity["end"]] == entity["text"]
            assert entity["label"] == "PER" and 0 < entity["score"] <= 1
    # All I-PER: one entity from the first word to the last, the spaces and tab between them included
    status, out, _ = run_cli(monkeypatch, capsys, "--model", models["I-PER"], "--input", source)
    (entity,) = read_jsonl(out)[2]["entities"]
    assert (entity["start"], entity["text"]) == (2, TRICKY)


def read_columns(path) -> tuple[list[list[str]], list[list[str]], list[str]]:
    gold, predicted, lines = [], [], []
    sentence_gold, sentence_predicted = [], []
    for line in open(path, encoding="utf-8"):
        lines.append(line.rstrip("\n"))
        columns = line.split()
        if not columns or columns[0] == "-DOCSTART-":
            if sentence_gold:
                gold.append(sentence_gold)
                predicted.append(sentence_predicted)
            sentence_gold, sentence_predicted = [], []
            continue
        sentence_gold.append(columns[-2])
        sentence_predicted.append(columns[-1])
    if sentence_gold:
        gold.append(sentence_gold)
        predicted.append(sentence_predicted)
    return gold, predicted, lines


def test_conll_in_conll_out_scores_as_printed(models, tmp_path, monkeypatch, capsys):
    from seqeval.metrics import f1_score, precision_score, recall_score

    output = tmp_path / "out.conll"
    status, out, err = run_cli(monkeypatch, capsys, "--model", models["random"], "--input",
                               DEMO_DIR / "demo_test.txt", "--output", output)
    assert status == 0 and out == ""
    gold, predicted, lines = read_columns(output)
    source = (DEMO_DIR / "demo_test.txt").read_text(encoding="utf-8").splitlines()
    assert [line.rsplit(" ", 1)[0] if line else line for line in lines] == source  # the input columns, unchanged
    assert len(gold) == 100
    printed = [float(x) for x in SCORE_LINE.search(err).groups()]
    assert printed[2] > 0  # the random model does find some entities, so equality means something
    assert printed == pytest.approx([round(f(gold, predicted), 4)
                                     for f in (precision_score, recall_score, f1_score)], abs=1e-4)
    assert "100 sentences" in err and "entities found" in err


def test_f1_equals_the_figures_of_results_json(tiny_bert_dir, tmp_path, monkeypatch, capsys):
    """The command's F1 at its default --batch_size is the test F1 that results.json records, for the folder
    (PyTorch), ONNX fp32 and ONNX int8: dynamic int8 quantizes each call's activations with one scale, so this holds
    because results.json's variants are batched as the command batches (in chunks of sentences, which the blank and
    -DOCSTART- lines of the test file must not shift; small chunks here, so that there are several)."""
    import runtime.predict

    monkeypatch.setattr(runtime.predict, "CHUNK_SENTENCES", 8)
    output_dir = tmp_path / "trained"
    results = run_ner_compress.main([
        "--model_name_or_path", str(tiny_bert_dir), "--output_dir", str(output_dir),
        "--train_file", str(DEMO_DIR / "demo_train.txt"), "--test_file", str(DEMO_DIR / "demo_test.txt"),
        "--max_train_samples", "64", "--max_seq_length", "512", "--per_device_train_batch_size", "16",
        "--learning_rate", "1e-4", "--num_train_epochs", "1", "--save_strategy", "no", "--report_to", "none",
        "--disable_tqdm", "true", "--export_onnx", "--quantize", "int8",
    ])

    def command_f1(model, *extra: str) -> float:
        status, _, err = run_cli(monkeypatch, capsys, "--model", model, "--input", DEMO_DIR / "demo_test.txt",
                                 "--output", tmp_path / "out.conll", *extra)
        assert status == 0
        return float(SCORE_LINE.search(err).group(3))

    variants = results["variants"]
    assert results["test_f1"] > 0 and variants["onnx_int8"]["test_f1"] > 0  # so the equalities mean something
    assert command_f1(output_dir) == pytest.approx(results["test_f1"], abs=1e-4)  # the Trainer's padded batches
    for name in ("fp32", "onnx", "onnx_int8"):
        assert command_f1(variants[name]["path"]) == pytest.approx(variants[name]["test_f1"], abs=1e-4), name
        assert variants[name]["eval_batching"].startswith("as run_ner_predict: batches of 32 windows")
    # the int8 F1 does move with the batching, so the equality above is no accident
    other = {command_f1(variants["onnx_int8"]["path"], "--batch_size", size) for size in ("1", "3", "7")}
    assert other != {variants["onnx_int8"]["test_f1"]}


def test_onnx_fp32_gives_the_pytorch_spans(models, tmp_path, monkeypatch, capsys):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(DEMO_LINES + [TRICKY]) + "\n", encoding="utf-8")
    outputs = {}
    for kind, model in (("pytorch", models["random"]), ("onnx", models["fp32"]), ("int8", models["int8"])):
        status, out, _ = run_cli(monkeypatch, capsys, "--model", model, "--input", source)
        assert status == 0
        outputs[kind] = read_jsonl(out)
    spans = {kind: [[(e["start"], e["end"], e["label"]) for e in r["entities"]] for r in records]
             for kind, records in outputs.items()}
    assert any(spans["pytorch"])
    assert spans["onnx"] == spans["pytorch"]
    scores = {kind: [e["score"] for r in records for e in r["entities"]] for kind, records in outputs.items()}
    assert scores["onnx"] == pytest.approx(scores["pytorch"], abs=2e-4)
    assert len(spans["int8"]) == len(spans["pytorch"])  # int8 runs; its tags may differ on a random model


def run_script(*argv, stdin: str | None = None, block_torch: bool = False) -> subprocess.CompletedProcess:
    if block_torch:
        return run_without_torch(argv, stdin=stdin)
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    return subprocess.run([sys.executable, "run_ner_predict.py", *map(str, argv)], input=stdin, capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=120)


def test_onnx_path_runs_without_torch_or_transformers(models, tmp_path):
    output = tmp_path / "out.conll"
    done = run_script("--model", models["int8"], "--input", DEMO_DIR / "demo_test.txt", "--output", output,
                      block_torch=True)
    assert done.returncode == 0, done.stderr
    assert SCORE_LINE.search(done.stderr)
    # and the answer is the one the full install gives
    reference = tmp_path / "reference.conll"
    assert predict_file(PredictArguments(model=str(models["int8"]), input=str(DEMO_DIR / "demo_test.txt"),
                                         output=str(reference))).sentences == 100
    assert output.read_text() == reference.read_text()
    # a folder (PyTorch) model in the same setting names what is missing, in one line
    done = run_script("--model", models["random"], "--input", DEMO_DIR / "demo_test.txt", block_torch=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "torch" in done.stderr


def test_stdin_to_stdout(models):
    text = "\n".join(DEMO_LINES + ["", TRICKY]) + "\n"
    done = run_script("--model", models["fp32"], "--input", "-", stdin=text)
    assert done.returncode == 0, done.stderr
    records = read_jsonl(done.stdout)
    assert [r["text"] for r in records] == text.splitlines()
    assert "4 sentences" in done.stderr and "\r" not in done.stderr  # no progress bar when not on a terminal


class KeywordBackend:
    """Logits from the token alone (lake -> B-LOC, port -> I-LOC, else O), so that any window sees the same tags."""

    def __init__(self, tokenizer):
        self.lake, self.port = tokenizer.token_to_id("lake"), tokenizer.token_to_id("port")
        self.id2label = dict(enumerate(LABELS))
        self.max_positions = 512
        self.widths = []

    def logits(self, input_ids, attention_mask, token_type_ids):
        self.widths.append(input_ids.shape[1])
        logits = np.zeros(input_ids.shape + (len(LABELS),), dtype=np.float32)  # (B, T, C)
        logits[..., LABELS.index("O")] = 1.0
        logits[input_ids == self.lake, LABELS.index("B-LOC")] = 5.0
        logits[input_ids == self.port, LABELS.index("I-LOC")] = 5.0
        return logits


@pytest.mark.parametrize("stride", [0, 2])
def test_windows_find_an_entity_across_a_window_edge(models, stride):
    tokenizer = load_tokenizer_file(str(models["random"]), "tiny")
    backend = KeywordBackend(tokenizer)
    predictor = NerPredictor(backend, tokenizer, max_seq_length=8, stride=stride)  # 6 text subwords a window
    # "lake" is subword 5, the last of the first window; "port" is subword 6, the first of the next (stride 0)
    line = "the the the the the lake port " + " ".join(["the"] * 20)
    (entities,) = predictor.entities([line])
    assert [(e["text"], e["label"]) for e in entities] == [("lake port", "LOC")]
    assert max(backend.widths) <= 8 and predictor.windows_run > 3


def test_long_line_is_split_not_truncated(models, tmp_path, monkeypatch, capsys):
    source = tmp_path / "long.txt"
    line = " ".join(["bank"] * 300)  # 300 subwords, over --max_seq_length 32
    source.write_text(line + "\n", encoding="utf-8")
    status, out, _ = run_cli(monkeypatch, capsys, "--model", models["I-PER"], "--input", source,
                             "--max_seq_length", "32", "--format", "conll")
    assert status == 0
    assert out.split() == ["bank", "I-PER"] * 300  # every word tagged, none cut off


class SlowKeywordBackend(KeywordBackend):
    def logits(self, input_ids, attention_mask, token_type_ids):
        time.sleep(0.01)
        return super().logits(input_ids, attention_mask, token_type_ids)


def test_one_long_line_reports_progress_off_a_terminal(models, tmp_path, monkeypatch):
    """Off a terminal no bar is drawn; a line every PROGRESS_SECONDS shows the windows of one long line moving."""
    monkeypatch.setattr(runtime.predict, "PROGRESS_SECONDS", 0.05)
    source = tmp_path / "long.txt"
    source.write_text(" ".join(["the lake port"] * 100) + "\n", encoding="utf-8")  # one line, 300 subwords
    tokenizer = load_tokenizer_file(str(models["random"]), "tiny")
    args = PredictArguments(model=str(models["random"]), input=str(source), output=str(tmp_path / "out.jsonl"),
                            max_seq_length=8, stride=0, batch_size=1)  # 50 windows, one model call each
    log = io.StringIO()
    summary = predict_file(args, SlowKeywordBackend(tokenizer), tokenizer, log=log)
    lines = log.getvalue().splitlines()
    progress = [line for line in lines if "model windows run" in line]
    assert summary.sentences == 1 and len(progress) >= 2, lines
    windows = [int(re.search(r"([\d,]+) model windows", line).group(1).replace(",", "")) for line in progress]
    assert windows == sorted(windows) and 0 < windows[-1] <= 50 and len(set(windows)) > 1
    assert lines[-1].startswith("run_ner_predict: 1 sentences in")  # the summary comes last, after the progress
    assert all(line.startswith("run_ner_predict: ") for line in lines)


def test_pytorch_and_windows_agree_with_one_window(models, tmp_path, monkeypatch, capsys):
    """A line that fits gets the same tags whatever the window: windows change nothing for short lines."""
    source = tmp_path / "in.txt"
    source.write_text("\n".join(DEMO_LINES) + "\n", encoding="utf-8")
    runs = [run_cli(monkeypatch, capsys, "--model", models["random"], "--input", source, *extra)[1]
            for extra in ([], ["--max_seq_length", "64", "--batch_size", "1"])]
    assert runs[0] == runs[1]


# ----------------------------------------------------------------------------------------------------------------
# Model calls in threads: the same output as one call after another, in input order


class ShuffledBackend:
    """Another backend's logits, from ``parallel_calls`` threads that each wait a random time first: later batches
    often finish before earlier ones. Records how many calls ran at once."""

    def __init__(self, backend, parallel_calls: int, seed: int = 0):
        import threading

        self.backend, self.parallel_calls = backend, parallel_calls
        self.id2label, self.max_positions = backend.id2label, backend.max_positions
        self.random = np.random.default_rng(seed)
        self.lock, self.running, self.most_at_once = threading.Lock(), 0, 0

    def logits(self, input_ids, attention_mask, token_type_ids):
        import time

        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            delay = self.random.uniform(0, 0.01)
        time.sleep(delay)
        try:
            return self.backend.logits(input_ids, attention_mask, token_type_ids)
        finally:
            with self.lock:
                self.running -= 1


def mixed_lines(count: int = 60) -> list[str]:
    """Short and long lines (the long ones need several windows at --max_seq_length 16), an empty one, TRICKY."""
    random = np.random.default_rng(1)
    lines = [" ".join(random.choice(DEMO_LINES[i % 2].split(), size=random.integers(1, 40))) for i in range(count)]
    return lines[:10] + ["", TRICKY] + lines[10:]


@pytest.mark.parametrize("model", ["int8", "random"])
def test_model_threads_give_the_plain_output_in_order(models, tmp_path, monkeypatch, model):
    import runtime.predict

    source = tmp_path / "in.txt"
    source.write_text("\n".join(mixed_lines()) + "\n", encoding="utf-8")
    monkeypatch.setattr(runtime.predict, "CHUNK_SENTENCES", 9)  # several chunks, two in flight at a time
    outputs = {}
    for workers in (1, 3):
        args = PredictArguments(model=str(models[model]), input=str(source), output=str(tmp_path / f"{workers}.jsonl"),
                                max_seq_length=16, stride=3, batch_size=4)
        backend, tokenizer = runtime.predict.load_backend(args)
        shuffled = ShuffledBackend(backend, workers)
        summary = predict_file(args, shuffled, tokenizer, log=open(os.devnull, "w"))
        assert summary.sentences == 62
        assert shuffled.most_at_once == workers  # the threads did overlap (and the plain path did not)
        outputs[workers] = (tmp_path / f"{workers}.jsonl").read_text(encoding="utf-8")
    assert [r["text"] for r in read_jsonl(outputs[3])] == mixed_lines()
    assert outputs[3] == outputs[1]


def test_model_threads_take_the_longest_batches_first(models):
    """So that the threads end together: the last call of a chunk is a short one, not the longest."""
    tokenizer = load_tokenizer_file(str(models["random"]), "tiny")
    backend = KeywordBackend(tokenizer)  # records each call's width as the call starts
    with NerPredictor(backend, tokenizer, batch_size=4, workers=2) as predictor:
        pending = predictor.submit_text(mixed_lines())
        pending.result()
        widths = [batch.input_ids.shape[1] for batch in pending.batches]
    assert widths == sorted(widths) and widths[0] < widths[-1]  # batched shortest first, and gathered so
    assert max(backend.widths) in backend.widths[:2]  # but run longest first (two threads take the first two)


def test_chunks_count_sentences_and_bound_the_lines_between_them(monkeypatch):
    import runtime.predict
    from runtime.formats import Sentence
    from runtime.predict import sentence_chunks

    monkeypatch.setattr(runtime.predict, "CHUNK_SENTENCES", 2)
    monkeypatch.setattr(runtime.predict, "MAX_COPY_LINES", 3)
    items = [Sentence("copy", ["-DOCSTART-"])] + [Sentence(k, ["x"]) for _ in range(3) for k in ("words", "copy")]
    kinds = [[s.kind for s in chunk] for chunk in sentence_chunks(items)]
    assert kinds == [["copy", "words", "copy", "words"], ["copy", "words", "copy"]]  # blank lines do not count
    blank = [[len(chunk)] for chunk in sentence_chunks([Sentence("copy", [""])] * 7)]
    assert blank == [[3], [3], [1]]  # a file of blank lines is still read a bounded chunk at a time


def test_onnx_on_cpu_runs_one_single_threaded_call_per_core(models, tmp_path, monkeypatch, capsys):
    import runtime.backends

    source = tmp_path / "in.txt"
    source.write_text("\n".join(mixed_lines()) + "\n", encoding="utf-8")
    outputs = []
    for cores in (1, 3):
        monkeypatch.setattr(runtime.backends, "usable_cores", lambda: cores)
        backend, _ = runtime.backends.load_backend(PredictArguments(model=str(models["int8"]), input=str(source)))
        assert backend.parallel_calls == cores
        threads = backend.session.session.get_session_options().intra_op_num_threads
        assert threads == (1 if cores > 1 else 0)  # 0: ONNX Runtime's default, all cores for the one call
        status, out, _ = run_cli(monkeypatch, capsys, "--model", models["int8"], "--input", source)
        assert status == 0
        outputs.append(out)
    assert outputs[0] == outputs[1]


class FailingBackend(ShuffledBackend):
    def logits(self, input_ids, attention_mask, token_type_ids):
        if input_ids.shape[1] > 12:
            raise ValueError("model failure in a thread")
        return super().logits(input_ids, attention_mask, token_type_ids)


def test_a_failure_in_a_model_thread_stops_the_run_and_leaves_no_output(models, tmp_path, monkeypatch):
    import runtime.predict

    source = tmp_path / "in.txt"
    source.write_text("\n".join(mixed_lines()) + "\n", encoding="utf-8")
    monkeypatch.setattr(runtime.predict, "CHUNK_SENTENCES", 9)
    args = PredictArguments(model=str(models["int8"]), input=str(source), output=str(tmp_path / "out.jsonl"))
    backend, tokenizer = runtime.predict.load_backend(args)
    with pytest.raises(ValueError, match="model failure in a thread"):
        predict_file(args, FailingBackend(backend, 3), tokenizer, log=open(os.devnull, "w"))
    assert os.listdir(tmp_path) == ["in.txt"]


# ----------------------------------------------------------------------------------------------------------------
# Bad input: one line on stderr, exit status 2, no output file


def bad_cases(models, tmp_path):
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"fine first line\n\x00\x01\x02\xff\xfe binary\n")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"ok\ncaf\xe9 au lait\n")
    headless = tmp_path / "headless"
    from transformers import BertModel

    from conftest import tiny_bert_config

    BertModel(tiny_bert_config()).save_pretrained(headless)
    make_tiny_tokenizer(headless)
    bare_onnx = tmp_path / "bare" / "model.onnx"
    bare_onnx.parent.mkdir()
    shutil.copy(models["fp32"], bare_onnx)
    big_tokenizer = tmp_path / "big_tokenizer"
    big_tokenizer.mkdir()
    from tokenizers import Tokenizer, models as tokenizer_models

    Tokenizer(tokenizer_models.WordLevel({f"w{i}": i for i in range(500)}, unk_token="w0")).save(
        str(big_tokenizer / "tokenizer.json"))
    text = DEMO_DIR / "demo_test.txt"
    return {
        "binary": (["--model", models["random"], "--input", binary], [f"{binary}:2", "binary"]),
        "latin-1": (["--model", models["random"], "--input", latin], [f"{latin}:2", "--encoding"]),
        "no head": (["--model", headless, "--input", text], [str(headless), "token-classification"]),
        "no tokenizer": (["--model", bare_onnx, "--input", text], [str(bare_onnx), str(bare_onnx.parent)]),
        "other tokenizer": (["--model", models["fp32"], "--input", text, "--tokenizer", big_tokenizer],
                            [str(models["fp32"]), str(big_tokenizer), "500"]),
        "missing input": (["--model", models["random"], "--input", tmp_path / "nope.txt"], ["nope.txt"]),
        "bad stride": (["--model", models["random"], "--input", text, "--max_seq_length", "8", "--stride", "6"],
                       ["--stride 6"]),
    }


@pytest.mark.parametrize("case", ["binary", "latin-1", "no head", "no tokenizer", "other tokenizer",
                                  "missing input", "bad stride"])
def test_bad_input_gets_one_line_and_status_2(models, tmp_path, monkeypatch, capsys, case):
    argv, expected = bad_cases(models, tmp_path)[case]
    capsys.readouterr()  # what building the cases printed
    output = tmp_path / "out" / "predictions.jsonl"
    output.parent.mkdir()
    status, out, err = run_cli(monkeypatch, capsys, *argv, "--output", output)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("run_ner_predict: error: "), err
    for part in expected:
        assert part in err
    assert os.listdir(output.parent) == []  # neither the output nor a partial file


def test_other_encoding_reads_with_the_flag(models, tmp_path, monkeypatch, capsys):
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"ok\ncaf\xe9 au lait\n")
    status, out, _ = run_cli(monkeypatch, capsys, "--model", models["B-PER"], "--input", latin,
                             "--encoding", "latin-1")
    assert status == 0
    assert [e["text"] for e in read_jsonl(out)[1]["entities"]] == ["café", "au", "lait"]


def test_a_failure_mid_file_leaves_no_output(models, tmp_path, monkeypatch, capsys):
    import runtime.predict

    source = tmp_path / "in.txt"
    source.write_text("\n".join(DEMO_LINES * 5) + "\ncaf\xe9\n", encoding="latin-1")  # bad byte at line 11
    monkeypatch.setattr(runtime.predict, "CHUNK_SENTENCES", 4)  # two chunks are written before the bad line
    output = tmp_path / "out.jsonl"
    status, _, err = run_cli(monkeypatch, capsys, "--model", models["random"], "--input", source, "--output", output)
    assert status == 2 and f"{source}:11" in err
    assert os.listdir(tmp_path) == ["in.txt"]


def test_quickstart_ends_with_the_figures_the_command_and_its_output(tiny_bert_dir, tmp_path, capsys):
    quick = ["--max_train_samples", "16", "--max_eval_samples", "8", "--max_predict_samples", "8",
             "--per_device_train_batch_size", "8", "--num_train_epochs", "1", "--save_strategy", "no",
             "--report_to", "none", "--disable_tqdm", "true"]
    teacher, compressed = tmp_path / "teacher", tmp_path / "shared_ffn"
    run_ner_compress.main(["--quickstart", "--model_name_or_path", str(tiny_bert_dir), "--output_dir", str(teacher),
                           *quick])
    capsys.readouterr()
    results = run_ner_compress.main(["--quickstart", "--model_type", "shared_ffn", "--embedding_size", "16",
                                     "--model_name_or_path", str(teacher), "--teacher_name_or_path", str(teacher),
                                     "--output_dir", str(compressed), *quick])
    out = capsys.readouterr().out
    table = out[out.index("quickstart results"):out.index("Run the model")]
    assert re.search(r"^\s+teacher\s+shared_ffn", table, re.M)
    for label in ("weights on disk (MB)", "test F1", "F1 retention", "smaller by"):
        assert label in table
    assert f"{results['test_f1']:.4f}" in table
    assert f"run_ner_predict --model {compressed} --input your_text.txt" in out
    records = [json.loads(line) for line in out.splitlines() if line.startswith('  {"text"')]
    assert [r["text"] for r in records] == QUICKSTART_LINES


def test_json_lines_in_scores_like_conll(models, tmp_path, monkeypatch, capsys):
    from trainers.ner_data import read_conll

    records = read_conll(str(DEMO_DIR / "demo_test.txt"))
    source = tmp_path / "test.jsonl"
    source.write_text("".join(json.dumps({"tokens": r["tokens"], "ner_tags": r["ner_tags"]}) + "\n"
                              for r in records), encoding="utf-8")
    scores = []
    for path in (source, DEMO_DIR / "demo_test.txt"):
        status, out, err = run_cli(monkeypatch, capsys, "--model", models["fp32"], "--input", path,
                                   "--format", "jsonl")
        assert status == 0
        scores.append(SCORE_LINE.search(err).groups())
        predicted = [json.loads(line) for line in out.splitlines()]
        assert [p["tokens"] for p in predicted] == [r["tokens"] for r in records]
        assert all(len(p["pred_tags"]) == len(p["tokens"]) for p in predicted)
    assert scores[0] == scores[1]
    # the same records on stdin are recognised from their first line
    done = run_script("--model", models["fp32"], "--input", "-", stdin=source.read_text(encoding="utf-8"))
    assert done.returncode == 0 and SCORE_LINE.search(done.stderr).groups() == scores[0]


def test_predict_speed_reads_the_commands_summary_and_sizes_its_inputs(models, tmp_path, monkeypatch, capsys):
    from benchmarks import predict_speed

    status, _, err = run_cli(monkeypatch, capsys, "--model", models["fp32"], "--input", DEMO_DIR / "demo_test.txt",
                             "--output", tmp_path / "out.conll")
    assert status == 0 and predict_speed.THROUGHPUT.search(err).group(1) == "100"
    text = predict_speed.raw_text(DEMO_DIR / "demo_test.txt", tmp_path / "raw.txt", 0.05)
    assert 45_000 < os.path.getsize(text) <= 50_000 and text.read_text().endswith(" .\n")
    head = predict_speed.conll_head(DEMO_DIR / "demo_test.txt", tmp_path / "head.txt", 3)
    assert len(predict_speed.read_sentences(head, None)) == 3 and head.read_text().endswith(" O\n\n")
    # two rounds: medians per variant; the ratio is taken round by round (300 / 100, 330 / 120)
    table = predict_speed.format_table({
        "teacher": dict.fromkeys(predict_speed.VARIANTS, [100.0, 120.0]),
        "best 5x": {"PyTorch fp32": [150.0, 150.0], "ONNX fp32": [200.0, 210.0], "ONNX int8": [300.0, 330.0]}})
    assert "| teacher | 110 | 110 | 110 | 1.00x (1.00-1.00) |" in table
    assert "| best 5x | 150 | 205 | 315 | 2.88x (2.75-3.00) |" in table


def test_predict_speed_times_every_variant_once_per_round(monkeypatch, capsys):
    from benchmarks import predict_speed

    order = []
    monkeypatch.setattr(predict_speed, "sentences_per_second", lambda command: order.append(command[0]) or 1.0)
    commands = {("teacher", "PyTorch fp32"): ["a"], ("teacher", "ONNX int8"): ["b"], ("best 5x", "ONNX int8"): ["c"]}
    speeds = predict_speed.time_rounds(commands, rounds=3)
    assert order == ["a", "b", "c"] * 3
    assert speeds == dict.fromkeys(commands, [1.0, 1.0, 1.0])
    assert capsys.readouterr().err.count("round ") == 3


# ----------------------------------------------------------------------------------------------------------------
# CoNLL input: invisible blank lines, and tagged or untagged decided on the tagged lines


@pytest.mark.parametrize("invisible", ["\ufeff", "\u200b", " \u200c\t"])
def test_a_line_of_invisible_characters_is_a_blank_line(models, tmp_path, monkeypatch, capsys, invisible):
    source = tmp_path / "in.txt"
    source.write_text(f"-DOCSTART- O\n\nlake B-LOC\nport I-LOC\n{invisible}\nthe O\n", encoding="utf-8")
    status, out, err = run_cli(monkeypatch, capsys, "--model", models["random"], "--input", source)
    assert status == 0, err
    columns = [line.split()[:-1] for line in out.splitlines()]
    assert columns == [["-DOCSTART-", "O"], [], ["lake", "B-LOC"], ["port", "I-LOC"], [], ["the", "O"]]
    assert "2 sentences" in err and SCORE_LINE.search(err)  # two sentences, scored against their gold tags


@pytest.mark.parametrize("docstart", ["-DOCSTART- -X- O O\n\n", ""])
def test_a_tagged_file_with_a_line_missing_its_tag_is_rejected_at_that_line(models, tmp_path, monkeypatch, capsys,
                                                                              docstart):
    """Not read as untagged (its gold dropped) or as raw text: the tagged lines decide, the odd line is named."""
    source = tmp_path / "in.txt"
    source.write_text(docstart + "lake B-LOC\nport I-LOC\nthe O\n\nbank O\nrain\nthe O\n", encoding="utf-8")
    status, out, err = run_cli(monkeypatch, capsys, "--model", models["random"], "--input", source)
    line = docstart.count("\n") + 6
    assert status == 2 and err.count("\n") == 1 and f"{source}:{line}: " in err and "'rain'" in err, err


def test_tagged_or_untagged_is_decided_on_the_tagged_lines():
    from runtime.formats import detect_input_format

    tagged = ["-DOCSTART- -X- O O", "", "lake B-LOC", "port I-LOC", "rain", "the O"]
    assert detect_input_format("in.txt", tagged) == ("conll", True)
    assert detect_input_format("in.txt", tagged[2:]) == ("conll", True)
    untagged = ["-DOCSTART-", "", "lake", "port", "rain O", "the"]  # one token line that happens to end in O
    assert detect_input_format("in.txt", untagged) == ("conll", False)
    assert detect_input_format("in.txt", ["Mara joined Norvane Bank .", "Hello", "He said O"]) == ("text", False)
