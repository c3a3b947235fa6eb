import type {LlamaContext, LlamaContextSequence, LlamaModel, Token} from "node-llama-cpp";
import {mathThreadsFor} from "../core/mathThreads.js";
import type {ComputeDevice} from "../core/settings.js";
import {loadLlamaRuntime, type LlamaRuntime} from "../engine/loadLlamaRuntime.js";
import {setDecodeAhead, setGreedyInDecode, setInlineDecode, supportsDecodeAhead, supportsGreedyInDecode, supportsInlineDecode,
    type InlineDecodeMode} from "../engine/inlineDecode.js";

export interface BareDecodeLoopOptions {
    readonly modelPath: string;
    readonly device: ComputeDevice;
    /** CPU threads of the context; default: what the engine uses (mathThreadsFor the machine's math cores). */
    readonly threads?: number;
    /** Text the prompt is cut from; its first `promptTokens` tokens (after BOS) are the prompt. */
    readonly promptText: string;
    readonly promptTokens: number;
    /** The engine's context shape, so the only difference left is the loop that drives it. */
    readonly contextSize: number;
    readonly sequences: number;
    readonly batchSize: number;
    readonly log: (level: "info" | "warn" | "error", message: string) => void;
}

export interface BareDecodeRun {
    /** Wall time per generated token after the first (decode + sample + node-llama-cpp's loop). */
    readonly msPerToken: number;
    readonly tokens: readonly number[];
}

/** node-llama-cpp's `sequence.evaluate` greedy loop alone, in this process: no engine, no IPC, no detokenizing. */
export interface BareDecodeLoop {
    /** Prompt tokens evaluated before the timed tokens (the KV cache depth they start at). */
    readonly promptTokens: number;
    /** The prompt's text as decoded from its tokens (what the engine path is given). */
    readonly promptText: string;
    readonly threads: number;
    readonly backend: string;
    /** Whether the addon has our inline-decode patch; without it only the stock mode runs. */
    readonly inlineDecodeSupported: boolean;
    /** Whether the addon has our decode-ahead patch (modes with decodeAhead need it). */
    readonly decodeAheadSupported: boolean;
    /** Whether the addon has our sampling-in-decode patch (modes with greedyInDecode need it). */
    readonly greedyInDecodeSupported: boolean;
    /** Whether our llama.cpp build loaded (not node-llama-cpp's prebuilt fallback). */
    readonly hasSparseType: boolean;
    run(tokens: number, mode: InlineDecodeMode): Promise<BareDecodeRun>;
    dispose(): Promise<void>;
}

export async function openBareDecodeLoop(options: BareDecodeLoopOptions): Promise<BareDecodeLoop> {
    const runtime: LlamaRuntime = await loadLlamaRuntime(options.device, options.log);
    let model: LlamaModel | undefined;
    let context: LlamaContext | undefined;
    try {
        model = await runtime.llama.loadModel({modelPath: options.modelPath, gpuLayers: runtime.llama.gpu === false ? 0 : "max"});
        const threads = options.threads ?? mathThreadsFor(runtime.llama.cpuMathCores);
        context = await model.createContext({contextSize: options.contextSize, sequences: options.sequences, batchSize: options.batchSize, threads});
        const textTokens = model.tokenize(options.promptText, false).slice(0, options.promptTokens);
        const bos = model.tokens.shouldPrependBosToken && model.tokens.bos != null ? [model.tokens.bos] : [];
        const prompt: Token[] = [...bos, ...textTokens];
        const sequence: LlamaContextSequence = context.getSequence();
        const loaded = {model, context};
        return {
            promptTokens: prompt.length,
            promptText: model.detokenize(textTokens),
            threads,
            backend: runtime.llama.gpu === false ? "cpu" : runtime.llama.gpu,
            inlineDecodeSupported: supportsInlineDecode(context),
            decodeAheadSupported: supportsDecodeAhead(context),
            greedyInDecodeSupported: supportsGreedyInDecode(context),
            hasSparseType: runtime.hasSparseType,
            async run(tokens, mode) {
                setInlineDecode(loaded.context, mode);
                // tokens + 1 are sampled; the last one's decode would be wasted
                setDecodeAhead(loaded.context, mode.decodeAhead ? tokens : 0);
                if (setGreedyInDecode(sequence, mode.greedyInDecode) !== mode.greedyInDecode)
                    throw new Error("greedy in the decode could not be attached (needs our sampling-in-decode addon patch and a backend that runs the argmax)");
                await sequence.clearHistory();
                const generated: number[] = [];
                let firstAt = 0;
                let lastAt = 0;
                // The same evaluate call as the engine's (greedy, seed 1); end-of-text is yielded so every run is as long.
                for await (const token of sequence.evaluate(prompt, {temperature: 0, seed: 1, yieldEogToken: true})) {
                    lastAt = performance.now();
                    if (generated.length === 0)
                        firstAt = lastAt;
                    generated.push(token);
                    if (generated.length > tokens)
                        break;
                }
                return {msPerToken: (lastAt - firstAt) / Math.max(1, generated.length - 1), tokens: generated};
            },
            async dispose() {
                await loaded.context.dispose();
                await loaded.model.dispose();
                await runtime.llama.dispose();
            }
        };
    } catch (error) {
        await context?.dispose();
        await model?.dispose();
        await runtime.llama.dispose();
        throw error;
    }
}
