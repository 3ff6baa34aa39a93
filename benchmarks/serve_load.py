"""Load test of ``run_ner_predict --serve``: requests/s, latency and server memory, batching on against off.

For each setting the server starts on 127.0.0.1 (a free port) with ``--model``, ``--clients`` threads post one
sentence each per request (``http.client``, one kept-alive connection per thread) until ``--requests`` answers or
``--seconds`` have passed, and the server's resident memory is read from /proc before and after (Linux). The
clients run in this process: on a small machine they share its cores with the server, so read the figures side by
side, not as the server's ceiling.

```bash
python benchmarks/serve_load.py --model outputs/teacher/onnx/model_int8.onnx --requests 10000 --clients 16
# | batching | requests | errors | requests/s | p50 ms | p99 ms | RSS before (MB) | peak RSS after (MB) |  (markdown)
```
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SENTENCES = ["Mara Velden joined Norvane Bank in Port Aldane last Monday .",
             "Shares in Helix Motors rose after Kofi Mensa spoke in Carrow .",
             "The Carrow Lions beat Port Aldane 3-1 in the Velden Cup final on Sunday .",
             "Norvane Bank said its chief executive , Ilse Brandt , would step down in June ."]


@dataclass
class LoadResult:
    batching: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    rss_before_mb: float | None
    peak_rss_after_mb: float | None

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    def row(self) -> str:
        def mb(value):
            return f"{value:.0f}" if value is not None else "-"

        return (f"| {self.batching} | {self.requests} | {self.errors} | {self.requests / self.seconds:.0f} | "
                f"{self.percentile(0.5):.1f} | {self.percentile(0.99):.1f} | {mb(self.rss_before_mb)} | "
                f"{mb(self.peak_rss_after_mb)} |")


def memory_mb(pid: int, field: str) -> float | None:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of a process, in MB; None off Linux."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
    return int(found[1]) / 1024 if found else None


def start_server(model: str, window_ms: int, extra: list[str]) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([sys.executable, str(REPO / "run_ner_predict.py"), "--model", model, "--serve",
                                "--port", "0", "--batch_window_ms", str(window_ms), *extra],
                               stderr=subprocess.PIPE, text=True, cwd=REPO)
    line = process.stderr.readline()
    found = re.search(r"on http://127\.0\.0\.1:(\d+) ", line)
    if not found:
        process.kill()
        raise SystemExit(f"serve_load: the server did not start: {line.strip() or process.stderr.read().strip()}")
    threading.Thread(target=process.stderr.read, daemon=True).start()  # its later log lines: drained, not shown
    return process, int(found[1])


def run_clients(port: int, clients: int, requests: int, seconds: float) -> tuple[int, int, float, list[float]]:
    """(answers, errors, wall seconds, latencies in ms) of ``clients`` threads sharing a budget of ``requests``."""
    lock, issued = threading.Lock(), [0]
    latencies, errors = [], [0]
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.perf_counter() < deadline:
            with lock:
                if issued[0] >= requests:
                    break
                issued[0] += 1
                n = issued[0]
            body = json.dumps({"text": SENTENCES[(n + index) % len(SENTENCES)]})
            started = time.perf_counter()
            try:
                connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                errors[0] += not ok
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies), errors[0], time.perf_counter() - started, latencies


def measure(model: str, batching: str, window_ms: int, args) -> LoadResult:
    process, port = start_server(model, window_ms, ["--max_batch_texts", str(args.max_batch_texts)])
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=60) as response:
            json.load(response)
        run_clients(port, min(args.clients, 4), 20, 30)  # warm-up, not counted
        before = memory_mb(process.pid, "VmRSS")
        answers, errors, seconds, latencies = run_clients(port, args.clients, args.requests, args.seconds)
        peak = memory_mb(process.pid, "VmHWM")
    finally:
        process.terminate()
        process.wait(timeout=30)
    return LoadResult(batching, answers, errors, seconds, latencies, before, peak)


def main(argv: list[str] | None = None) -> list[LoadResult]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="An .onnx file or a model folder, as run_ner_predict takes.")
    parser.add_argument("--clients", type=int, default=16, help="Concurrent client threads.")
    parser.add_argument("--requests", type=int, default=10000, help="Requests per setting (at most).")
    parser.add_argument("--seconds", type=float, default=60.0, help="Time cap per setting.")
    parser.add_argument("--window_ms", type=int, default=5, help="--batch_window_ms of the batching run.")
    parser.add_argument("--max_batch_texts", type=int, default=32, help="--max_batch_texts of the batching run.")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.requests < 1 or args.seconds <= 0 or args.window_ms < 1:
        parser.error("--clients, --requests, --seconds and --window_ms must be positive")
    results = [measure(args.model, f"on ({args.window_ms} ms, {args.max_batch_texts} texts)", args.window_ms, args),
               measure(args.model, "off", 0, args)]
    print(f"{args.clients} clients, one sentence a request, at most {args.requests} requests or {args.seconds:g} s "
          f"per setting; model {args.model}\n")
    print("| batching | requests | errors | requests/s | p50 ms | p99 ms | RSS before (MB) | peak RSS after (MB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for result in results:
        print(result.row())
    return results


if __name__ == "__main__":
    main()
