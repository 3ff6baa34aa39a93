"""benchmarks/param_count.py at tiny size: every row present, the ratios where they should be, meta counts real."""

from __future__ import annotations

import pytest

from benchmarks.param_count import ROW_NAMES, markdown_table, param_rows

TINY_SHAPE = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
TINY_SETTINGS = dict(embedding_size=16, rank=4, rank_energy=0.5, student_layers=1)


@pytest.fixture(scope="module")
def rows():
    return param_rows(TINY_SHAPE, **TINY_SETTINGS)


def test_every_row_is_present_and_compresses(rows):
    assert [row["model"] for row in rows] == list(ROW_NAMES)
    by_name = {row["model"]: row for row in rows}
    assert by_name["teacher"]["ratio"] == 1
    for name in ROW_NAMES[1:]:
        assert by_name[name]["ratio"] > 1, name
        assert by_name[name]["parameters"] < by_name["teacher"]["parameters"], name
    # sharing the whole layer saves more than sharing attention; adding E saves more again
    assert by_name["shared_ffn + factorized"]["parameters"] < by_name["shared_ffn"]["parameters"]
    assert by_name["shared_ffn"]["parameters"] < by_name["shared_attn"]["parameters"]


def test_meta_counts_are_the_real_models_counts(rows):
    assert param_rows(TINY_SHAPE, device="cpu", **TINY_SETTINGS) == rows


def test_markdown_table_has_a_line_per_model_and_a_dash_where_a_shape_lacks_a_row(rows):
    without_energy = param_rows(TINY_SHAPE, **{**TINY_SETTINGS, "rank_energy": None})
    table = markdown_table({"tiny": rows, "tiny without energy": without_energy}).splitlines()
    assert len(table) == 2 + len(ROW_NAMES)
    energy_line = next(line for line in table if line.startswith("| low_rank (energy) |"))
    assert energy_line.count("—") == 2
    assert all(line.count("|") == table[0].count("|") for line in table)
