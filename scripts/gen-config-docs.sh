#!/usr/bin/env bash
# Regenerates docs/configuration.md and config/config.example.yaml from the option table without a
# full build (the test suite fails when they drift).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d -p .)
trap 'rm -rf "$out"' EXIT
npx tsc src/config/reference.ts src/config/example.ts --outDir "$out" --module commonjs --target es2022 --esModuleInterop --skipLibCheck
node -e '
const fs = require("fs"); const dir = process.argv[1];
fs.writeFileSync("docs/configuration.md", require(dir + "/reference.js").renderConfigurationReference());
fs.writeFileSync("config/config.example.yaml", require(dir + "/example.js").renderConfigExample());' "$(pwd)/$out"
