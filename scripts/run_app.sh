#!/usr/bin/env bash
# Install the app's dependencies into .venv (once), prepare the data and serve the dashboard on http://localhost:8501.
# Extra arguments go to `streamlit run`, e.g. `bash scripts/run_app.sh --server.port 9000`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
# Fetch the data and draw the canvas drawings that drawing-ready runs learn from (minutes, once per
# machine; both are cached), so that the first visitor's run does not wait for them. If the data
# cannot be had, the app still starts and its pages say why.
.venv/bin/python -m fmnist data || echo "run_app.sh: the data is not ready (see above); the app's pages will say why." >&2
exec .venv/bin/streamlit run app.py "$@"
