#!/usr/bin/env bash
# The typed-client check (docs/CLIENTS.md): the OpenAPI document of the example todo app from
# its files (`sluice openapi`, no server), TypeScript types from it (openapi-typescript), and
# src/todo.ts type-checked against them (tsc). Fails when the app's endpoints change in a way
# the client no longer fits. Needs node and npm; installs the pinned packages of
# package-lock.json with `npm ci`. Run from anywhere: bash clients/typescript/check.sh
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd ../.. && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/sluice-target}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

(cd "$ROOT" && cargo run --quiet --locked -- openapi flows/examples/todo) >"$WORK/todo.openapi.json"
npm ci --no-audit --no-fund --loglevel=error
npx --no-install openapi-typescript "$WORK/todo.openapi.json" -o src/todo-api.d.ts
npx --no-install tsc --noEmit -p .
echo "the todo client type-checks against the types of sluice openapi"
