import * as assert from "node:assert/strict";
import {cursorContextOf, wantsMultiline} from "../../src/core/completionShape.js";
import {postprocessCompletion} from "../../src/core/postprocessCompletion.js";

/** Splits a snippet at the `█` cursor marker. */
function at(snippet: string) {
    const offset = snippet.indexOf("█");
    const prefix = snippet.slice(0, offset);
    const suffix = snippet.slice(offset + 1);
    const context = cursorContextOf(prefix, suffix);
    return {context, multiline: wantsMultiline(context)};
}

describe("postprocessCompletion", () => {
    it("cuts a single-line completion where the rest of the line begins", () => {
        const {context, multiline} = at("const total = values.reduce((sum, v) => █);\n");
        assert.equal(multiline, true);
        assert.equal(postprocessCompletion("sum + v, 0);", context, false), "sum + v, 0");
    });

    it("keeps one line in the middle of a line", () => {
        const {context, multiline} = at("if (user.█ === undefined) {\n    return;\n}\n");
        assert.equal(multiline, false);
        assert.equal(postprocessCompletion("email\n    throw new Error();", context, multiline), "email");
    });

    it("drops the lines that already follow the cursor", () => {
        const {context, multiline} = at("function area(r: number): number {\n    █\n}\n\nexport {area};\n");
        assert.equal(multiline, true);
        assert.equal(postprocessCompletion("return Math.PI * r * r;\n}\n\nexport {area};", context, multiline), "return Math.PI * r * r;");
    });

    it("ends a block completion where it dedents past the cursor's block", () => {
        const {context, multiline} = at("class Stack<T> {\n    private items: T[] = [];\n    push(item: T) {\n        █");
        assert.equal(multiline, true);
        const raw = "this.items.push(item);\n    }\n\n    pop(): T | undefined {\n        return this.items.pop();\n    }\n}";
        assert.equal(postprocessCompletion(raw, context, multiline), "this.items.push(item);\n    }");
    });

    it("removes trailing whitespace and returns nothing for whitespace", () => {
        const {context} = at("def mean(xs):\n    █\n");
        assert.equal(postprocessCompletion("return sum(xs) / len(xs)   \n   \n", context, true), "return sum(xs) / len(xs)");
        assert.equal(postprocessCompletion("   \n  ", context, true), "");
    });

    it("keeps Python indentation inside the block", () => {
        const {context, multiline} = at("def fizzbuzz(n):\n    for i in range(1, n + 1):\n        █");
        assert.equal(multiline, true);
        const raw = "if i % 15 == 0:\n            print(\"FizzBuzz\")\n        else:\n            print(i)\n\nfizzbuzz(20)";
        assert.equal(postprocessCompletion(raw, context, multiline), "if i % 15 == 0:\n            print(\"FizzBuzz\")\n        else:\n            print(i)");
    });

    it("offers nothing when the completion only retypes the next line", () => {
        const {context} = at("    let x = 1;\n    █\n    return x;\n");
        assert.equal(postprocessCompletion("return x;", context, true), "");
    });

    it("drops a first line that restates the line above the cursor", () => {
        const {context, multiline} = at("export function multiply(a: number, b: number): number {\n    █\n}\n");
        assert.equal(postprocessCompletion("export function multiply(a: number, b: number): number {\n    return a * b;", context, multiline), "return a * b;");
    });

    it("drops a single-line completion that leaves the statement being typed for a new line", () => {
        const {context, multiline} = at("    for (const value of values) {\n        total += █\n    }\n");
        assert.equal(multiline, false);
        assert.equal(postprocessCompletion("\n        total += value;", context, multiline), "");
        assert.equal(postprocessCompletion("value;", context, multiline), "value;");
    });
});
