/** How long streamed text may wait to be sent with later text. */
export const CHUNK_INTERVAL_MS = 16;

/**
 * Streams a generation's text to the client with fewer messages: the first piece goes out at once (it marks the first
 * token), later pieces are joined and sent at most every `intervalMs`, and `flush()` sends the rest before the
 * request's final message. The pieces sent always concatenate to the pieces given. Each message costs both processes
 * a serialisation and a wake-up; one per token competed with decoding for the same cores (the editor consumes no
 * chunks; the typing benchmark only times the first).
 */
export class ChunkCoalescer {
    private pending = "";
    private timer: ReturnType<typeof setTimeout> | undefined;
    private sentAny = false;

    public constructor(private readonly send: (text: string) => void, private readonly intervalMs = CHUNK_INTERVAL_MS) {}

    public push(text: string): void {
        if (text.length === 0)
            return;
        if (!this.sentAny) {
            this.sentAny = true;
            this.send(text);
            this.timer = setTimeout(() => this.onTimer(), this.intervalMs);
            return;
        }
        this.pending += text;
        this.timer ??= setTimeout(() => this.onTimer(), this.intervalMs);
    }

    /** Sends what is waiting (call before the request's final message) and stops the timer. */
    public flush(): void {
        if (this.timer != null) {
            clearTimeout(this.timer);
            this.timer = undefined;
        }
        this.sendPending();
    }

    private onTimer(): void {
        this.timer = undefined;
        if (this.pending.length > 0) {
            this.sendPending();
            // Text that arrives within the next interval waits for it.
            this.timer = setTimeout(() => this.onTimer(), this.intervalMs);
        }
    }

    private sendPending(): void {
        if (this.pending.length === 0)
            return;
        const text = this.pending;
        this.pending = "";
        this.send(text);
    }
}
