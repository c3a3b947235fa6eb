// Bundles the extension (CommonJS, loaded by VS Code), the engine process and the CLIs (ES modules, run by Node).
// node-llama-cpp stays external: it ships native binaries and resolves them relative to its own files.
import * as esbuild from "esbuild";

const production = process.argv.includes("--production");
const watch = process.argv.includes("--watch");

const common = {
    bundle: true,
    platform: "node",
    target: "node20",
    sourcemap: !production,
    minify: production,
    logLevel: "info",
    external: ["vscode", "node-llama-cpp"]
};

// ES module bundles may pull in CommonJS code that calls require(); give them one.
const esmBanner = {js: "import {createRequire as __createRequire} from 'node:module'; const require = __createRequire(import.meta.url);"};

const builds = [
    {...common, entryPoints: {extension: "src/vscode/extension.ts"}, format: "cjs", outExtension: {".js": ".cjs"}, outdir: "dist"},
    {
        ...common,
        entryPoints: {
            engineHost: "src/engine/engineHost.ts",
            completeCli: "src/cli/completeCli.ts",
            benchCli: "src/cli/benchCli.ts",
            typingBenchCli: "src/cli/typingBenchCli.ts",
            decodeBenchCli: "src/cli/decodeBenchCli.ts",
            evalCli: "src/cli/evalCli.ts",
            evalCombineCli: "src/cli/evalCombineCli.ts",
            modelTools: "src/cli/modelTools.ts",
            importWorker: "src/import/importWorker.ts"
        },
        format: "esm",
        outExtension: {".js": ".mjs"},
        outdir: "dist",
        banner: esmBanner
    }
];

// The extension-host test suite (npm run test:vscode): CommonJS like the extension, mocha resolved at run time.
if (process.argv.includes("--vscode-tests"))
    builds.push({...common, external: [...common.external, "mocha"], entryPoints: {index: "test/vscode/suite/index.ts"},
        format: "cjs", outExtension: {".js": ".cjs"}, outdir: "dist/test/vscode"});

if (watch) {
    const contexts = await Promise.all(builds.map((options) => esbuild.context(options)));
    await Promise.all(contexts.map((context) => context.watch()));
} else {
    await Promise.all(builds.map((options) => esbuild.build(options)));
}
