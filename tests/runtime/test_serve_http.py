"""run_ner_predict --serve (runtime/serve.py) with FastAPI's TestClient on a tiny model: /predict gives the records
of the file command, /health describes the model, the page is served, every bad input is a JSON 4xx after which the
server still answers, a failure in the model is a 500, and batching across callers changes nothing in the answers.

The app runs the fp32 ONNX file: there a text's record does not depend on the texts that share its model call. The
int8 file is dynamically quantized, with activation scales taken over the whole call: a text's scores (and, for
this random model, its labels) move with its neighbours, in the file command as in the server; so it is compared
with the file command batched alike."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import REPO, export_with_tokenizer, make_tiny_bert, require_onnxruntime

pytest.importorskip("fastapi", reason="the http extra: pip install -e './serve[http]'")
from fastapi.testclient import TestClient  # noqa: E402

import run_ner_predict  # noqa: E402
from runtime.predict import PredictArguments, predict_file  # noqa: E402
from runtime.serve import MicroBatcher, ServeLimits, TextTagger, build_app, create_app, model_info  # noqa: E402

require_onnxruntime()

LINES = ["Mara Velden joined Norvane Bank in Port Aldane last Monday .",
         "Shares in Helix Motors rose after Kofi Mensa spoke in Carrow .",
         "Crème  brûlée\tà 😀 Zoë   naïve.  Ünïcode",
         "",
         " ".join(["Mara Velden met Kofi Mensa of Norvane Bank in Carrow ."] * 30)]  # ~1,000 subwords: windowed
RESULTS = {"test_f1": 0.5, "num_parameters": 12345,
           "variants": {"onnx": {"test_f1": 0.375}, "onnx_int8": {"test_f1": 0.25}}}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A run folder as run_ner_compress leaves it: the model, onnx/model_int8.onnx and results.json."""
    run = tmp_path_factory.mktemp("serve") / "run"
    make_tiny_bert(run, seed=3)
    (run / "results.json").write_text(json.dumps(RESULTS), encoding="utf-8")
    int8 = export_with_tokenizer(run, run / "onnx", int8=True)
    return {"folder": run, "fp32": str(run / "onnx" / "model.onnx"), "int8": int8}


