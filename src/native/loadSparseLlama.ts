import * as fs from "node:fs";
import {createRequire} from "node:module";
import * as path from "node:path";
import {getLlama, LlamaLogLevel, NoBinaryFoundError, type Llama} from "node-llama-cpp";

/** ggml type id of the 2:4 sparse 4-bit weights (native-kernels/FORMAT.md). */
export const Q4_S24_GGML_TYPE = 100;
/** llama file type (general.file_type) of a model whose linear weights are Q4_S24. */
export const Q4_S24_LLAMA_FTYPE = 100;
/** Dense columns per Q4_S24 block and bytes per block. */
export const Q4_S24_BLOCK_COLUMNS = 256;
export const Q4_S24_BLOCK_BYTES = 100;

/** The command that builds the binary this module loads. */
export const SPARSE_BUILD_COMMAND = "node native-kernels/build.mjs";

export type SparseLlamaGpu = "auto" | "cuda" | false;

export interface LoadSparseLlamaOptions {
    /**
     * "auto" (default): a CUDA build of ours if one exists and a GPU is usable, else the CPU build.
     * "cuda": only a CUDA build. false: only the CPU build.
     */
    readonly gpu?: SparseLlamaGpu;
    /** llama.cpp log level (default: warn). */
    readonly logLevel?: LlamaLogLevel;
    /** Receives llama.cpp's log lines; default: node-llama-cpp's console logger. */
    readonly logger?: (level: LlamaLogLevel, message: string) => void;
    /** CPU threads llama.cpp may use (default: node-llama-cpp's choice). */
    readonly maxThreads?: number;
}

/** Why the sparse build could not be used: none was built for this GPU choice, or what loaded lacks the type. */
export type SparseLlamaBuildProblem = "missing" | "without-q4-s24";

/** Thrown when our llama.cpp build (with the Q4_S24 type) is not there; the message says how to build it. */
export class SparseLlamaBuildMissingError extends Error {
    override readonly name = "SparseLlamaBuildMissingError";

    constructor(readonly problem: SparseLlamaBuildProblem, readonly gpu: SparseLlamaGpu, detail: string, options?: {cause?: unknown}) {
        super(`${detail} Build it with \`${SPARSE_BUILD_COMMAND}\`` +
            (gpu === "cuda" ? " --gpu cuda" : "") + " (offline, a few minutes).", options);
    }
}

interface BuildStamp {
    readonly folderName?: string;
    readonly gpu?: string;
    readonly builtAt?: string;
}

/** The stamp native-kernels/build.mjs writes next to node-llama-cpp's local builds, if any. */
export function readSparseBuildStamp(): BuildStamp | undefined {
    try {
        const require = createRequire(import.meta.url);
        let dir = path.dirname(require.resolve("node-llama-cpp"));
        while (!fs.existsSync(path.join(dir, "llama")) && dir !== path.dirname(dir))
            dir = path.dirname(dir);
        return JSON.parse(fs.readFileSync(path.join(dir, "llama", "q4_s24-build-stamp.json"), "utf8")) as BuildStamp;
    } catch {
        return undefined;
    }
}

/** Whether a loaded binding knows the Q4_S24 type (node-llama-cpp's prebuilt binaries do not). */
export function llamaSupportsQ4S24(llama: Llama): boolean {
    // `_bindings` is node-llama-cpp's internal handle to the addon; ggml answers with the type's byte size.
    const bindings = (llama as unknown as {_bindings?: {getTypeSizeForGgmlType?(type: number): number | undefined}})._bindings;
    return bindings?.getTypeSizeForGgmlType?.(Q4_S24_GGML_TYPE) === Q4_S24_BLOCK_BYTES;
}

/**
 * The Llama instance of our llama.cpp build (node-llama-cpp's bundled source with native-kernels/ applied).
 * Never builds and never falls back to node-llama-cpp's prebuilt binaries, which cannot read Q4_S24 weights.
 * @throws SparseLlamaBuildMissingError when that build is not there.
 */
export async function loadSparseLlama(options: LoadSparseLlamaOptions = {}): Promise<Llama> {
    const gpu = options.gpu ?? "auto";
    let llama: Llama;
    try {
        llama = await getLlama({
            gpu,
            build: "never",
            usePrebuiltBinaries: false,
            progressLogs: false,
            logLevel: options.logLevel ?? LlamaLogLevel.warn,
            ...(options.logger != null ? {logger: options.logger} : {}),
            ...(options.maxThreads != null ? {maxThreads: options.maxThreads} : {})
        });
    } catch (error) {
        if (error instanceof NoBinaryFoundError) {
            const stamp = readSparseBuildStamp();
            const found = stamp?.folderName != null ? ` (the last one built is "${stamp.folderName}", gpu ${stamp.gpu})` : "";
            throw new SparseLlamaBuildMissingError("missing", gpu,
                `No llama.cpp build with the Q4_S24 sparse type for gpu=${String(gpu)}${found}.`, {cause: error});
        }
        throw error;
    }
    if (!llamaSupportsQ4S24(llama)) {
        await llama.dispose();
        throw new SparseLlamaBuildMissingError("without-q4-s24", gpu,
            "The local llama.cpp build that loaded has no Q4_S24 type (built without native-kernels?).");
    }
    return llama;
}
