#!/usr/bin/env node
// Builds node-llama-cpp's bundled llama.cpp with the Q4_S24 sparse weight type (native-kernels/).
//
//   node native-kernels/build.mjs [--gpu auto|cuda|false] [--native] [--force] [--check] [--prepare-only]
//
// Steps, all offline:
//   1. make sure node-llama-cpp's llama.cpp source tree exists; if not, extract it from the
//      package's git bundle with `node-llama-cpp source download --skipBuild` (that command
//      deletes and re-clones the tree, and re-applies node-llama-cpp's own patches);
//   2. apply native-kernels/patches/*.diff unless already applied (re-extracting once if the
//      tree is in neither state), and copy native-kernels/src into ggml/src/ggml-q4-s24/;
//      patches named node-llama-cpp-addon-*.diff change node-llama-cpp's addon (llama/addon/, not a
//      git tree): the files they touch are kept as *.sparse-complete-orig, so a changed patch is
//      applied to the originals again;
//   3. run `node-llama-cpp source build --gpu <choice>` unless the stamp says this exact input
//      (hash of native-kernels/src + patches + this script, node-llama-cpp version, gpu choice,
//      NODE_LLAMA_CPP_CMAKE_OPTION_* variables) was already built and the build is still there.
//
// GPU choice: --gpu, else env SPARSE_COMPLETE_GPU, else "auto". "auto" builds CUDA only when
// both nvcc and a GPU (nvidia-smi -L lists one) are present: a toolkit alone (a CI box, or a
// dev machine like ours with nvcc but no GPU) gets the CPU build, which is what can run there.
// CPU code: portable by default, like node-llama-cpp's own prebuilt binaries: GGML_NATIVE off, one ggml-cpu
// library per x86/ARM feature level (GGML_CPU_ALL_VARIANTS) and the best one for the running CPU picked at load
// time (GGML_BACKEND_DL). A build tuned to the build machine (-march=native, e.g. AVX-512) dies with SIGILL on an
// older CPU, and this build is what `npm run package` puts into the .vsix. --native (or SPARSE_COMPLETE_NATIVE=1)
// builds for this machine only: fewer libraries, a faster rebuild while iterating on kernels.
// --check only reports whether a rebuild is needed (exit 0: up to date, 3: rebuild needed).
// --prepare-only does steps 1 and 2 (a patched tree with our sources) without building, e.g. to carry
// the tree to another machine for a CUDA build.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { getNodeLlamaCppDir, nativeKernelsDir, projectRoot } from "./sparseBuildPaths.mjs";
import { compilersBuildAllCpuVariants } from "./cpuVariantCompilers.mjs";

const stampFileName = "q4_s24-build-stamp.json";
const treeSourceDirName = path.join("ggml", "src", "ggml-q4-s24");

function log(message) {
    console.log(`[native-kernels] ${message}`);
}

function fail(message) {
    console.error(`[native-kernels] error: ${message}`);
    process.exit(1);
}

function parseArgs(argv) {
    const args = {
        gpu: process.env.SPARSE_COMPLETE_GPU ?? "auto",
        native: process.env.SPARSE_COMPLETE_NATIVE === "1",
        force: false, check: false, prepareOnly: false
    };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        if (arg === "--force") args.force = true;
        else if (arg === "--check") args.check = true;
        else if (arg === "--prepare-only") args.prepareOnly = true;
        else if (arg === "--native") args.native = true;
        else if (arg === "--gpu") args.gpu = argv[++i];
        else if (arg.startsWith("--gpu=")) args.gpu = arg.slice("--gpu=".length);
        else fail(`unknown argument "${arg}"`);
    }
    if (!["auto", "cuda", "false"].includes(String(args.gpu)))
        fail(`--gpu must be auto, cuda or false (got "${args.gpu}")`);
    return args;
}

function findNodeLlamaCppDir() {
    try {
        return getNodeLlamaCppDir();
    } catch {
        fail("node-llama-cpp is not installed (run npm install first)");
    }
}

// The CMake options of a portable CPU build, as node-llama-cpp's build reads them (NODE_LLAMA_CPP_CMAKE_OPTION_*).
// Options the user set explicitly win; the stamp hashes the resulting variables.
const portableCmakeOptions = { GGML_NATIVE: "OFF", GGML_CPU_ALL_VARIANTS: "ON", GGML_BACKEND_DL: "ON" };
const cmakeOptionPrefix = "NODE_LLAMA_CPP_CMAKE_OPTION_";

