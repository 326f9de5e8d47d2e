#!/usr/bin/env bash
# MONAI Label integration test of apps/monailabel (not run by CI: the environment is ~7.5 GB and ~10 min).
#
#  1. builds the app's own environment in --venv (default /tmp/monailabel-venv; reused when it was built
#     from the same requirements.txt and compat shim);
#  2. writes a small simulated chest CT (NIfTI + JSON sidecar with Manufacturer/ConvolutionKernel) into a
#     temporary studies folder and starts `monailabel start_server` on 127.0.0.1 and a free port;
#  3. for every bundle of --bundles, calls POST /infer/<model>?image=<id>&output=image (datastore image,
#     source kernel from the header) and POST /infer/<model>?output=image with an uploaded file and
#     params {"source": ...}; an upload without a source must fail with a clear message;
#  4. compares each returned volume with a local `ctharmonize harmonize` run (max abs HU difference,
#     shape, affine, float32);
#  5. stops the server and prints PASS or FAIL (exit status 0 / 1).
#
# Usage: apps/monailabel/run_integration_test.sh [--venv DIR] [--bundles DIR] [--port N]
#            [--reference CTHARMONIZE] [--tolerance HU] [--build-only] [--keep]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${MONAILABEL_VENV:-/tmp/monailabel-venv}"
BUNDLES="$REPO/bundles"
PORT=""
REFERENCE=""
TOLERANCE="0.01"
BUILD_ONLY=0
KEEP=0
PYTHON="${PYTHON:-python3}"

usage() {
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
  cat <<EOF
Options:
  --venv DIR           the MONAI Label environment (default /tmp/monailabel-venv, or \$MONAILABEL_VENV)
  --bundles DIR        folder of harmonization bundles to serve (default $REPO/bundles)
  --port N             server port on 127.0.0.1 (default: a free one)
  --reference EXE      ctharmonize executable for the local reference run (default: the venv's own)
  --tolerance HU       largest accepted |HU| difference to the local run (default 0.01)
  --build-only         only build (or check) the environment
  --keep               keep the temporary work folder (studies, outputs, server log)
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --venv) VENV="$2"; shift 2 ;;
    --bundles) BUNDLES="$(cd "$2" && pwd)"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --reference) REFERENCE="$2"; shift 2 ;;
    --tolerance) TOLERANCE="$2"; shift 2 ;;
    --build-only) BUILD_ONLY=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_integration_test.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

log() { echo "[$(date +%H:%M:%S)] $*"; }

