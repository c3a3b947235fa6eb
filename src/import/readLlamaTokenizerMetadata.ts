import * as fs from "node:fs/promises";
import * as path from "node:path";
import {gguf, GgufValueType, type GgufValue} from "../gguf/GgufValue.js";
import {UnsupportedCheckpointError} from "./readCompressionScheme.js";

/** llama.cpp's token types (gguf TokenType). */
const TokenType = {NORMAL: 1, UNUSED: 5, CONTROL: 3, USER_DEFINED: 4} as const;

type Json = Record<string, unknown>;

async function readJsonIfPresent(file: string): Promise<Json | undefined> {
    try {
        return JSON.parse(await fs.readFile(file, "utf8")) as Json;
    } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT")
            return undefined;
        throw new Error(`${file}: ${(error as Error).message}`);
    }
}

/** A special token named in tokenizer_config.json: a string or an AddedToken object. */
function tokenText(value: unknown): string | undefined {
    if (typeof value === "string")
        return value;
    if (value != null && typeof value === "object" && typeof (value as Json).content === "string")
        return (value as Json).content as string;
    return undefined;
}

/** Whether a tokenizers post-processor prepends a special token (what add_bos_token means to llama.cpp). */
function postProcessorAddsBos(processor: unknown, bos: string | undefined): boolean | undefined {
    if (processor == null || typeof processor !== "object")
        return undefined;
    const p = processor as Json;
    if (p.type === "Sequence" && Array.isArray(p.processors))
        return p.processors.map((inner) => postProcessorAddsBos(inner, bos)).find((found) => found != null);
    if (p.type === "TemplateProcessing" && Array.isArray(p.single)) {
        const first = p.single[0] as Json | undefined;
        const special = first?.SpecialToken as Json | undefined;
        return special != null && (bos == null || special.id === bos);
    }
    return undefined;
}

/**
 * llama.cpp's tokenizer metadata for a Llama 3 style Hugging Face tokenizer (byte-level BPE): the token list by id
 * (ids the tokenizer lacks become [PADn], unused), token types (added special tokens and <|...|> tokens are control
 * tokens), merges, the "llama-bpe" pre-tokenizer, bos/eos/eot ids and the chat template.
 */
export async function readLlamaTokenizerMetadata(directory: string, config: Json): Promise<Map<string, GgufValue>> {
    const tokenizer = await readJsonIfPresent(path.join(directory, "tokenizer.json"));
    if (tokenizer == null)
        throw new Error(`${directory} has no tokenizer.json (the Hugging Face fast tokenizer is needed)`);
    const tokenizerConfig = await readJsonIfPresent(path.join(directory, "tokenizer_config.json")) ?? {};
    const generationConfig = await readJsonIfPresent(path.join(directory, "generation_config.json")) ?? {};
    const model = tokenizer.model as Json | undefined;
    if (model?.type !== "BPE" || model.byte_fallback === true)
        throw new UnsupportedCheckpointError(`tokenizer model ${JSON.stringify(model?.type)}${model?.byte_fallback === true ? " with byte fallback (SentencePiece style)" : ""} is not supported; ` +
            "the importer handles Llama 3 style byte-level BPE tokenizers");
    const vocab = model.vocab as Record<string, number>;
    const added = (tokenizer.added_tokens ?? []) as {id: number, content: string, special?: boolean}[];
    const byId = new Map<number, string>();
    for (const [text, id] of Object.entries(vocab))
        byId.set(id, text);
    for (const token of added)
        byId.set(token.id, token.content);
    const addedById = new Map(added.map((token) => [token.id, token]));
    let largestId = -1;
    for (const id of byId.keys())
        largestId = Math.max(largestId, id);
    const vocabularySize = typeof config.vocab_size === "number" ? config.vocab_size : largestId + 1;
    if (largestId >= vocabularySize)
        throw new Error(`the tokenizer has token id ${largestId}, but config.json's vocab_size is ${vocabularySize}`);

    const tokens: string[] = [];
    const types: number[] = [];
    for (let id = 0; id < vocabularySize; id++) {
        const text = byId.get(id);
        const addedToken = addedById.get(id);
        if (text == null) {
            tokens.push(`[PAD${id}]`);
            types.push(TokenType.UNUSED);
        } else if (addedToken != null) {
            tokens.push(text);
            types.push(addedToken.special === true || (text.startsWith("<|") && text.endsWith("|>")) ? TokenType.CONTROL : TokenType.USER_DEFINED);
        } else {
            tokens.push(text);
            types.push(TokenType.NORMAL);
        }
    }
    const merges = ((model.merges ?? []) as (string | [string, string])[]).map((merge) => typeof merge === "string" ? merge : merge.join(" "));

    const idOf = (text: string | undefined): number | undefined => {
        if (text == null)
            return undefined;
        const fromAdded = added.find((token) => token.content === text)?.id;
        return fromAdded ?? vocab[text];
    };
    const firstId = (value: unknown): number | undefined => typeof value === "number" ? value : Array.isArray(value) && typeof value[0] === "number" ? value[0] : undefined;
    const bosText = tokenText(tokenizerConfig.bos_token);
    const bos = idOf(bosText) ?? firstId(generationConfig.bos_token_id) ?? firstId(config.bos_token_id);
    const eos = idOf(tokenText(tokenizerConfig.eos_token)) ?? firstId(generationConfig.eos_token_id) ?? firstId(config.eos_token_id);
    const pad = idOf(tokenText(tokenizerConfig.pad_token));
    const eot = vocab["<|eot_id|>"] ?? idOf("<|eot_id|>");
    const addBos = typeof tokenizerConfig.add_bos_token === "boolean" ? tokenizerConfig.add_bos_token : postProcessorAddsBos(tokenizer.post_processor, bosText);

    const metadata = new Map<string, GgufValue>([
        ["tokenizer.ggml.model", gguf.str("gpt2")],
        ["tokenizer.ggml.pre", gguf.str("llama-bpe")],
        ["tokenizer.ggml.tokens", gguf.array(GgufValueType.STRING, tokens)],
        ["tokenizer.ggml.token_type", gguf.array(GgufValueType.INT32, types)],
        ["tokenizer.ggml.merges", gguf.array(GgufValueType.STRING, merges)]
    ]);
    if (bos != null)
        metadata.set("tokenizer.ggml.bos_token_id", gguf.u32(bos));
    if (eos != null)
        metadata.set("tokenizer.ggml.eos_token_id", gguf.u32(eos));
    if (eot != null)
        metadata.set("tokenizer.ggml.eot_token_id", gguf.u32(eot));
    if (pad != null)
        metadata.set("tokenizer.ggml.padding_token_id", gguf.u32(pad));
    if (addBos != null)
        metadata.set("tokenizer.ggml.add_bos_token", gguf.bool(addBos));
    const template = tokenizerConfig.chat_template;
    const chatTemplate = typeof template === "string" ? template
        : Array.isArray(template) ? (template as {name?: string, template?: string}[]).find((entry) => entry.name === "default")?.template : undefined;
    if (chatTemplate != null)
        metadata.set("tokenizer.chat_template", gguf.str(chatTemplate));
    return metadata;
}