function setPortableCmakeOptions() {
    // ggml has variant lists for x86 and ARM on Linux; elsewhere node-llama-cpp's default (native) stays. A user who
    // set GGML_NATIVE (node-llama-cpp's documented switch) gets exactly that.
    if (process.platform !== "linux" || !["x64", "arm64"].includes(process.arch)) return;
    if (process.env[cmakeOptionPrefix + "GGML_NATIVE"] != null) return;
    const compilers = compilersBuildAllCpuVariants();
    if (!compilers.ok) {
        log(`warning: ${compilers.reason}: the portable build (one CPU library per feature level) would fail, so this ` +
            "build is for this machine's CPU only (GGML_NATIVE); do not package it for other machines (gcc >= 11 builds the portable one)");
        return;
    }
    for (const [key, value] of Object.entries(portableCmakeOptions))
        process.env[cmakeOptionPrefix + key] ??= value;
}

function commandSucceeds(command, args) {
    const res = spawnSync(command, args, { stdio: "ignore", timeout: 15000 });
    return res.status === 0;
}

function resolveGpu(choice) {
    if (choice === "cuda" || choice === "false") return choice;
    const hasNvcc = commandSucceeds("nvcc", ["--version"]) ||
        (process.env.CUDA_PATH != null && fs.existsSync(path.join(process.env.CUDA_PATH, "bin", "nvcc")));
    const hasGpu = commandSucceeds("nvidia-smi", ["-L"]);
    return hasNvcc && hasGpu ? "cuda" : "false";
}

// Files that define the build: sources, patches and this script (not tests, benches or docs).
function listInputFiles() {
    const files = [path.join(nativeKernelsDir, "build.mjs")];
    for (const sub of ["src", "patches"]) {
        const dir = path.join(nativeKernelsDir, sub);
        if (!fs.existsSync(dir)) continue;
        for (const name of fs.readdirSync(dir).sort())
            if (fs.statSync(path.join(dir, name)).isFile()) files.push(path.join(dir, name));
    }
    return files;
}

function computeStamp(nlcVersion, gpu) {
    const hash = createHash("sha256");
    for (const file of listInputFiles()) {
        hash.update(path.relative(nativeKernelsDir, file).replaceAll("\\", "/") + "\0");
        hash.update(fs.readFileSync(file));
        hash.update("\0");
    }
    const cmakeEnv = Object.keys(process.env)
        .filter((key) => key.startsWith(cmakeOptionPrefix))
        .sort()
        .map((key) => `${key}=${process.env[key]}`);
    hash.update(cmakeEnv.join("\n"));
    return { inputsHash: hash.digest("hex"), nodeLlamaCppVersion: nlcVersion, gpu, cmakeEnv };
}

function runNode(args, cwd, env = process.env) {
    const res = spawnSync(process.execPath, args, { cwd, stdio: "inherit", env });
    if (res.error) throw res.error;
    return res.status ?? 1;
}

function git(treeDir, args) {
    return spawnSync("git", args, { cwd: treeDir, encoding: "utf8" });
}

function isTreePresent(llamaDir) {
    return fs.existsSync(path.join(llamaDir, "llama.cpp", ".git")) &&
        fs.existsSync(path.join(llamaDir, "llama.cpp.info.json"));
}

function extractTree(nlcDir, cliPath) {
    log("extracting llama.cpp from node-llama-cpp's git bundle (offline)");
    const status = runNode([cliPath, "source", "download", "--skipBuild", "--noUsageExample"], projectRoot);
    if (status !== 0 || !isTreePresent(path.join(nlcDir, "llama")))
        fail("`node-llama-cpp source download --skipBuild` failed; is llama/gitRelease.bundle present in node-llama-cpp?");
}

// Patches of node-llama-cpp's addon sources (applied in its llama/ folder) rather than of the llama.cpp tree.
const addonPatchPrefix = "node-llama-cpp-addon-";
const addonOriginalSuffix = ".sparse-complete-orig";

function patchFiles() {
    const dir = path.join(nativeKernelsDir, "patches");
    return fs.readdirSync(dir).filter((name) => name.endsWith(".diff") && !name.startsWith(addonPatchPrefix))
        .sort().map((name) => path.join(dir, name));
}

function addonPatchFiles() {
    const dir = path.join(nativeKernelsDir, "patches");
    return fs.readdirSync(dir).filter((name) => name.endsWith(".diff") && name.startsWith(addonPatchPrefix))
        .sort().map((name) => path.join(dir, name));
}

