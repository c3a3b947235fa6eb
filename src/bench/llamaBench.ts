import {spawn} from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** One token-generation test of llama.cpp's `llama-bench` (one object of its `-o json` output). */
export interface LlamaBenchResult {
    readonly modelFilename: string;
    readonly modelType: string;
    readonly backends: string;
    readonly threads: number;
    readonly gpuLayers: number;
    /** -1: auto, 0: off, 1: on. */
    readonly flashAttention: number;
    readonly batchSize: number;
    readonly ubatchSize: number;
    readonly promptTokens: number;
    readonly generatedTokens: number;
    /** Tokens already in the KV cache when the timed generation starts. */
    readonly depth: number;
    /** Tokens per second of each repetition. */
    readonly samplesTokensPerSecond: readonly number[];
    readonly averageTokensPerSecond: number;
}

export interface LlamaBenchDecodeOptions {
    readonly modelPath: string;
    readonly tokens: number;
    /** Tokens in the KV cache before the timed tokens (the prompt of the other paths). */
    readonly depth: number;
    readonly threads: number;
    /** 0 keeps every layer on the CPU; undefined leaves llama-bench's default (all layers on the GPU of a GPU build). */
    readonly gpuLayers?: number;
    readonly repetitions: number;
    /** node-llama-cpp's context: one batch size for both, since it sets n_ubatch = n_batch. */
    readonly batchSize: number;
}

/** Arguments for a decode-only run (`tg` test at a depth) set up like the node-llama-cpp context it is compared with. */
export function llamaBenchDecodeArgs(options: LlamaBenchDecodeOptions): string[] {
    return [
        "-m", options.modelPath,
        "-p", "0",
        "-n", String(options.tokens),
        "-d", String(options.depth),
        "-t", String(options.threads),
        "-b", String(options.batchSize),
        "-ub", String(options.batchSize),
        "-r", String(options.repetitions),
        ...(options.gpuLayers != null ? ["-ngl", String(options.gpuLayers)] : []),
        "-o", "json"
    ];
}

function field<T>(record: Record<string, unknown>, name: string, check: (value: unknown) => value is T): T {
    const value = record[name];
    if (!check(value))
        throw new Error(`llama-bench output has no valid "${name}"`);
    return value;
}
const isNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value);
const isString = (value: unknown): value is string => typeof value === "string";
const isNumberArray = (value: unknown): value is number[] => Array.isArray(value) && value.every(isNumber);

/**
 * The results in llama-bench's `-o json` output. Its stdout is a JSON array; anything printed around it (a build's
 * log lines) is skipped.
 */
export function parseLlamaBenchJson(stdout: string): LlamaBenchResult[] {
    const start = stdout.indexOf("[");
    const end = stdout.lastIndexOf("]");
    if (start < 0 || end < start)
        throw new Error("llama-bench printed no JSON array (was it run with -o json?)");
    let parsed: unknown;
    try {
        parsed = JSON.parse(stdout.slice(start, end + 1));
    } catch (error) {
        throw new Error(`llama-bench's JSON output does not parse: ${(error as Error).message}`);
    }
    if (!Array.isArray(parsed))
        throw new Error("llama-bench's JSON output is not an array");
    return parsed.map((item): LlamaBenchResult => {
        if (item == null || typeof item !== "object")
            throw new Error("llama-bench's JSON output holds a non-object");
        const record = item as Record<string, unknown>;
        const samples = record["samples_ts"];
        return {
            modelFilename: field(record, "model_filename", isString),
            modelType: isString(record["model_type"]) ? record["model_type"] : "",
            backends: isString(record["backends"]) ? record["backends"] : "",
            threads: field(record, "n_threads", isNumber),
            gpuLayers: isNumber(record["n_gpu_layers"]) ? record["n_gpu_layers"] : 0,
            flashAttention: typeof record["flash_attn"] === "boolean" ? Number(record["flash_attn"]) : isNumber(record["flash_attn"]) ? record["flash_attn"] : -1,
            batchSize: isNumber(record["n_batch"]) ? record["n_batch"] : 0,
            ubatchSize: isNumber(record["n_ubatch"]) ? record["n_ubatch"] : 0,
            promptTokens: field(record, "n_prompt", isNumber),
            generatedTokens: field(record, "n_gen", isNumber),
            depth: isNumber(record["n_depth"]) ? record["n_depth"] : 0,
            samplesTokensPerSecond: isNumberArray(samples) ? samples : [field(record, "avg_ts", isNumber)],
            averageTokensPerSecond: field(record, "avg_ts", isNumber)
        };
    });
}

/** The decode (token generation) result of a run: the one test with no prompt and generated tokens. */
export function decodeResultOf(results: readonly LlamaBenchResult[]): LlamaBenchResult {
    const decode = results.filter((result) => result.promptTokens === 0 && result.generatedTokens > 0);
    if (decode.length !== 1)
        throw new Error(`expected one token-generation test in llama-bench's output, found ${decode.length}`);
    return decode[0]!;
}

/**
 * llama-bench built from the same patched tree (`npm run build:llama-server`, then
 * `cmake --build .cache/llama-server/<cpu|cuda> --target llama-bench`), for a device choice; undefined if not built.
 */
export function findLlamaBench(root: string, device: "cpu" | "gpu" | "auto"): string | undefined {
    const flavours = device === "cpu" ? ["cpu", "cuda"] : device === "gpu" ? ["cuda"] : ["cuda", "cpu"];
    const exe = process.platform === "win32" ? "llama-bench.exe" : "llama-bench";
    for (const flavour of flavours) {
        const candidate = path.join(root, ".cache", "llama-server", flavour, "bin", exe);
        if (fs.existsSync(candidate))
            return candidate;
    }
    return undefined;
}

/** Runs llama-bench and returns its parsed results; fails with its stderr's tail when it fails. */
export function runLlamaBench(binary: string, args: readonly string[], signal?: AbortSignal): Promise<LlamaBenchResult[]> {
    return new Promise((resolve, reject) => {
        const child = spawn(binary, args, {stdio: ["ignore", "pipe", "pipe"], signal});
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (chunk: string) => stdout += chunk);
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => stderr = (stderr + chunk).slice(-4000));
        child.on("error", reject);
        child.on("close", (code) => {
            if (code !== 0) {
                reject(new Error(`${path.basename(binary)} ${args.join(" ")} exited with ${code}: ${stderr.trim().split("\n").slice(-5).join("\n")}`));
                return;
            }
            try {
                resolve(parseLlamaBenchJson(stdout));
            } catch (error) {
                reject(error);
            }
        });
    });
}
