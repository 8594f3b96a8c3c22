#!/usr/bin/env bash
# Install the app's dependencies into .venv (once) and serve the dashboard on http://localhost:8501.
# Extra arguments go to `streamlit run`, e.g. `bash scripts/run_app.sh --server.port 9000`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
exec .venv/bin/streamlit run app.py "$@"
