import {fork} from "node:child_process";
import type {ImportCheckpointOptions, ImportReport} from "./importCheckpoint.js";

/** The serializable part of ImportCheckpointOptions (callbacks and the signal stay in the parent). */
export type ImportWorkerOptions = Omit<ImportCheckpointOptions, "signal" | "onProgress" | "log">;

export type ImportWorkerRequest = {type: "start", options: ImportWorkerOptions} | {type: "cancel"};

export type ImportWorkerMessage =
    | {type: "progress", fraction: number, tensor: string}
    | {type: "log", message: string}
    | {type: "done", report: ImportReport}
    | {type: "error", message: string, aborted: boolean};

export interface RunImportInWorkerOptions {
    /** The worker script (dist/importWorker.mjs, or src/import/importWorker.ts with tsx in execArgv). */
    readonly workerPath: string;
    /** Node (or Electron run as Node) to start it with; default this process's. */
    readonly execPath?: string;
    readonly execArgv?: readonly string[];
    readonly options: ImportWorkerOptions;
    readonly signal?: AbortSignal;
    readonly onProgress?: (fraction: number, tensor: string) => void;
    readonly log?: (message: string) => void;
}

/** How long a cancelled worker may take to stop by itself before it is killed. */
const CANCEL_GRACE_MS = 5000;

/** Runs importCheckpoint in a child process; rejects with an AbortError when `signal` cancels it. */
export function runImportInWorker(run: RunImportInWorkerOptions): Promise<ImportReport> {
    return new Promise((resolve, reject) => {
        const child = fork(run.workerPath, [], {
            execPath: run.execPath ?? process.execPath,
            execArgv: [...run.execArgv ?? []],
            env: {...process.env, ELECTRON_RUN_AS_NODE: "1"},
            stdio: ["ignore", "ignore", "pipe", "ipc"]
        });
        let settled = false;
        let stderr = "";
        child.stderr?.on("data", (chunk: Buffer) => stderr = (stderr + chunk.toString()).slice(-4000));
        let killTimer: ReturnType<typeof setTimeout> | undefined;
        const cancel = () => {
            if (child.connected)
                child.send({type: "cancel"} satisfies ImportWorkerRequest);
            // A worker stuck in a long step still has to go, so that the cancelled import ends.
            killTimer ??= setTimeout(() => child.kill("SIGKILL"), CANCEL_GRACE_MS);
        };
        run.signal?.addEventListener("abort", cancel, {once: true});
        const finish = (action: () => void) => {
            if (settled)
                return;
            settled = true;
            clearTimeout(killTimer);
            run.signal?.removeEventListener("abort", cancel);
            action();
        };
        child.on("message", (message: ImportWorkerMessage) => {
            if (message.type === "progress")
                run.onProgress?.(message.fraction, message.tensor);
            else if (message.type === "log")
                run.log?.(message.message);
            else if (message.type === "done")
                finish(() => resolve(message.report));
            else
                finish(() => {
                    const error = new Error(message.message);
                    if (message.aborted)
                        error.name = "AbortError";
                    reject(error);
                });
        });
        child.on("error", (error) => finish(() => reject(error)));
        child.on("exit", (code, signal) => finish(() => {
            const error = new Error(`the import process exited (${signal ?? `code ${code}`}) before finishing${stderr ? `: ${stderr.trim()}` : ""}`);
            if (killTimer != null)
                error.name = "AbortError";
            reject(error);
        }));
        child.send({type: "start", options: run.options} satisfies ImportWorkerRequest);
        if (run.signal?.aborted)
            cancel();
    });
}
