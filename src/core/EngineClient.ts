import {fork, type ChildProcess} from "node:child_process";
import {Emitter} from "./Emitter.js";
import {describeError, EngineError, RequestAbortedError} from "./errors.js";
import {
    ENGINE_PROTOCOL_VERSION, type ClientMessage, type CompletionPrompt, type EngineCompletion, type EngineMessage,
    type GenerationOptions, type LoadedModelInfo, type LoadModelOptions, type PrefillResult
} from "./engineProtocol.js";

export interface EngineClientOptions {
    /** The bundled engine entry (dist/engineHost.mjs). */
    readonly enginePath: string;
    /** The Node binary; inside VS Code this is Electron run as Node. */
    readonly execPath?: string;
    readonly log: (level: "info" | "warn" | "error", message: string) => void;
    /** Waits before each restart after a crash; the last one repeats. */
    readonly restartDelaysMs?: readonly number[];
    /** How long the engine may take to say hello. */
    readonly startTimeoutMs?: number;
}

export type EngineState = "starting" | "idle" | "loading" | "ready" | "crashed" | "disposed";

interface PendingRequest {
    readonly resolve: (message: EngineMessage) => void;
    readonly reject: (error: Error) => void;
    readonly onMessage?: (message: EngineMessage) => void;
}

const DEFAULT_RESTART_DELAYS_MS = [250, 1000, 4000, 15000, 30000];
/** A process that stayed up this long resets the backoff. */
const STABLE_AFTER_MS = 60_000;

/**
 * The extension side of the engine process: starts it, speaks the typed IPC protocol with request ids, turns
 * AbortSignals into abort messages, and restarts the process with backoff when it dies, reloading the model.
 */
export class EngineClient {
    private child?: ChildProcess;
    private started?: Promise<ChildProcess>;
    private nextId = 1;
    private readonly pending = new Map<number, PendingRequest>();
    private crashCount = 0;
    private lastStartAt = 0;
    private restartTimer?: NodeJS.Timeout;
    private wantedModel?: LoadModelOptions;
    private loadedModel?: LoadedModelInfo;
    private _state: EngineState = "idle";
    private readonly stateEmitter = new Emitter<EngineState>();
    private readonly reloadEmitter = new Emitter<LoadedModelInfo>();
    private readonly reloadFailedEmitter = new Emitter<EngineError>();

    /** Fires on every state change. */
    public readonly onStateChange = this.stateEmitter.event;
    /** Fires when the model was loaded again after a crash. */
    public readonly onReloaded = this.reloadEmitter.event;
    /** After a crash, loading the model again failed (its file is gone, say); the engine waits for the next load. */
    public readonly onReloadFailed = this.reloadFailedEmitter.event;

    public constructor(private readonly options: EngineClientOptions) {}

    public get state(): EngineState {
        return this._state;
    }

    public get model(): LoadedModelInfo | undefined {
        return this.loadedModel;
    }

    public get pid(): number | undefined {
        return this.child?.pid;
    }

    private setState(state: EngineState): void {
        if (this._state === state || this._state === "disposed")
            return;
        this._state = state;
        this.stateEmitter.fire(state);
    }

    private ensureStarted(): Promise<ChildProcess> {
        if (this._state === "disposed")
            return Promise.reject(new EngineError("engine-unavailable", "the engine was shut down"));
        this.started ??= this.spawn();
        return this.started;
    }

