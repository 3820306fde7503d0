#!/usr/bin/env bash
# Regenerates docs/configuration.md and config/config.example.yaml from the option table without a
# full build (the test suite fails when they drift).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d -p .)
trap 'rm -rf "$out"' EXIT
# `src/...` imports: resolved from the root when compiling, from the output folder when running.
npx tsc src/config/reference.ts src/config/example.ts --outDir "$out" --rootDir . --baseUrl . --module commonjs --target es2022 --esModuleInterop --skipLibCheck
NODE_PATH="$(pwd)/$out" node -e '
const fs = require("fs"); const dir = process.argv[1];
fs.writeFileSync("docs/configuration.md", require(dir + "/src/config/reference.js").renderConfigurationReference());
fs.writeFileSync("config/config.example.yaml", require(dir + "/src/config/example.js").renderConfigExample());' "$(pwd)/$out"
