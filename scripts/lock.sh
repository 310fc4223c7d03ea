#!/usr/bin/env bash
# `make lock`: write requirements/*.lock from pyproject.toml with uv, every dependency
# (direct and transitive) pinned with its hashes, resolved for every platform of
# Python >= 3.11 (`--universal`), so a fresh machine installs exactly what was tested.
#
#   make lock                        # add what pyproject.toml gained; keep every other pin
#   make lock UPGRADE="msgspec uv"   # move these packages to their newest allowed version
#   make lock UPGRADE=all            # move everything to the newest allowed versions
#
# The existing lock is uv's preference, so `make lock` alone changes only what
# pyproject.toml forces. Files written:
#   requirements/dev.lock      runtime + dev + build requirements: `make venv` / CI
#   requirements/runtime.lock  runtime + build requirements, same versions: the image
#   requirements/uv.lock       uv itself (scripts/uv.sh installs it; UPGRADE=uv moves it)
#   requirements/kubebench.lock  the `kubebench` extra alone (bench/kube_client.py), at dev.lock's
#                              versions where they overlap; never in a venv of the project
# `scripts/lockcheck.py` (part of `make test`) fails when pyproject.toml and the locks
# disagree.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
UV="$(bash scripts/uv.sh)"
export UV_PYTHON_DOWNLOADS=never

common=(--generate-hashes --universal --python-version 3.11 --custom-compile-command "make lock"
        --quiet)
upgrade=()
case "${UPGRADE:-}" in
  "") ;;
  all) upgrade=(--upgrade) ;;
  *) for p in $UPGRADE; do upgrade+=(--upgrade-package "$p"); done ;;
esac

build_requires() {
  python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))'
}

echo "==> requirements/uv.lock"
echo "uv" | "$UV" pip compile - "${common[@]}" "${upgrade[@]}" -o requirements/uv.lock
echo "==> requirements/dev.lock"
build_requires | "$UV" pip compile pyproject.toml - --extra dev "${common[@]}" "${upgrade[@]}" \
  -o requirements/dev.lock
echo "==> requirements/runtime.lock (the versions of dev.lock)"
build_requires | "$UV" pip compile pyproject.toml - -c requirements/dev.lock "${common[@]}" \
  -o requirements/runtime.lock
echo "==> requirements/kubebench.lock (bench/kube_client.py's clients, at dev.lock's versions)"
python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["kubebench"]))' \
  | "$UV" pip compile - -c requirements/dev.lock "${common[@]}" "${upgrade[@]}" \
    -o requirements/kubebench.lock
git --no-pager diff --stat -- requirements/ || true
