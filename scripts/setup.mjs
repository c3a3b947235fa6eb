#!/usr/bin/env node
// Runs after `npm install`: builds llama.cpp with our sparse kernels (offline, skipped when up to date) and bundles
// the extension, engine and CLIs into dist/. Everything it needs ships inside the installed packages.
import {spawnSync} from "node:child_process";
import * as path from "node:path";
import {fileURLToPath} from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function run(description, args) {
    console.log(`[setup] ${description}`);
    const result = spawnSync(process.execPath, args, {cwd: root, stdio: "inherit"});
    if (result.status !== 0) {
        console.error(`[setup] ${description} failed (exit ${result.status ?? result.signal})`);
        process.exit(result.status ?? 1);
    }
}

run("building llama.cpp with the 2:4 sparse kernels (native-kernels/)", ["native-kernels/build.mjs"]);
run("bundling dist/", ["esbuild.mjs"]);
