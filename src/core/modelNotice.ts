import type {ModelStatus} from "./ModelSession.js";

export interface ModelNotice {
    readonly severity: "error" | "warning" | "info";
    readonly message: string;
}

/** The one notification a model status deserves, if any: failures, a deleted model file, a fallback to the CPU or to a smaller context. */
export function noticeFor(status: ModelStatus): ModelNotice | undefined {
    if (status.kind === "error")
        return {severity: "error", message: `Sparse Complete: ${status.error.message}`};
    if (status.kind !== "ready")
        return undefined;
    if (status.warning != null)
        return {severity: "warning", message: `Sparse Complete: ${status.warning}.`};
    if (status.info.fallbackReason != null)
        return {severity: "info", message: `Sparse Complete runs on the CPU: ${status.info.fallbackReason}.`};
    if (status.info.contextReducedFrom != null)
        return {severity: "info", message: `Sparse Complete: a ${status.info.contextReducedFrom}-token context did not fit in memory; ` +
            `using ${status.info.contextSize} tokens.`};
    return undefined;
}
