"""results.json as a typed record (trainers.results.RunResults): round trip, every committed file, old versions."""

from __future__ import annotations

import json
import stat

import pytest

from conftest import COMMITTED, REPO
from trainers.results import (
    SCHEMA_VERSION,
    CompressionRecord,
    Deployment,
    Distillation,
    RunResults,
    TransferSet,
    redact_command,
)




def full_results() -> RunResults:
    """Every section filled, as a distilled run with a transfer set and deployment variants records it."""
    return RunResults(
        num_parameters=4_000_000, model_type="shared_ffn", model_class="SharedBertForTokenClassification",
        source_model="bert-base-cased", source_num_parameters=108_000_000, compression_ratio=27.0,
        compression=CompressionRecord(methods=["shared_attention_ffn", "factorized_embeddings"], embedding_size=64,
                                        share_mode="attention_ffn", share_init="layer:1", num_shared_groups=1,
                                        share_delta_rank=0, share_delta_init="zero"),
        distilled=True, epochs_trained=2.0, train_runtime_s=61.5, dataset_hub_id="conll2003",
        command="run_ner_compress.py --model_type shared_ffn --hub_token <redacted>",
        metrics={"test_f1": 0.81, "test_PER_f1": 0.9, "test_samples": 3453, "validation_f1": 0.84},
        distillation=Distillation("teacher", 108_000_000, 0.9, 0.9, temperature=2.0, alpha=0.5,
                                  hidden_loss_weight=1.0, labelled_sentences_seen=28082),
        transfer=TransferSet(files=["reuters.txt.gz"], sentences=40000, sentences_read=40000, min_entities=0,
                             ratio=1.0, kl_weight=1.0, targets="cached", per_epoch=14041, cache_file=None,
                             sentences_seen=25651),
        deployment=Deployment(fp32_size_bytes=16_000_000,
                              variants={"fp32": {"path": "out", "size_bytes": 16_000_000, "size_ratio": 1.0}}),
        arguments={"data": {"max_seq_length": 256}, "training": {"seed": 42}},
        extra={"written_by_a_newer_tool": [1, 2]},
    )


def test_round_trip_through_json(tmp_path):
    results = full_results()
    path = tmp_path / "results.json"
    results.to_json(str(path))
    assert RunResults.load(str(path)) == results
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 and not list(tmp_path.glob("*.tmp"))
    written = json.loads(path.read_text())
    # The layout readers have always used: flat keys, compression and arguments nested.
    assert written["schema_version"] == SCHEMA_VERSION
    assert (written["alpha"], written["transfer_files"], written["test_f1"]) == (0.5, ["reuters.txt.gz"], 0.81)
    assert written["variants"]["fp32"]["size_bytes"] == 16_000_000
    assert written["compression"]["share_mode"] == "attention_ffn" and "rank" not in written["compression"]
    assert written["written_by_a_newer_tool"] == [1, 2]  # an unknown key survives a rewrite


def test_every_committed_results_file_loads_and_round_trips():
    assert len(COMMITTED) >= 30
    for path in COMMITTED:
        original = json.loads(path.read_text())
        results = RunResults.load(str(path))
        assert RunResults.from_dict(json.loads(json.dumps(results.to_dict()))) == results, path
        assert results.extra == {}, f"{path}: keys the schema does not know: {sorted(results.extra)}"
        assert results.metrics["test_f1"] == original["test_f1"]
        assert results.compression_ratio == original["compression_ratio"]
        # compression_ratio divides the reference by this model: the teacher when there is one, else the source
        assert round(results.reference_num_parameters / results.num_parameters, 3) == results.compression_ratio
        assert results.distilled == (results.distillation is not None)


