import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import {PromptWindow} from "../../src/core/PromptWindow.js";

// Real code: this project's own pipeline source, long enough to overflow a small window.
const source = fs.readFileSync(new URL("../../src/core/EngineClient.ts", import.meta.url), "utf8");

describe("PromptWindow", () => {
    it("keeps the whole prefix while it fits", () => {
        const window = new PromptWindow({contextTokens: 100000});
        const offset = source.indexOf("public async load(");
        const prompt = window.build({key: "a.ts", text: source, offset});
        assert.equal(prompt.prefix, source.slice(0, offset));
        assert.equal(prompt.suffix, source.slice(offset));
    });

    it("keeps the prompt start byte-identical while the user types, moving it only in coarse steps", () => {
        const window = new PromptWindow({contextTokens: 400, charsPerToken: 3});
        let text = source;
        const insertAt = source.indexOf("    /** Stops the engine process");
        const typed = "    public describeState(): string {\n        return `engine is ${this.state}`;\n    }\n\n";
        const starts: string[] = [];
        for (let i = 0; i <= typed.length; i++) {
            text = source.slice(0, insertAt) + typed.slice(0, i) + source.slice(insertAt);
            const prompt = window.build({key: "a.ts", text, offset: insertAt + i});
            assert.ok(prompt.prefix.length <= 400 * 3 * 0.8 + 1, "prefix within its budget");
            assert.ok(prompt.prefix.endsWith(typed.slice(0, i)));
            starts.push(prompt.prefix.slice(0, 40));
        }
        const moves = starts.filter((start, i) => i > 0 && start !== starts[i - 1]).length;
        assert.ok(moves <= 1, `window start moved ${moves} times over ${typed.length} keystrokes`);
    });

    it("starts the window at a line start and ends the suffix at a line end", () => {
        const window = new PromptWindow({contextTokens: 300, charsPerToken: 3});
        const offset = source.indexOf("this.setState(\"crashed\")");
        const prompt = window.build({key: "b.ts", text: source, offset});
        assert.equal(source[offset - prompt.prefix.length - 1], "\n");
        assert.ok(prompt.suffix.endsWith("\n"));
        assert.ok(prompt.suffix.length <= 300 * 3 * 0.2);
    });

    it("finds its start again after a line is inserted above the window", () => {
        const window = new PromptWindow({contextTokens: 300, charsPerToken: 3});
        const offset = source.indexOf("private async restart()");
        const first = window.build({key: "c.ts", text: source, offset});
        const edited = "// a new first line\n" + source;
        const second = window.build({key: "c.ts", text: edited, offset: offset + 20});
        assert.equal(second.prefix, first.prefix);
    });
});
