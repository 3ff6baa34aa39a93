"""Model backends for prediction: an ONNX file run by ONNX Runtime (no torch), or a transformers model (PyTorch).

A backend is ``id2label``, ``max_positions`` and ``logits(input_ids, attention_mask, token_type_ids)`` on int
arrays of shape (B, T); ``parallel_calls`` (default 1) says how many ``logits`` calls may run at once, each in its
own thread. ``load_backend`` picks one from ``--model`` and returns it with the ``tokenizers.Tokenizer``.

The ONNX path needs only numpy, tokenizers and onnxruntime. The PyTorch path imports torch and transformers when it
loads a model; the model types of the full package are registered by its ``modeling`` package, which the
``run_ner_predict`` script imports when there (``register_model_types``).

An ONNX model on CPU runs one single-threaded call per core, side by side in threads (ONNX Runtime releases the
GIL): NER batches are small, and one call split over all cores leaves them partly idle.

```python
>>> session = OnnxNerSession("outputs/teacher/onnx/model_int8.onnx")
>>> session.id2label[1], session.logits(input_ids, attention_mask, token_type_ids).shape  # (B, T, num_labels)
>>> backend, tokenizer = load_backend(PredictArguments(model="outputs/teacher", input="-"))  # PyTorch
```
"""

from __future__ import annotations

import inspect
import json
import os
from typing import TYPE_CHECKING

import numpy as np

from .textfiles import check_weight_files

if TYPE_CHECKING:
    from .predict import PredictArguments

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")  # the order export_onnx traces them in
# ONNX Runtime's graph rewrites that make these models slower on CPU. SkipLayerNormFusion turns each residual Add and
# LayerNormalization into one SkipLayerNormalization, whose CPU kernel took 5x as long as the two ops it replaces
# (ONNX Runtime 1.32, AVX-512 Xeon, one thread: 1.75 ms against 0.34 ms on a (32, 30, 384) batch): 16% of the 5x
# int8 model's time on CoNLL-2003 test, against 5% unfused. Names ONNX Runtime does not know are ignored.
CPU_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError(f"running an ONNX model needs onnxruntime ({err}): pip install onnxruntime") from None
    return onnxruntime


class OnnxNerSession:
    """Load ``onnx_path`` once; ``logits`` runs it on int arrays of shape (B, T). ``OnnxTokenClassifier`` (in
    ``export``) wraps it for transformers' pipeline.

    The label map comes from the file's ``id2label`` metadata (written by ``export_onnx``), else from ``id2label``.
    On the CPU provider alone, the rewrites in ``CPU_DISABLED_OPTIMIZERS`` are left out (the same arithmetic, faster).
    """

    def __init__(self, onnx_path: str, id2label: dict[int, str] | None = None, providers=None, session_options=None):
        onnxruntime = import_onnxruntime()
        if not os.path.isfile(onnx_path):
            raise FileNotFoundError(f"{onnx_path}: no such ONNX file")
        self.path = onnx_path
        providers = providers or ["CPUExecutionProvider"]
        disabled = CPU_DISABLED_OPTIMIZERS if list(providers) == ["CPUExecutionProvider"] else ()
        self.session = onnxruntime.InferenceSession(onnx_path, session_options, providers=providers,
                                                    disabled_optimizers=list(disabled))
        metadata = self.session.get_modelmeta().custom_metadata_map
        if id2label is None:
            if "id2label" not in metadata:
                raise ValueError(f"{onnx_path}: no id2label in the ONNX metadata; pass the model's config")
            id2label = {int(k): v for k, v in json.loads(metadata["id2label"]).items()}
        self.id2label = id2label
        self.metadata = metadata
        self.input_names = [i.name for i in self.session.get_inputs()]

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray | None = None,
               run_options=None) -> np.ndarray:
        if token_type_ids is None:  # tokenizers without segment ids
            token_type_ids = np.zeros_like(input_ids)
        feed = dict(zip(INPUT_NAMES, (input_ids, attention_mask, token_type_ids)))
        feed = {name: np.asarray(array, dtype=np.int64) for name, array in feed.items() if name in self.input_names}
        return self.session.run(["logits"], feed, run_options)[0]  # (B, T, num_labels)

    def accepts_token_id(self, token_id: int) -> bool:
        """Whether the embedding table has a row ``token_id``: ONNX Runtime's Gather rejects an index past its end."""
        ids = np.array([[token_id]], dtype=np.int64)
        quiet = import_onnxruntime().RunOptions()
        quiet.log_severity_level = 4  # the expected failure would otherwise print an error log line
        try:
            self.logits(ids, np.ones_like(ids), run_options=quiet)
        except Exception:  # onnxruntime raises its own pybind types (InvalidArgument, Fail) for a bad index
            return False
        return True