def test_version_1_teacher_count_becomes_the_source_count():
    by_name = {path.relative_to(REPO / "results").as_posix(): path for path in COMMITTED}
    plain = RunResults.load(str(by_name["history/run1/low_rank/results.json"]))  # no teacher: v1 wrote the source's count
    original = json.loads(by_name["history/run1/low_rank/results.json"].read_text())
    assert plain.source_num_parameters == original["teacher_num_parameters"] and plain.distillation is None
    assert "teacher_num_parameters" not in plain.to_dict()
    distilled = RunResults.load(str(by_name["history/run1/low_rank_kd/results.json"]))  # the teacher's count overwrote it
    assert distilled.distillation.teacher_num_parameters == json.loads(
        by_name["history/run1/low_rank_kd/results.json"].read_text())["teacher_num_parameters"]
    assert distilled.source_num_parameters is None
    student = RunResults.load(str(by_name["history/run1/student/results.json"]))  # built from its teacher: one count
    assert student.source_num_parameters == student.distillation.teacher_num_parameters


def test_a_missing_required_field_is_one_clear_error(tmp_path):
    old = json.loads(COMMITTED[0].read_text())
    del old["num_parameters"]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(old))
    with pytest.raises(ValueError, match=rf"^{path}: the field 'num_parameters' is missing"):
        RunResults.load(str(path))


@pytest.mark.parametrize("content, message", [
    ('{"num_parameters": "many"}', "'num_parameters' is 'many', but it should be int"),
    ('{"num_parameters": 5, "distilled": "yes"}', "'distilled' is 'yes', but it should be bool"),
    ('{"num_parameters": 5, "compression": {"rank": 1.5}}', "compression: 'rank' is 1.5, but it should be int"),
    ('{"num_parameters": 5, "alpha": "half"}', "'alpha' is 'half', but it should be float"),
    ('{"num_parameters": 5, "schema_version": 99}', "schema_version 99 is newer than this code reads"),
    ("[1, 2]", "expected a JSON object, got list"),
    ("{oops", "not valid JSON"),
])
def test_bad_files_name_the_file_and_the_field(tmp_path, content, message):
    path = tmp_path / "results.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=f"^{path}: .*{message}" if "JSON" not in message else message):
        RunResults.load(str(path))


def test_minimal_and_unknown_keys_read_as_defaults_and_extra():
    results = RunResults.from_dict({"num_parameters": 10, "test_f1": 0.5, "future_key": {"a": 1},
                                    "compression": {"methods": [], "future_setting": 3}})
    assert results.test_f1 == 0.5 and results.model_type is None and results.distillation is None
    assert results.extra == {"future_key": {"a": 1}} and results.compression.extra == {"future_setting": 3}
    assert results.to_dict()["compression"]["future_setting"] == 3


def test_scores_and_retention_follow_the_test_split():
    results = RunResults(num_parameters=10, distillation=Distillation("t", 100, teacher_test_f1=0.8))
    results.add_scores("validation", {"validation_f1": 0.7, "validation_runtime": 1.0, "epoch": 2.0})
    assert results.distillation.f1_retention is None and "epoch" not in results.metrics
    results.add_scores("test", {"test_f1": 0.6, "test_runtime": 2.5}, samples=8)
    assert (results.metrics["test_runtime_s"], results.metrics["test_samples"]) == (2.5, 8)
    assert "test_runtime" not in results.metrics and results.distillation.f1_retention == 0.75
    assert results.to_dict()["f1_retention"] == 0.75


def test_a_teacher_without_test_f1_writes_null_retention():
    written = RunResults(num_parameters=10, distillation=Distillation("t", 100)).to_dict()
    assert written["f1_retention"] is None and written["teacher_test_f1"] is None  # present, null when undefined


def test_redact_command_hides_the_token_in_both_spellings():
    assert redact_command("x --hub_token hf_abc --hub_token=hf_def y") == "x --hub_token <redacted> --hub_token=<redacted> y"


def test_the_attention_loss_weights_are_recorded_and_carded_only_where_used():
    from hub_cards.card import _hyperparameters

    used = RunResults(num_parameters=10, distilled=True, distillation=Distillation(
        "t", 100, temperature=2.0, alpha=0.5, hidden_loss_weight=1.0, attention_loss_weight=2.0,
        value_relation_weight=0.0))
    written = used.to_dict()
    assert written["attention_loss_weight"] == 2.0 and written["value_relation_weight"] == 0.0
    rows = _hyperparameters(RunResults.from_dict(written))
    assert rows["attention_loss_weight"] == 2.0 and "value_relation_weight" not in rows
