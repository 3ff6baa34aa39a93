"""Usage: python results/cpu_recipes/int8_after.py RUN_FOLDER TEST_FILE (writes RUN_FOLDER/onnx_after/).

fp32 and int8 ONNX of a finished run folder: size on disk and test F1 as run_ner_predict measures them."""
import os, subprocess, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))  # the checkout
from export.onnx_export import export_onnx
from export.quantization import quantize_onnx_int8

run, test = sys.argv[1], sys.argv[2]
out = os.path.join(run, "onnx_after")
os.makedirs(out, exist_ok=True)
fp32 = export_onnx(run, os.path.join(out, "model.onnx"))
int8 = quantize_onnx_int8(fp32, os.path.join(out, "model_int8.onnx"))
for name, path in (("fp32 safetensors", os.path.join(run, "model.safetensors")), ("onnx fp32", fp32), ("onnx int8", int8)):
    print(f"{name}: {os.path.getsize(path) / 1e6:.2f} MB")
for path in (fp32, int8):
    done = subprocess.run(["run_ner_predict", "--model", path, "--tokenizer", run, "--input", test,
                           "--output", os.path.join(out, os.path.basename(path) + ".conll")],
                          capture_output=True, text=True)
    print(path, done.returncode, done.stderr.strip().splitlines()[-2:])
