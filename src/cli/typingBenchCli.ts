/**
 * `npm run bench:typing -- [--model sparse|dense|PATH]... [--device auto|gpu|cpu] [--llama-server PATH] [--server-slots N]
 *   [--keystrokes N] [--seed N] [--speed X] [--source FILE]... [--pacing real-time|one-by-one] [--fixed-tokens N]
 *   [--context-tokens N]
 *   [--save-trace FILE] [--out REPORT.json] [--json]`
 *
 * Replays a generated typing trace (real files retyped keystroke by keystroke) through the extension's completion
 * pipeline and engine with caching on and off and, given a llama-server binary (`node scripts/buildLlamaServer.mjs`),
 * against llama.cpp's server on the same trace and model, the way llama.vscode uses it. `--pacing` keeps one pacing
 * (both by default); `--fixed-tokens N` makes every completion exactly N tokens long on both paths (the GPU rows'
 * 64-token completion); `--context-tokens N` is the extension's prompt budget setting (default 1536).
 */
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import {fileURLToPath} from "node:url";
import {generateTypingTrace, type TraceFile} from "../bench/generateTypingTrace.js";
import {LlamaServerBackend, startLlamaServer} from "../bench/LlamaServerBackend.js";
import {replayTypingTrace, type TypingReplayResult} from "../bench/replayTypingTrace.js";
import {EngineClient} from "../core/EngineClient.js";
import {contextSizeFor, ENGINE_SEQUENCES} from "../core/ModelSession.js";
import {mathThreadsFor} from "../core/mathThreads.js";
import {chooseModel, projectPaths, type ModelChoice} from "../core/modelCatalog.js";
import {defaultSettings, parseSettings} from "../core/settings.js";
import {modelSettingsFromArgument, parseArgs, progressLogger, runCliMain} from "./parseArgs.js";

interface TypingBenchRow {
    readonly model: string;
    readonly backend: string;
    readonly path: "engine" | "llama-server";
    readonly caching: boolean;
    readonly pacing: "real-time" | "one-by-one";
    readonly result: TypingReplayResult;
}