// "applied", "clean" (applies) or "conflict" for one patch against the tree.
function patchState(treeDir, patchPath) {
    if (git(treeDir, ["apply", "--reverse", "--check", patchPath]).status === 0) return "applied";
    if (git(treeDir, ["apply", "--check", patchPath]).status === 0) return "clean";
    return "conflict";
}

// git apply in node-llama-cpp's llama/ folder as a plain patch tool: the ceiling keeps git from taking the project
// repository around node_modules for the patch's base.
function gitOutsideRepo(dir, args) {
    return spawnSync("git", args, { cwd: dir, encoding: "utf8", env: { ...process.env, GIT_CEILING_DIRECTORIES: path.dirname(dir) } });
}

function filesOfPatch(patchPath) {
    return [...fs.readFileSync(patchPath, "utf8").matchAll(/^\+\+\+ b\/(.+)$/gm)].map((match) => match[1].trim());
}

// Every build starts from node-llama-cpp's original addon sources (kept as *.sparse-complete-orig the first time a
// patch touches a file) and applies all addon patches in order, so a changed, shortened or removed patch never leaves
// stale code behind, and two patches on one file compose.
function applyAddonPatches(llamaDir) {
    for (const backup of listFiles(path.join(llamaDir, "addon")).filter((file) => file.endsWith(addonOriginalSuffix)))
        fs.copyFileSync(backup, backup.slice(0, -addonOriginalSuffix.length));
    for (const patchPath of addonPatchFiles()) {
        const name = path.basename(patchPath);
        const files = filesOfPatch(patchPath).map((file) => path.join(llamaDir, file));
        for (const file of files)
            if (fs.existsSync(file) && !fs.existsSync(file + addonOriginalSuffix)) fs.copyFileSync(file, file + addonOriginalSuffix);
        const res = gitOutsideRepo(llamaDir, ["apply", patchPath]);
        if (res.status !== 0)
            fail(`${name} does not apply to node-llama-cpp's addon sources; reinstall node-llama-cpp (npm ci) or update the patch:\n${res.stderr}`);
        log(`applied ${name} to node-llama-cpp's addon`);
    }
}

function listFiles(dir) {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
        entry.isDirectory() ? listFiles(path.join(dir, entry.name)) : [path.join(dir, entry.name)]);
}

function applyPatches(treeDir) {
    for (const patchPath of patchFiles()) {
        const state = patchState(treeDir, patchPath);
        if (state === "applied") continue;
        if (state === "conflict") return false;
        const res = git(treeDir, ["apply", patchPath]);
        if (res.status !== 0) fail(`git apply ${path.basename(patchPath)} failed:\n${res.stderr}`);
        log(`applied ${path.basename(patchPath)}`);
    }
    return true;
}

function copySources(treeDir) {
    const dest = path.join(treeDir, treeSourceDirName);
    fs.rmSync(dest, { recursive: true, force: true });
    fs.mkdirSync(dest, { recursive: true });
    const srcDir = path.join(nativeKernelsDir, "src");
    for (const name of fs.readdirSync(srcDir)) {
        if (/\.(c|h|cu|cuh)$/.test(name)) fs.copyFileSync(path.join(srcDir, name), path.join(dest, name));
    }
}

function readJson(file) {
    try {
        return JSON.parse(fs.readFileSync(file, "utf8"));
    } catch {
        return null;
    }
}

function buildIsPresent(llamaDir, folderName) {
    if (folderName == null) return false;
    const folder = path.join(llamaDir, "localBuilds", folderName);
    return fs.existsSync(path.join(folder, "buildDone.status")) &&
        fs.existsSync(path.join(folder, "Release", "llama-addon.node"));
}

function isProcessAlive(pid) {
    try {
        process.kill(pid, 0);
        return true;
    } catch (err) {
        return err.code === "EPERM";
    }
}

