#!/usr/bin/env bash
# Build one virtual environment per peer tool from PyPI, outside the project: nothing of theirs enters its
# requirements. Each gets the project's torch first (so pip does not pull another), then the peer and the
# transformers release it was written for, then what the harness's peer runner needs to read CoNLL and score.
#
#   bash benchmarks/peers/make_venvs.sh                   # every peer, into /work/peer_venvs/<peer>
#   PEER_VENVS=/tmp/pv bash benchmarks/peers/make_venvs.sh textpruner
#
# A peer that fails to install leaves <venv>/INSTALL_FAILED with pip's last lines; the harness reports it as that
# peer's row. Where the plain install fails for a known reason that a user can work around, WORKAROUNDS says how;
# the plain install's error is kept in <venv>/WORKAROUND.txt and the harness quotes it in the row's note.
# Re-running rebuilds only the peers asked for.
set -uo pipefail

ROOT="${PEER_VENVS:-/work/peer_venvs}"
PYTHON="${PYTHON:-python3}"
TORCH="${TORCH_SPEC:-torch==2.13.0}"

# peer -> the pip requirements that install it, as its docs say (transformers pinned to a release it supports)
declare -A SPECS=(
  [textpruner]="textpruner==1.1.post2 transformers==4.46.3 seqeval"
  [optimum]="optimum-onnx[onnxruntime]==0.1.0 seqeval"
  [textbrewer]="textbrewer==0.2.1.post1 transformers==4.46.3 seqeval"
)
# What a user does when the plain install fails. textpruner 1.1.post2's setup.py picks its numpy pin by comparing
# version strings (platform.python_version() < "3.8" is True for "3.11.7"), so it asks for numpy < 1.22, which
# has no wheel for Python 3.11 and does not build: install it without its dependencies, then those it lists.
declare -A WORKAROUNDS=(
  [textpruner]="--no-deps textpruner==1.1.post2;transformers==4.46.3 tqdm sentencepiece protobuf seqeval"
)
PEERS=("$@")
[ ${#PEERS[@]} -eq 0 ] && PEERS=(textpruner optimum textbrewer)

mkdir -p "$ROOT"
status=0
for peer in "${PEERS[@]}"; do
  spec="${SPECS[$peer]:-}"
  if [ -z "$spec" ]; then echo "unknown peer: $peer (known: ${!SPECS[*]})" >&2; status=2; continue; fi
  venv="$ROOT/$peer"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  log="$venv/install.log"
  echo "== $peer: pip install $TORCH, then $spec" | tee "$log"
  ok=0
  if "$venv/bin/pip" install -q "$TORCH" >>"$log" 2>&1; then
    if "$venv/bin/pip" install -q $spec >>"$log" 2>&1; then
      ok=1
    elif [ -n "${WORKAROUNDS[$peer]:-}" ]; then
      { grep "^ERROR:" "$log" | tail -n 3; echo "workaround: pip install ${WORKAROUNDS[$peer]//;/, then pip install }"; } \
        > "$venv/WORKAROUND.txt"
      IFS=';' read -ra steps <<< "${WORKAROUNDS[$peer]}"
      echo "== $peer: plain install failed; workaround: ${WORKAROUNDS[$peer]}" | tee -a "$log"
      ok=1
      for step in "${steps[@]}"; do
        "$venv/bin/pip" install -q $step >>"$log" 2>&1 || { ok=0; break; }
      done
    fi
  fi
  if [ $ok = 1 ]; then
    "$venv/bin/pip" freeze > "$venv/FREEZE.txt"
    echo "$peer: ok ($(grep -iE "^(textpruner|textbrewer|optimum|optimum-onnx|transformers|torch|onnxruntime)==" "$venv/FREEZE.txt" | tr '\n' ' '))"
  else
    grep -v "^WARNING: Location" "$log" | tail -n 20 > "$venv/INSTALL_FAILED"
    echo "$peer: FAILED (see $venv/INSTALL_FAILED)" >&2
    status=1
  fi
done
exit $status