async function main(): Promise<number> {
    const {flags, lists, flag} = parseArgs(process.argv.slice(2), ["json"]);
    const json = flags.has("json");
    const progress = progressLogger(json);
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
    const contextTokens = flag("context-tokens");
    const {settings: parsed, problems} = parseSettings({device: flag("device"),
        ...(contextTokens != null ? {contextTokens: Number(contextTokens)} : {})});
    if (problems.length > 0)
        throw new Error(problems.join("; "));
    const settings = {...defaultSettings, device: parsed.device, contextTokens: parsed.contextTokens};
    const speed = Number(flag("speed") ?? "1");
    if (!(speed > 0))
        throw new Error("--speed must be a positive number");
    const pacingFlag = flag("pacing");
    if (pacingFlag != null && pacingFlag !== "real-time" && pacingFlag !== "one-by-one")
        throw new Error("--pacing must be real-time or one-by-one");
    const keeps = (pacing: "real-time" | "one-by-one") => pacingFlag == null || pacingFlag === pacing;
    const fixedLengthTokens = flag("fixed-tokens") != null ? Number(flag("fixed-tokens")) : undefined;
    if (fixedLengthTokens != null && !(Number.isInteger(fixedLengthTokens) && fixedLengthTokens > 0))
        throw new Error("--fixed-tokens must be a positive integer");
    const replay = {speed, ...(fixedLengthTokens != null ? {fixedLengthTokens} : {})};

    const samplesDir = projectPaths(root).samplesDir;
    const sourcePaths = lists.get("source") ?? [
        path.join(samplesDir, "benchmark-source.ts.txt"),
        ...(await fs.readdir(path.join(samplesDir, "typing"))).sort().map((name) => path.join(samplesDir, "typing", name))
    ];
    const sources: TraceFile[] = await Promise.all(sourcePaths.map(async (file) => ({
        key: `file:///${path.basename(file).replace(/\.txt$/, "")}`,
        text: await fs.readFile(file, "utf8")
    })));
    const trace = generateTypingTrace(sources, {seed: Number(flag("seed") ?? "1"), keystrokes: Number(flag("keystrokes") ?? "300")});
    if (flag("save-trace") != null)
        await fs.writeFile(flag("save-trace")!, JSON.stringify(trace));
    const typed = trace.events.filter((event) => event.kind !== "move").length;
    progress(`trace: ${typed} keystrokes over ${(trace.events.at(-1)!.atMs / 1000).toFixed(0)} s in ${sources.length} files (seed ${trace.seed}), replayed at ${speed}x`);

    const models: ModelChoice[] = [];
    for (const model of lists.get("model") ?? ["sparse", "dense"])
        models.push(await chooseModel(root, modelSettingsFromArgument(model)));
    const contextSize = contextSizeFor(settings);
    const rows: TypingBenchRow[] = [];
    const engine = new EngineClient({enginePath: projectPaths(root).engineEntry, log: (level, message) => {
        if (level === "error")
            console.error(message);
    }});
    try {
        for (const choice of models) {
            const label = choice.variant === "custom" ? path.basename(choice.path) : choice.variant;
            const info = await engine.load({modelPath: choice.path, device: settings.device, contextSize, sequences: ENGINE_SEQUENCES});
            for (const [caching, pacing] of [[true, "real-time"], [false, "real-time"], [true, "one-by-one"]] as const) {
                if (!keeps(pacing))
                    continue;
                progress(`${label} (${info.backend}): engine, caching ${caching ? "on" : "off"}, ${pacing}...`);
                const result = await replayTypingTrace({trace, backend: engine, settings, caching, pacing, ...replay});
                rows.push({model: label, backend: info.backend, path: "engine", caching, pacing, result});
            }
            await engine.unload();
            const serverBinary = flag("llama-server");
            if (serverBinary != null) {
                const gpu = info.backend !== "cpu";
                const slots = Number(flag("server-slots") ?? ENGINE_SEQUENCES);
                const server = await startLlamaServer({binary: serverBinary, modelPath: choice.path, gpu,
                    threads: mathThreadsFor(os.availableParallelism()), contextSize: contextSize * slots, slots});
                try {
                    for (const pacing of ["real-time", "one-by-one"] as const) {
                        if (!keeps(pacing))
                            continue;
                        progress(`${label} (${info.backend}): llama-server ${info.supportsFim ? "/infill" : "/completion"}, cache_prompt, ${pacing}...`);
                        const backend = new LlamaServerBackend(server.url, {fim: info.supportsFim});
                        const result = await replayTypingTrace({trace, backend, settings, caching: true, pacing, ...replay});
                        rows.push({model: label, backend: info.backend, path: "llama-server", caching: true, pacing, result});
                    }
                } finally {
                    await server.stop();
                }
            }
        }
    } finally {
        await engine.dispose();
    }
    const report = JSON.stringify({version: 1, trace: {seed: trace.seed, keystrokes: typed, files: sourcePaths.map((file) => path.relative(root, file)),
        durationMs: trace.events.at(-1)!.atMs, speed}, fixedLengthTokens: fixedLengthTokens ?? null, settings, machine: {cpu: os.cpus()[0]?.model, cores: os.cpus().length}, rows}, null, 2);
    if (flag("out") != null)
        await fs.writeFile(flag("out")!, report);
    console.log(json ? report : renderTypingBenchTable(rows));
    for (const row of rows)
        if (row.result.firstFailure != null)
            console.error(`${row.model} ${row.path}: ${row.result.failed} requests failed, first: ${row.result.firstFailure}`);
    return rows.some((row) => row.result.failed > 0) ? 1 : 0;
}

function renderTypingBenchTable(rows: readonly TypingBenchRow[]): string {
    const ms = (value: number) => Number.isFinite(value) ? value.toFixed(1) : "-";
    const lines = [
        "| model | path | caching | pacing | keystrokes | answered / from cache / cancelled | prompt tokens per answer | evaluated per answer p50 / p95 | prompt tokens reused | first token p50 / p95 ms | completion p50 / p95 ms | tokens generated p50 |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    ];
    for (const {model, backend, path: via, caching, pacing, result: r} of rows)
        lines.push(`| ${model} (${backend}) | ${via} | ${caching ? "on" : "off"} | ${pacing} | ${r.requests} | ${r.modelAnswers} / ${r.fromCache} / ${r.cancelled}` +
            ` | ${Math.round(r.promptTokens / Math.max(1, r.modelAnswers))} | ${r.evaluatedTokensPerAnswer.median.toFixed(0)} / ${r.evaluatedTokensPerAnswer.p95.toFixed(0)}` +
            ` | ${(r.reusedPromptShare * 100).toFixed(1)}% | ${ms(r.timeToFirstTokenMs.median)} / ${ms(r.timeToFirstTokenMs.p95)}` +
            ` | ${ms(r.completionMs.median)} / ${ms(r.completionMs.p95)} | ${r.generatedTokensPerAnswer.median.toFixed(0)} |`);
    return lines.join("\n");
}

runCliMain(main);
