#!/usr/bin/env node
// Builds llama.cpp's own server (llama-server) from the same patched tree the extension's engine is built from, so the
// typing benchmark can replay a trace against it the way llama.vscode uses it. Offline; output in .cache/llama-server/.
//   node scripts/buildLlamaServer.mjs [--gpu cuda] [--cuda-architectures 90a]
// Prints the binary's path on its last line.
import {spawnSync} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {getNodeLlamaCppDir, projectRoot} from "../native-kernels/sparseBuildPaths.mjs";

const args = process.argv.slice(2);
const option = (name) => {
    const at = args.indexOf(name);
    return at >= 0 ? args[at + 1] : undefined;
};
const gpu = option("--gpu") ?? "false";
if (gpu !== "false" && gpu !== "cuda") {
    console.error(`--gpu must be "false" or "cuda", not ${gpu}`);
    process.exit(2);
}

const tree = path.join(getNodeLlamaCppDir(), "llama", "llama.cpp");
if (!fs.existsSync(path.join(tree, "ggml", "src", "ggml-q4-s24"))) {
    // The tree is created and patched by the engine's build; without it the server would lack the sparse type.
    run(process.execPath, [path.join(projectRoot, "native-kernels", "build.mjs"), "--prepare-only"]);
}

const buildDir = path.join(projectRoot, ".cache", "llama-server", gpu === "cuda" ? "cuda" : "cpu");
const configure = [
    "-S", tree, "-B", buildDir, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
    // No network at build time: no prebuilt web UI download, no HTTPS client.
    "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_OPENSSL=OFF",
    "-DBUILD_SHARED_LIBS=OFF", "-DGGML_NATIVE=ON"
];
if (gpu === "cuda")
    configure.push("-DGGML_CUDA=ON", `-DCMAKE_CUDA_ARCHITECTURES=${option("--cuda-architectures") ?? "native"}`);
run("cmake", configure);
run("cmake", ["--build", buildDir, "--target", "llama-server", "-j", String(Math.max(1, os.availableParallelism()))]);

const binary = path.join(buildDir, "bin", "llama-server");
if (!fs.existsSync(binary)) {
    console.error(`the build finished but ${binary} is missing`);
    process.exit(1);
}
console.log(binary);

function run(command, commandArgs) {
    const result = spawnSync(command, commandArgs, {stdio: ["ignore", "inherit", "inherit"]});
    if (result.status !== 0) {
        console.error(`${command} ${commandArgs.join(" ")} failed (${result.error?.message ?? `exit ${result.status}`})`);
        process.exit(1);
    }
}
