import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import {CompletionPipeline} from "../../src/core/CompletionPipeline.js";
import {EngineClient} from "../../src/core/EngineClient.js";
import {defaultSettings} from "../../src/core/settings.js";
import {requireBuiltEngine, tinyModelPath} from "../support/fixtures.js";

/** Inodes of every TCP and UDP socket (IPv4 and IPv6) on the machine, from /proc/net. */
function networkSocketInodes(): Set<string> {
    const inodes = new Set<string>();
    for (const table of ["tcp", "tcp6", "udp", "udp6"]) {
        const file = `/proc/net/${table}`;
        if (!fs.existsSync(file))
            continue;
        for (const line of fs.readFileSync(file, "utf8").split("\n").slice(1)) {
            const inode = line.trim().split(/\s+/)[9];
            if (inode != null && inode !== "0")
                inodes.add(inode);
        }
    }
    return inodes;
}

/** Socket inodes a process holds open (its IPC channel is a Unix socket, which is not in the network tables). */
function socketInodesOf(pid: number): string[] {
    const dir = `/proc/${pid}/fd`;
    return fs.readdirSync(dir).map((fd) => {
        try {
            return /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`${dir}/${fd}`))?.[1];
        } catch {
            return undefined;
        }
    }).filter((inode): inode is string => inode != null);
}

describe("privacy: no network", function () {
    this.timeout(120_000);

    it("loads a model and completes without the engine process opening a TCP or UDP socket", async function () {
        if (!fs.existsSync("/proc/net/tcp"))
            this.skip();
        const engine = new EngineClient({enginePath: requireBuiltEngine(), log: () => undefined});
        try {
            await engine.load({modelPath: await tinyModelPath(), device: "auto", contextSize: 1024, sequences: 2});
            const pipeline = new CompletionPipeline(engine, () => ({...defaultSettings, debounceMs: 0}));
            const text = "import json\n\ndef load(path):\n    with open(path) as f:\n        return \n";
            await pipeline.complete({key: "load.py", text, offset: text.indexOf("return ") + 7});
            const network = networkSocketInodes();
            const engineSockets = socketInodesOf(engine.pid!);
            assert.ok(engineSockets.length > 0, "the IPC channel is visible as a socket");
            assert.deepEqual(engineSockets.filter((inode) => network.has(inode)), [], "engine process network sockets");
        } finally {
            await engine.dispose();
        }
    });
});
