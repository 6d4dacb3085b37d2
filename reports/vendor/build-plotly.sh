#!/usr/bin/env bash
# Rebuilds plotly-explain.min.js: plotly.js with only the trace types the reports draw
# (scatter, which core includes, bar, heatmap, image), through plotly.js's documented module
# entry points. Needs node and npm (the npm registry); run it from this folder.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund plotly.js@4.1.1 esbuild@0.25 buffer@6 >/dev/null
# plotly.js reads Node's `global` in a few places: in a browser that is `window`.
cat > entry.js <<'JS'
var Plotly = require('plotly.js/lib/core');
Plotly.register([require('plotly.js/lib/bar'), require('plotly.js/lib/heatmap'), require('plotly.js/lib/image')]);
module.exports = Plotly;
JS
node_modules/.bin/esbuild entry.js --bundle --minify --format=iife --global-name=Plotly --define:global=window \
  --banner:js='/*! plotly.js v4.1.1, partial bundle (scatter, bar, heatmap, image) built by build-plotly.sh | Copyright 2012-2026 Plotly, Inc. | MIT License: LICENSE-plotly.js.txt */' \
  --outfile="$here/plotly-explain.min.js" --log-level=warning
cp node_modules/plotly.js/LICENSE "$here/LICENSE-plotly.js.txt"
echo "wrote $here/plotly-explain.min.js ($(wc -c <"$here/plotly-explain.min.js") bytes)"
