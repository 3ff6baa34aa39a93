"""benchmarks/peers end to end on a tiny BERT and the demo sample, with no peer installed: our rows are measured,
every peer row is there and says why it has no figures, and the table has every row. Also the peer runner's
failure paths (a failed install, a failing script) and the row checks, without torch."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from conftest import DEMO_DIR, make_tiny_bert, require_onnxruntime

from benchmarks.peers import peer_venvs
from benchmarks.peers.rows import COLUMNS, PeerRow, format_table, load_rows, save_rows


def test_harness_on_a_tiny_teacher_without_peers(tmp_path):
    require_onnxruntime()
    from benchmarks.peers import run_peers

    teacher = tmp_path / "teacher"
    make_tiny_bert(teacher)
    extra = tmp_path / "extra.txt"
    extra.write_text("the bank said shares rose after talks .\nlake port group won the cup\n", encoding="utf-8")
    rows_json, table_file = tmp_path / "rows.json", tmp_path / "TABLE.md"
    table = run_peers.main([
        "--teacher", str(teacher), "--train_file", str(DEMO_DIR / "demo_train.txt"),
        "--validation_file", str(DEMO_DIR / "demo_validation.txt"), "--test_file", str(DEMO_DIR / "demo_test.txt"),
        "--extra_text", str(extra), "--extra_text_name", "extra", "--peer_venvs", str(tmp_path / "no_venvs"),
        "--work_dir", str(tmp_path / "work"), "--output", str(table_file), "--rows_json", str(rows_json)])

    rows = load_rows(str(rows_json))
    by_method = {row.method: row for row in rows}
    assert [row.setup for row in rows].count("vocabulary pruning") == 6  # 2 corpora x (ours x 2 + TextPruner)
    assert {row.setup for row in rows} == {"teacher", "vocabulary pruning", "structured pruning", "distillation",
                                           "int8"}
    for row in rows:
        if row.status == "not measured yet":  # later parts of issue 26: the training rows
            assert row.setup in ("structured pruning", "distillation") and row.note and row.test_f1 is None, row
        elif row.tool == "ours":
            assert row.status == "measured", row
            assert 0 <= row.test_f1 <= 1 and 0 <= row.validation_f1 <= 1 and row.test_sentences_per_second > 0
            assert row.size_bytes > 0 and row.unique_parameters > 0 and row.seconds > 0
        elif row.tool in ("textpruner", "optimum"):  # not installed here: skipped, saying how to install them
            assert row.status == "skipped" and "make_venvs.sh" in row.note and row.test_f1 is None, row
        else:
            pytest.fail(f"unexpected row {row}")
    teacher_row = by_method["teacher (fp32, PyTorch)"]
    assert teacher_row.word_rows == 99
    pruned = [row for row in rows if row.tool == "ours" and row.setup == "vocabulary pruning"]
    assert all(row.word_rows < 99 for row in pruned)  # the demo text does not use every piece
    assert all(row.unique_parameters < teacher_row.unique_parameters for row in pruned)
    int8 = next(row for row in rows if row.setup == "int8" and row.tool == "ours")
    assert int8.model_path.endswith("model_int8.onnx") and int8.size_bytes < teacher_row.size_bytes

    lines = table.strip().splitlines()
    assert lines[0] == "| " + " | ".join(COLUMNS) + " |"
    assert len(lines) == 2 + len(rows)  # header, rule, one line per row
    assert all(line.count(" | ") == len(COLUMNS) - 1 for line in lines[2:])
    assert "100.00%" in lines[2] and "1.00x" in lines[2]  # the teacher against itself
    assert sum("**skipped**" in line for line in lines) == 4  # TextPruner x 2, its smallest model, optimum
    assert table_file.read_text() == table

    # one setup again alone: the other setups' rows (and the teacher's) come from the first run's rows.json
    again = run_peers.main([
        "--teacher", str(teacher), "--train_file", str(DEMO_DIR / "demo_train.txt"),
        "--validation_file", str(DEMO_DIR / "demo_validation.txt"), "--test_file", str(DEMO_DIR / "demo_test.txt"),
        "--peer_venvs", str(tmp_path / "no_venvs"), "--work_dir", str(tmp_path / "work"), "--setups", "structured",
        "--reuse_rows", str(rows_json)])
    assert again == table


def test_distillation_setup_trains_ours_on_the_saved_student_and_skips_a_missing_textbrewer(tmp_path):
    """--setups distill: one student folder (the recipes' student of the teacher), our DistillationTrainer trained
    and scored on it, TextBrewer's row skipped with the reason when it is not installed."""
    from benchmarks.peers import run_peers

    teacher = tmp_path / "teacher"
    make_tiny_bert(teacher)
    table = run_peers.main([
        "--teacher", str(teacher), "--train_file", str(DEMO_DIR / "demo_train.txt"),
        "--validation_file", str(DEMO_DIR / "demo_validation.txt"), "--test_file", str(DEMO_DIR / "demo_test.txt"),
        "--extra_text", str(DEMO_DIR / "demo_train.txt"), "--peer_venvs", str(tmp_path / "no_venvs"),
        "--work_dir", str(tmp_path / "work"), "--setups", "distill", "--distill_student_layers", "1",
        "--distill_epochs", "1", "--distill_max_train_samples", "32", "--rows_json", str(tmp_path / "rows.json")])
    rows = [row for row in load_rows(str(tmp_path / "rows.json")) if row.setup == "distillation"]
    assert [(row.tool, row.status) for row in rows] == [("ours", "measured"), ("textbrewer", "skipped")]
    ours = rows[0]
    assert ours.word_rows == 99 and 0 <= ours.test_f1 <= 1 and ours.seconds > 0 and "1-layer student" in ours.note
    assert (tmp_path / "work" / "student_init" / "config.json").is_file()
    assert json.loads((tmp_path / "work" / "student_init" / "config.json").read_text())["num_hidden_layers"] == 1
    assert "make_venvs.sh" in rows[1].note and "**skipped**" in table


def fake_venv(root, peer: str, python_body: str | None = None, install_failed: str | None = None):
    venv = root / peer
    (venv / "bin").mkdir(parents=True)
    if install_failed:
        (venv / "INSTALL_FAILED").write_text(install_failed)
    if python_body is not None:
        python = venv / "bin" / "python"
        python.write_text(f"#!{sys.executable}\n{python_body}\n")
        python.chmod(python.stat().st_mode | stat.S_IEXEC)
    return venv


def test_peer_runner_reports_each_way_a_peer_can_fail(tmp_path):
    missing = peer_venvs.run_peer_script("textpruner", "peer_textpruner.py", [], tmp_path)
    assert missing.status == "skipped" and str(tmp_path / "textpruner") in missing.reason

    fake_venv(tmp_path, "optimum", install_failed="WARNING: Location x is ignored\nERROR: No matching "
                                                  "distribution found for optimum-onnx==9\n")
    failed = peer_venvs.run_peer_script("optimum", "peer_optimum.py", [], tmp_path)
    assert failed.status == "failed" and "No matching distribution found for optimum-onnx==9" in failed.reason
    assert "WARNING: Location" not in failed.reason

    crash = "import sys; sys.stderr.write('Traceback...\\nValueError: boom\\n'); sys.exit(3)"
    fake_venv(tmp_path, "textbrewer", python_body=crash)
    crashed = peer_venvs.run_peer_script("textbrewer", "peer_optimum.py", [], tmp_path)
    assert crashed.status == "failed" and "exited 3" in crashed.reason and "ValueError: boom" in crashed.reason

    writes = ("import json, sys; json.dump({'ok': 1, 'offline': __import__('os').environ['HF_HUB_OFFLINE']}, "
              "open(sys.argv[sys.argv.index('--result') + 1], 'w'))")
    fake_venv(tmp_path, "textpruner", python_body=writes)
    (tmp_path / "textpruner" / "WORKAROUND.txt").write_text("ERROR: Failed building wheel for numpy\n")
    done = peer_venvs.run_peer_script("textpruner", "peer_textpruner.py", [], tmp_path)
    assert done.status == "measured" and done.result == {"ok": 1, "offline": "1"}
    assert "Failed building wheel for numpy" in done.install_note


def test_rows_need_a_reason_and_the_table_a_teacher(tmp_path):
    with pytest.raises(ValueError, match="note must say why"):
        PeerRow(setup="int8", method="x", tool="optimum", status="skipped")
    with pytest.raises(ValueError, match="status"):
        PeerRow(setup="int8", method="x", tool="optimum", status="maybe")
    with pytest.raises(ValueError, match="setup"):
        PeerRow(setup="quantization", method="x", tool="ours")
    rows = [PeerRow(setup="int8", method="ours int8", tool="ours", test_f1=0.5, test_sentences_per_second=10)]
    with pytest.raises(ValueError, match="one measured teacher row"):
        format_table(rows)
    rows.insert(0, PeerRow(setup="teacher", method="teacher", tool="ours", test_f1=0.8, test_sentences_per_second=5))
    save_rows(rows, str(tmp_path / "rows.json"))
    assert load_rows(str(tmp_path / "rows.json")) == rows
    table = format_table(rows)
    assert "| -30.00 | 62.50% | 10 | 2.00x |" in table