// One build.mjs at a time per node-llama-cpp install: a second run (a parallel `npm install`, a test) waits,
// then finds the stamp up to date. A lock left by a process that died is taken over.
function withBuildLock(llamaDir, fn) {
    const lockDir = path.join(llamaDir, "q4_s24-build.lock");
    const pidFile = path.join(lockDir, "pid");
    let announced = false;
    for (;;) {
        try {
            fs.mkdirSync(lockDir);
            fs.writeFileSync(pidFile, String(process.pid));
            break;
        } catch (err) {
            if (err.code !== "EEXIST") throw err;
            let owner = NaN;
            try {
                owner = Number(fs.readFileSync(pidFile, "utf8"));
            } catch {
                // the owner has not written its pid yet
            }
            if (Number.isInteger(owner) && owner > 0 && !isProcessAlive(owner)) {
                fs.rmSync(lockDir, { recursive: true, force: true });
                continue;
            }
            if (!announced) log(`another build is running${Number.isInteger(owner) ? ` (pid ${owner})` : ""}; waiting for it`);
            announced = true;
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2000);
        }
    }
    const release = () => fs.rmSync(lockDir, { recursive: true, force: true });
    process.on("exit", release); // fail() exits without unwinding
    try {
        return fn();
    } finally {
        release();
        process.off("exit", release);
    }
}

function main() {
    const args = parseArgs(process.argv.slice(2));
    const nlcDir = findNodeLlamaCppDir();
    const nlcVersion = JSON.parse(fs.readFileSync(path.join(nlcDir, "package.json"), "utf8")).version;
    const cliPath = path.join(nlcDir, "dist", "cli", "cli.js");
    const llamaDir = path.join(nlcDir, "llama");
    const treeDir = path.join(llamaDir, "llama.cpp");
    const stampPath = path.join(llamaDir, stampFileName);
    const gpu = resolveGpu(String(args.gpu));
    if (!args.native) setPortableCmakeOptions();
    const stamp = computeStamp(nlcVersion, gpu);
    const isUpToDate = () => {
        const previous = readJson(stampPath);
        return previous != null &&
            previous.inputsHash === stamp.inputsHash &&
            previous.nodeLlamaCppVersion === stamp.nodeLlamaCppVersion &&
            previous.gpu === stamp.gpu &&
            buildIsPresent(llamaDir, previous.folderName) &&
            isTreePresent(llamaDir);
    };

    if (args.check) {
        const upToDate = isUpToDate();
        log(upToDate ? `up to date (${readJson(stampPath).folderName}, gpu ${gpu})` : `rebuild needed (gpu ${gpu})`);
        process.exit(upToDate ? 0 : 3);
    }
    withBuildLock(llamaDir, () => prepareAndBuild({ args, nlcDir, cliPath, llamaDir, treeDir, stampPath, gpu, stamp, isUpToDate }));
}

function prepareAndBuild({ args, nlcDir, cliPath, llamaDir, treeDir, stampPath, gpu, stamp, isUpToDate }) {
    const previous = readJson(stampPath);
    if (isUpToDate() && !args.force && !args.prepareOnly) {
        log(`up to date: ${path.join("localBuilds", previous.folderName)} (gpu ${gpu}); --force rebuilds`);
        return;
    }

    if (!isTreePresent(llamaDir)) extractTree(nlcDir, cliPath);
    if (!applyPatches(treeDir)) {
        log("the llama.cpp tree has changes our patch does not expect; extracting a fresh tree once");
        extractTree(nlcDir, cliPath);
        if (!applyPatches(treeDir)) fail("our patch does not apply to a fresh llama.cpp tree: native-kernels/patches needs updating");
    }
    copySources(treeDir);
    applyAddonPatches(llamaDir);
    if (args.prepareOnly) {
        log(`prepared ${path.relative(projectRoot, treeDir)} (patched, sources copied); not building`);
        return;
    }

    log(`building llama.cpp with Q4_S24, gpu ${gpu} (several minutes)`);
    fs.rmSync(stampPath, { force: true });
    // The folder keeps its plain name (linux-x64, linux-x64-cuda) whatever CMake options were set, so that
    // getLlama() in the engine, which does not see these variables, finds it. node-llama-cpp honours that flag only
    // with CI set (elsewhere CI only switches its log style).
    const status = runNode([cliPath, "source", "build", "--gpu", gpu, "--noUsageExample",
        "--noCustomCmakeBuildOptionsInBinaryFolderName"], projectRoot, { ...process.env, CI: "true" });
    if (status !== 0) fail(`node-llama-cpp source build failed (exit ${status})`);

    const lastBuild = readJson(path.join(llamaDir, "lastBuild.json"));
    if (lastBuild?.folderName == null || !buildIsPresent(llamaDir, lastBuild.folderName))
        fail("the build finished but its output folder is missing");
    fs.writeFileSync(stampPath, JSON.stringify({ ...stamp, folderName: lastBuild.folderName, builtAt: new Date().toISOString() }, null, 4) + "\n");
    log(`built ${path.join("localBuilds", lastBuild.folderName)}`);
}

main();
