import {readGgufHeader} from "./GgufReader.js";
import {gguf, GgufValueType, type GgufValue} from "./GgufValue.js";

/** deepseek-coder's fill-in-the-middle tokens (PSM order: begin=prefix, hole=suffix, end=middle). */
export const DEEPSEEK_CODER_FIM = {
    prefix: "<｜fim▁begin｜>",
    suffix: "<｜fim▁hole｜>",
    middle: "<｜fim▁end｜>"
} as const;

const CONTROL_TOKEN_TYPE = 3;

/**
 * The tokenizer metadata of a vocabulary-only GGUF (llama.cpp's ggml-vocab-deepseek-coder.gguf), completed for
 * fill-in-the-middle: FIM token ids are declared and the FIM tokens typed as control tokens, so llama.cpp
 * recognises them without guessing from their text.
 */
export async function readCodeTokenizerMetadata(vocabularyPath: string): Promise<Map<string, GgufValue>> {
    const header = await readGgufHeader(vocabularyPath);
    const metadata = new Map<string, GgufValue>();
    for (const [key, value] of header.metadata)
        if (key.startsWith("tokenizer."))
            metadata.set(key, value);
    const tokens = metadata.get("tokenizer.ggml.tokens");
    const types = metadata.get("tokenizer.ggml.token_type");
    if (tokens?.type !== GgufValueType.ARRAY || types?.type !== GgufValueType.ARRAY)
        throw new Error(`${vocabularyPath} has no token list`);
    const tokenTexts = tokens.value as readonly string[];
    const tokenTypes = [...types.value];
    const idOf = (text: string) => {
        const id = tokenTexts.indexOf(text);
        if (id < 0)
            throw new Error(`${vocabularyPath} has no token ${text}`);
        tokenTypes[id] = CONTROL_TOKEN_TYPE;
        return id;
    };
    metadata.set("tokenizer.ggml.fim_pre_token_id", gguf.u32(idOf(DEEPSEEK_CODER_FIM.prefix)));
    metadata.set("tokenizer.ggml.fim_suf_token_id", gguf.u32(idOf(DEEPSEEK_CODER_FIM.suffix)));
    metadata.set("tokenizer.ggml.fim_mid_token_id", gguf.u32(idOf(DEEPSEEK_CODER_FIM.middle)));
    metadata.set("tokenizer.ggml.token_type", gguf.array(types.elementType, tokenTypes));
    return metadata;
}
