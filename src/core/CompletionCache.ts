import {LRUCache} from "lru-cache";

/** How much of the prompt identifies a cached completion: enough to tell places apart, cheap to hash per keystroke. */
const PREFIX_KEY_CHARS = 400;
const SUFFIX_KEY_CHARS = 200;
/** The longest run of typed-ahead characters looked back over. */
const MAX_TYPED_AHEAD = 96;

export interface CacheLookup {
    readonly documentKey: string;
    readonly prefix: string;
    readonly suffix: string;
}

/**
 * Completions already computed, keyed by the text around the cursor. A lookup also finds a completion computed a
 * few keystrokes earlier when the user has since typed its first characters: the rest is served without the model.
 */
export class CompletionCache {
    private readonly entries: LRUCache<string, string>;

    public constructor(maxEntries = 500) {
        this.entries = new LRUCache({max: maxEntries});
    }

    private static key(documentKey: string, prefix: string, prefixEnd: number, suffix: string): string {
        return `${documentKey}\u0000${prefix.slice(Math.max(0, prefixEnd - PREFIX_KEY_CHARS), prefixEnd)}\u0000${suffix.slice(0, SUFFIX_KEY_CHARS)}`;
    }

    public set({documentKey, prefix, suffix}: CacheLookup, completion: string): void {
        if (completion.length > 0)
            this.entries.set(CompletionCache.key(documentKey, prefix, prefix.length, suffix), completion);
    }

    /** The completion for this position: an exact hit, or the unseen rest of one the user is typing through. */
    public get({documentKey, prefix, suffix}: CacheLookup): {completion: string, typedAhead: number} | undefined {
        const lookBack = Math.min(MAX_TYPED_AHEAD, prefix.length);
        for (let typed = 0; typed <= lookBack; typed++) {
            const completion = this.entries.get(CompletionCache.key(documentKey, prefix, prefix.length - typed, suffix));
            if (completion == null)
                continue;
            if (typed === 0)
                return {completion, typedAhead: 0};
            const typedText = prefix.slice(prefix.length - typed);
            if (completion.length > typed && completion.startsWith(typedText)) {
                const rest = completion.slice(typed);
                // Cache the rest under the current position too, so the next keystroke is an exact hit.
                this.set({documentKey, prefix, suffix}, rest);
                return {completion: rest, typedAhead: typed};
            }
        }
        return undefined;
    }

    public clear(): void {
        this.entries.clear();
    }
}
