"""serve/, the torch-free distribution of the runtime package: built from the checkout's own files (no links), its
wheel's requirements, files and command, the full package requiring it and shipping none of its modules, and the
installed wheel, apart from the checkout and with torch and transformers unimportable, predicting what the checkout
predicts."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, export_with_tokenizer, make_tiny_bert, require_onnxruntime, run_without_torch
from packaging.requirements import Requirement

from cli.quickstart import DEMO_LINES
from runtime.predict import PredictArguments, predict_file

pytestmark = pytest.mark.integration  # pytest.ini: still run in CI; -m "not integration" leaves it out

require_onnxruntime()

SERVE = REPO / "serve"
# The torch-free modules: the checkout's runtime package and the command's script; and the page of --serve
SERVE_MODULES = sorted(["run_ner_predict.py"] + [path.relative_to(REPO).as_posix()
                                                 for path in (REPO / "runtime").glob("*.py")])
SERVE_DATA = sorted(path.relative_to(REPO).as_posix() for path in (REPO / "runtime" / "static").glob("*"))
TRAINING_STACK = {"torch", "transformers", "datasets", "accelerate", "evaluate", "safetensors", "huggingface-hub"}


def pip(*args) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *map(str, args), "--no-index", "--no-deps", "--quiet",
                           "--disable-pip-version-check"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def copy_of_serve(root: Path) -> Path:
    """serve/ and the modules its pyproject maps from the folder above (package-dir ".."), at the same places: a
    build writes build/ and .egg-info beside them, and these then stay out of the checkout (where a stale build/
    could also reach the wheel)."""
    shutil.copytree(SERVE, root / "serve", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    for name in SERVE_MODULES + SERVE_DATA:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, root / name)
    return root / "serve"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serve_build")
    pip("wheel", "--no-build-isolation", "-w", root / "dist", copy_of_serve(root / "checkout"))
    (path,) = (root / "dist").glob("*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("serve_site")
    pip("install", "--target", target, wheel)
    return target


def test_serve_holds_no_links_and_no_modules():
    """The real files stay at the top of the checkout; serve/ is only the distribution's description."""
    assert [path for path in SERVE.rglob("*") if path.is_symlink()] == []
    assert [path for path in SERVE.rglob("*.py") if "build" not in path.relative_to(SERVE).parts] == []


def test_wheel_holds_the_runtime_and_the_script_as_regular_files_equal_to_the_checkouts(wheel):
    with zipfile.ZipFile(wheel) as archive:
        modules = [info for info in archive.infolist() if ".dist-info/" not in info.filename]
        assert sorted(info.filename for info in modules) == sorted(SERVE_MODULES + SERVE_DATA)
        assert {"runtime/static/index.html", "runtime/static/app.js", "runtime/static/style.css"} <= set(SERVE_DATA)
        for info in modules:
            assert stat.S_ISREG(info.external_attr >> 16), f"{info.filename} is not a regular file in the wheel"
            assert archive.read(info) == (REPO / info.filename).read_bytes()


def setup_py_arguments() -> dict:
    """The literal keyword arguments of setup.py's ``setup(...)`` call, read without running it (``packages``:
    the ``include`` list given to find_packages)."""
    call = next(node for node in ast.walk(ast.parse((REPO / "setup.py").read_text(encoding="utf-8")))
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup")
    arguments = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords
                 if keyword.arg in ("version", "install_requires", "extras_require", "py_modules", "entry_points")}
    (packages,) = [keyword.value for keyword in call.keywords if keyword.arg == "packages"]
    arguments["packages"] = ast.literal_eval(next(k.value for k in packages.keywords if k.arg == "include"))
    return arguments


def test_the_full_package_requires_serve_at_its_version_and_ships_none_of_its_modules():
    setup_py = setup_py_arguments()
    assert f"bert-ner-compress-serve=={setup_py['version']}" in setup_py["install_requires"]
    serve_tops = {name.split("/")[0].removesuffix(".py") for name in SERVE_MODULES}
    assert serve_tops == {"runtime", "run_ner_predict"}
    assert not serve_tops & (set(setup_py["packages"]) | set(setup_py["py_modules"]))
    assert not any(script.startswith("run_ner_predict=") for script in setup_py["entry_points"]["console_scripts"])


def test_wheel_requires_the_runtime_only_at_setup_pys_version_and_ranges(installed):
    (dist,) = importlib.metadata.distributions(path=[str(installed)])
    setup_py = setup_py_arguments()
    assert dist.metadata["Name"] == "bert-ner-compress-serve" and dist.version == setup_py["version"]
    requirements = [Requirement(line) for line in dist.requires]
    assert {r.name for r in requirements if r.marker is None} == {"onnxruntime", "tokenizers", "numpy"}
    assert {r.name: str(r.marker) for r in requirements if r.marker} == {
        "seqeval": 'extra == "scores"', "tqdm": 'extra == "progress"', "fastapi": 'extra == "http"',
        "uvicorn": 'extra == "http"'}
    assert not TRAINING_STACK & {r.name for r in requirements}
    # a package that setup.py requires too (onnxruntime, seqeval) takes the same range there
    setup_ranges = {r.name: r.specifier for r in map(Requirement, setup_py["install_requires"] + [
        spec for specs in setup_py["extras_require"].values() for spec in specs])}
    for requirement in requirements:
        if requirement.name in setup_ranges:
            assert requirement.specifier == setup_ranges[requirement.name], requirement.name
    assert {(e.name, e.value) for e in dist.entry_points.select(group="console_scripts")} == {
        ("run_ner_predict", "run_ner_predict:cli")}


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("serve_model")
    make_tiny_bert(root / "tiny", seed=3)
    return export_with_tokenizer(root / "tiny", root / "tiny" / "onnx", int8=True)


def test_installed_wheel_predicts_as_the_checkout_without_torch(installed, int8_model, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(DEMO_LINES) + "\n", encoding="utf-8")
    reference = tmp_path / "reference.jsonl"
    predict_file(PredictArguments(model=int8_model, input=str(source), output=str(reference)))
    # onnxruntime, tokenizers and numpy from this environment's site-packages, where torch is too: blocked
    runtime = tuple(sorted({Path(importlib.util.find_spec(name).origin).parents[1]
                            for name in ("onnxruntime", "tokenizers", "numpy")}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run_without_torch(["--model", int8_model, "--input", source], cwd=elsewhere, installed=installed,
                             runtime=runtime)
    assert done.returncode == 0, done.stderr
    assert done.stdout == reference.read_text(encoding="utf-8")
    assert '"entities": [{' in done.stdout  # the model does find entities, so the equality means something
