/** Waiting helpers shared by the tests: wait on a condition, never on a guess of how long things take. */

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

type Condition = () => boolean | Promise<boolean>;

/**
 * Resolves once `condition` holds (polled every 20 ms); fails after `withinMs` (15 s by default), naming
 * `what` when given. The limit only turns a hang into a clear failure: it is not a timing assertion.
 */
export async function until(condition: Condition, withinMs?: number): Promise<void>;
export async function until(what: string, condition: Condition, withinMs?: number): Promise<void>;
export async function until(first: string | Condition, second?: Condition | number, third?: number): Promise<void> {
  const [what, condition, withinMs] =
    typeof first === 'string'
      ? [first, second as Condition, third ?? 15_000]
      : ['the condition holds', first, (second as number | undefined) ?? 15_000];
  const deadline = Date.now() + withinMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}
