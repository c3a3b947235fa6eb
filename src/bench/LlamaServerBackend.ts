import {spawn, type ChildProcess} from "node:child_process";
import * as http from "node:http";
import type {CompletionBackend} from "../core/CompletionPipeline.js";
import type {CompletionPrompt, EngineCompletion, GenerationOptions, StopReason} from "../core/engineProtocol.js";
import {EngineError, RequestAbortedError} from "../core/errors.js";
import {StopRuleMatcher} from "../core/StopRuleMatcher.js";
import {freePort} from "./freePort.js";

/**
 * llama.cpp's own server as a completion backend, used the way llama.vscode uses it: `/infill` with the text before
 * the cursor's line as `input_prefix`, the typed part of the line as `prompt`, the rest as `input_suffix`, and
 * `cache_prompt` so the server reuses its KV cache across requests. A model without fill-in-the-middle tokens (the
 * 8B-shaped benchmark model has Llama 3's tokenizer) gets `/completion` with the text before the cursor, as the
 * engine then prompts with the prefix alone. Benchmarks only: it lets the typing replay drive the server through the
 * same pipeline (debounce, newest-wins, completion cache) as the in-process engine.
 */
export class LlamaServerBackend implements CompletionBackend {
    public constructor(private readonly baseUrl: string, private readonly options: {readonly fim: boolean} = {fim: true}) {}

    public complete(prompt: CompletionPrompt, options: GenerationOptions,
        {signal, onChunk}: {signal?: AbortSignal, onChunk?: (text: string) => void} = {}): Promise<EngineCompletion> {
        if (signal?.aborted)
            return Promise.reject(new RequestAbortedError());
        const lineStart = prompt.prefix.lastIndexOf("\n") + 1;
        const endpoint = this.options.fim ? "/infill" : "/completion";
        const body = JSON.stringify({
            ...(this.options.fim
                ? {input_prefix: prompt.prefix.slice(0, lineStart), prompt: prompt.prefix.slice(lineStart), input_suffix: prompt.suffix, input_extra: []}
                : {prompt: prompt.prefix}),
            n_predict: options.maxTokens,
            ignore_eos: options.ignoreEndOfText === true,
            cache_prompt: options.reuseCachedPrefix !== false,
            // Greedy, like the engine at temperature 0.
            samplers: ["top_k"],
            top_k: 1,
            stream: true,
            timings_per_token: true
        });
        const started = performance.now();
        return new Promise<EngineCompletion>((resolve, reject) => {
            const matcher = new StopRuleMatcher(options.stop, options.singleLine);
            let generatedText = "";
            let released = "";
            let generatedTokens = 0;
            let predictedTokens: number | undefined;
            let firstTokenAt: number | undefined;
            let promptTokens = 0;
            let evaluatedPromptTokens = 0;
            let settled = false;
            /** Ends the request once: the connection is closed (the server stops the task) and the outcome reported. */
            const settle = (report: () => void) => {
                if (settled)
                    return;
                settled = true;
                request.destroy();
                signal?.removeEventListener("abort", onAbort);
                report();
            };
            const finish = (stopReason: StopReason) => settle(() => {
                const finished = performance.now();
                resolve({
                    text: stopReason === "stop-string" || stopReason === "single-line" ? released : generatedText,
                    stopReason,
                    stats: {promptTokens, evaluatedPromptTokens, generatedTokens: predictedTokens ?? generatedTokens, timeToFirstTokenMs: (firstTokenAt ?? finished) - started,
                        totalMs: finished - started}
                });
            });
            const fail = (error: Error) => settle(() => reject(error));
            // Closing the connection is how a client cancels: the server stops the task.
            const onAbort = () => fail(new RequestAbortedError());
            signal?.addEventListener("abort", onAbort, {once: true});

            const onEvent = (event: ServerEvent) => {
                if (event.error != null) {
                    fail(new EngineError("protocol", `llama-server failed the request: ${JSON.stringify(event.error).slice(0, 300)}`));
                    return;
                }
                if (event.timings != null) {
                    promptTokens = event.timings.cache_n + event.timings.prompt_n;
                    evaluatedPromptTokens = event.timings.prompt_n;
                    // The server's own count: a token whose text is not complete yet (part of a UTF-8 character, or
                    // end-of-text with ignore_eos) streams no content, so counting content events falls short.
                    if (event.timings.predicted_n != null)
                        predictedTokens = event.timings.predicted_n;
                }
                if (event.content != null && event.content.length > 0) {
                    firstTokenAt ??= performance.now();
                    generatedTokens += Math.max(1, event.tokens?.length ?? 1);
                    generatedText += event.content;
                    const verdict = matcher.check(generatedText);
                    if (verdict.releasable.length > released.length && verdict.releasable.startsWith(released)) {
                        onChunk?.(verdict.releasable.slice(released.length));
                        released = verdict.releasable;
                    }
                    if (verdict.stop != null) {
                        released = verdict.releasable;
                        finish(verdict.stop);
                        return;
                    }
                }
                if (event.stop === true)
                    finish(event.stop_type === "eos" ? "eos" : "max-tokens");
            };

            const request = http.request(`${this.baseUrl}${endpoint}`, {
                method: "POST",
                headers: {"Content-Type": "application/json", "Content-Length": Buffer.byteLength(body)}
            }, (response) => {
                if (response.statusCode !== 200) {
                    let text = "";
                    response.on("data", (chunk) => text += chunk);
                    response.on("end", () => fail(new EngineError("protocol", `llama-server answered ${response.statusCode}: ${text.slice(0, 300)}`)));
                    return;
                }
                let buffered = "";
                response.setEncoding("utf8");
                response.on("data", (chunk: string) => {
                    buffered += chunk;
                    for (let end = buffered.indexOf("\n\n"); end >= 0; end = buffered.indexOf("\n\n")) {
                        const block = buffered.slice(0, end);
                        buffered = buffered.slice(end + 2);
                        for (const line of block.split("\n")) {
                            if (!line.startsWith("data: ") || settled)
                                continue;
                            try {
                                onEvent(JSON.parse(line.slice(6)) as ServerEvent);
                            } catch (error) {
                                fail(new EngineError("protocol", `llama-server sent an unreadable event (${(error as Error).message}): ${line.slice(0, 200)}`));
                            }
                        }
                    }
                });
                // The stream ends after the event marked stop; ending before it means the server dropped the request.
                response.on("end", () => fail(new EngineError("protocol", "llama-server closed the stream before the completion ended")));
                response.on("error", (error) => fail(error));
            });
            request.on("error", (error) => fail(error));
            request.end(body);
        });
    }
}

