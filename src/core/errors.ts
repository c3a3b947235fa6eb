/** Error codes that cross the process boundary; each one maps to a message a user can act on. */
export type EngineErrorCode =
    | "model-not-found"
    | "model-invalid"
    | "model-load-failed"
    | "gpu-unavailable"
    | "out-of-memory"
    | "not-loaded"
    | "engine-crashed"
    | "engine-unavailable"
    | "protocol"
    | "aborted"
    | "internal";

export class EngineError extends Error {
    public constructor(public readonly code: EngineErrorCode, message: string) {
        super(message);
        this.name = "EngineError";
    }
}

/** Thrown where a request was cancelled; callers treat it as "no completion", never as a failure. */
export class RequestAbortedError extends Error {
    public constructor() {
        super("request aborted");
        this.name = "RequestAbortedError";
    }
}

export function isAbortError(error: unknown): boolean {
    return error instanceof RequestAbortedError || (error instanceof Error && error.name === "AbortError");
}

export function describeError(error: unknown): string {
    return error instanceof Error ? error.message : String(error);
}
