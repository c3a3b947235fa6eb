import * as assert from "node:assert/strict";
import {buildPromptTokens, tokenizesLineStartsApart, type PromptTokenizer} from "../../src/engine/buildPromptTokens.js";
import {commonPrefixLength} from "../../src/engine/SequencePool.js";

// One token per character keeps the expected layouts readable; control tokens are negative so they cannot collide.
const BOS = -1, PRE = -2, SUF = -3, MID = -4;
const characterTokenizer: PromptTokenizer = {
    tokenize: (text) => [...text].map((character) => character.codePointAt(0)!),
    bos: BOS,
    fim: {prefix: PRE, suffix: SUF, middle: MID}
};
const tokens = (text: string) => characterTokenizer.tokenize(text);
const prompt = (prefix: string, suffix: string) => ({prefix, suffix, cacheKey: "file"});

describe("buildPromptTokens", () => {
    it("puts the line being typed after the middle marker, behind the suffix", () => {
        assert.deepEqual(buildPromptTokens(characterTokenizer, prompt("a\nbc", "d\ne"), 100),
            [BOS, PRE, ...tokens("a\n"), SUF, ...tokens("d\ne"), MID, ...tokens("bc")]);
        assert.deepEqual(buildPromptTokens(characterTokenizer, prompt("ab", ""), 100), [BOS, PRE, SUF, MID, ...tokens("ab")]);
    });

    it("lets a keystroke on a line reuse every cached token before it, suffix included", () => {
        const before = buildPromptTokens(characterTokenizer, prompt("function f() {\n  return x", ";\n}\n"), 100);
        const after = buildPromptTokens(characterTokenizer, prompt("function f() {\n  return x +", ";\n}\n"), 100);
        assert.equal(commonPrefixLength(before, after), before.length);
        assert.equal(after.length - before.length, 2);
    });

    it("keeps the typed line and the text nearest the cursor within the budget", () => {
        const budget = 40;
        const built = buildPromptTokens(characterTokenizer, prompt(`${"x".repeat(60)}\nlet y`, `;\n${"z".repeat(60)}`), budget);
        assert.ok(built.length <= budget, `${built.length} tokens over a budget of ${budget}`);
        const middle = built.indexOf(MID), suffixMarker = built.indexOf(SUF);
        assert.deepEqual(built.slice(middle + 1), tokens("let y"), "the typed line is whole");
        assert.deepEqual(built.slice(suffixMarker + 1, suffixMarker + 3), tokens(";\n"), "the suffix keeps its start");
        assert.deepEqual(built.slice(suffixMarker - 2, suffixMarker), tokens("x\n"), "the text before the line keeps its end");
        const room = budget - 4;
        assert.ok(middle - suffixMarker - 1 >= Math.floor((room - Math.floor(room * 0.25)) * 0.25), "the suffix keeps its share");
    });

    it("over budget, lets a keystroke reuse every token before it, and keeps the prompt's start while lines are added", () => {
        const budget = 200;
        const lines = Array.from({length: 60}, (_, i) => `line ${i}\n`).join("");
        const suffix = `;\n${"z".repeat(300)}`;
        const typed = buildPromptTokens(characterTokenizer, prompt(`${lines}let y`, suffix), budget);
        const typedMore = buildPromptTokens(characterTokenizer, prompt(`${lines}let yy`, suffix), budget);
        assert.ok(typed.length <= budget && typedMore.length <= budget);
        assert.equal(commonPrefixLength(typed, typedMore), typed.length, "a keystroke only extends the tail");
        // Lines added at the end move the cut at the start only every budget/8 tokens.
        const starts = Array.from({length: 12}, (_, extra) => {
            const more = Array.from({length: extra}, (_, i) => `next ${i}\n`).join("");
            return buildPromptTokens(characterTokenizer, prompt(`${lines}${more}let y`, suffix), budget).slice(2, 12).join(",");
        });
        const distinctStarts = new Set(starts).size;
        assert.ok(distinctStarts <= 1 + Math.ceil(12 * 7 / Math.floor((budget - 4) / 8)), `${distinctStarts} different starts over 12 added lines`);
        assert.ok(distinctStarts < 12, "the start does not move with every line");
    });

    it("keeps the end of a typed line longer than its share", () => {
        const built = buildPromptTokens(characterTokenizer, prompt("0123456789abcdefghij", ""), 24);
        assert.deepEqual(built.slice(built.indexOf(MID) + 1), tokens("fghij"), "a quarter of the 20 tokens left after the markers");
    });

    it("without FIM tokens sends the prefix alone, cut at its start", () => {
        const plain: PromptTokenizer = {tokenize: characterTokenizer.tokenize, bos: null};
        assert.deepEqual(buildPromptTokens(plain, prompt("abc\ndef", "ignored"), 4), tokens("\ndef"));
    });
    it("tokenizes a prefix-only prompt whole when the vocabulary marks the start of every call (SentencePiece)", () => {
        // Like SentencePiece with add_space_prefix: every call starts with a word-boundary marker.
        const MARK = -9;
        const spm = {tokenize: (text: string) => [MARK, ...tokens(text)], bos: BOS};
        assert.equal(tokenizesLineStartsApart(spm.tokenize), false);
        assert.equal(tokenizesLineStartsApart(characterTokenizer.tokenize), true);
        assert.deepEqual(buildPromptTokens({...spm, splitsAtLineStart: false}, prompt("a\nbc", ""), 100), [BOS, MARK, ...tokens("a\nbc")]);
    });
});
