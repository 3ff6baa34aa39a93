"""benchmarks/compare.py end to end on a tiny BERT and the demo sample (resumed on a second run), and speed.py's
measurement on a tiny config."""

from __future__ import annotations

import csv
import json
import re
import shlex
import subprocess
import sys

import pytest

from conftest import DEMO_DIR, REPO, make_tiny_bert, tiny_bert_config

from benchmarks import compare, compare_rows, speed

# The tiny BERT (hidden 32, 2 layers) cannot take the recipe's E=128, rank 64 or a 3-layer student.
TINY_ROW_ARGS = {
    "factorized": "--embedding_size 16", "factorized_kd": "--embedding_size 16", "best": "--embedding_size 16",
    "low_rank": "--rank 4", "low_rank_kd": "--rank 4", "student": "--student_num_layers 1",
}
# Each row is a subprocess that imports torch (~10 s of CPU): run one of each kind (fine-tuned only, distilled,
# student, combination) end to end; test_default_rows_... checks that the full recipe is what runs by default.
E2E_ROWS = ("teacher", "factorized", "low_rank_kd", "student", "best")


def compare_command(tmp_path, model_dir) -> list[str]:
    command = [
        sys.executable, str(REPO / "benchmarks" / "compare.py"), "--output_dir", str(tmp_path / "cmp"),
        "--model_name_or_path", str(model_dir),
        "--train_file", str(DEMO_DIR / "demo_train.txt"), "--validation_file", str(DEMO_DIR / "demo_validation.txt"),
        "--test_file", str(DEMO_DIR / "demo_test.txt"),
        "--max_train_samples", "32", "--max_eval_samples", "16", "--max_predict_samples", "16",
        "--teacher_epochs", "1", "--teacher_learning_rate", "1e-2", "--epochs", "1", "--batch_size", "16",
        "--eval_strategy", "no", "--save_strategy", "no", "--parallel", "2", "--rows", ",".join(E2E_ROWS),
    ]
    for row, flags in TINY_ROW_ARGS.items():
        command += ["--row_args", f"{row}={flags}"]
    return command


def test_default_rows_are_the_full_recipe_and_parse(tmp_path):
    """Without --rows every current row without a transfer set runs, the teacher first, in order.txt's order, and each
    command is valid for run_ner_compress.py."""
    import cli.checks
    import cli.budget
    import cli.arguments

    args = compare.parse_args(["--output_dir", str(tmp_path), "--train_file", "t.txt"])
    planned = compare.plan(args)
    assert [row.name for row, _ in planned] == [row.name for row in compare.CURRENT_ROWS if not row.transfer]
    assert planned[0][0].name == "teacher"
    for row, command in planned:
        model_args, compression_args, data_args, training_args, *_ = cli.arguments.parse_args(command)
        cli.checks.apply_defaults(model_args, compression_args, data_args, training_args)
        assert training_args.output_dir == str(tmp_path / row.name)
        source = str(tmp_path / row.source)
        assert (model_args.teacher_name_or_path == source) == row.distil
        if row.name != "teacher":
            assert model_args.model_name_or_path == source


def test_every_experiment_file_is_a_row_with_a_command(tmp_path):
    """Each benchmarks/experiments/*.json is one row, named as its file, and plan() builds its command."""
    files = sorted([*compare_rows.EXPERIMENTS.glob("*.json"), *(compare_rows.EXPERIMENTS / "history").glob("*.json")])
    assert sorted(path.stem for path in files) == sorted(compare_rows.ROW_NAMES)
    assert len(set(compare_rows.ROW_NAMES)) == len(compare_rows.ROW_NAMES)
    args = compare.parse_args(["--output_dir", str(tmp_path), "--train_file", "t.txt", "--transfer_file", "r.txt"])
    assert args.rows == [row.name for row in compare_rows.CURRENT_ROWS]  # by default the current rows, all of them
    args.rows = list(compare_rows.ROW_NAMES)
    planned = compare_rows.plan(args)
    assert [row.name for row, _ in planned] == list(compare_rows.ROW_NAMES)
    for path in files:
        row = compare_rows.load_row(path)
        command = dict((r.name, c) for r, c in planned)[row.name]
        assert command[-2:] == ["--output_dir", str(tmp_path / row.name)]
        assert compare_rows.merge_flags(command, row.method_flags()) == command  # the row's flags hold
        assert ("--transfer_file" in command) == row.transfer and ("--temperature" in command) == row.distil


