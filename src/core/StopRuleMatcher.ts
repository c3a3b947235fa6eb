import type {StopReason} from "./engineProtocol.js";

export interface StopRuleVerdict {
    /** Text that is final: it cannot become part of a stop string any more. */
    readonly releasable: string;
    /** Set when generation must end; `releasable` is then the whole result. */
    readonly stop?: Extract<StopReason, "stop-string" | "single-line">;
}

/**
 * Applies stop strings and the single-line rule to the text generated so far. It holds back a tail that could still
 * grow into a stop string, so streamed chunks never contain text the final result drops.
 */
export class StopRuleMatcher {
    private readonly stops: readonly string[];

    public constructor(stops: readonly string[], private readonly singleLine: boolean) {
        this.stops = stops.filter((stop) => stop.length > 0);
    }

    public check(text: string): StopRuleVerdict {
        let cut = -1;
        for (const stop of this.stops) {
            const at = text.indexOf(stop);
            if (at >= 0 && (cut < 0 || at < cut))
                cut = at;
        }
        if (this.singleLine) {
            const firstContent = text.search(/\S/);
            const newline = firstContent < 0 ? -1 : text.indexOf("\n", firstContent);
            if (newline >= 0 && (cut < 0 || newline < cut))
                return {releasable: text.slice(0, newline), stop: "single-line"};
        }
        if (cut >= 0)
            return {releasable: text.slice(0, cut), stop: "stop-string"};
        return {releasable: text.slice(0, text.length - this.pendingStopPrefixLength(text))};
    }

    /** Length of the longest tail of `text` that is a proper prefix of some stop string. */
    private pendingStopPrefixLength(text: string): number {
        let longest = 0;
        for (const stop of this.stops)
            for (let length = Math.min(stop.length - 1, text.length); length > longest; length--)
                if (text.endsWith(stop.slice(0, length))) {
                    longest = length;
                    break;
                }
        return longest;
    }
}
