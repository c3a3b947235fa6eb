import * as fs from "node:fs";
import {Emitter} from "./Emitter.js";
import type {EngineClient} from "./EngineClient.js";
import type {LoadedModelInfo} from "./engineProtocol.js";
import {describeError, EngineError} from "./errors.js";
import {chooseModel, type ModelChoice} from "./modelCatalog.js";
import type {CompletionSettings} from "./settings.js";

export type ModelStatus =
    | {readonly kind: "idle"}
    | {readonly kind: "loading", readonly choice: ModelChoice, readonly fraction: number}
    | {
        readonly kind: "ready", readonly choice: ModelChoice, readonly info: LoadedModelInfo,
        /** Something the user should know that does not stop completions (the model file was deleted, say). */
        readonly warning?: string
    }
    | {readonly kind: "error", readonly choice?: ModelChoice, readonly error: EngineError};

/** Sequences kept per context: roughly one per recently edited file. */
export const ENGINE_SEQUENCES = 4;
/** How often the loaded model's file is checked (a stat call); deletion is rare, so seconds are fine. */
const MODEL_FILE_CHECK_MS = 2000;

/** Context tokens for a prompt budget: room for the prompt, the longest completion, and the FIM markers. */
export function contextSizeFor(settings: Pick<CompletionSettings, "contextTokens" | "maxTokens">): number {
    return Math.ceil((settings.contextTokens + settings.maxTokens + 64) / 256) * 256;
}

/**
 * Keeps the engine's loaded model in line with the settings: loads on start, swaps live when the variant, path or
 * device changes, and reports one status the UI can show. A newer apply() supersedes an older one still loading.
 */
export class ModelSession {
    private _status: ModelStatus = {kind: "idle"};
    private loadedKey?: string;
    private generation = 0;
    private readonly statusEmitter = new Emitter<ModelStatus>();
    public readonly onStatus = this.statusEmitter.event;
    private stopWatchingModelFile?: () => void;
    /** Set while the loaded model's file is missing. */
    private modelFileWarning?: string;

    public constructor(private readonly engine: EngineClient, private readonly root: string) {
        // After a crash the engine restarts and reloads the model by itself: loading, then ready again (or an error).
        engine.onReloaded((info) => {
            const status = this._status;
            if ((status.kind === "ready" || status.kind === "loading") && status.choice.path === info.modelPath)
                this.setStatus({kind: "ready", choice: status.choice, info, ...(this.modelFileWarning != null ? {warning: this.modelFileWarning} : {})});
        });
        engine.onReloadFailed((error) => {
            if (this._status.kind === "loading" || this._status.kind === "ready") {
                this.loadedKey = undefined;
                this.setStatus({kind: "error", choice: this._status.choice, error});
            }
        });
        engine.onStateChange((state) => {
            if (state === "crashed" && this._status.kind === "ready")
                this.setStatus({kind: "loading", choice: this._status.choice, fraction: 0});
        });
    }

    public get status(): ModelStatus {
        return this._status;
    }

    private setStatus(status: ModelStatus): void {
        this._status = status;
        this.statusEmitter.fire(status);
    }

    /** Loads the model the settings select unless it is already loaded. Resolves with the status it ended in. */
    public async apply(settings: CompletionSettings, {force = false}: {force?: boolean} = {}): Promise<ModelStatus> {
        const generation = ++this.generation;
        let choice: ModelChoice | undefined;
        try {
            choice = await chooseModel(this.root, settings);
            const contextSize = contextSizeFor(settings);
            const key = JSON.stringify([choice.path, settings.device, contextSize]);
            if (!force && key === this.loadedKey && this._status.kind === "ready")
                return this._status;
            this.loadedKey = undefined;
            this.stopWatchingModelFile?.();
            this.modelFileWarning = undefined;
            this.setStatus({kind: "loading", choice, fraction: 0});
            const info = await this.engine.load({modelPath: choice.path, device: settings.device, contextSize, sequences: ENGINE_SEQUENCES}, (fraction) => {
                if (generation === this.generation && choice != null)
                    this.setStatus({kind: "loading", choice, fraction});
            });
            if (generation !== this.generation)
                return this._status;
            this.loadedKey = key;
            this.setStatus({kind: "ready", choice, info});
            this.watchModelFile(choice);
        } catch (error) {
            if (generation !== this.generation)
                return this._status;
            const engineError = error instanceof EngineError ? error : new EngineError("internal", describeError(error));
            this.setStatus({kind: "error", choice, error: engineError});
        }
        return this._status;
    }

    /**
     * Reports a loaded model's file that disappears (deleted, moved, a drive unmounted). llama.cpp maps the file, so
     * completions go on from memory, but the next load (a restart, an engine crash) would fail: say so now.
     */
    private watchModelFile(choice: ModelChoice): void {
        const file = choice.path;
        const onChange = (current: fs.Stats) => {
            const missing = current.nlink === 0;
            if (missing === (this.modelFileWarning != null))
                return;
            this.modelFileWarning = missing ? `the model file ${file} was deleted or moved; completions continue from memory, ` +
                "but the model cannot be loaded again until the file is back (or another model is chosen)" : undefined;
            const status = this._status;
            if (status.kind !== "ready" || status.choice.path !== file)
                return;
            const {warning: _previous, ...rest} = status;
            this.setStatus(this.modelFileWarning != null ? {...rest, warning: this.modelFileWarning} : rest);
        };
        fs.watchFile(file, {interval: MODEL_FILE_CHECK_MS, persistent: false}, onChange);
        this.stopWatchingModelFile = () => fs.unwatchFile(file, onChange);
    }

    public dispose(): void {
        this.stopWatchingModelFile?.();
        this.statusEmitter.dispose();
    }
}