    private spawn(): Promise<ChildProcess> {
        this.setState("starting");
        this.lastStartAt = Date.now();
        return new Promise<ChildProcess>((resolve, reject) => {
            const child = fork(this.options.enginePath, [], {
                execPath: this.options.execPath,
                // Electron binaries act as plain Node only with this set; harmless for Node itself.
                env: {...process.env, ELECTRON_RUN_AS_NODE: "1"},
                stdio: ["ignore", "pipe", "pipe", "ipc"],
                serialization: "json"
            });
            this.child = child;
            const timeout = setTimeout(() => {
                reject(new EngineError("engine-unavailable", "the engine process did not start in time"));
                child.kill("SIGKILL");
            }, this.options.startTimeoutMs ?? 30_000);
            child.stdout?.on("data", (data: Buffer) => this.options.log("info", `[engine] ${data.toString().trimEnd()}`));
            child.stderr?.on("data", (data: Buffer) => this.options.log("warn", `[engine] ${data.toString().trimEnd()}`));
            child.on("message", (message: EngineMessage) => {
                if (message.type === "hello") {
                    clearTimeout(timeout);
                    if (message.protocolVersion !== ENGINE_PROTOCOL_VERSION) {
                        reject(new EngineError("protocol", `engine speaks protocol ${message.protocolVersion}, expected ${ENGINE_PROTOCOL_VERSION}`));
                        child.kill();
                        return;
                    }
                    this.setState(this.loadedModel != null ? "ready" : "idle");
                    resolve(child);
                    return;
                }
                this.dispatch(message);
            });
            child.on("error", (error) => {
                clearTimeout(timeout);
                this.options.log("error", `engine process error: ${error.message}`);
                reject(new EngineError("engine-unavailable", `cannot start the engine process: ${error.message}`));
            });
            child.on("exit", (code, signal) => {
                clearTimeout(timeout);
                reject(new EngineError("engine-crashed", `the engine process exited (${signal ?? `code ${code}`}) while starting`));
                this.onExit(child, code, signal);
            });
        });
    }

    private dispatch(message: EngineMessage): void {
        if (message.type === "log") {
            this.options.log(message.level, `[engine] ${message.message}`);
            return;
        }
        if (message.type === "hello")
            return;
        const request = this.pending.get(message.id);
        if (request == null)
            return;
        if (message.type === "progress" || message.type === "chunk") {
            request.onMessage?.(message);
            return;
        }
        this.pending.delete(message.id);
        if (message.type === "failed")
            request.reject(message.code === "aborted" ? new RequestAbortedError() : new EngineError(message.code, message.message));
        else
            request.resolve(message);
    }

