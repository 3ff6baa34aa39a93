"""Push a finished output folder to the Hub: the final model only, never checkpoints or optimizer state.

The Trainer's own push would create the repository before training (failing offline before anything is
learnt), push at every save, replace our card with its own and upload ``training_args.bin``. Instead the run
saves everything locally first, then this uploads the finished folder once.

```python
>>> push_model_folder("outputs/shared_ffn", "me/bert-ner-shared")  # token from `hf auth login` or HF_TOKEN
'https://huggingface.co/me/bert-ner-shared'
```
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from huggingface_hub import HfApi, constants, get_token
from huggingface_hub.utils import filter_repo_objects

from .card import read_results, write_model_card

logger = logging.getLogger(__name__)

# Everything in a subfolder (checkpoint-*/, teacher/, runs/, .saving-*/) and the Trainer's state files stay local.
PUSH_IGNORE_PATTERNS = [
    "*/*",
    "training_args.bin",
    "trainer_state.json",
    "optimizer.*",
    "scheduler.*",
    "scaler.*",
    "rng_state*",
    "*.tmp",
    ".*",
]
# Weights of an earlier push that this one would not overwrite (a model that used to be sharded).
STALE_PATTERNS = ["model*.safetensors", "model.safetensors.index.json", "pytorch_model*.bin"]
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")


def files_to_push(output_dir: str) -> list[str]:
    """The paths, relative to ``output_dir``, that ``push_model_folder`` uploads."""
    root = Path(output_dir)
    names = [path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()]
    return sorted(filter_repo_objects(names, ignore_patterns=PUSH_IGNORE_PATTERNS))


def check_pushable(output_dir: str) -> list[str]:
    """The files to push; a ValueError naming what is missing when the folder is not a finished model."""
    if not os.path.isdir(output_dir):
        raise FileNotFoundError(f"{output_dir}: no such folder")
    files = set(files_to_push(output_dir))
    missing = [name for name in ("config.json", "README.md", "results.json") if name not in files]
    if not files & set(WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if not files & set(TOKENIZER_FILES):
        missing.append(" or ".join(TOKENIZER_FILES))
    if missing:
        raise ValueError(f"{output_dir} is not a finished model folder: missing {', '.join(missing)}")
    return sorted(files)


def push_problem(token: str | None = None) -> str | None:
    """Why a push cannot work from here (no token, offline mode), found without the network; None if none."""
    if constants.is_offline_mode():
        return "HF_HUB_OFFLINE is set, so the Hub cannot be reached"
    if not (token or get_token()):
        return "no Hugging Face token: run `hf auth login`, set HF_TOKEN or pass --hub_token"
    return None


def push_model_folder(
    output_dir: str,
    repo_id: str | None = None,
    token: str | None = None,
    *,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload compressed BERT NER model",
) -> str:
    """Create ``repo_id`` if needed and upload the finished model in ``output_dir``; returns the repository URL.

    ``repo_id`` defaults to the folder's name (in the token owner's namespace), as the Trainer does. The card is
    rewritten first so that its usage example names the repository. Every failure is an OSError or ValueError
    that says the model is safe in ``output_dir`` and how to push it again.
    """
    repo_id = repo_id or Path(output_dir).absolute().name
    check_pushable(output_dir)
    retry = f"the model is saved in {output_dir}; push it later with: python -m hub_cards {output_dir} --push_to_hub {repo_id}"
    problem = push_problem(token)
    if problem:
        raise OSError(f"--push_to_hub {repo_id}: {problem}; {retry}")
    api = HfApi(token=token)
    try:
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
        repo_id = repo_url.repo_id  # a bare name gets the token owner's namespace
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        write_model_card(output_dir, read_results(output_dir), repo_id=repo_id)
        api.upload_folder(
            repo_id=repo_id,
            folder_path=output_dir,
            ignore_patterns=list(PUSH_IGNORE_PATTERNS),  # upload_folder appends to the list it is given
            delete_patterns=list(STALE_PATTERNS),
            revision=revision,
            commit_message=commit_message,
        )
    except Exception as err:  # httpx errors are not OSErrors; the user needs the cause and that nothing is lost
        raise OSError(f"--push_to_hub {repo_id}: the push failed ({type(err).__name__}: {err}); {retry}") from None
    url = str(repo_url)
    logger.info("pushed %s to %s", output_dir, url)
    return url
