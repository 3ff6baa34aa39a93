#!/bin/bash
# Untrained models of the teacher's and the recipes' shapes (speed and size do not depend on the weights):
# predict_speed's table (2 rounds) and the load tables at 10,000 requests for the 5x int8 file and the teacher's
# PyTorch folder.
source /work/venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
cd /work/frozen2  # a checkout of main at 4f9b403
O=/work/cpu_run/shapes
mkdir -p $O
python - <<'PY'
import sys; sys.path.insert(0, ".")
from pathlib import Path
from benchmarks.predict_speed import build_untrained, onnx_files
from trainers.ner_data import read_conll, sort_labels
from benchmarks.speed import CONLL_TEST
labels = sort_labels(t for r in read_conll(str(CONLL_TEST)) for t in r["ner_tags"])
folders = build_untrained(Path("/work/cpu_run/shapes/models"), labels)
for name, folder in folders.items():
    fp32, int8 = onnx_files(folder, folder / "onnx")
    print(name, folder, fp32.stat().st_size / 1e6, int8.stat().st_size / 1e6)
PY
date -u +"speed %T"
python benchmarks/predict_speed.py --rounds 2 --rss_mb "" --model teacher=$O/models/teacher \
    --model "recipe 5x=$O/models/recipe_5x" --model "recipe 10x=$O/models/recipe_10x" \
    --output $O/predict_speed.md > $O/predict_speed.log 2>&1
date -u +"load %T"
python benchmarks/serve_load.py --model $O/models/recipe_5x/onnx/model_int8.onnx --requests 10000 --clients 16 \
    --seconds 300 > $O/serve_load_5x_int8.md 2>&1
python benchmarks/serve_load.py --model $O/models/teacher --requests 10000 --clients 16 --seconds 300 \
    > $O/serve_load_teacher.md 2>&1
date -u +"end %T"
