import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {applyTypingEvent, generateTypingTrace, type TraceFile, type TypingTrace} from "../../src/bench/generateTypingTrace.js";
import {projectPaths} from "../../src/core/modelCatalog.js";

const samplesDir = projectPaths(path.resolve(import.meta.dirname, "../..")).samplesDir;
const sources: TraceFile[] = ["benchmark-source.ts.txt", "typing/EngineClient.ts.txt", "typing/CompletionEngine.ts.txt"]
    .map((name) => ({key: `file:///${name}`, text: fs.readFileSync(path.join(samplesDir, name), "utf8")}));

function replay(trace: TypingTrace): Map<string, string> {
    let texts = new Map(trace.files.map((file) => [file.key, file.text]));
    for (const event of trace.events)
        texts = applyTypingEvent(texts, event);
    return texts;
}

describe("generateTypingTrace", () => {
    it("retypes removed lines so that replaying every keystroke gives back the original files", () => {
        const trace = generateTypingTrace(sources, {seed: 7, keystrokes: 1_000_000});
        const final = replay(trace);
        for (const source of sources)
            assert.equal(final.get(source.key), source.text, `${source.key} after the trace`);
        assert.ok(trace.files.some((file, i) => file.text.length < sources[i]!.text.length), "the trace starts with lines missing");
    });

    it("types like a person: typos fixed with backspace, pauses, an edit above the cursor, file switches", () => {
        const trace = generateTypingTrace(sources, {seed: 3, keystrokes: 600});
        const typed = trace.events.filter((event) => event.kind !== "move");
        assert.ok(typed.length >= 600 && typed.length < 620, `${typed.length} keystrokes for a target of 600`);
        assert.ok(trace.events.some((event) => event.kind === "delete"), "some typos are fixed with backspace");
        const gaps = trace.events.slice(1).map((event, i) => event.atMs - trace.events[i]!.atMs);
        assert.ok(gaps.every((gap) => gap > 0), "time moves forward");
        assert.ok(gaps.some((gap) => gap > 700), "with pauses");
        const switches = trace.events.filter((event, i) => i > 0 && event.key !== trace.events[i - 1]!.key);
        assert.ok(switches.length >= 1, "switches between files");
        const jumpsUp = trace.events.filter((event, i) => event.kind === "move" && i > 0 && event.key === trace.events[i - 1]!.key
            && event.offset < trace.events[i - 1]!.offset - 200);
        assert.ok(jumpsUp.length >= 1, "jumps to an edit above the cursor");
        replay(trace);
    });

    it("is deterministic for a seed", () => {
        assert.deepEqual(generateTypingTrace(sources, {seed: 11, keystrokes: 200}), generateTypingTrace(sources, {seed: 11, keystrokes: 200}));
        assert.notDeepEqual(generateTypingTrace(sources, {seed: 11, keystrokes: 200}).events, generateTypingTrace(sources, {seed: 12, keystrokes: 200}).events);
    });
});
