#!/usr/bin/env node
// Writes models/manifest.json from the bundled GGUF files: variant, bytes, sha256 (checked before first use),
// context length and FIM tokens read from each file, and the training data summary.
// Usage: node scripts/writeModelManifest.mjs SPARSE.gguf DENSE.gguf [--dense-8bit FILE.gguf] [--sparse-8bit FILE.gguf]
//   (files inside models/). The 8-bit files are references for `npm run eval` only: variant "eval-reference", which
//   the extension never selects and `npm run package` leaves out. `evalName` is the name the evaluation reports.
import {createHash} from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import {fileURLToPath} from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const option = (name) => {
    const at = args.indexOf(name);
    if (at < 0)
        return undefined;
    const [, value] = args.splice(at, 2);
    return value;
};
const dense8bit = option("--dense-8bit");
const sparse8bit = option("--sparse-8bit");
const [sparse, dense] = args;
if (sparse == null || dense == null || args.length !== 2) {
    console.error("usage: node scripts/writeModelManifest.mjs SPARSE.gguf DENSE.gguf [--dense-8bit FILE.gguf] [--sparse-8bit FILE.gguf]");
    process.exit(2);
}
const {readGgufHeader} = await import(path.join(root, "dist", "modelTools.mjs"));

async function entry(file, variant, evalName, description) {
    const full = path.join(root, "models", path.basename(file));
    const bytes = fs.readFileSync(full);
    const header = await readGgufHeader(full);
    const value = (key) => header.metadata.get(key)?.value;
    return {
        file: path.basename(file), variant, evalName, description,
        name: value("general.name"),
        bytes: bytes.length,
        sha256: createHash("sha256").update(bytes).digest("hex"),
        contextLength: value("llama.context_length"),
        fimTokens: {prefix: value("tokenizer.ggml.fim_pre_token_id"), suffix: value("tokenizer.ggml.fim_suf_token_id"), middle: value("tokenizer.ggml.fim_mid_token_id")}
    };
}

const manifest = {
    description: "Bundled code models: our own 34M-parameter Llama-architecture model trained from scratch on permissively licensed registry code (not a fine-tune of any published model). See docs/model.md.",
    data: "91.9M tokens of TypeScript/JavaScript (npm) and Python (Debian) from 444 packages, deduplicated and filtered; packages in eval-reserved.txt held out. Manifest: model-pipeline/corpus/manifest.json.",
    models: [
        await entry(sparse, "sparse", "sparse-4bit", "2:4 sparse (SparseGPT + distillation recovery), Q4_S24 4-bit linear weights (GPTQ), Q8_0 embeddings"),
        await entry(dense, "dense", "dense-4bit", "The dense twin: Q4_0 linear weights (GPTQ), Q8_0 embeddings"),
        ...dense8bit != null ? [await entry(dense8bit, "eval-reference", "dense-8bit",
            "Evaluation reference, not shipped: the dense model with Q8_0 linear weights and embeddings (near-lossless)")] : [],
        ...sparse8bit != null ? [await entry(sparse8bit, "eval-reference", "sparse-8bit",
            "Evaluation reference, not shipped: the 2:4 sparse model with Q8_0 linear weights and embeddings (zeros stay exactly zero)")] : []
    ]
};
fs.writeFileSync(path.join(root, "models", "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log(JSON.stringify(manifest.models.map((m) => [m.file, m.bytes, m.sha256.slice(0, 12)])));
