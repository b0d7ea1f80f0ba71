/** Numbers in messages, in words that agree with them: `1 seat`, `2 seats`, `1 was`, `2 were`. */
export const count = (n: number, singular: string, plural = `${singular}s`): string => `${n} ${n === 1 ? singular : plural}`;

/** `1 was` / `3 were` asked for. */
export const were = (n: number): string => count(n, 'was', 'were');
