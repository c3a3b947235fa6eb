/**
 * Entry point of the engine child process. It owns node-llama-cpp, so a native crash in llama.cpp ends this
 * process only; the extension host sees an exit and restarts it.
 */
import {ENGINE_PROTOCOL_VERSION, type ClientMessage, type EngineMessage} from "../core/engineProtocol.js";
import {EngineError, isAbortError} from "../core/errors.js";
import {ChunkCoalescer} from "./ChunkCoalescer.js";
import {CompletionEngine} from "./CompletionEngine.js";

function send(message: EngineMessage): void {
    if (process.connected)
        process.send!(message);
}

const engine = new CompletionEngine((level, message) => send({type: "log", level, message}));
const pendingAborts = new Map<number, AbortController>();

function fail(id: number, error: unknown): void {
    if (error instanceof EngineError)
        send({type: "failed", id, code: error.code, message: error.message});
    else if (isAbortError(error))
        send({type: "failed", id, code: "aborted", message: "aborted"});
    else
        send({type: "failed", id, code: "internal", message: error instanceof Error ? error.message : String(error)});
}

async function handle(message: ClientMessage): Promise<void> {
    switch (message.type) {
        case "load": {
            const info = await engine.load(message.options, (fraction) => send({type: "progress", id: message.id, fraction}));
            send({type: "loaded", id: message.id, info});
            return;
        }
        case "unload":
            await engine.unload();
            send({type: "unloaded", id: message.id});
            return;
        case "complete": {
            const controller = new AbortController();
            pendingAborts.set(message.id, controller);
            const chunks = new ChunkCoalescer((text) => send({type: "chunk", id: message.id, text}));
            try {
                const completion = await engine.complete(message.prompt, message.options, controller.signal, (text) => chunks.push(text));
                chunks.flush();
                send({type: "completed", id: message.id, completion});
            } finally {
                chunks.flush();
                pendingAborts.delete(message.id);
            }
            return;
        }
        case "prefill": {
            const controller = new AbortController();
            pendingAborts.set(message.id, controller);
            try {
                const result = await engine.prefill(message.prompt, message.options, controller.signal);
                send({type: "prefilled", id: message.id, result});
            } finally {
                pendingAborts.delete(message.id);
            }
            return;
        }
        case "abort":
            pendingAborts.get(message.id)?.abort();
            return;
        case "shutdown":
            await engine.dispose();
            process.exit(0);
    }
}

if (process.send == null) {
    console.error("engineHost must be started as a child process with an IPC channel");
    process.exit(2);
}
process.on("message", (message: ClientMessage) => {
    handle(message).catch((error) => fail("id" in message ? message.id : -1, error));
});
// The parent is gone: nothing to serve any more.
process.on("disconnect", () => process.exit(0));
process.on("unhandledRejection", (reason) => send({type: "log", level: "error", message: `unhandled rejection in engine: ${String(reason)}`}));
send({type: "hello", protocolVersion: ENGINE_PROTOCOL_VERSION, pid: process.pid});
