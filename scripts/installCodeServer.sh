#!/usr/bin/env bash
# Installs code-server (a real VS Code served over HTTP) into .cache/code-server for the end-to-end tests, offline
# from the npm registry: its own postinstall wants downloads, so scripts are off, ripgrep comes from Debian, and the
# native modules are rebuilt here. code-server 4.100.x is the last line that runs on Node 20.
# Debian packages it needs (and Chromium for the tests) are installed with apt-get when missing.
set -euo pipefail
packages="libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config ripgrep chromium"
missing=""
for package in $packages; do dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"; done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing Debian packages:$missing"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null \
            || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null; }
    else
        echo "missing Debian packages:$missing (install them with apt-get)" >&2; exit 1
    fi
fi
version=4.100.3
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.cache/code-server"
stamp="$dir/.installed-$version"
[ -f "$stamp" ] && exit 0
rg_bin="$(command -v rg || true)"
[ -n "$rg_bin" ] || { echo "ripgrep (rg) is needed: apt-get install ripgrep" >&2; exit 1; }
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
echo '{"name": "code-server-for-e2e", "private": true}' > package.json
npm install --ignore-scripts --no-audit --no-fund "code-server@$version"
vscode="$dir/node_modules/code-server/lib/vscode"
(cd "$vscode" && npm install --omit=dev --ignore-scripts --no-audit --no-fund)
# The built-in TypeScript extension needs its shared typescript package, or it reports a missing tsserver.
(cd "$vscode/extensions" && npm install --omit=dev --ignore-scripts --no-audit --no-fund)
mkdir -p "$vscode/node_modules/@vscode/ripgrep/bin" && cp "$rg_bin" "$vscode/node_modules/@vscode/ripgrep/bin/rg"
gyp="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")/node_modules/node-gyp/bin/node-gyp.js"
# Build against the headers of the Node that runs (no header download).
nodedir="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
[ -f "$nodedir/include/node/node.h" ] || { echo "Node headers not found under $nodedir/include/node" >&2; exit 1; }
for module in @parcel/watcher @vscode/deviceid @vscode/spdlog native-watchdog node-pty kerberos; do
    (cd "$vscode/node_modules/$module" && node "$gyp" rebuild --nodedir="$nodedir" >/dev/null)
done
(cd "$dir" && npm_config_nodedir="$nodedir" npm rebuild argon2 >/dev/null)
touch "$stamp"
echo "code-server $version installed in $dir"
