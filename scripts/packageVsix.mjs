#!/usr/bin/env node
// `npm run package`: builds sparse-complete.vsix. The runtime files are staged in .cache/vsix/ first (the bundles,
// models, media, and node-llama-cpp with only what runs: its JS, its dependencies, our local llama.cpp build and
// the prebuilt CPU binary as a fallback), so vsce does not walk llama.cpp's source tree or the GPU prebuilts.
import {execFileSync, spawnSync} from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import {fileURLToPath} from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const staging = path.join(root, ".cache", "vsix");
const output = path.join(root, "sparse-complete.vsix");

/** Paths (relative to a package) that are never needed at run time. */
const skipped = [
    /^node_modules\/node-llama-cpp\/llama\/(llama\.cpp|gitRelease\.bundle|xpack|toolchains)(\/|$)/,
    /^node_modules\/node-llama-cpp\/templates(\/|$)/,
    // Of a local build, node-llama-cpp loads Release/ and checks buildDone.status; the rest is CMake's work tree.
    /^node_modules\/node-llama-cpp\/llama\/localBuilds\/[^/]+\/(?!Release(\/|$)|buildDone\.status$)/,
    /^node_modules\/node-llama-cpp\/llama\/localBuilds\/[^/]+\.lock$/,
    /^node_modules\/@node-llama-cpp\/(?!linux-x64(\/|$))[^/]+(\/|$)/,
    // An optional peer of node-llama-cpp, used only by its CLI.
    /^node_modules\/typescript(\/|$)/,
    /\.map$/,
    /(^|\/)(test|tests|__tests__|docs?)\//
];

function copyTree(from, to, relative) {
    if (skipped.some((pattern) => pattern.test(relative)))
        return;
    const stat = fs.lstatSync(from);
    if (stat.isDirectory()) {
        fs.mkdirSync(to, {recursive: true});
        for (const entry of fs.readdirSync(from))
            copyTree(path.join(from, entry), path.join(to, entry), `${relative}/${entry}`);
    } else if (stat.isFile())
        fs.copyFileSync(from, to);
}

execFileSync(process.execPath, [path.join(root, "esbuild.mjs"), "--production"], {cwd: root, stdio: "inherit"});
fs.rmSync(staging, {recursive: true, force: true});
fs.mkdirSync(staging, {recursive: true});

const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
delete manifest.devDependencies;
delete manifest.allowScripts;
manifest.scripts = {};
fs.writeFileSync(path.join(staging, "package.json"), JSON.stringify(manifest, null, 2));
// The repository's README shows screenshots by relative path, which an installed extension cannot resolve; the
// packaged README leaves them out (its relative links stay as written: --no-rewrite-relative-links).
fs.writeFileSync(path.join(staging, "README.md"), fs.readFileSync(path.join(root, "README.md"), "utf8").replace(/^!\[[^\]]*\]\([^)]*\)\n\n?/gm, ""));
if (fs.existsSync(path.join(root, "LICENSE")))
    fs.copyFileSync(path.join(root, "LICENSE"), path.join(staging, "LICENSE"));
for (const dir of ["media", "models", "samples"])
    if (fs.existsSync(path.join(root, dir)))
        copyTree(path.join(root, dir), path.join(staging, dir), dir);
// The evaluation's reference models (variant "eval-reference") stay out: only what the extension can select ships.
const modelManifest = JSON.parse(fs.readFileSync(path.join(root, "models", "manifest.json"), "utf8"));
const shipped = modelManifest.models.filter((model) => model.variant === "sparse" || model.variant === "dense");
for (const model of modelManifest.models.filter((model) => !shipped.includes(model)))
    fs.rmSync(path.join(staging, "models", model.file), {force: true});
fs.writeFileSync(path.join(staging, "models", "manifest.json"), JSON.stringify({...modelManifest, models: shipped}, null, 2) + "\n");
fs.mkdirSync(path.join(staging, "dist"));
for (const file of fs.readdirSync(path.join(root, "dist")))
    if (/\.(cjs|mjs)$/.test(file))
        fs.copyFileSync(path.join(root, "dist", file), path.join(staging, "dist", file));

// The production dependency closure, as npm resolved it.
const dependencyDirs = execFileSync("npm", ["ls", "--omit=dev", "--all", "--parseable"], {cwd: root, encoding: "utf8"})
    .split("\n").map((line) => line.trim()).filter((line) => line.length > 0 && line !== root);
for (const dir of dependencyDirs) {
    const relative = path.relative(root, dir).split(path.sep).join("/");
    if (!fs.existsSync(path.join(staging, relative)))
        copyTree(dir, path.join(staging, relative), relative);
}
fs.writeFileSync(path.join(staging, ".vscodeignore"), "**/*.map\n**/*.ts\n!**/*.d.ts\n");

const vsce = path.join(root, "node_modules", "@vscode", "vsce", "vsce");
const result = spawnSync(process.execPath, [vsce, "package", "--allow-missing-repository", "--no-rewrite-relative-links", "-o", output], {cwd: staging, stdio: "inherit"});
if (result.status !== 0)
    process.exit(result.status ?? 1);
console.log(`packaged ${path.relative(process.cwd(), output)} (${(fs.statSync(output).size / 1e6).toFixed(1)} MB)`);
