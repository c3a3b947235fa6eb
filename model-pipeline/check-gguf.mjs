#!/usr/bin/env node
// Loads an exported GGUF with node-llama-cpp on the CPU (as the extension does), checks its FIM
// token wiring, writes raw logits for a sample FIM prompt (for reference_logits.py to compare
// against the PyTorch-equivalent forward pass) and prints a few completions.
// Usage: node model-pipeline/check-gguf.mjs <model.gguf> <logits-out.json>
import fs from "node:fs";
import {getLlama, LlamaCompletion} from "node-llama-cpp";

const [modelPath, outPath] = process.argv.slice(2);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error", maxThreads: 1});
const model = await llama.loadModel({modelPath});
const inf = model.tokens.infill;
console.log(JSON.stringify({bos: model.tokens.bos, eos: model.tokens.eos, fimPrefix: inf.prefix, fimSuffix: inf.suffix, fimMiddle: inf.middle,
    trainContext: model.trainContextSize}));
if (inf.prefix !== 32016 || inf.suffix !== 32015 || inf.middle !== 32017) throw new Error("FIM tokens are not wired as expected");

const prefix = "import fs from \"node:fs\";\n\nexport function readJson(path: string) {\n    const text = ";
const suffix = ";\n    return JSON.parse(text);\n}\n";
const tokens = [32013, 32016, ...model.tokenize(prefix), 32015, ...model.tokenize(suffix), 32017];
const context = await model.createContext({contextSize: 512, batchSize: 512});
const seq = context.getSequence();
const probe = new Set([1, 5, Math.floor(tokens.length / 2), tokens.length - 2, tokens.length - 1]);
const res = await seq.controlledEvaluate(tokens.map((t, i) => probe.has(i) ? [t, {generateNext: {logits: true}}] : t));
const logits = {};
res.forEach((r, i) => {
    if (r?.next?.logits != null) {
        const arr = new Array(model.tokens.size ?? 32256).fill(0);
        for (const [tok, v] of r.next.logits) arr[tok] = v;
        logits[i] = arr;
    }
});
fs.writeFileSync(outPath, JSON.stringify({tokens, logits}));
await context.dispose();

const ctx2 = await model.createContext({contextSize: 1024});
const completion = new LlamaCompletion({contextSequence: ctx2.getSequence()});
const cases = [
    [prefix, suffix],
    ["def fibonacci(n):\n    if n < 2:\n        return n\n    return ", "\n\nprint(fibonacci(10))\n"],
    ["const items = [1, 2, 3];\nconst doubled = items.map(", ");\nconsole.log(doubled);\n"],
    ["import os\n\ndef list_python_files(root):\n    result = []\n    for dirpath, dirnames, filenames in os.walk(root):\n        for name in filenames:\n            if ", "\n    return result\n"],
];
for (const [p, s] of cases) {
    const out = await completion.generateInfillCompletion(p, s, {maxTokens: 32, temperature: 0});
    console.log(`--- FIM\n${p}\x1b[32m${out}\x1b[0m${s}`);
}
const l2r = await completion.generateCompletion("export class Stack<T> {\n    private items: T[] = [];\n\n    push(item: T): void {\n", {maxTokens: 48, temperature: 0});
console.log(`--- L2R\nexport class Stack<T> {...push(item: T): void {\n\x1b[32m${l2r}\x1b[0m`);
