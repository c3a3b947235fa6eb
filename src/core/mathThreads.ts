/**
 * Threads for CPU math given the machine's cores: one core is left to the editor, since ggml's threads spin-wait on
 * each other and a thread descheduled by a busy editor stalls every token (measured: 2 threads on a loaded 2-core
 * machine ran 200x slower than 1).
 */
export function mathThreadsFor(cores: number): number {
    return Math.max(1, Math.min(cores - 1, 16));
}