def write_row(folder, stem="mine", order=None, **fields):
    """An experiment file <stem>.json (fields over a valid row; None drops one) and order.txt listing ``order``."""
    data = {"name": stem, "description": "one shared layer", "flags": "--model_type shared_ffn", "distil": True,
            "source": "teacher", "transfer": False, **fields}
    path = folder / f"{stem}.json"
    path.write_text(json.dumps({key: value for key, value in data.items() if value is not None}))
    (folder / "order.txt").write_text("# comment\n" + "\n".join(order or [stem]) + "\n")
    return path


@pytest.mark.parametrize("fields, order, expected", [
    ({"distil": "yes"}, None, r"mine.json: field 'distil' must be true or false, not \"yes\""),
    ({"description": None}, None, r"mine.json: field 'description' is missing"),
    ({"name": "other"}, None, r"mine.json: field 'name' is 'other', not the file's name 'mine'"),
    ({"flag": "--rank 8"}, None, r"mine.json: unknown field 'flag'"),
    ({"flags": "64 --rank 8"}, None, r"mine.json: field 'flags': '64' is not after a --flag"),
    ({"flags": "--model_type 'shared_ffn"}, None, r"mine.json: field 'flags': No closing quotation"),
    ({"flags": "--embedding_size 64"}, None, r"mine.json: field 'flags': no --model_type"),
    ({"recipe": "10x"}, None, r"mine.json: field 'recipe': a row names a recipe or a --model_type"),
    ({"flags": "", "target_ratio": 0.5}, None, r"mine.json: field 'target_ratio': 0.5 is not above 1"),
    ({"flags": "--recipe 10x"}, None, r"mine.json: field 'flags': --recipe goes in the field 'recipe'"),
    ({}, ["mine", "mine"], r"order.txt: 'mine' is listed twice"),
    ({}, ["mine", "yours"], r"order.txt: 'yours' has no file .*yours.json"),
    ({}, ["teacher"], r"mine.json: not listed in .*order.txt"),
])
def test_a_malformed_experiment_is_one_line_naming_file_and_field(tmp_path, fields, order, expected):
    write_row(tmp_path, order=order, **fields)
    if order == ["teacher"]:
        write_row(tmp_path, "teacher", order=order)
    with pytest.raises(ValueError, match=expected) as raised:
        compare_rows.load_rows(tmp_path)
    assert "\n" not in str(raised.value)


def test_history_rows_load_in_table_order_and_a_name_in_both_folders_is_refused(tmp_path):
    """A file in history/ is a row like any other, in order.txt's place; current rows are the ones beside it."""
    write_row(tmp_path, "teacher", order=["mine", "teacher"])
    (tmp_path / "history").mkdir()
    write_row(tmp_path / "history", "mine")
    assert [row.name for row in compare_rows.load_rows(tmp_path)] == ["mine", "teacher"]
    (tmp_path / "order.txt").write_text("mine\nteacher\n")
    write_row(tmp_path, "mine", order=["mine", "teacher"])
    with pytest.raises(ValueError, match=r"history/mine.json: the row 'mine' is also .*/mine.json"):
        compare_rows.load_rows(tmp_path)
    assert {row.name for row in compare_rows.HISTORY_ROWS} == {
        path.stem for path in (compare_rows.EXPERIMENTS / "history").glob("*.json")}
    assert "best_shared_tr" in {row.name for row in compare_rows.CURRENT_ROWS}


