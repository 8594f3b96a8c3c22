#!/usr/bin/env bash
# Install everything the tests need, then lint and run the whole suite: unit, integration
# (real Fashion-MNIST, real Keras training) and browser tests (Debian chromium via Playwright).
# Extra arguments go to pytest, e.g. `bash scripts/run_tests.sh -m "not browser"`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt

# System packages: the browser for the end-to-end tests, npm for the dataset's registry mirror,
# and a Korean font so the class names (티셔츠, 바지, ...) render in the test screenshots.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v npm > /dev/null || missing+=(npm)
[ -d /usr/share/fonts/truetype/nanum ] || missing+=(fonts-nanum)
if [ ${#missing[@]} -gt 0 ]; then
  sudo_if_needed=()
  [ "$(id -u)" -eq 0 ] || sudo_if_needed=(sudo)
  "${sudo_if_needed[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_if_needed[@]}" apt-get install -y -qq "${missing[@]}"
fi

.venv/bin/ruff check .
.venv/bin/python -m fmnist --verbose data   # fetch and verify the real data once (cached afterwards)
.venv/bin/python -m pytest "$@"