def command_records(model: str, lines: list[str], folder) -> list[dict]:
    """What run_ner_predict writes for ``lines`` in a file, a record per line."""
    source, target = folder / "in.txt", folder / "out.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    predict_file(PredictArguments(model=str(model), input=str(source), output=str(target)), log=open(os.devnull, "w"))
    return [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def file_records(model, tmp_path_factory):
    return command_records(model["fp32"], LINES, tmp_path_factory.mktemp("file"))


@pytest.fixture(scope="module")
def app(model):
    return build_app(PredictArguments(model=model["fp32"], serve=True))


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as client:
        yield client


def test_predict_gives_the_file_commands_records(client, file_records):
    assert len(file_records) == len(LINES) and any(record["entities"] for record in file_records)
    assert [client.post("/predict", json={"text": line}).json() for line in LINES] == file_records
    response = client.post("/predict", json={"texts": LINES})
    assert response.status_code == 200 and response.json() == file_records


def test_int8_gives_the_file_commands_records_batched_alike(model, tmp_path):
    with TestClient(build_app(PredictArguments(model=model["int8"], serve=True))) as client:
        assert client.post("/predict", json={"texts": LINES}).json() == command_records(model["int8"], LINES, tmp_path)
        for line in LINES[:2]:  # one text alone: the command given a file of that line alone
            assert [client.post("/predict", json={"text": line}).json()] == command_records(model["int8"], [line],
                                                                                             tmp_path)
        assert (client.get("/health").json()["test_f1"], client.get("/health").json()["test_f1_of"]) == (
            0.25, "onnx_int8")


def test_health_describes_the_model_and_its_run(client, model):
    health = client.get("/health").json()
    assert health["model"] == model["fp32"] and health["kind"] == "onnx"
    assert health["labels"][0] == "O" and health["entity_types"] == ["LOC", "MISC", "ORG", "PER"]
    assert health["size_bytes"] == (model["folder"] / "onnx" / "model.onnx").stat().st_size
    assert (health["test_f1"], health["test_f1_of"], health["num_parameters"]) == (0.375, "onnx", 12345)
    assert health["results"] == str(model["folder"] / "results.json")
    assert health["batching"] == {"window_ms": 5, "max_texts": 32}


def test_health_of_a_pytorch_folder_takes_the_runs_f1():
    info = model_info(str(REPO / "no-such-folder"), {0: "O", 1: "B-X"})
    assert (info["kind"], info["size_bytes"], info["test_f1"], info["entity_types"]) == ("pytorch", None, None, ["X"])


def test_pytorch_folder_serves_the_same_as_its_file_command(model, tmp_path):
    with TestClient(build_app(PredictArguments(model=str(model["folder"]), serve=True))) as client:
        health = client.get("/health").json()
        assert (health["kind"], health["test_f1"], health["test_f1_of"]) == ("pytorch", 0.5, "model")
        assert health["size_bytes"] == (model["folder"] / "model.safetensors").stat().st_size
        answer = client.post("/predict", json={"texts": LINES[:2]}).json()
    assert answer == command_records(model["folder"], LINES[:2], tmp_path)


def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for path in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        assert client.get(path).status_code == 200, path
    assert "http" not in re.sub(r'name="viewport"[^>]*', "", page.text).replace("http-equiv", "")  # no CDN
    assert client.get("/openapi.json").json()["paths"]["/predict"]["post"]["requestBody"]


JSON = {"content-type": "application/json"}
BAD_INPUTS = {  # name: (request keyword arguments, status, a piece of the error message)
    "malformed JSON": (dict(content=b'{"text": "a', headers=JSON), 400, "malformed JSON"),
    "binary bytes": (dict(content=b'{"text": "\xff\xfe"}', headers=JSON), 400, "not UTF-8"),
    "wrong content type": (dict(content=b'{"text": "a"}', headers={"content-type": "text/plain"}), 415,
                           "application/json"),
    "no content type": (dict(content=b'{"text": "a"}'), 415, "application/json"),
    "other charset": (dict(content=b'{"text": "a"}', headers={"content-type": "application/json; charset=latin-1"}),
                      415, "UTF-8"),
    "missing text": (dict(json={}), 422, 'one of "text" and "texts"'),
    "both text and texts": (dict(json={"text": "a", "texts": ["b"]}), 422, 'one of "text" and "texts"'),
    "unknown field": (dict(json={"txt": "a"}), 422, "unknown field 'txt'"),
    "not an object": (dict(json=["a"]), 422, "the body is an array"),
    "non-string text": (dict(json={"text": 3}), 422, '"text" is a number'),
    "null text": (dict(json={"text": None}), 422, '"text" is null'),
    "texts not a list": (dict(json={"texts": "a"}), 422, '"texts" is a string'),
    "non-string in texts": (dict(json={"texts": ["a", {"b": 1}]}), 422, '"texts"[1] is an object'),
    "empty list": (dict(json={"texts": []}), 422, "empty array"),
    "lone surrogate": (dict(content=b'{"text": "a \\ud800 b"}', headers=JSON), 422, "lone surrogate"),
    "text too long": (dict(json={"text": "a" * 101}), 413, "--max_text_chars"),
    "body over the limit": (dict(json={"texts": ["word " * 40] * 10}), 413, "--max_body_bytes"),
    "body over the limit, no length": (dict(content=iter([b'{"texts": ["' + b"a" * 1200, b'"]}']), headers=JSON),
                                       413, "--max_body_bytes"),
}


@pytest.fixture(scope="module")
def small_client(app, model):
    """The same model with small limits: 100 characters a text, 1,000 bytes a body."""
    tagger = TextTagger(app.state.batcher.tag.predictor)
    limits = ServeLimits(max_body_bytes=1000, max_text_chars=100)
    with TestClient(create_app(tagger, {}, limits)) as client:
        yield client


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_a_json_4xx_then_the_next_request_works(small_client, file_records, case, caplog):
    kwargs, status, message = BAD_INPUTS[case]
    with caplog.at_level("WARNING", logger="run_ner_predict.serve"):
        response = small_client.post("/predict", **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == status and message in body["error"], body
    assert len(caplog.records) == 1 and "\n" not in caplog.records[0].getMessage()
    assert small_client.post("/predict", json={"text": LINES[0]}).json() == file_records[0]


@pytest.mark.parametrize("method, path, status", [("GET", "/nowhere", 404), ("POST", "/", 405),
                                                  ("GET", "/predict", 405), ("DELETE", "/health", 405),
                                                  ("GET", "/static/missing.js", 404)])
def test_unknown_paths_and_methods_are_json_errors(client, method, path, status, caplog):
    with caplog.at_level("WARNING", logger="run_ner_predict.serve"):
        response = client.request(method, path)
    assert response.status_code == status and response.json()["status"] == status
    assert path in response.json()["error"] and len(caplog.records) == 1
    assert client.get("/health").status_code == 200


def test_a_failure_in_the_model_is_a_500_and_the_server_goes_on(app, file_records, caplog):
    tagger = TextTagger(app.state.batcher.tag.predictor)

    def fragile(texts):
        if "boom" in texts:
            raise RuntimeError("the model fell over\non two lines")
        return tagger(texts)

    for window in (5, 0):
        with TestClient(create_app(fragile, {}, ServeLimits(batch_window_ms=window))) as client:
            with caplog.at_level("WARNING", logger="run_ner_predict.serve"):
                caplog.clear()
                response = client.post("/predict", json={"texts": ["a", "boom"]})
            assert response.status_code == 500
            assert response.json() == {"error": "prediction failed (RuntimeError); see the server log", "status": 500}
            assert [r.getMessage() for r in caplog.records] == [
                "500 POST /predict: prediction failed (RuntimeError: the model fell over on two lines)"]
            assert client.post("/predict", json={"text": LINES[0]}).json() == file_records[0]


def test_batching_on_and_off_give_the_same_answers_to_concurrent_callers(app, file_records):
    tagger = TextTagger(app.state.batcher.tag.predictor)
    requests = [{"text": line} for line in LINES] * 4 + [{"texts": LINES}] * 4
    answers = {}
    for window in (50, 0):
        built = create_app(tagger, {}, ServeLimits(batch_window_ms=window, max_batch_texts=8))
        with TestClient(built) as client, ThreadPoolExecutor(8) as pool:
            answers[window] = list(pool.map(lambda body: client.post("/predict", json=body).json(), requests))
        if window:
            assert built.state.batcher.calls < len(requests)  # callers did share model calls
    assert answers[50] == answers[0] == [*file_records] * 4 + [file_records] * 4


def test_batcher_gathers_waiting_callers_up_to_its_limit_and_never_splits_one():
    calls = []

    def tag(texts):
        calls.append(list(texts))
        return [{"text": text} for text in texts]

    async def main():
        batcher = MicroBatcher(tag, window_s=0.05, max_texts=4)
        requests = [[f"t{i}"] for i in range(6)] + [[f"big{j}" for j in range(6)], ["last"]]
        answers = await asyncio.gather(*(batcher.submit(texts) for texts in requests))
        batcher.close()
        return requests, answers

    requests, answers = asyncio.run(main())
    assert answers == [[{"text": text} for text in texts] for texts in requests]
    assert calls == [["t0", "t1", "t2", "t3"], ["t4", "t5"], [f"big{j}" for j in range(6)], ["last"]]


def run_cli(monkeypatch, capsys, *argv):
    monkeypatch.setattr(sys, "argv", ["run_ner_predict", *map(str, argv)])
    with pytest.raises(SystemExit) as exit_:
        run_ner_predict.cli()
    return exit_.value.code, capsys.readouterr().err


def test_serve_without_the_http_extra_is_one_line(model, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi then raises ImportError
    status, err = run_cli(monkeypatch, capsys, "--model", model["fp32"], "--serve")
    assert status == 2 and err.count("\n") == 1
    assert err.startswith("run_ner_predict: error: --serve needs fastapi and uvicorn")
    assert err.rstrip().endswith("pip install 'bert-ner-compress-serve[http]'")


@pytest.mark.parametrize("argv, message", [
    ([], "the following arguments are required: --input"),
    (["--serve", "--input", "x.txt"], "--serve reads no file and writes none: drop --input"),
    (["--serve", "--output", "x.jsonl"], "drop --output"),
    (["--serve", "--port", "70000"], "--port 70000 must be between 0 and 65535"),
    (["--serve", "--batch_window_ms", "-1"], "--batch_window_ms -1 must be at least 0"),
])
def test_serve_flags_are_checked_in_one_line(model, monkeypatch, capsys, argv, message):
    status, err = run_cli(monkeypatch, capsys, "--model", model["fp32"], *argv)
    assert status == 2 and err.count("\n") == 1 and message in err, err


def test_the_command_serves_on_a_free_port_and_stops_on_sigint(model):
    """The real command: uvicorn on a socket it bound itself (port 0: any free one), named in its one log line."""
    server = subprocess.Popen([sys.executable, str(REPO / "run_ner_predict.py"), "--model", model["fp32"],
                               "--serve", "--port", "0"], stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        line = server.stderr.readline()
        found = re.search(r"on http://127\.0\.0\.1:(\d+) ", line)
        assert found, line
        request = urllib.request.Request(f"http://127.0.0.1:{found[1]}/predict", data=b'{"text": "Mara Velden"}',
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.load(response)["text"] == "Mara Velden"
        taken = subprocess.run([sys.executable, str(REPO / "run_ner_predict.py"), "--model", model["fp32"],
                                "--serve", "--port", found[1]], capture_output=True, text=True, timeout=60)
        assert taken.returncode == 2 and f"--port {found[1]}: cannot listen there" in taken.stderr
    finally:
        server.send_signal(2)
        started = time.monotonic()
        server.wait(timeout=30)
    assert time.monotonic() - started < 10


def test_serve_load_benchmark_runs_both_settings_without_errors(model, capsys):
    from benchmarks import serve_load

    results = serve_load.main(["--model", model["fp32"], "--requests", "30", "--clients", "3", "--seconds", "30"])
    assert [(r.requests, r.errors) for r in results] == [(30, 0), (30, 0)]
    table = capsys.readouterr().out
    assert "| off | 30 | 0 |" in table and "| on (5 ms, 32 texts) | 30 | 0 |" in table
