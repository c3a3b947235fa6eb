/**
 * Headless main job: `npm run complete -- FILE:LINE:COL [--model sparse|dense|PATH] [--device auto|gpu|cpu] [--json]`
 * prints the completion the extension would show at that position, through the same core and engine process.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import {fileURLToPath} from "node:url";
import {CompletionPipeline, type RequestRecord} from "../core/CompletionPipeline.js";
import {EngineClient} from "../core/EngineClient.js";
import {chooseModel, projectPaths} from "../core/modelCatalog.js";
import {parseSettings, type CompletionSettings} from "../core/settings.js";
import {modelSettingsFromArgument, offsetOfLineColumn, parseArgs, runCliMain} from "./parseArgs.js";

const usage = "usage: npm run complete -- FILE:LINE:COL [--model sparse|dense|PATH] [--device auto|gpu|cpu] [--max-tokens N] [--json]";

async function main(): Promise<number> {
    const {positional, flags} = parseArgs(process.argv.slice(2), ["json", "verbose"]);
    const target = positional[0];
    const match = target == null ? null : /^(.*):(\d+):(\d+)$/.exec(target);
    if (match == null) {
        console.error(usage);
        return 2;
    }
    const [, file, line, column] = match as unknown as [string, string, string, string];
    const model = String(flags.get("model") ?? "sparse");
    const {settings, problems} = parseSettings({
        ...modelSettingsFromArgument(model),
        device: flags.get("device"),
        maxTokens: flags.has("max-tokens") ? Number(flags.get("max-tokens")) : undefined
    });
    for (const problem of problems)
        console.error(problem);
    const effective: CompletionSettings = {...settings, debounceMs: 0};

    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
    const text = await fs.readFile(file, "utf8");
    const offset = offsetOfLineColumn(text, Number(line), Number(column));
    const choice = await chooseModel(root, effective);
    const verbose = flags.has("verbose");
    const engine = new EngineClient({
        enginePath: projectPaths(root).engineEntry,
        log: (level, message) => {
            if (verbose || level === "error")
                console.error(`${level}: ${message}`);
        }
    });
    try {
        const loadStarted = performance.now();
        const info = await engine.load({modelPath: choice.path, device: effective.device, contextSize: 4096, sequences: 1});
        const loadMs = performance.now() - loadStarted;
        let record: RequestRecord | undefined;
        const pipeline = new CompletionPipeline(engine, () => effective, (r) => { record = r; });
        await pipeline.complete({key: path.resolve(file), text, offset}, undefined, {skipDebounce: true});
        if (record?.outcome === "failed")
            throw record.error;
        // Also an empty completion (nothing useful after post-processing) has its stats.
        const result = record?.result;
        const report = {
            file, line: Number(line), column: Number(column),
            model: {variant: choice.variant, path: choice.path, name: info.name, backend: info.backend, weightTypes: info.weightTypes, fallbackReason: info.fallbackReason},
            completion: result?.text ?? "",
            multiline: result?.multiline ?? false,
            stopReason: result?.stopReason,
            stats: result?.stats,
            latencyMs: result?.latencyMs,
            loadMs
        };
        if (flags.has("json"))
            console.log(JSON.stringify(report, null, 2));
        else {
            console.log(`model: ${info.name} (${choice.variant}, ${info.weightTypes.join("/")}) on ${info.backend}${info.fallbackReason ? ` (${info.fallbackReason})` : ""}, loaded in ${loadMs.toFixed(0)} ms`);
            console.log(`position: ${file}:${line}:${column}`);
            console.log("completion:");
            console.log(report.completion.length > 0 ? report.completion : "(none)");
            if (result?.stats != null)
                console.log(`latency: ${result.latencyMs.toFixed(1)} ms total, first token ${result.stats.timeToFirstTokenMs.toFixed(1)} ms; ` +
                    `prompt ${result.stats.promptTokens} tokens (${result.stats.evaluatedPromptTokens} evaluated), ${result.stats.generatedTokens} generated, stop: ${result.stopReason}`);
        }
        return 0;
    } finally {
        await engine.dispose();
    }
}

runCliMain(main);
