#!/usr/bin/env bash
# Reproduce models/default from Flickr8k in one command (CPU, 2 cores: about 53 min from a fresh clone here, ~89 on the slower one of earlier sessions).
# TAKARIR_TRAIN_PYTHON=/path/to/python skips the venv setup; extra args go to the pipeline (e.g. --name x).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${TAKARIR_TRAIN_PYTHON:-}"
if [ -z "$py" ]; then
  if [ ! -x "$here/.venv/bin/python" ]; then
    python3 -m venv "$here/.venv"
    "$here/.venv/bin/pip" install -q --upgrade pip
    "$here/.venv/bin/pip" install -q -e "$here"
  fi
  py="$here/.venv/bin/python"
fi
cd "$here"
start=$(date +%s)
"$py" -m takarir_training.pipeline "$@"
echo "total wall time: $(( $(date +%s) - start )) s"
