import type {Llama, LlamaContextSequence, Token} from "node-llama-cpp";

export interface PerplexityResult {
    /** Tokens predicted (each text contributes its length minus one, BOS included in the count of inputs). */
    readonly tokens: number;
    /** Mean negative log-likelihood per token, in nats. */
    readonly meanNll: number;
    /** exp(meanNll). */
    readonly perplexity: number;
    /** Share of tokens that were the model's greedy (argmax) choice. */
    readonly tokenAccuracy: number;
}

export interface PerplexityOptions {
    /** Each text is cut to its first this many tokens (BOS included). */
    readonly windowTokens: number;
}

/**
 * log p(tokens[i+1] | tokens[0..i]) for every i, from one evaluation of `tokens` on an empty sequence, plus whether
 * each was the argmax. Asks llama.cpp only for the target's logit, the argmax logit and sum(exp(logit - max)), not
 * the full distribution: log p = logit(target) - logit(max) - log(sum).
 */
export async function tokenLogProbabilities(sequence: LlamaContextSequence, tokens: readonly Token[]): Promise<{logProbabilities: number[], argmaxHits: number}> {
    await sequence.clearHistory();
    const input = tokens.map((token, i) => i + 1 >= tokens.length ? token : [token, {
        generateNext: {
            token: true,
            logits: {filter: {tokens: [tokens[i + 1]!], includeSelected: true}},
            totalLogitWeight: true,
            // Greedy: the sampler keeps every logit and selects the argmax, so the "selected" logit is the maximum.
            options: {temperature: 0}
        }
    }] as const);
    const outputs = await sequence.controlledEvaluate(input as Parameters<LlamaContextSequence["controlledEvaluate"]>[0]);
    const logProbabilities: number[] = [];
    let argmaxHits = 0;
    for (let i = 0; i + 1 < tokens.length; i++) {
        const next = outputs[i]?.next;
        const argmax = next?.token;
        const target = next?.logits?.get(tokens[i + 1]!);
        const max = argmax != null ? next?.logits?.get(argmax) : undefined;
        if (target == null || max == null || next?.totalLogitWeight == null)
            throw new Error(`llama.cpp returned no logits for token ${i} of ${tokens.length}`);
        logProbabilities.push(target - max - Math.log(next.totalLogitWeight));
        if (argmax === tokens[i + 1])
            argmaxHits++;
    }
    return {logProbabilities, argmaxHits};
}

/** Left-to-right perplexity of a model over texts (each tokenized as in training: BOS, then the text without special tokens). */
export async function measurePerplexity(llama: Llama, modelPath: string, texts: readonly string[], options: PerplexityOptions): Promise<PerplexityResult> {
    const model = await llama.loadModel({modelPath, gpuLayers: llama.gpu === false ? 0 : "max"});
    try {
        const windowTokens = Math.min(options.windowTokens, model.trainContextSize || options.windowTokens);
        const context = await model.createContext({
            contextSize: windowTokens, sequences: 1, batchSize: Math.min(windowTokens, 1024),
            // Like the engine: one core is left free, since ggml's spin-waiting threads stall on a busy machine.
            threads: Math.max(1, Math.min(llama.cpuMathCores - 1, 16))
        });
        try {
            const sequence = context.getSequence();
            let nll = 0, count = 0, hits = 0;
            for (const text of texts) {
                const bos = model.tokens.shouldPrependBosToken && model.tokens.bos != null ? [model.tokens.bos] : [];
                const tokens = [...bos, ...model.tokenize(text, false)].slice(0, windowTokens);
                if (tokens.length < 2)
                    continue;
                const {logProbabilities, argmaxHits} = await tokenLogProbabilities(sequence, tokens);
                for (const logProbability of logProbabilities)
                    nll -= logProbability;
                count += logProbabilities.length;
                hits += argmaxHits;
            }
            const meanNll = count > 0 ? nll / count : Number.NaN;
            return {tokens: count, meanNll, perplexity: Math.exp(meanNll), tokenAccuracy: count > 0 ? hits / count : Number.NaN};
        } finally {
            await context.dispose();
        }
    } finally {
        await model.dispose();
    }
}
