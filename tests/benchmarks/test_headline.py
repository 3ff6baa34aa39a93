"""benchmarks/headline.py: the teacher and the named recipes on a tiny BERT and the demo sample, end to end (trained,
exported to int8, timed, tabulated, the README's marked table replaced), then rebuilt from the folders alone."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import DEMO_DIR, REPO, make_tiny_bert

from benchmarks import headline

# The tiny BERT (hidden 32, 2 layers) cannot take the recipes' E=64 / E=32 or rank 120, nor layer 1 of a one-layer
# group.
TINY = {"best_shared_tr": "--embedding_size 16",
        "best10_shared_pos_hlr_tr": "--embedding_size 8 --rank 4 --share_init layer:0"}


def headline_command(tmp_path, *extra: str) -> list[str]:
    command = [
        sys.executable, str(REPO / "benchmarks" / "headline.py"), "--output_dir", str(tmp_path / "hl"),
        "--model_name_or_path", str(tmp_path / "tiny"), "--rounds", "1",
        "--train_file", str(DEMO_DIR / "demo_train.txt"), "--validation_file", str(DEMO_DIR / "demo_validation.txt"),
        "--test_file", str(DEMO_DIR / "demo_test.txt"), "--transfer_file", str(tmp_path / "unlabelled.txt"),
        "--max_train_samples", "32", "--max_eval_samples", "16", "--max_predict_samples", "16",
        "--teacher_epochs", "1", "--teacher_learning_rate", "1e-2", "--readme", str(tmp_path / "README.md"),
        "--extra", "--max_steps 2 --eval_strategy no --save_strategy no --load_best_model_at_end False",
        *extra,
    ]
    for row, flags in TINY.items():
        command += ["--row_args", f"{row}={flags}"]
    return command


def test_the_rows_are_the_teacher_and_every_named_recipe():
    assert headline.HEADLINE_ROWS == ("teacher", "best_shared_tr", "best10_shared_pos_hlr_tr")
    assert [headline.row_label(name) for name in headline.HEADLINE_ROWS] == [
        "teacher", "`--recipe 5x` (`best_shared_tr`)", "`--recipe 10x` (`best10_shared_pos_hlr_tr`)"]


def test_headline_end_to_end_then_table_only(tmp_path):
    make_tiny_bert(tmp_path / "tiny")
    (tmp_path / "unlabelled.txt").write_text("Peter Blackburn visited Brussels .\nThe EU rejects German calls .\n" * 8)
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{headline.START}\nold table\n{headline.END}\nafter\n")
    done = subprocess.run(headline_command(tmp_path), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    table = (tmp_path / "hl" / "HEADLINE.md").read_text()
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0] for line in lines[1:]] == [
        "| teacher", "| `--recipe 5x` (`best_shared_tr`)", "| `--recipe 10x` (`best10_shared_pos_hlr_tr`)"]
    teacher, five, ten = (line.split(" | ") for line in lines[1:])
    assert teacher[2] == "1.00×" and float(five[2].rstrip("×")) > 1 and float(ten[2].rstrip("×")) > 1
    assert all(cells[3].endswith(" MB") for cells in (teacher, five, ten))  # each row's own int8 file
    assert all(float(cells[4].rstrip("×")) > 0 for cells in (teacher, five, ten))  # timed, not copied
    text = readme.read_text()
    assert "old table" not in text and text.startswith("# x\n\nbefore\n") and text.endswith(f"{headline.END}\nafter\n")
    assert lines[1] in text

    # the folders alone give the table again (the same F1 and sizes; the speed is timed again)
    readme.write_text(f"{headline.START}\n{headline.END}\n")
    again = subprocess.run([*headline_command(tmp_path), "--table_only"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    rebuilt = [line.split(" | ") for line in readme.read_text().splitlines() if line.startswith("| ")][1:]
    assert [cells[:4] + cells[5:8] for cells in rebuilt] == [cells[:4] + cells[5:8] for cells in (teacher, five, ten)]


@pytest.mark.parametrize("flags, message", [
    (["--rows", "teacher"], "--rows is set by this script"),
    (["--rounds", "0"], "--rounds 0 must be at least 1"),
    (["--speed_file", "nowhere.txt"], "--speed_file nowhere.txt: no such file"),
    (["--readme", "nowhere.md"], "--readme nowhere.md: No such file or directory"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, flags, message):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "headline.py"), "--output_dir", str(tmp_path),
                           "--test_file", str(DEMO_DIR / "demo_test.txt"), "--table_only", *flags],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].startswith("headline.py: error: ") and message in done.stderr


def test_table_only_without_rows_names_the_missing_row(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "headline.py"), "--output_dir", str(tmp_path),
                           "--test_file", str(DEMO_DIR / "demo_test.txt"), "--table_only"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    missing = tmp_path / "teacher" / "results.json"
    assert done.stderr.splitlines()[-1] == (f"headline.py: error: --table_only: {missing} is missing (the row teacher "
                                            "has not finished; run without --table_only)")
