import {getLlama, type Llama} from "node-llama-cpp";
import type {ComputeDevice} from "../core/settings.js";
import {EngineError} from "../core/errors.js";

export interface LlamaRuntime {
    readonly llama: Llama;
    /** Set when a GPU was wanted but the CPU is used; says why. */
    readonly fallbackReason?: string;
}

type Logger = (level: "info" | "warn" | "error", message: string) => void;

async function loadBinding(gpu: "auto" | false, log: Logger): Promise<Llama> {
    return getLlama({
        gpu,
        build: "never",
        progressLogs: false,
        logger: (level, message) => {
            const text = message.trimEnd();
            if (text.length === 0)
                return;
            if (level === "error" || level === "fatal")
                log("error", text);
            else if (level === "warn")
                log("warn", text);
        }
    });
}

/** The llama.cpp binding for a device setting: "gpu" must get a GPU, "auto" falls back to the CPU with a reason. */
export async function loadLlamaRuntime(device: ComputeDevice, log: Logger): Promise<LlamaRuntime> {
    if (device === "cpu")
        return {llama: await loadBinding(false, log)};
    let llama: Llama;
    try {
        llama = await loadBinding("auto", log);
    } catch (error) {
        if (device === "gpu")
            throw new EngineError("gpu-unavailable", `the GPU backend failed to initialise: ${(error as Error).message}`);
        return {llama: await loadBinding(false, log), fallbackReason: `GPU backend failed to initialise (${(error as Error).message})`};
    }
    if (llama.gpu === false) {
        if (device === "gpu") {
            await llama.dispose();
            throw new EngineError("gpu-unavailable", "no usable GPU was found (device is set to \"gpu\"); set the device to \"auto\" or \"cpu\"");
        }
        return {llama, fallbackReason: "no usable GPU was found"};
    }
    return {llama};
}
