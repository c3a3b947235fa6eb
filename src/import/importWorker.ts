/**
 * Child process entry for importing a checkpoint away from the caller's event loop (the VS Code extension host must
 * stay responsive; the 8B import is minutes of CPU work). Protocol: ImportWorkerRequest in, ImportWorkerMessage out.
 */
import {importCheckpoint} from "./importCheckpoint.js";
import type {ImportWorkerMessage, ImportWorkerRequest} from "./runImportInWorker.js";

const controller = new AbortController();
const send = (message: ImportWorkerMessage) => process.send?.(message);

process.on("message", (request: ImportWorkerRequest) => {
    if (request.type === "cancel") {
        controller.abort();
        return;
    }
    importCheckpoint({
        ...request.options,
        signal: controller.signal,
        log: (message) => send({type: "log", message}),
        onProgress: (fraction, tensor) => send({type: "progress", fraction, tensor})
    }).then(
        (report) => send({type: "done", report}),
        (error: unknown) => send({type: "error", message: error instanceof Error ? error.message : String(error), aborted: error instanceof Error && error.name === "AbortError"})
    ).finally(() => process.disconnect?.());
});
// The parent going away cancels the import (the partial file is removed by the writer).
process.on("disconnect", () => controller.abort());