def usable_cores() -> int:
    """The cores this process may run on (taskset and container CPU sets included)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class OnnxBackend:
    def __init__(self, session: OnnxNerSession, max_positions: int | None, parallel_calls: int = 1):
        self.session = session
        self.id2label = session.id2label
        self.max_positions = max_positions
        self.parallel_calls = parallel_calls

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        return self.session.logits(input_ids, attention_mask, token_type_ids)  # (B, T, num_labels)


class TorchBackend:
    def __init__(self, model, device: str):
        self.model = model
        self.device = device
        self.id2label = {int(k): v for k, v in model.config.id2label.items()}
        self.max_positions = getattr(model.config, "max_position_embeddings", None)
        self.takes_token_types = "token_type_ids" in inspect.signature(model.forward).parameters

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        import torch

        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.takes_token_types:
            inputs["token_type_ids"] = token_type_ids
        with torch.inference_mode():
            outputs = self.model(**{k: torch.from_numpy(v).to(self.device) for k, v in inputs.items()})
        return outputs.logits.float().cpu().numpy()  # (B, T, num_labels)


def _read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_tokenizer_file(folder: str, model: str):
    """The fast tokenizer saved as ``folder``/tokenizer.json, read by the tokenizers library alone."""
    from tokenizers import Tokenizer

    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{model}: its tokenizer folder {folder} does not exist (pass --tokenizer FOLDER)")
    path = os.path.join(folder, "tokenizer.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{model}: no tokenizer.json in its tokenizer folder {folder} (pass --tokenizer FOLDER)")
    try:
        return Tokenizer.from_file(path)
    except Exception as err:  # tokenizers raises a bare Exception for a malformed file
        raise ValueError(f"{path}: not a tokenizers file ({err})") from None


def check_own_tokenizer(model: str, model_folder: str, tokenizer, tokenizer_folder: str | None) -> None:
    """``--tokenizer`` names another folder while the model's own folder holds a tokenizer.json: the two must hold
    the same pieces with the same ids, else the ids mean other words to the model (and no size check can tell a
    smaller vocabulary). Without a tokenizer of its own, the model takes the given one."""
    own_path = os.path.join(model_folder, "tokenizer.json")
    if not tokenizer_folder or not os.path.isfile(own_path) or (
            os.path.abspath(tokenizer_folder) == os.path.abspath(model_folder)):
        return
    own = load_tokenizer_file(model_folder, model_folder)
    if own.get_vocab(with_added_tokens=True) != tokenizer.get_vocab(with_added_tokens=True):
        raise ValueError(f"--tokenizer {tokenizer_folder}: not the tokenizer of {model}, whose folder's own "
                         f"tokenizer.json has {own.get_vocab_size(with_added_tokens=True)} pieces (this one "
                         f"{tokenizer.get_vocab_size(with_added_tokens=True)}, or other ids); drop --tokenizer")


def load_onnx(args: PredictArguments):
    onnxruntime = import_onnxruntime()
    folder = args.tokenizer or os.path.dirname(os.path.abspath(args.model))
    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"--model {args.model}: no such ONNX file (run_ner_compress.py --export_onnx writes "
                                "onnx/model.onnx into its output folder; with --quantize int8 also onnx/model_int8.onnx)")
    tokenizer = load_tokenizer_file(folder, args.model)
    check_own_tokenizer(args.model, os.path.dirname(os.path.abspath(args.model)), tokenizer, args.tokenizer)
    config_path = os.path.join(os.path.dirname(os.path.abspath(args.model)), "config.json")
    if not os.path.isfile(config_path):
        config_path = os.path.join(folder, "config.json")
    config = _read_json(config_path) if os.path.isfile(config_path) else {}
    id2label = {int(k): v for k, v in config["id2label"].items()} if "id2label" in config else None
    providers, options, parallel_calls = ["CPUExecutionProvider"], onnxruntime.SessionOptions(), usable_cores()
    if args.device == "cuda":
        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise ValueError("--device cuda: this onnxruntime has no CUDA provider (pip install onnxruntime-gpu)")
        providers, parallel_calls = ["CUDAExecutionProvider"], 1
    else:
        options.enable_mem_pattern = False  # its memory plan is made per input shape, and ours change every call
    if parallel_calls > 1:
        # One core per call and one call per core (NerPredictor runs them side by side): the small batches of NER
        # split poorly across cores. A call's result does not depend on its thread count, so the output is the same.
        options.intra_op_num_threads = 1
    try:
        session = OnnxNerSession(args.model, id2label, providers, options)
    except (ValueError, OSError):  # already one line naming the file
        raise
    except Exception as err:  # onnxruntime's own types for a file that is not a model
        raise ValueError(f"--model {args.model}: ONNX Runtime cannot load it ({str(err).splitlines()[0]})") from None
    # A tokenizer with ids past the embedding table is another model's (the model may have spare rows: no error)
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    if not session.accepts_token_id(size - 1):
        raise ValueError(f"{args.model} does not match the tokenizer in {folder}: the tokenizer has {size} tokens, "
                         "more than the model's vocabulary (pass the model's own folder with --tokenizer)")
    return OnnxBackend(session, config.get("max_position_embeddings"), parallel_calls), tokenizer


def load_torch(args: PredictArguments):
    """A token-classification model of transformers' Auto classes: the compressed types load once the full package's
    ``modeling`` is imported (it registers them), or from a Hub repository's code with ``--trust_remote_code``."""
    try:
        import torch
        from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer
    except ImportError as err:
        raise ImportError(f"--model {args.model}: a model folder or Hub id runs with PyTorch and transformers ({err}); "
                          "install the project, or give an exported .onnx file") from None

    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # its weight-loading bar would land in the user's stderr or pipe
    transformers_logging.set_verbosity_error()

    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA device")
    try:
        config = AutoConfig.from_pretrained(args.model, trust_remote_code=args.trust_remote_code)
    except (OSError, ValueError) as err:
        raise OSError(f"--model {args.model}: not a model folder, Hub id or .onnx file "
                      f"({str(err).splitlines()[0]})") from None
    architectures = getattr(config, "architectures", None) or []
    if not any(name.endswith("ForTokenClassification") for name in architectures):
        raise ValueError(f"{args.model}: no token-classification head (architectures {architectures}); "
                         "give a folder saved by run_ner_compress.py or another *ForTokenClassification model")
    if os.path.isdir(args.model):
        check_weight_files(args.model, "--model")  # a damaged file: one line, before transformers reads it
    tokenizer_source = args.tokenizer or args.model
    try:
        hf_tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, trust_remote_code=args.trust_remote_code)
    except (OSError, ValueError) as err:
        raise OSError(f"{tokenizer_source}: cannot load a tokenizer ({str(err).splitlines()[0]})") from None
    if not getattr(hf_tokenizer, "is_fast", False):
        raise ValueError(f"{tokenizer_source}: a fast tokenizer (tokenizer.json) is needed for word alignment")
    if os.path.isdir(args.model):
        check_own_tokenizer(args.model, args.model, hf_tokenizer.backend_tokenizer, args.tokenizer)
    # As for ONNX: a tokenizer with ids past the word table is another model's (spare rows are no error)
    size, rows = hf_tokenizer.backend_tokenizer.get_vocab_size(with_added_tokens=True), config.vocab_size
    if size > rows:
        raise ValueError(f"{args.model} does not match the tokenizer in {tokenizer_source}: the tokenizer has {size} "
                         f"tokens, more than the model's {rows} (pass the model's own folder with --tokenizer)")
    model = AutoModelForTokenClassification.from_pretrained(args.model, trust_remote_code=args.trust_remote_code)
    model = model.eval().to(args.device)
    return TorchBackend(model, args.device), hf_tokenizer.backend_tokenizer


def load_backend(args: PredictArguments):
    """(backend, ``tokenizers.Tokenizer``) for an .onnx file (no torch) or a folder / Hub id (PyTorch)."""
    if args.model.endswith(".onnx"):
        return load_onnx(args)
    return load_torch(args)
