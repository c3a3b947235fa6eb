export function sum(values: readonly number[]): number {
    let total = 0;
    for (const value of values) {
        total += 
    }
    return total;
}
