import * as assert from "node:assert/strict";
import {ChunkCoalescer} from "../../src/engine/ChunkCoalescer.js";

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("ChunkCoalescer", () => {
    it("sends the first piece at once, joins the next ones, and flushes the rest", async () => {
        const sent: string[] = [];
        const chunks = new ChunkCoalescer((text) => sent.push(text), 20);
        chunks.push("a");
        assert.deepEqual(sent, ["a"]);
        chunks.push("b");
        chunks.push("");
        chunks.push("c");
        assert.deepEqual(sent, ["a"], "later pieces wait for the interval");
        await wait(40);
        assert.deepEqual(sent, ["a", "bc"]);
        chunks.push("d");
        chunks.flush();
        assert.deepEqual(sent, ["a", "bc", "d"]);
        chunks.flush();
        await wait(40);
        assert.deepEqual(sent, ["a", "bc", "d"], "nothing is sent twice or after the flush");
        assert.equal(sent.join(""), "abcd");
    });

    it("sends nothing for a generation that produced no text", async () => {
        const sent: string[] = [];
        const chunks = new ChunkCoalescer((text) => sent.push(text), 5);
        chunks.push("");
        chunks.flush();
        await wait(15);
        assert.deepEqual(sent, []);
    });
});
