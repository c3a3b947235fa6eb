export interface Disposable {
    dispose(): void;
}

/** A minimal typed event: listeners are called in order, and a throwing listener does not stop the others. */
export class Emitter<T> implements Disposable {
    private listeners: ((value: T) => void)[] = [];

    public readonly event = (listener: (value: T) => void): Disposable => {
        this.listeners.push(listener);
        return {dispose: () => { this.listeners = this.listeners.filter((l) => l !== listener); }};
    };

    public fire(value: T): void {
        for (const listener of [...this.listeners]) {
            try {
                listener(value);
            } catch {
                // A listener's failure belongs to the listener.
            }
        }
    }

    public dispose(): void {
        this.listeners = [];
    }
}
