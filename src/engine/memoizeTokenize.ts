import {LRUCache} from "lru-cache";

/**
 * Remembers the tokens of recent texts. While a line is typed, the text before it and the suffix do not change from
 * one keystroke to the next, and tokenizing them again cost 2-7 ms per request on the CPU for a 2k-token window
 * (docs/benchmarks.md): more than evaluating the one new token. Keyed by the whole text; the arrays are shared, so
 * they are frozen.
 */
export function memoizeTokenize(tokenize: (text: string) => number[], maxEntries = 16): (text: string) => readonly number[] {
    const cache = new LRUCache<string, readonly number[]>({max: maxEntries});
    return (text) => {
        let tokens = cache.get(text);
        if (tokens == null) {
            tokens = Object.freeze(tokenize(text));
            cache.set(text, tokens);
        }
        return tokens;
    };
}
