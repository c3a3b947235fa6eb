import {getLlama, LlamaLogLevel, type Llama} from "node-llama-cpp";
import type {ComputeDevice} from "../core/settings.js";
import {EngineError} from "../core/errors.js";
import {loadSparseLlama, SparseLlamaBuildMissingError, type SparseLlamaGpu} from "../native/loadSparseLlama.js";

export interface LlamaRuntime {
    readonly llama: Llama;
    /** Set when a GPU was wanted but the CPU is used; says why. */
    readonly fallbackReason?: string;
    /** False when our build with the sparse type is missing and node-llama-cpp's prebuilt binary runs instead. */
    readonly hasSparseType: boolean;
}

type Logger = (level: "info" | "warn" | "error", message: string) => void;

function llamaLogger(log: Logger) {
    return (level: LlamaLogLevel, message: string) => {
        const text = message.trimEnd();
        if (text.length === 0)
            return;
        if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal)
            log("error", text);
        else if (level === LlamaLogLevel.warn)
            log("warn", text);
    };
}

/**
 * Our llama.cpp build (with the Q4_S24 sparse type) for a GPU choice. If that build is missing, node-llama-cpp's
 * prebuilt CPU binary still runs dense models, so the editor keeps completing while the user rebuilds.
 */
async function loadBinding(gpu: SparseLlamaGpu, log: Logger): Promise<{llama: Llama, hasSparseType: boolean}> {
    try {
        return {llama: await loadSparseLlama({gpu, logger: llamaLogger(log)}), hasSparseType: true};
    } catch (error) {
        if (!(error instanceof SparseLlamaBuildMissingError) || gpu === "cuda")
            throw error;
        log("warn", `${error.message} Falling back to node-llama-cpp's prebuilt binary, which runs dense models only.`);
        return {llama: await getLlama({gpu: false, build: "never", progressLogs: false, logger: llamaLogger(log)}), hasSparseType: false};
    }
}

/** The llama.cpp binding for a device setting: "gpu" must get a GPU, "auto" falls back to the CPU with a reason. */
export async function loadLlamaRuntime(device: ComputeDevice, log: Logger): Promise<LlamaRuntime> {
    if (device === "cpu")
        return loadBinding(false, log);
    let binding: {llama: Llama, hasSparseType: boolean};
    try {
        binding = await loadBinding(device === "gpu" ? "cuda" : "auto", log);
    } catch (error) {
        if (device === "gpu")
            throw new EngineError("gpu-unavailable", `the GPU backend failed to initialise: ${(error as Error).message}`);
        return {...await loadBinding(false, log), fallbackReason: `GPU backend failed to initialise (${(error as Error).message})`};
    }
    if (binding.llama.gpu === false) {
        if (device === "gpu") {
            await binding.llama.dispose();
            throw new EngineError("gpu-unavailable", "no usable GPU was found (device is set to \"gpu\"); set the device to \"auto\" or \"cpu\"");
        }
        return {...binding, fallbackReason: "no usable GPU was found"};
    }
    return binding;
}
