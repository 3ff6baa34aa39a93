"""Distilling from a compressed teacher (issue 27): the teacher-assistant chain BERT → shared_ffn → a smaller
shared_ffn, each step a short ``run_ner_compress.main`` run with a transfer file, and the transfer cache keyed by
each teacher.

``cli.steps.prepare_teacher`` loads its teacher with ``trainers.distillation.load_teacher``, which takes a
BERT or a compressed model of this project.

Every model is a tiny BERT built in code (vocab 99, hidden 32, 2 layers); nothing downloads.
"""

from __future__ import annotations

import json
import os

import pytest
import torch
from conftest import DEMO_DIR, LABELS, make_tiny_bert, make_tiny_tokenizer, tiny_bert_config
from safetensors import safe_open
from transformers import AutoTokenizer

import modeling
import run_ner_compress
from trainers.distillation import load_teacher
from trainers.transfer import cache_key


pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # conftest: torch on one thread


@pytest.fixture
def transfer_file(tmp_path):
    path = tmp_path / "transfer.txt"
    path.write_text("The bank said on Monday it rose.\nJohn met the team at the lake port.\n"
                    "Shares rose 5 pct in talks after the cup.\n")
    return path


def chain_args(bert_dir, teacher_dir, output_dir, transfer_file, cache_dir, *extra) -> list[str]:
    """A few steps of a model built from ``bert_dir`` (always the BERT), distilled from ``teacher_dir``."""
    return [
        "--model_name_or_path", str(bert_dir), "--teacher_name_or_path", str(teacher_dir),
        "--output_dir", str(output_dir),
        "--train_file", str(DEMO_DIR / "demo_train.txt"), "--validation_file", str(DEMO_DIR / "demo_validation.txt"),
        "--test_file", str(DEMO_DIR / "demo_test.txt"), "--max_train_samples", "8", "--max_eval_samples", "4",
        "--max_predict_samples", "4", "--max_seq_length", "64", "--per_device_train_batch_size", "4",
        "--max_steps", "2", "--learning_rate", "1e-3", "--use_cpu", "--report_to", "none", "--save_strategy", "no",
        "--disable_tqdm", "true", "--logging_steps", "1",
        "--transfer_file", str(transfer_file), "--transfer_cache_dir", str(cache_dir), *extra,
    ]


def test_teacher_assistant_chain_with_a_transfer_file(tiny_bert_dir, tmp_path, transfer_file, capsys):
    cache_dir = tmp_path / "cache"
    assistant_dir, student_dir = tmp_path / "assistant", tmp_path / "student"
    assistant = run_ner_compress.main(chain_args(tiny_bert_dir, tiny_bert_dir, assistant_dir, transfer_file,
                                                 cache_dir, "--model_type", "shared_ffn"))
    capsys.readouterr()
    student = run_ner_compress.main(chain_args(tiny_bert_dir, assistant_dir, student_dir, transfer_file, cache_dir,
                                               "--model_type", "shared_ffn", "--embedding_size", "16",
                                               "--attention_loss_weight", "1", "--value_relation_weight", "0.5"))
    printed = capsys.readouterr().out

    written = json.loads((student_dir / "results.json").read_text())
    assert written["distilled"] is True and written["teacher_path"] == str(assistant_dir)
    assert written["teacher_num_parameters"] == assistant["num_parameters"]
    assert student["num_parameters"] < assistant["num_parameters"] < assistant["teacher_num_parameters"]
    assert "'loss_attention'" in printed and "'loss_value_relation'" in printed  # the compressed teacher's too

    # Two teachers, two cache entries, each keyed by its own teacher's weights.
    first, second = assistant["transfer_cache_file"], student["transfer_cache_file"]
    assert first != second and os.path.isfile(first) and os.path.isfile(second)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    for teacher_dir, path in ((tiny_bert_dir, first), (assistant_dir, second)):
        teacher = load_teacher(str(teacher_dir), "--teacher_name_or_path", LABELS)
        with safe_open(path, "pt") as f:
            assert f.metadata()["key"] == cache_key(teacher, tokenizer, [str(transfer_file)], 64, None)


def test_the_script_itself_loads_a_compressed_teacher(tiny_bert_dir, tmp_path, transfer_file):
    compressed = modeling.compress(make_tiny_bert(), "shared_ffn")
    compressed.save_pretrained(tmp_path / "assistant")
    make_tiny_tokenizer(tmp_path / "assistant")
    run_ner_compress.main(chain_args(tiny_bert_dir, tmp_path / "assistant", tmp_path / "out", transfer_file,
                                     tmp_path / "cache", "--model_type", "low_rank", "--rank", "4"))


# ----------------------------------------------------------------------------------------------------------------
# load_teacher


@pytest.mark.parametrize("model_type, settings", [("shared_ffn", {}), ("low_rank", dict(rank=4)),
                                                  ("factorized", dict(embedding_size=16))])
def test_a_saved_compressed_model_loads_as_a_teacher(tmp_path, model_type, settings):
    model = modeling.compress(make_tiny_bert(seed=3), model_type, **settings).eval()
    model.save_pretrained(tmp_path / model_type)
    teacher = load_teacher(str(tmp_path / model_type), "--teacher_name_or_path", LABELS).eval()
    assert type(teacher) is type(model) and teacher.accepts_loss_kwargs is False
    input_ids = torch.randint(5, 99, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(teacher(input_ids=input_ids).logits, model(input_ids=input_ids).logits)


def test_a_bert_teacher_loads_as_before(tiny_bert_dir):
    teacher = load_teacher(str(tiny_bert_dir), "--teacher_name_or_path", list(reversed(LABELS)))
    assert type(teacher).__name__ == "BertForTokenClassification"
    assert [teacher.config.id2label[i] for i in range(len(LABELS))] == list(reversed(LABELS))  # reordered as ever


def test_a_compressed_teacher_with_labels_in_another_order_is_refused(tmp_path):
    modeling.compress(make_tiny_bert(), "shared_ffn").save_pretrained(tmp_path / "shared")
    with pytest.raises(ValueError, match=r"^--teacher_name_or_path .*shared: its labels \['O', 'B-LOC'.* this order$"):
        load_teacher(str(tmp_path / "shared"), "--teacher_name_or_path", list(reversed(LABELS)))


def test_a_teacher_of_another_model_type_is_refused_naming_the_flag(tmp_path):
    from transformers import DistilBertConfig, DistilBertForTokenClassification

    config = DistilBertConfig(vocab_size=99, dim=32, n_layers=1, n_heads=4, hidden_dim=37, num_labels=len(LABELS),
                              id2label=tiny_bert_config().id2label, label2id=tiny_bert_config().label2id)
    DistilBertForTokenClassification(config).save_pretrained(tmp_path / "distilbert")
    with pytest.raises(ValueError, match=r"^--teacher_name_or_path .*distilbert: model_type is 'distilbert', but a "
                                         r"teacher must be a BERT or one of compressed_bert, "):
        load_teacher(str(tmp_path / "distilbert"), "--teacher_name_or_path", LABELS)
