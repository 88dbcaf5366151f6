#!/usr/bin/env bash
# The Tutor plugin's tests, on the oldest and newest supported Tutor majors,
# each in its own virtualenv under target/ (made once, then reused). Needs the
# binary (target/debug/edx-webhooks, or EDX_WEBHOOKS_BINARY) and the MariaDB
# or MySQL server at 127.0.0.1:3306 (root, no password).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
export EDX_WEBHOOKS_BINARY="${EDX_WEBHOOKS_BINARY:-$repo/target/debug/edx-webhooks}"
[ -x "$EDX_WEBHOOKS_BINARY" ] || cargo build --bin edx-webhooks

for major in 20 22; do
    venv="$repo/target/tutor-venv-$major"
    if [ ! -x "$venv/bin/pytest" ] || ! "$venv/bin/python" -c "import tutoredxwebhooks" 2>/dev/null; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "tutor>=$major,<$((major + 1))" pytest
        "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -e "$repo/deploy/tutor"
    fi
    echo "Tutor $("$venv/bin/tutor" --version | awk '{print $NF}'):"
    "$venv/bin/python" -m pytest -q -p no:cacheprovider "$repo/deploy/tutor/tests"
done
