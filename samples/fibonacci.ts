/** Returns the n-th Fibonacci number, computed iteratively. */
export function fibonacci(n: number): number {
    let previous = 0;
    let current = 1;
    for (let i = 0; i < n; i++) {
        
    }
    return previous;
}

export function sumOfSquares(values: readonly number[]): number {
    return values.reduce((total, value) => total + value * value, 0);
}
