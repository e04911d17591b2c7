import readline from 'node:readline';

/** Whether alyx may ask: a person at a terminal on both ends, not a CI job. */
export function canAsk(): boolean {
  return Boolean(process.stdin.isTTY && process.stdout.isTTY) && !process.env.CI;
}

/**
 * Asks for one of `choices` (by name or number) until one is given; Enter takes the default.
 * Resolves null when the person cancels (Ctrl-C, or Ctrl-D at the prompt).
 */
export function askChoice<T extends string>(question: string, choices: readonly T[], fallback: T): Promise<T | null> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
  const listed = choices.map((choice, index) => `${index + 1}) ${choice}`).join('  ');
  return new Promise((resolve) => {
    let answered = false;
    const finish = (value: T | null): void => {
      answered = true;
      rl.close();
      resolve(value);
    };
    const ask = (): void =>
      rl.question(`${question}  ${listed}  [${fallback}]: `, (answer) => {
        const given = answer.trim().toLowerCase();
        if (given === '') return finish(fallback);
        const chosen = choices.find((choice, index) => choice === given || String(index + 1) === given);
        if (chosen) return finish(chosen);
        process.stdout.write(`"${answer.trim()}" is not one of ${choices.join(', ')}.\n`);
        ask();
      });
    rl.on('SIGINT', () => {
      process.stdout.write('\n');
      finish(null);
    });
    rl.on('close', () => {
      if (!answered) {
        process.stdout.write('\n');
        resolve(null);
      }
    });
    ask();
  });
}
