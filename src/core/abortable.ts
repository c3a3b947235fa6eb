import {RequestAbortedError} from "./errors.js";

/** Resolves after `ms`, or rejects with RequestAbortedError as soon as the signal aborts. */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
        if (signal.aborted)
            return reject(new RequestAbortedError());
        const onAbort = () => {
            clearTimeout(timer);
            reject(new RequestAbortedError());
        };
        const timer = setTimeout(() => {
            signal.removeEventListener("abort", onAbort);
            resolve();
        }, ms);
        signal.addEventListener("abort", onAbort, {once: true});
    });
}

/** A controller aborted when any of the given signals aborts. */
export function linkedAbortController(...signals: (AbortSignal | undefined)[]): AbortController {
    const controller = new AbortController();
    for (const signal of signals) {
        if (signal == null)
            continue;
        if (signal.aborted) {
            controller.abort();
            break;
        }
        signal.addEventListener("abort", () => controller.abort(), {once: true, signal: controller.signal});
    }
    return controller;
}
