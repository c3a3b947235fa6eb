#!/usr/bin/env node
// Tokenizes work/corpus/docs.jsonl with llama.cpp's own tokenizer (node-llama-cpp, deepseek-coder
// vocab loaded vocab-only), so training sees exactly the token ids the extension produces at
// inference. Writes, per split (train/val, 1 file in 200 held out by path hash):
//   work/tokens/<split>.tok.u16   all documents' tokens back to back (no BOS/EOS; train.py adds them)
//   work/tokens/<split>.len.u32   token count of each document
// and xz-compressed copies in work/carry/ (what travels to the GPU machine).
// Usage: node model-pipeline/tokenize-corpus.mjs [--workers N]
import {Worker, isMainThread, parentPort, workerData} from "node:worker_threads";
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import readline from "node:readline";
import {execFileSync} from "node:child_process";
import {fileURLToPath} from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const work = path.join(here, "work");
const vocabPath = path.resolve(here, "..", "node_modules/node-llama-cpp/llama/llama.cpp/models/ggml-vocab-deepseek-coder.gguf");

const isVal = (p) => crypto.createHash("sha1").update(p).digest()[0] < 256 / 200 * 1; // ~0.5%

if (isMainThread) {
    const wi = process.argv.indexOf("--workers");
    const workers = wi > 0 ? Number(process.argv[wi + 1]) : 2;
    const tokDir = path.join(work, "tokens");
    fs.mkdirSync(tokDir, {recursive: true});
    const t0 = Date.now();
    const parts = await Promise.all(Array.from({length: workers}, (_, k) => new Promise((resolve, reject) => {
        const w = new Worker(fileURLToPath(import.meta.url), {workerData: {k, n: workers, tokDir, vocabPath}});
        w.on("message", resolve);
        w.on("error", reject);
    })));
    console.error(`tokenized in ${((Date.now() - t0) / 1000).toFixed(1)} s`, parts);
    const summary = {};
    for (const split of ["train", "val"]) {
        for (const kind of ["tok.u16", "len.u32"]) {
            const out = path.join(tokDir, `${split}.${kind}`);
            const fd = fs.openSync(out, "w");
            for (let k = 0; k < workers; k++) {
                const f = path.join(tokDir, `${split}.${kind}.part${k}`);
                fs.writeSync(fd, fs.readFileSync(f));
                fs.unlinkSync(f);
            }
            fs.closeSync(fd);
        }
        summary[split] = {docs: fs.statSync(path.join(tokDir, `${split}.len.u32`)).size / 4,
            tokens: fs.statSync(path.join(tokDir, `${split}.tok.u16`)).size / 2};
    }
    const carry = path.join(work, "carry");
    fs.mkdirSync(carry, {recursive: true});
    for (const f of fs.readdirSync(carry)) fs.unlinkSync(path.join(carry, f));
    for (const f of fs.readdirSync(tokDir)) {
        execFileSync("sh", ["-c", `xz -T${workers} -6 -c '${path.join(tokDir, f)}' > '${path.join(carry, f)}.xz'`]);
    }
    summary.carry_bytes = Object.fromEntries(fs.readdirSync(carry).map((f) => [f, fs.statSync(path.join(carry, f)).size]));
    fs.writeFileSync(path.join(tokDir, "summary.json"), JSON.stringify(summary, null, 1));
    console.error(JSON.stringify(summary, null, 1));
} else {
    const {k, n, tokDir, vocabPath} = workerData;
    const {getLlama} = await import("node-llama-cpp");
    const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
    const model = await llama.loadModel({modelPath: vocabPath, vocabOnly: true});
    const fds = {};
    for (const split of ["train", "val"]) for (const kind of ["tok.u16", "len.u32"]) fds[`${split}.${kind}`] = fs.openSync(path.join(tokDir, `${split}.${kind}.part${k}`), "w");
    const rl = readline.createInterface({input: fs.createReadStream(path.join(work, "corpus", "docs.jsonl")), crlfDelay: Infinity});
    let i = 0, docs = 0, tokens = 0, roundtripChecked = 0, roundtripBad = 0;
    for await (const line of rl) {
        if ((i++ % n) !== k || !line) continue;
        const {p, t} = JSON.parse(line);
        const ids = model.tokenize(t); // special tokens in the text stay plain text, as at inference
        if (i % 97 === 0) { roundtripChecked++; if (model.detokenize(ids) !== t) roundtripBad++; }
        for (const id of ids) if (id > 65535) throw new Error("token id out of uint16 range");
        const split = isVal(p) ? "val" : "train";
        fs.writeSync(fds[`${split}.tok.u16`], Buffer.from(Uint16Array.from(ids).buffer));
        fs.writeSync(fds[`${split}.len.u32`], Buffer.from(Uint32Array.of(ids.length).buffer));
        docs++; tokens += ids.length;
    }
    for (const fd of Object.values(fds)) fs.closeSync(fd);
    parentPort.postMessage({worker: k, docs, tokens, roundtripChecked, roundtripBad});
}
