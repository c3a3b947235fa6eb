import type {ModelStatus} from "./ModelSession.js";

export interface ModelNotice {
    readonly severity: "error" | "warning" | "info";
    readonly message: string;
}

/**
 * The one notification a model status deserves, if any: a failure, or everything the user should know about a loaded
 * model (a deleted model file, a fallback to the CPU, a smaller context) in one message.
 */
export function noticeFor(status: ModelStatus): ModelNotice | undefined {
    if (status.kind === "error")
        return {severity: "error", message: `Sparse Complete: ${status.error.message}`};
    if (status.kind !== "ready")
        return undefined;
    const parts: string[] = [];
    if (status.warning != null)
        parts.push(`${status.warning}.`);
    if (status.info.fallbackReason != null)
        parts.push(`It runs on the CPU: ${status.info.fallbackReason}.`);
    if (status.info.contextReducedFrom != null)
        parts.push(`A ${status.info.contextReducedFrom}-token context did not fit in memory; using ${status.info.contextSize} tokens.`);
    if (parts.length === 0)
        return undefined;
    return {severity: status.warning != null ? "warning" : "info", message: `Sparse Complete: ${parts.join(" ")}`};
}