interface ServerEvent {
    readonly content?: string;
    readonly tokens?: readonly number[];
    readonly stop?: boolean;
    readonly stop_type?: string;
    readonly timings?: {readonly cache_n: number, readonly prompt_n: number, readonly predicted_n?: number};
    readonly error?: unknown;
}

export interface LlamaServerOptions {
    readonly binary: string;
    readonly modelPath: string;
    readonly gpu: boolean;
    readonly threads: number;
    /** Total KV cache, shared by the slots. */
    readonly contextSize: number;
    /** Cached prompts kept at once (the engine's sequence pool has the same number). */
    readonly slots: number;
}

export interface RunningLlamaServer {
    readonly url: string;
    stop(): Promise<void>;
}

/**
 * Starts llama-server on a free local port with llama.vscode's recommended flags (`-ub 1024 -b 1024
 * --cache-reuse 256`), batch raised to 2048 so the whole prompt fits one request, and waits until it is healthy.
 */
export async function startLlamaServer(options: LlamaServerOptions): Promise<RunningLlamaServer> {
    const port = await freePort();
    const args = [
        "-m", options.modelPath, "--host", "127.0.0.1", "--port", String(port),
        "-c", String(options.contextSize), "-np", String(options.slots), "--kv-unified",
        "-b", "2048", "-ub", "1024", "--cache-reuse", "256",
        "-t", String(options.threads), "-ngl", options.gpu ? "99" : "0", "--no-webui"
    ];
    const child = spawn(options.binary, args, {stdio: ["ignore", "ignore", "pipe"]});
    let spawnError: Error | undefined;
    child.once("error", (error) => spawnError = error);
    let errorOutput = "";
    child.stderr!.on("data", (chunk: Buffer) => errorOutput = (errorOutput + chunk.toString()).slice(-4000));
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 120_000;
    for (;;) {
        if (spawnError != null)
            throw new Error(`llama-server could not be started (${options.binary}): ${spawnError.message}`);
        if (child.exitCode != null || child.signalCode != null)
            throw new Error(`llama-server exited while starting (${child.exitCode ?? child.signalCode}): ${errorOutput.slice(-1500)}`);
        if (await isHealthy(url))
            break;
        if (Date.now() > deadline) {
            await stopChild(child, exited);
            throw new Error(`llama-server did not become healthy within 120 s: ${errorOutput.slice(-1500)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return {url, stop: () => stopChild(child, exited)};
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
    if (child.exitCode != null || child.signalCode != null)
        return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
}

function isHealthy(url: string): Promise<boolean> {
    return new Promise((resolve) => {
        const request = http.get(`${url}/health`, (response) => {
            response.resume();
            resolve(response.statusCode === 200);
        });
        request.on("error", () => resolve(false));
        request.setTimeout(2000, () => {
            request.destroy();
            resolve(false);
        });
    });
}
