"""benchmarks/sweep_sharing.py: the points and their commands, the CSV and figure, and one tiny point end to end."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import DEMO_DIR, make_tiny_bert

from benchmarks import sweep_sharing


def test_points_are_at_most_24_and_cover_the_grid():
    names = sweep_sharing.POINT_NAMES
    assert len(names) == len(set(names)) <= 24 and all(name.startswith("sweep_") for name in names)
    sharing = [p for p in sweep_sharing.POINTS if p.family == "sharing"]
    assert {p.embedding_size for p in sharing} == {64, 128} and {p.groups for p in sharing} == {1, 2, 3}
    assert {p.delta_rank for p in sharing} == {0, 8, 32}
    assert {p.delta_init for p in sharing if p.delta_rank} == {"svd", "zero"}
    assert {p.rank for p in sweep_sharing.POINTS if p.family == "low rank"} == {16, 32, 48}


def test_every_command_is_the_protocol_and_parses(tmp_path):
    import run_ner_compress
    import cli.checks
    import cli.arguments

    own, shared = sweep_sharing.parse_args(["--output_dir", str(tmp_path), "--train_file", "t.txt",
                                            "--row_args", "sweep_e64_g1_r0=--seed 7"])
    for point in sweep_sharing.POINTS:
        command = sweep_sharing.compare.row_command(point.row(), shared)
        model_args, compression, data_args, training_args, *_ = cli.arguments.parse_args(command)
        cli.checks.apply_defaults(model_args, compression, data_args, training_args)
        assert data_args.max_train_samples == 2000
        assert model_args.teacher_name_or_path == model_args.model_name_or_path == str(tmp_path / "teacher")
        assert (training_args.alpha, training_args.temperature) == (0.5, 2.0)
        assert compression.embedding_size == point.embedding_size
        if point.family == "sharing":
            assert (compression.num_shared_groups, compression.share_delta_rank) == (point.groups, point.delta_rank)
        else:
            assert model_args.model_type == "low_rank" and compression.rank == point.rank
        assert training_args.seed == (7 if point.name == "sweep_e64_g1_r0" else 42)
    with pytest.raises(SystemExit):
        sweep_sharing.parse_args(["--output_dir", str(tmp_path), "--points", "sweep_nothing"])


def test_csv_and_figure_from_finished_points(tmp_path):
    finished = {"teacher": (22_000_000, 0.87), "sweep_e64_g1_r0": (3_950_000, 0.84),
                "sweep_e64_g2_r8_zero": (7_000_000, 0.85), "sweep_lr_e64_r48": (4_200_000, 0.81)}
    for name, (params, f1) in finished.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(
            {"num_parameters": params, "validation_f1": f1, "test_f1": f1 - 0.04, "distilled": name != "teacher"}))
    (tmp_path / "best").mkdir()  # a folder that is not a sweep point stays out
    (tmp_path / "best" / "results.json").write_text(json.dumps({"num_parameters": 1, "validation_f1": 0.1}))
    rows = sweep_sharing.write_outputs(tmp_path)
    assert [r["method"] for r in rows] == list(finished)
    with open(tmp_path / "sweep.csv") as f:
        records = {r["method"]: r for r in csv.DictReader(f)}
    assert records["sweep_e64_g2_r8_zero"]["family"] == "sharing"
    assert (records["sweep_e64_g2_r8_zero"]["groups"], records["sweep_e64_g2_r8_zero"]["delta_init"]) == ("2", "zero")
    assert records["sweep_lr_e64_r48"]["family"] == "low rank" and records["sweep_lr_e64_r48"]["rank"] == "48"
    assert round(float(records["sweep_e64_g1_r0"]["compression_ratio"]), 3) == round(22 / 3.95, 3)
    assert (tmp_path / "sweep.png").stat().st_size > 0


def test_a_tiny_point_end_to_end_then_skipped(tmp_path):
    make_tiny_bert(tmp_path / "teacher")
    (tmp_path / "teacher" / "results.json").write_text(json.dumps({"num_parameters": 33555, "validation_f1": 0.1,
                                                                    "test_f1": 0.1}))
    from conftest import make_tiny_tokenizer

    make_tiny_tokenizer(tmp_path / "teacher")
    point = "sweep_e64_g2_r8_svd"  # on the tiny BERT: E=16, rank-4 corrections, two groups of its two layers
    argv = ["--output_dir", str(tmp_path / "sweep"), "--teacher_dir", str(tmp_path / "teacher"), "--points", point,
            "--train_file", str(DEMO_DIR / "demo_train.txt"), "--validation_file",
            str(DEMO_DIR / "demo_validation.txt"), "--test_file", str(DEMO_DIR / "demo_test.txt"),
            "--max_train_samples", "16", "--max_eval_samples", "8", "--max_predict_samples", "8", "--epochs", "1",
            "--batch_size", "8", "--row_args",
            f"{point}=--embedding_size 16 --share_delta_rank 4 --share_init layer:0"]
    first = sweep_sharing.main(argv)
    assert first["trained"] == [point] and not first["failed"]
    results = json.loads((tmp_path / "sweep" / point / "results.json").read_text())
    assert results["compression"]["share_delta_rank"] == 4 and results["compression"]["num_shared_groups"] == 2
    assert sweep_sharing.main(argv)["skipped"] == [point]
    assert (tmp_path / "sweep" / "sweep.png").is_file()
