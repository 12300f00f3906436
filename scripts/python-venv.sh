#!/usr/bin/env bash
# Makes (or brings up to date) a Python virtualenv from a pinned requirements file:
#   scripts/python-venv.sh <requirements.txt> <venv dir>
# Installs again only when the requirements file changed since the last install (its sha256 is
# kept in the venv), so .ci/run and the bench can call it every time. Python is for tests and the
# bench only: real Python clients, and LiteLLM as a peer. The venvs are git-ignored (.venv*/).
set -euo pipefail
req=${1:?usage: python-venv.sh <requirements.txt> <venv dir>}
dir=${2:?usage: python-venv.sh <requirements.txt> <venv dir>}
python=${PYTHON:-python3}
stamp="$dir/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$dir/bin/python" ]; then
  exit 0
fi
[ -x "$dir/bin/python" ] || "$python" -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