    private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
        if (this.child !== child)
            return;
        this.child = undefined;
        this.started = undefined;
        const wasLoadingModel = this._state === "loading";
        const crash = new EngineError("engine-crashed", `the engine process exited (${signal ?? `code ${code}`})`);
        for (const request of this.pending.values())
            request.reject(crash);
        this.pending.clear();
        this.loadedModel = undefined;
        if (this._state === "disposed")
            return;
        this.options.log("error", crash.message);
        this.setState("crashed");
        if (wasLoadingModel) {
            // The model itself brought the process down: loading it again would only crash again.
            this.wantedModel = undefined;
            return;
        }
        if (Date.now() - this.lastStartAt > STABLE_AFTER_MS)
            this.crashCount = 0;
        const delays = this.options.restartDelaysMs ?? DEFAULT_RESTART_DELAYS_MS;
        const delay = delays[Math.min(this.crashCount, delays.length - 1)]!;
        this.crashCount++;
        this.options.log("info", `restarting the engine in ${delay} ms`);
        this.restartTimer = setTimeout(() => {
            this.restartTimer = undefined;
            void this.restart();
        }, delay);
    }

    private async restart(): Promise<void> {
        const model = this.wantedModel;
        try {
            await this.ensureStarted();
            if (model != null && this.wantedModel === model && this.loadedModel == null) {
                const info = await this.load(model);
                this.reloadEmitter.fire(info);
            }
        } catch (error) {
            this.options.log("error", `engine restart failed: ${(error as Error).message}`);
            if (model != null && this.wantedModel === model)
                this.reloadFailedEmitter.fire(error instanceof EngineError ? error : new EngineError("engine-crashed", describeError(error)));
        }
    }

    private async request(message: ClientMessage & {id: number}, onMessage?: (message: EngineMessage) => void): Promise<EngineMessage> {
        const child = await this.ensureStarted();
        return new Promise<EngineMessage>((resolve, reject) => {
            this.pending.set(message.id, {resolve, reject, onMessage});
            child.send(message, (error) => {
                if (error != null && this.pending.delete(message.id))
                    reject(new EngineError("engine-unavailable", `cannot reach the engine: ${error.message}`));
            });
        });
    }

    /** Loads a model, replacing the current one; after a crash the engine reloads it by itself. */
    public async load(options: LoadModelOptions, onProgress?: (fraction: number) => void): Promise<LoadedModelInfo> {
        this.wantedModel = options;
        this.loadedModel = undefined;
        this.setState("loading");
        try {
            const reply = await this.request({type: "load", id: this.nextId++, options}, (message) => {
                if (message.type === "progress")
                    onProgress?.(message.fraction);
            });
            if (reply.type !== "loaded")
                throw new EngineError("protocol", `unexpected reply ${reply.type} to load`);
            if (this.wantedModel === options) {
                this.loadedModel = reply.info;
                this.setState("ready");
            }
            return reply.info;
        } catch (error) {
            if (this.wantedModel === options && this._state === "loading")
                this.setState("idle");
            throw error;
        }
    }

    public async unload(): Promise<void> {
        this.wantedModel = undefined;
        this.loadedModel = undefined;
        if (this.child == null)
            return;
        await this.request({type: "unload", id: this.nextId++});
        this.setState("idle");
    }

    /**
     * Generates a completion. Aborting the signal stops generation between two tokens and rejects with
     * RequestAbortedError; tokens already evaluated stay cached in the engine.
     */
    public async complete(prompt: CompletionPrompt, options: GenerationOptions,
        {signal, onChunk}: {signal?: AbortSignal, onChunk?: (text: string) => void} = {}): Promise<EngineCompletion> {
        if (signal?.aborted)
            throw new RequestAbortedError();
        const reply = await this.abortableRequest(signal, (id) => ({type: "complete", id, prompt, options}), (message) => {
            if (message.type === "chunk")
                onChunk?.(message.text);
        });
        if (reply.type !== "completed")
            throw new EngineError("protocol", `unexpected reply ${reply.type} to complete`);
        if (signal?.aborted || reply.completion.stopReason === "aborted")
            throw new RequestAbortedError();
        return reply.completion;
    }

    /** A request that the signal cancels with an abort message (the engine stops it between tokens). */
    private async abortableRequest(signal: AbortSignal | undefined, message: (id: number) => ClientMessage & {id: number},
        onMessage?: (message: EngineMessage) => void): Promise<EngineMessage> {
        const id = this.nextId++;
        const abort = () => {
            if (this.child?.connected)
                this.child.send({type: "abort", id} satisfies ClientMessage);
        };
        signal?.addEventListener("abort", abort, {once: true});
        try {
            return await this.request(message(id), onMessage);
        } finally {
            signal?.removeEventListener("abort", abort);
        }
    }

    /**
     * Evaluates a prompt ahead of its request (during the debounce pause), so the request only generates. Resolves
     * with the tokens evaluated; none when aborted before it ran. Failures are not the caller's concern: they resolve
     * with none.
     */
    public async prefill(prompt: CompletionPrompt, options: GenerationOptions, signal?: AbortSignal): Promise<PrefillResult> {
        const nothing = {promptTokens: 0, evaluatedTokens: 0};
        if (signal?.aborted || this.loadedModel == null)
            return nothing;
        try {
            const reply = await this.abortableRequest(signal, (id) => ({type: "prefill", id, prompt, options}));
            return reply.type === "prefilled" ? reply.result : nothing;
        } catch {
            return nothing;
        }
    }

    /** Stops the engine process; pending requests fail. */
    public async dispose(): Promise<void> {
        if (this.restartTimer != null)
            clearTimeout(this.restartTimer);
        this.setState("disposed");
        this.stateEmitter.dispose();
        this.reloadEmitter.dispose();
        this.reloadFailedEmitter.dispose();
        const child = this.child;
        if (child == null)
            return;
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        child.send({type: "shutdown"} satisfies ClientMessage, () => undefined);
        const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
        await exited;
        clearTimeout(timer);
    }
}
