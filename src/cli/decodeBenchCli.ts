/**
 * `npm run bench:decode -- [--model sparse|dense|PATH]... [--device auto|gpu|cpu] [--threads N] [--tokens 128]
 *     [--prompt-tokens 256] [--rounds 5] [--warmup 1] [--llama-bench PATH | --no-llama-bench] [--no-engine]
 *     [--sequences 4] [--json] [--out DIR]`
 *
 * Decode speed of one model through three paths in one run, interleaved round by round: llama.cpp's llama-bench
 * (tg at the prompt's depth), node-llama-cpp's bare `sequence.evaluate` greedy loop in this process (node-llama-cpp's
 * stock round trips, and our inline decode when the addon has the patch), and the engine process the extension uses.
 * Prints tokens/s, ms/token and each path's ratio to llama-bench. Without --model: the bundled dense model.
 */
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import {fileURLToPath} from "node:url";
import {openBareDecodeLoop, type BareDecodeLoop} from "../bench/bareDecodeLoop.js";
import {describeOutputDifferences, renderDecodeBenchMarkdown, runInterleaved, summarizeDecodePaths, type DecodeBenchReport, type DecodePath,
    type PathOutput} from "../bench/decodeBench.js";
import {decodeResultOf, findLlamaBench, llamaBenchDecodeArgs, runLlamaBench} from "../bench/llamaBench.js";
import {distributionOf} from "../bench/statistics.js";
import {EngineClient} from "../core/EngineClient.js";
import type {DecodeAheadCounts} from "../core/engineProtocol.js";
import {chooseModel, projectPaths} from "../core/modelCatalog.js";
import {parseSettings} from "../core/settings.js";
import {INLINE_DECODE_MODE, PIPELINED_DECODE_MODE, SAMPLED_IN_DECODE_MODE, STOCK_DECODE_MODE, type InlineDecodeMode} from "../engine/inlineDecode.js";
import {modelSettingsFromArgument, parseArgs, progressLogger, runCliMain} from "./parseArgs.js";

/** The engine's context shape (runBenchmark's load), used by the bare loop too. */
const CONTEXT_SIZE = 4096;
const SEQUENCES = 4;
const BATCH_SIZE = 1024;

function positiveInteger(value: string | undefined, fallback: number, name: string): number {
    if (value == null)
        return fallback;
    const number = Number(value);
    if (!Number.isInteger(number) || number < 1)
        throw new Error(`--${name} must be a positive integer, not "${value}"`);
    return number;
}