# ---------------------------------------------------------------- 1. environment
build_env() {
  local stamp="$VENV/.ctharmonize-monailabel-env" want
  want="$(cat "$HERE/requirements.txt" "$HERE/compat/pydicom_seg_compat.py" | sha256sum | cut -d' ' -f1)"
  if [ -x "$VENV/bin/monailabel" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "environment: reusing $VENV"
  else
    log "environment: building $VENV from apps/monailabel/requirements.txt (about 10 min, 7.5 GB)"
    local started=$SECONDS
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    if ! "$VENV/bin/python" -m pip install -r "$HERE/requirements.txt" >"$VENV/.pip-install.log" 2>&1; then
      tail -n 30 "$VENV/.pip-install.log"
      log "environment: pip install failed (full log: $VENV/.pip-install.log)"
      return 1
    fi
    "$VENV/bin/python" "$HERE/compat/install_compat.py"
    echo "$want" >"$stamp"
    log "environment: built in $((SECONDS - started)) s, $(du -sh "$VENV" | cut -f1)"
  fi
  # ctharmonize from this checkout, without its dependency pins (see requirements.txt)
  if ! "$VENV/bin/python" - "$REPO" <<'EOF' 2>/dev/null; then
import pathlib, sys
import ctharmonize
sys.exit(0 if pathlib.Path(ctharmonize.__file__).resolve().is_relative_to(pathlib.Path(sys.argv[1]).resolve()) else 1)
EOF
    log "environment: pip install --no-deps -e $REPO"
    "$VENV/bin/python" -m pip install -q --no-deps -e "$REPO"
  fi
  "$VENV/bin/python" - <<'EOF'
import importlib.metadata as md

import ctharmonize.inference  # noqa: F401
import ctharmonize.io  # noqa: F401
import pydicom_seg  # noqa: F401
import torch
import torchvision.utils  # noqa: F401
from monailabel.tasks.infer.basic_infer import BasicInferTask  # noqa: F401

names = ["monailabel", "monai", "torch", "torchvision", "numpy", "pydicom", "pydicom-seg", "pynetdicom",
         "dicomweb-client", "jsonschema", "nibabel", "ctharmonize"]
print("environment: " + ", ".join(f"{n} {md.version(n)}" for n in names)
      + f"; CUDA available: {torch.cuda.is_available()}")
EOF
}

build_env
[ "$BUILD_ONLY" = 1 ] && exit 0

REFERENCE="${REFERENCE:-$VENV/bin/ctharmonize}"
WORK="$(mktemp -d /tmp/monailabel-it.XXXXXX)"
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
    log "server: stopped (pid $SERVER_PID)"
  fi
  SERVER_PID=""
}
cleanup() {
  local rc=$?
  stop_server
  if [ "$KEEP" = 1 ]; then log "work folder kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---------------------------------------------------------------- 2. studies and server
mkdir -p "$WORK/studies" "$WORK/out" "$WORK/dicom"
"$VENV/bin/python" - "$WORK/studies/chest_ct.nii.gz" "$WORK/dicom/chest_ct" <<'EOF'
import sys

from ctharmonize.inference import ensure_sample_volume
from ctharmonize.io import read_volume, write_dicom

nifti = ensure_sample_volume(sys.argv[1], kernel="ge_bone", size=96, slices=6, seed=3)
print(f"study: {nifti} (simulated GE BONE chest CT, 6 x 96 x 96, JSON sidecar)")
write_dicom(read_volume(nifti), sys.argv[2], series_description_suffix="")
print(f"study: {sys.argv[2]} (the same volume as a DICOM series, outside the datastore)")
EOF
if [ -z "$PORT" ]; then
  PORT="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi
URL="http://127.0.0.1:$PORT"
log "server: monailabel start_server --app $HERE --studies $WORK/studies --host 127.0.0.1 --port $PORT --conf bundles $BUNDLES"
# The launcher is a bash script that runs `python -m monailabel.main`: the venv must come first on PATH.
# setsid: the server gets its own process group, so that it and its children stop together.
PATH="$VENV/bin:$PATH" setsid monailabel start_server --app "$HERE" --studies "$WORK/studies" \
  --host 127.0.0.1 --port "$PORT" --conf bundles "$BUNDLES" --conf device cpu \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
started=$SECONDS
until curl -sf "$URL/info/" -o "$WORK/info.json"; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    tail -n 40 "$WORK/server.log"; log "server: exited before answering /info/"; echo "FAIL"; exit 1
  fi
  if [ $((SECONDS - started)) -gt 600 ]; then
    tail -n 40 "$WORK/server.log"; log "server: no /info/ after 600 s"; echo "FAIL"; exit 1
  fi
  sleep 2
done
log "server: /info/ answered after $((SECONDS - started)) s"

# ---------------------------------------------------------------- 3.-4. infer and compare
set +e
"$VENV/bin/python" "$HERE/integration/check_infer.py" --url "$URL" --bundles "$BUNDLES" \
  --image "$WORK/studies/chest_ct.nii.gz" --image-id chest_ct --dicom "$WORK/dicom/chest_ct" --out "$WORK/out" \
  --reference "$REFERENCE" --tolerance "$TOLERANCE"
rc=$?
set -e
if [ "$rc" != 0 ]; then
  echo "--- server log (last 40 lines) ---"; tail -n 40 "$WORK/server.log"
fi

# ---------------------------------------------------------------- 5. stop, result
stop_server
if [ "$rc" = 0 ]; then echo "PASS"; else echo "FAIL"; fi
exit "$rc"