def test_compare_py_reports_a_malformed_experiment_in_one_line(tmp_path):
    import shutil

    shutil.copytree(REPO / "benchmarks", tmp_path / "benchmarks", ignore=shutil.ignore_patterns("__pycache__"))
    broken = tmp_path / "benchmarks" / "experiments" / "history" / "best.json"
    broken.write_text(broken.read_text().replace('"distil": true', '"distil": 1'))
    done = subprocess.run([sys.executable, str(tmp_path / "benchmarks" / "compare.py"), "--output_dir", "x"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert done.stderr.splitlines() == [f"compare.py: error: {broken}: field 'distil' must be true or false, not 1"]


def test_a_row_may_name_a_recipe_instead_of_a_model_type(tmp_path, monkeypatch):
    """"recipe": "10x" (and "target_ratio") become --recipe 10x --target_ratio 10, before the row's other flags."""
    row = compare_rows.load_row(write_row(tmp_path, flags="--transfer_ratio 2", recipe="10x", target_ratio=10))
    monkeypatch.setattr(compare_rows, "ROWS", (*compare_rows.ROWS, row))
    args = compare.parse_args(["--output_dir", str(tmp_path), "--rows", "teacher"])
    args.rows.append(row.name)
    (_, _), (planned, command) = compare_rows.plan(args)
    assert planned is row and "--model_type" not in command
    flags = command.index("--recipe")
    assert command[flags:flags + 6] == ["--recipe", "10x", "--target_ratio", "10", "--transfer_ratio", "2"]


def test_row_args_replace_the_recipe_flags(tmp_path):
    args = compare.parse_args(["--output_dir", str(tmp_path), "--rows", "teacher,best",
                               "--row_args", "best=--model_type shared_attn --rank 8",
                               "--extra", "--seed 7"])
    command = dict(compare.plan(args))[next(row for row in compare.ROWS if row.name == "best")]
    assert command.count("--model_type") == 1 and command[command.index("--model_type") + 1] == "shared_attn"
    assert command[command.index("--rank") + 1] == "8" and command[command.index("--embedding_size") + 1] == "128"
    assert command[command.index("--seed") + 1] == "7"
    with pytest.raises(SystemExit):
        compare.parse_args(["--output_dir", str(tmp_path), "--rows", "teacher,nope"])


def test_compare_end_to_end_then_resume(tmp_path):
    make_tiny_bert(tmp_path / "tiny")
    command = compare_command(tmp_path, tmp_path / "tiny")
    first = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    out = tmp_path / "cmp"

    markdown = (out / "RESULTS.md").read_text()
    for _, title in compare.COLUMNS:
        assert title in markdown
    table_rows = [line.split("|")[1].strip() for line in markdown.splitlines() if line.startswith("| ")][1:]
    assert table_rows == list(E2E_ROWS)
    with open(out / "results.csv") as f:
        records = list(csv.DictReader(f))
    assert [r["method"] for r in records] == list(E2E_ROWS)
    assert set(key for key, _ in compare.COLUMNS) <= set(records[0])
    by_name = {r["method"]: r for r in records}
    assert float(by_name["teacher"]["compression_ratio"]) == 1.0
    assert all(float(by_name[name]["compression_ratio"]) > 1 for name in E2E_ROWS[1:])
    assert (out / "results.png").stat().st_size > 0

    def stamps():
        files = [out / name / kind for name in E2E_ROWS for kind in ("results.json", "model.safetensors")]
        return {path: path.stat().st_mtime_ns for path in files + [out / "logs" / f"{n}.log" for n in E2E_ROWS]}

    before = stamps()
    (out / "RESULTS.md").unlink()
    second = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "trained [], skipped" in second.stderr
    assert stamps() == before
    assert (out / "RESULTS.md").read_text() == markdown

    (out / "results.csv").unlink()
    assert compare.main(["--output_dir", str(out), "--table_only"])["rows"] == list(E2E_ROWS)
    assert (out / "results.csv").is_file()


def test_table_ratios_come_from_the_teacher_row(tmp_path):
    import json

    for name, params, f1 in [("teacher", 100_000_000, 0.9), ("student", 40_000_000, 0.72), ("mine", 20_000_000, 0.45)]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(
            {"num_parameters": params, "test_f1": f1, "validation_f1": f1, "distilled": name != "teacher"}))
    rows = compare.collect_rows(tmp_path)
    assert [r["method"] for r in rows] == ["teacher", "student", "mine"]  # the recipe's order, then the rest
    assert [round(r["compression_ratio"], 6) for r in rows] == [1.0, 2.5, 5.0]
    assert [round(r["f1_retention"], 6) for r in rows] == [1.0, 0.8, 0.5]
    compare.write_markdown(rows, tmp_path / "RESULTS.md")
    assert "| student | 40.00 | 2.50× | 0.7200 | 0.7200 | 80.0% |" in (tmp_path / "RESULTS.md").read_text()


# Committed results folders beside the tables compare.py wrote from them.
COMMITTED_TABLES = ("results/history/run1", "results/history/cpu_deploy", "results/gpu_h100", "results/gpu_h100/run3")


@pytest.mark.parametrize("folder", COMMITTED_TABLES)
def test_committed_results_give_back_their_committed_tables(tmp_path, folder):
    """Results written before a change still load: their row folders alone regenerate the committed tables."""
    import shutil

    source = REPO / folder
    for path in source.glob("*/results.json"):
        (tmp_path / path.parent.name).mkdir()
        shutil.copy(path, tmp_path / path.parent.name / "results.json")
    compare.write_tables(tmp_path)
    committed = [name for name in ("RESULTS.md", "results.csv", "variants.csv") if (source / name).is_file()]
    assert "RESULTS.md" in committed
    for name in committed:
        assert (tmp_path / name).read_text() == (source / name).read_text(), f"{folder}/{name} differs"


def test_speed_measures_every_model_type():
    import torch
    from transformers import BertForTokenClassification

    torch.manual_seed(0)
    teacher = BertForTokenClassification(tiny_bert_config()).eval()
    models = speed.build_models(teacher, embedding_size=16, rank=4, student_layers=1,
                                best_recipes={"best 5x": (16, 8), "best 10x": (8, 2)})
    assert tuple(models) == speed.ROW_NAMES
    sequences = speed.random_like([[0] * n for n in (5, 9, 12, 7, 30, 3, 16)], vocab_size=99)
    rows = speed.benchmark("tiny", models, sequences, batch_size=4, repeats=2, warmup=1)
    assert [r["model"] for r in rows] == list(speed.ROW_NAMES)
    assert all(r["latency_ms"] > 0 and r["throughput"] > 0 for r in rows)
    assert rows[0]["latency_speedup"] == rows[0]["throughput_ratio"] == 1.0
    table = speed.format_table(rows)
    assert all(f"| tiny | {name} |" in table for name in speed.ROW_NAMES)


def test_speed_batches_are_sorted_and_padded_per_batch():
    batches = speed.make_batches([[1] * 5, [1] * 2, [1] * 9, [1] * 3], batch_size=2, pad_id=0)
    assert [tuple(b["input_ids"].shape) for b in batches] == [(2, 3), (2, 9)]
    assert batches[0]["attention_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]


def test_variants_table_is_against_the_fp32_teacher_on_disk_and_each_rows_own_fp32(tmp_path):
    import json

    def variant(size, f1, speed):
        return {"size_bytes": size, "test_f1": f1, "test_samples_per_second": speed}

    def as_the_command(entry):
        return dict(entry, eval_batching="as run_ner_predict: batches of 32 windows")

    runs = {
        "teacher": {"num_parameters": 100, "test_f1": 0.9, "fp32_size_bytes": 80_000_000, "variants": {
            "fp32": variant(80_000_000, 0.9, 100.0), "vocab_pruned": variant(60_000_000, 0.88, 100.0),
            "onnx_int8": variant(16_000_000, 0.875, 250.0)}},
        "best10_low_rank": {"num_parameters": 10, "test_f1": 0.8, "variants": {
            "fp32": variant(8_000_000, 0.8, 400.0), "onnx_int8": variant(2_000_000, 0.79, 800.0)}},
        "student": {"num_parameters": 50, "test_f1": 0.85},  # no variants: no line
    }
    for name, results in runs.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(results))
    variants = compare.collect_variants(tmp_path)
    assert [(v["method"], v["variant"]) for v in variants] == [
        ("teacher", "PyTorch fp32"), ("teacher", "pruned vocabulary, PyTorch fp32"),
        ("teacher", "ONNX int8 (pruned vocabulary)"), ("best10_low_rank", "PyTorch fp32"),
        ("best10_low_rank", "ONNX int8"),
    ]
    last = variants[-1]
    assert last["disk_ratio"] == 40.0 and last["speed_ratio"] == 2.0 and round(last["f1_change"], 6) == -1.0
    assert round(variants[2]["f1_change"], 6) == -2.5 and variants[2]["disk_ratio"] == 5.0
    compare.write_tables(tmp_path)
    markdown = (tmp_path / "RESULTS.md").read_text()
    assert "| best10_low_rank | ONNX int8 | 2 | 40.00× | 0.7900 | -1.00 | 800.0 | 2.00× |" in markdown
    assert "on the CPU (model calls only, batches of 32)" in markdown  # files without eval_batching
    with open(tmp_path / "variants.csv") as f:
        assert len(list(csv.DictReader(f))) == 5
    # files that record how their variants were batched (eval_batching) say so, alone or beside older ones
    newer = "on the CPU (as run_ner_predict runs them by default: its batches of 32 windows"
    for names, expected in ((["best10_low_rank"], f"{newer}, tokenizing and aggregation timed; rows whose "
                                                  "results.json has no `eval_batching`: model calls only"),
                            (["best10_low_rank", "teacher"], f"{newer}, tokenizing and aggregation timed)")):
        for name in names:
            results = dict(runs[name], variants={k: as_the_command(v) for k, v in runs[name]["variants"].items()})
            (tmp_path / name / "results.json").write_text(json.dumps(results))
        compare.write_tables(tmp_path)
        assert expected in (tmp_path / "RESULTS.md").read_text()


def test_speed_times_saved_variants_with_their_own_tokenizers(tmp_path):
    """A teacher row with a pruned vocabulary and its ONNX int8 file: each is fed its own token ids."""
    pytest.importorskip("onnxruntime")
    from transformers import AutoTokenizer

    from export.evaluate_variants import VariantSettings, run_post_training
    from trainers.ner_data import read_conll

    make_tiny_bert(tmp_path / "teacher")
    records = read_conll(str(DEMO_DIR / "demo_train.txt"))[:20]
    # resplit: the pruned variants have a tokenizer of their own ("nearest" would keep the teacher's)
    run_post_training(VariantSettings(prune_vocab=True, prune_unseen="resplit", export_onnx=True, quantize="int8"),
                      str(tmp_path / "teacher"), records, None)
    models, tokenizer_dirs = speed.load_trained_models(tmp_path, variants=True)
    assert list(models) == ["teacher", "teacher/vocab_pruned", "teacher/onnx fp32", "teacher/onnx int8"]
    pruned = AutoTokenizer.from_pretrained(tokenizer_dirs["teacher/onnx int8"])
    assert len(pruned) < len(AutoTokenizer.from_pretrained(tokenizer_dirs["teacher"]))
    sentences = [r["tokens"] for r in read_conll(str(DEMO_DIR / "demo_test.txt"))[:12]]
    sequences = {name: speed.tokenize(sentences, AutoTokenizer.from_pretrained(folder), 64)
                 for name, folder in tokenizer_dirs.items()}
    rows = speed.benchmark("trained", models, sequences, batch_size=4, repeats=2, warmup=1)
    assert [r["attention"] == "onnxruntime" for r in rows] == [False, False, True, True]
    assert rows[2]["params_m"] == rows[1]["params_m"] < rows[0]["params_m"]
    assert all(r["throughput"] > 0 for r in rows)


def test_prune_curve_scores_each_keep_top_against_the_unpruned_model(tmp_path, capsys):
    from benchmarks import prune_curve

    make_tiny_bert(tmp_path / "model")
    data = [str(DEMO_DIR / f"demo_{split}.txt") for split in ("train", "validation", "test")]
    report = prune_curve.main(["--model_dir", str(tmp_path / "model"), "--train_file", data[0],
                               "--validation_file", data[1], "--test_file", data[2], "--keep_top", "0,60",
                               "--unseen", "resplit,nearest"])
    table = [[cell.strip() for cell in line.split("|")[1:-1]] for line in report.splitlines() if line.startswith("| ")]
    assert [cells[:2] for cells in table[1:]] == [["unpruned", ""], ["0", "resplit"], ["0", "nearest"],
                                                  ["60", "resplit"], ["60", "nearest"]]
    rows = [int(cells[2]) for cells in table[1:]]
    assert rows[0] == 99 and rows[1] == rows[2] <= rows[3] == rows[4] <= 99  # both modes keep the same rows
    assert table[0][:3] == ["keep_top", "unseen", "word-table rows"]
    assert "validation change (points)" in table[0] and "test words re-split" in table[0]
    resplit_columns = [i for i, name in enumerate(table[0]) if name.endswith("words re-split")]
    assert all(table[line][i] == "0.00%" for line in (2, 4) for i in resplit_columns)  # nearest keeps the tokenizer
    for flag, value, message in [("--keep_top", "ten", "--keep_top 'ten'"),
                                 ("--unseen", "resplit,closest", "--unseen 'resplit,closest'")]:
        with pytest.raises(SystemExit):
            prune_curve.parse_args(["--model_dir", str(tmp_path / "model"), "--train_file", data[0],
                                    "--validation_file", data[1], flag, value])
        assert message in capsys.readouterr().err


# The shell scripts that run compare.py: the rows each names (a typo would cost a GPU run, or a night on the CPU).
ROW_SCRIPTS = sorted([*REPO.glob("benchmarks/*.sh"), *REPO.glob("results/**/*.sh")])


@pytest.mark.parametrize("script", ROW_SCRIPTS, ids=lambda path: str(path.relative_to(REPO)))
def test_the_rows_a_script_names_have_experiment_files(script):
    text = script.read_text()
    named = re.findall(r"^ROWS=\$\{ROWS:-([^}]*)\}$", text, re.MULTILINE)  # a default row list
    named += re.findall(r"--rows[ =]['\"]?([\w,]+)", text)  # compare.py --rows NAMES (not --rows "$ROWS")
    names = [name for group in named for name in group.split(",")]
    assert names or "compare.py" not in text, f"{script.name} runs compare.py and names no rows"
    missing = [name for name in names if name not in compare_rows.ROW_NAMES]
    assert not missing, f"{script.name}: no benchmarks/experiments file for {missing}"


def _effective(argv: list[str]):
    """What run_ner_compress.py would train with for this command line: parsed, then its recipe applied."""
    import cli.arguments
    import cli.budget

    args = cli.arguments.RunArguments.from_argv(argv)
    cli.budget.apply_recipe(args)
    training, compression = args.training, args.compression
    return {
        "model_type": args.model.model_type, **{field: getattr(compression, field) for field in (
            "embedding_size", "position_embedding_size", "num_shared_groups", "rank", "prune_student_vocab")},
        **{field: getattr(training, field) for field in (
            "learning_rate", "num_train_epochs", "per_device_train_batch_size", "hidden_loss_weight", "temperature",
            "alpha", "load_best_model_at_end", "metric_for_best_model")},
        "eval_strategy": str(training.eval_strategy), "transfer_ratio": args.transfer.transfer_ratio,
    }


@pytest.mark.parametrize("name", ["best_shared_tr", "best10_shared_pos_hlr_tr"])
def test_the_best_rows_are_the_named_recipes_and_train_as_their_committed_runs(tmp_path, name):
    """compare.py's best rows are ``--recipe 5x`` / ``--recipe 10x`` (no flag string of their own), and the command
    it builds trains with exactly the settings of the committed run that measured the recipe."""
    from modeling import recipes

    row = next(row for row in compare.ROWS if row.name == name)
    assert row.recipe is not None and row.flags == ""
    recipe = recipes.NAMED_RECIPES[row.recipe]
    committed = json.loads((REPO / recipe.results / "results.json").read_text())
    transfer = tmp_path / "news.txt"
    transfer.write_text("Shares rose in Frankfurt .\n")
    local = {"--train_file": str(DEMO_DIR / "demo_train.txt"), "--transfer_file": str(transfer)}
    original = shlex.split(committed["command"])[1:]  # its data files, which parsing checks, made local
    original = [local.get(before, token) for before, token in zip(["", *original], original)]
    dropped = {"--validation_file", "--test_file", "--tf32"}  # files parsing would look for; a GPU-only switch
    original = [token for before, token in zip(["", *original], original)
                if token not in dropped and before not in dropped]
    args = compare.parse_args([
        "--output_dir", str(tmp_path), "--rows", f"teacher,{name}", "--train_file", local["--train_file"],
        "--transfer_file", local["--transfer_file"],
        "--extra", "--load_best_model_at_end True --metric_for_best_model f1"])
    command = dict(compare_rows.plan(args))[row]
    assert command[command.index("--recipe") + 1] == row.recipe
    assert not {"--learning_rate", "--num_train_epochs", "--model_type"} & set(command)
    assert _effective(command) == _effective(original)
