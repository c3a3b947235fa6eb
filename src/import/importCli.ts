#!/usr/bin/env node
/**
 * npm run import -- CHECKPOINT_DIR OUT.gguf [--linear auto|q4_s24|q4_0|q8_0|f16|f32] [--dense-linear q8_0|q4_0|f16|f32]
 *                   [--embeddings f16|f32|q8_0|q4_0] [--round-scales] [--name NAME]
 *
 * Imports a Hugging Face Llama checkpoint (compressed-tensors marlin-24, pack-quantized, sparse-24-bitmask, or plain
 * BF16/F16) into a GGUF. --linear auto (default): 2:4 weights become Q4_S24 (exactly, for int4 checkpoints), dense int4
 * weights Q4_0 (exactly), other float weights --dense-linear (default q8_0). --embeddings: token embedding and
 * lm_head (default f16). --round-scales: accept scales fp16 cannot hold exactly (default: refuse, naming the tensor).
 */
import {pathToFileURL} from "node:url";
import {parseArgs, runCliMain} from "../cli/parseArgs.js";
import {EMBEDDING_TYPES, importCheckpoint, LINEAR_TYPES, type EmbeddingType, type ImportReport, type LinearType} from "./importCheckpoint.js";

const USAGE = "usage: import CHECKPOINT_DIR OUT.gguf [--linear auto|q4_s24|q4_0|q8_0|f16|f32] [--dense-linear q8_0|q4_0|f16|f32] " +
    "[--embeddings f16|f32|q8_0|q4_0] [--round-scales] [--name NAME]";

export interface ImportCliArgs {
    readonly checkpoint: string;
    readonly output: string;
    readonly linear: "auto" | LinearType;
    readonly denseLinear: Exclude<LinearType, "q4_s24">;
    readonly embeddings: EmbeddingType;
    readonly roundScales: boolean;
    readonly name?: string;
}

function oneOf<T extends string>(flag: string, value: string | true | undefined, allowed: readonly T[], fallback: T): T {
    if (value == null)
        return fallback;
    if (value === true || !(allowed as readonly string[]).includes(value))
        throw new Error(`--${flag} must be one of ${allowed.join(", ")}`);
    return value as T;
}

export function parseImportArgs(argv: readonly string[]): ImportCliArgs {
    const {positional, flags} = parseArgs(argv, ["round-scales"]);
    for (const flag of flags.keys())
        if (!["linear", "dense-linear", "embeddings", "round-scales", "name"].includes(flag))
            throw new Error(`unknown option --${flag}\n${USAGE}`);
    if (positional.length !== 2)
        throw new Error(USAGE);
    const name = flags.get("name");
    if (name === true)
        throw new Error("--name needs a value");
    return {
        checkpoint: positional[0]!,
        output: positional[1]!,
        linear: oneOf("linear", flags.get("linear"), ["auto", ...LINEAR_TYPES], "auto"),
        denseLinear: oneOf("dense-linear", flags.get("dense-linear"), ["q8_0", "q4_0", "f16", "f32"] as const, "q8_0"),
        embeddings: oneOf("embeddings", flags.get("embeddings"), EMBEDDING_TYPES, "f16"),
        roundScales: flags.get("round-scales") === true,
        ...(name != null ? {name} : {})
    };
}

export async function runImportCli(argv: readonly string[], log: (message: string) => void = console.log): Promise<ImportReport> {
    const args = parseImportArgs(argv);
    let lastPercent = -1;
    const report = await importCheckpoint({
        ...args, log,
        onProgress: (fraction, tensor) => {
            const percent = Math.floor(fraction * 100);
            if (percent !== lastPercent) {
                lastPercent = percent;
                log(`${String(percent).padStart(3)}% ${tensor}`);
            }
        }
    });
    const counts = new Map<string, number>();
    for (const tensor of report.tensors)
        counts.set(`${tensor.format} -> ${tensor.type}`, (counts.get(`${tensor.format} -> ${tensor.type}`) ?? 0) + 1);
    log(`imported ${report.tensors.length} tensors: ${[...counts].map(([kind, count]) => `${count} ${kind}`).join(", ")}`);
    return report;
}

if (process.argv[1] != null && import.meta.url === pathToFileURL(process.argv[1]).href)
    runCliMain(async () => {
        await runImportCli(process.argv.slice(2));
        return 0;
    });
