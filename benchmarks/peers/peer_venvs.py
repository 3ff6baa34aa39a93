"""Run a peer's script in the peer's own virtual environment and read the JSON it writes.

Peers that need another transformers release than the project's live in ``<venvs>/<peer>`` (built by
``make_venvs.sh``). A peer script is a plain Python file of this folder that imports only the standard library,
the peer and what the peer installs; it takes ``--result PATH`` and writes one JSON object there. What can go
wrong becomes a ``PeerOutcome`` with the reason a user would report, never an exception: no environment (the
peer was not installed here: skipped), an install that failed (its pip error), or a script that failed (the
last lines of its stderr).

```python
>>> outcome = run_peer_script("textpruner", "peer_textpruner.py", ["--teacher", "outputs/teacher", ...], venvs)
>>> outcome.status, outcome.result or outcome.reason
```
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_VENVS = Path(os.environ.get("PEER_VENVS", "/work/peer_venvs"))
ERROR_LINES = 6  # of a failed install or run, quoted in the row's note


@dataclass
class PeerOutcome:
    status: str  # "measured", "skipped" (no environment) or "failed" (install or run)
    reason: str = ""
    result: dict = field(default_factory=dict)
    seconds: float = 0.0
    install_note: str = ""  # how make_venvs.sh got round a failed plain install (its WORKAROUND.txt)


def install_note(peer: str, venvs: Path) -> str:
    path = venvs / peer / "WORKAROUND.txt"
    if not path.is_file():
        return ""
    return "plain pip install failed (" + " / ".join(line.strip() for line in path.read_text().splitlines()
                                                    if line.strip()) + ")"


def peer_python(peer: str, venvs: Path) -> tuple[Path | None, PeerOutcome | None]:
    """The environment's python, or the outcome that says why there is none."""
    venv = venvs / peer
    failed = venv / "INSTALL_FAILED"
    if failed.is_file():
        lines = [line for line in failed.read_text(errors="replace").splitlines() if line.strip()
                 and not line.startswith("WARNING: Location")]
        return None, PeerOutcome("failed", f"pip install failed in {venv}: " + " / ".join(lines[-ERROR_LINES:]))
    python = venv / "bin" / "python"
    if not python.is_file():
        return None, PeerOutcome("skipped", f"{peer} is not installed here (no environment at {venv}): "
                                            "run bash benchmarks/peers/make_venvs.sh")
    return python, None


def run_peer_script(peer: str, script: str, args: list[str], venvs: Path = DEFAULT_VENVS,
                    timeout: float | None = None) -> PeerOutcome:
    python, missing = peer_python(peer, venvs)
    if missing:
        return missing
    with tempfile.TemporaryDirectory(prefix=f"peer-{peer}-") as scratch:
        result_path = os.path.join(scratch, "result.json")
        command = [str(python), str(HERE / script), *args, "--result", result_path]
        # The peer's own packages only: the project's folder is not on its path, and no hub is reachable.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        started = time.perf_counter()
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, cwd=scratch)
        except subprocess.TimeoutExpired:
            return PeerOutcome("failed", f"{script} ran past {timeout:.0f} s", seconds=time.perf_counter() - started)
        seconds = time.perf_counter() - started
        if done.returncode or not os.path.isfile(result_path):
            lines = [line.strip() for line in done.stderr.splitlines() if line.strip(" ^~\t")]
            return PeerOutcome("failed", f"{script} exited {done.returncode}: " + " / ".join(lines[-ERROR_LINES:]),
                               seconds=seconds)
        with open(result_path, encoding="utf-8") as f:
            return PeerOutcome("measured", result=json.load(f), seconds=seconds,
                               install_note=install_note(peer, venvs))
