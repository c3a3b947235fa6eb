/** A GGUF file that cannot be read: wrong magic, truncated, absurd counts or offsets. */
export class GgufFormatError extends Error {
    public constructor(public readonly filePath: string, detail: string) {
        super(`${filePath} is not a valid GGUF file: ${detail}`);
        this.name = "GgufFormatError";
    }
}