async function main(): Promise<number> {
    const {flags, lists, flag} = parseArgs(process.argv.slice(2), ["json", "no-llama-bench", "no-engine"]);
    const json = flags.has("json");
    const progress = progressLogger(json);
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
    const {settings} = parseSettings({device: flag("device")});
    const tokens = positiveInteger(flag("tokens"), 128, "tokens");
    const promptTokens = positiveInteger(flag("prompt-tokens"), 256, "prompt-tokens");
    const rounds = positiveInteger(flag("rounds"), 5, "rounds");
    const warmup = flag("warmup") === "0" ? 0 : positiveInteger(flag("warmup"), 1, "warmup");
    const threadsFlag = flag("threads") != null ? positiveInteger(flag("threads"), 1, "threads") : undefined;
    // Both node-llama-cpp paths hold the engine's number of sequences unless told otherwise (llama-bench uses one).
    const sequences = positiveInteger(flag("sequences"), SEQUENCES, "sequences");
    const llamaBench = flags.has("no-llama-bench") ? undefined : flag("llama-bench") ?? findLlamaBench(root, settings.device);
    const sourceText = await fs.readFile(path.join(projectPaths(root).samplesDir, "benchmark-source.ts.txt"), "utf8");
    const log = (level: "info" | "warn" | "error", message: string) => {
        if (level === "error")
            console.error(message);
    };

    const reports: DecodeBenchReport[] = [];
    for (const modelArg of lists.get("model") ?? ["dense"]) {
        const choice = await chooseModel(root, modelSettingsFromArgument(modelArg));
        const notes: string[] = [];
        progress(`${choice.path}: loading node-llama-cpp in this process`);
        const loop: BareDecodeLoop = await openBareDecodeLoop({modelPath: choice.path, device: settings.device, threads: threadsFlag,
            promptText: sourceText, promptTokens, contextSize: CONTEXT_SIZE, sequences, batchSize: BATCH_SIZE, log});
        if (sequences !== SEQUENCES)
            notes.push(`--sequences ${sequences}: the node-llama-cpp loops' and the engine's contexts hold ${sequences} sequence(s); the extension's engine keeps ${SEQUENCES}`);
        const engines: EngineClient[] = [];
        try {
            const paths: DecodePath[] = [];
            if (llamaBench != null) {
                const args = llamaBenchDecodeArgs({modelPath: choice.path, tokens, depth: loop.promptTokens, threads: loop.threads,
                    gpuLayers: loop.backend === "cpu" ? 0 : undefined, repetitions: 1, batchSize: BATCH_SIZE});
                notes.push(`llama-bench: ${llamaBench} ${args.join(" ")} (one repetition per round, after its own warm-up token)`);
                paths.push({id: "llama-bench", label: "llama-bench tg (no sampling)", measure: async () =>
                    1000 / decodeResultOf(await runLlamaBench(llamaBench, args)).averageTokensPerSecond});
            } else {
                notes.push("llama-bench not run: give --llama-bench PATH, or build it (npm run build:llama-server, then " +
                    "cmake --build .cache/llama-server/<cpu|cuda> --target llama-bench)");
            }
            const outputs: PathOutput[] = [];
            const bare = (id: string, label: string, mode: InlineDecodeMode): DecodePath => ({id, label, measure: async () => {
                const run = await loop.run(tokens, mode);
                outputs.push({pathId: id, output: run.tokens});
                return run.msPerToken;
            }});
            paths.push(bare("node-stock", "node-llama-cpp evaluate loop, stock (worker round trips)", STOCK_DECODE_MODE));
            if (loop.inlineDecodeSupported)
                paths.push(bare("node-inline", "node-llama-cpp evaluate loop, inline decode", INLINE_DECODE_MODE));
            // Decoding ahead overlaps nothing on the CPU (the queued decode runs inside the sampling call).
            if (loop.inlineDecodeSupported && loop.decodeAheadSupported && loop.backend !== "cpu")
                paths.push(bare("node-pipelined", "node-llama-cpp evaluate loop, inline decode + decode ahead", PIPELINED_DECODE_MODE));
            if (loop.inlineDecodeSupported && loop.greedyInDecodeSupported) {
                const ahead = loop.decodeAheadSupported && loop.backend !== "cpu";
                paths.push(bare("node-sampled-in-decode", `node-llama-cpp evaluate loop, inline decode${ahead ? " + decode ahead" : ""} + greedy in the decode`,
                    ahead ? SAMPLED_IN_DECODE_MODE : {...INLINE_DECODE_MODE, greedyInDecode: true}));
            }
            if (!loop.inlineDecodeSupported)
                notes.push("the loaded addon lacks the inline-decode patch (node-llama-cpp's prebuilt binary, or built before it): " +
                    "run npm run build:native");
            const engineTexts: PathOutput[] = [];
            // Per engine path, one value per completion (warm-up included): its own work between tokens (ms per token)
            // and the ms from its last token to the completion's end; decode-ahead counts summed over its completions.
            const engineStats: {id: string, ownWorkMs: number[], tailMs: number[], decodedAhead?: DecodeAheadCounts}[] = [];
            if (!flags.has("no-engine")) {
                const openEngine = async (id: string, label: string, decodeAhead: boolean, greedyInDecode?: boolean) => {
                    const client = new EngineClient({enginePath: projectPaths(root).engineEntry, log});
                    engines.push(client);
                    progress(`${choice.path}: loading the engine process (${id})`);
                    const info = await client.load({modelPath: choice.path, device: settings.device, contextSize: CONTEXT_SIZE, sequences, decodeAhead,
                        ...(greedyInDecode != null ? {greedyInDecode} : {}), ...(threadsFlag != null ? {threads: threadsFlag} : {})});
                    if (info.backend !== loop.backend)
                        notes.push(`the engine runs on ${info.backend}, the bare loop on ${loop.backend}`);
                    const stats: (typeof engineStats)[number] = {id, ownWorkMs: [], tailMs: []};
                    engineStats.push(stats);
                    paths.push({id, label, measure: async () => {
                        const completion = await client.complete({prefix: loop.promptText, suffix: "", cacheKey: "decode-bench"},
                            {maxTokens: tokens + 1, stop: [], singleLine: false, temperature: 0, ignoreEndOfText: true, reuseCachedPrefix: false});
                        engineTexts.push({pathId: id, output: [...completion.text]});
                        const {generatedTokens, totalMs, timeToFirstTokenMs, tokenWaitMs, lastTokenMs, decodedAhead} = completion.stats;
                        // First to last token, as the bare loop times it; what the request does after its last token
                        // (final text, ending the evaluation) is once per completion, reported apart.
                        const decodeEndMs = lastTokenMs ?? totalMs;
                        const msPerToken = (decodeEndMs - timeToFirstTokenMs) / Math.max(1, generatedTokens - 1);
                        if (tokenWaitMs != null)
                            stats.ownWorkMs.push(msPerToken - tokenWaitMs / Math.max(1, generatedTokens - 1));
                        stats.tailMs.push(totalMs - decodeEndMs);
                        if (decodedAhead != null)
                            stats.decodedAhead = addCounts(stats.decodedAhead, decodedAhead);
                        return msPerToken;
                    }});
                    return info;
                };
                const info = await openEngine("engine", "engine process (the extension's path, over IPC)", true);
                // On a GPU the engine decodes ahead; the same engine without it shows what that is worth.
                if (info.decodeAhead)
                    await openEngine("engine-no-ahead", "engine process without decode ahead", false);
                // The engine's other way of picking greedy tokens (LoadModelOptions.greedyInDecode: in the decode by default
                // on a GPU, on the host otherwise), to show what it is worth.
                if (info.greedyInDecode)
                    await openEngine("engine-host-greedy", "engine process, greedy on the host (logits copied)", info.decodeAhead, false);
                else if (loop.greedyInDecodeSupported)
                    await openEngine("engine-greedy-in-decode", "engine process, greedy in the decode (no logits copied)", info.decodeAhead, true);
            }

            const startedAt = new Date().toISOString();
            progress(`${choice.path}: ${rounds} rounds (+${warmup} warm-up) of ${paths.map((p) => p.id).join(", ")}`);
            const samples = await runInterleaved(paths, rounds, warmup, (round, decodePath, ms) =>
                progress(`  ${round < 0 ? "warm-up" : `round ${round + 1}`}: ${decodePath.id} ${ms.toFixed(3)} ms/token`));
            for (const {id, ownWorkMs, tailMs, decodedAhead} of engineStats) {
                if (ownWorkMs.length > 0)
                    notes.push(`${id}: the engine's own work between tokens (detokenizing, stop rules, sending text) ` +
                        `${distributionOf(ownWorkMs).median.toFixed(3)} ms per token, median of ${ownWorkMs.length} completions; the rest of each token is waiting for it`);
                if (tailMs.length > 0)
                    notes.push(`${id}: after its last token a completion took ${distributionOf(tailMs).median.toFixed(3)} ms more (median of ` +
                        `${tailMs.length}; not in its ms/token, which runs from the first token to the last as the bare loop's does)`);
                if (decodedAhead != null)
                    notes.push(`${id}: decode ahead over all its completions: ${decodedAhead.queued} queued, ${decodedAhead.adopted} adopted, ${decodedAhead.rolledBack} rolled back`);
            }
            const tokenDifferences = describeOutputDifferences(outputs);
            if (tokenDifferences != null)
                notes.push(`node-llama-cpp's greedy tokens DIFFER by path: ${tokenDifferences}`);
            const textDifferences = describeOutputDifferences(engineTexts);
            if (textDifferences != null)
                notes.push(`the engine paths' completions DIFFER between rounds or settings (greedy output must not depend on them; positions in characters): ${textDifferences}`);
            const cpus = os.cpus();
            const report: DecodeBenchReport = {
                version: 1,
                startedAt,
                machine: {platform: `${os.platform()} ${os.arch()}`, cpu: cpus[0]?.model ?? "unknown", cores: cpus.length, loadAverage: os.loadavg()},
                model: {path: choice.path, sizeBytes: (await fs.stat(choice.path)).size},
                device: loop.backend,
                threads: loop.threads,
                tokens,
                promptTokens: loop.promptTokens,
                rounds,
                warmup,
                ...(outputs.length > 0 ? {outputsIdentical: tokenDifferences == null} : {}),
                notes,
                paths: samples,
                summary: summarizeDecodePaths(samples, llamaBench != null ? "llama-bench" : undefined)
            };
            reports.push(report);
            if (!json)
                console.log(renderDecodeBenchMarkdown(report) + "\n");
        } finally {
            await Promise.all(engines.map((client) => client.dispose()));
            await loop.dispose();
        }
    }
    const outDir = flag("out") ?? path.join(root, ".cache", "bench");
    await fs.mkdir(outDir, {recursive: true});
    const saved = path.join(outDir, `decode-${reports[0]?.startedAt.replace(/[:.]/g, "-") ?? "empty"}.json`);
    await fs.writeFile(saved, JSON.stringify(reports, null, 2));
    if (json)
        console.log(JSON.stringify(reports, null, 2));
    else
        console.error(`saved ${saved}`);
    return reports.every((report) => report.outputsIdentical !== false) ? 0 : 1;
}

runCliMain(main);

function addCounts(sum: DecodeAheadCounts | undefined, counts: DecodeAheadCounts): DecodeAheadCounts {
    return {queued: (sum?.queued ?? 0) + counts.queued, adopted: (sum?.adopted ?? 0) + counts.adopted,
        rolledBack: (sum?.rolledBack ?? 0) + counts.rolledBack};
}
