import { firstByPriority } from './upstream.race';

/** A lookup the test settles by hand. */
function deferred() {
  let settle!: (value: string | null) => void;
  const promise = new Promise<string | null>((resolve) => (settle = resolve));
  return { promise, settle };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('firstByPriority', () => {
  it('waits for a better priority that has not answered, and takes its answer', async () => {
    const best = deferred();
    const worse = deferred();
    const lookups = new Map([
      [10, best],
      [40, worse],
    ]);
    let outcome: string | null | undefined;
    void firstByPriority([{ priority: 10 }, { priority: 40 }], (c) => lookups.get(c.priority)!.promise).then(
      (result) => (outcome = result),
    );
    worse.settle('from 40');
    await flush();
    expect(outcome).toBeUndefined();
    best.settle('from 10');
    await flush();
    expect(outcome).toBe('from 10');
  });

  it('settles on a worse priority once every better one answered null', async () => {
    const best = deferred();
    const worse = deferred();
    const lookups = new Map([
      [10, best],
      [40, worse],
    ]);
    const sut = firstByPriority([{ priority: 40 }, { priority: 10 }], (c) => lookups.get(c.priority)!.promise);
    worse.settle('from 40');
    best.settle(null);
    await expect(sut).resolves.toBe('from 40');
  });

  it('does not wait for worse priorities once the best answered', async () => {
    const never = new Promise<string | null>(() => undefined);
    const sut = firstByPriority([{ priority: 10 }, { priority: 40 }], (c) => (c.priority === 10 ? Promise.resolve('from 10') : never));
    await expect(sut).resolves.toBe('from 10');
  });

  it('takes the first answer among equal priorities', async () => {
    const slow = deferred();
    const sut = firstByPriority(
      [
        { priority: 40, name: 'slow' },
        { priority: 40, name: 'fast' },
      ],
      (c) => (c.name === 'slow' ? slow.promise : Promise.resolve('fast')),
    );
    await expect(sut).resolves.toBe('fast');
  });

  it('answers null when none has it, counting a rejection as null', async () => {
    const sut = firstByPriority([{ priority: 1 }, { priority: 2 }], (c) =>
      c.priority === 1 ? Promise.reject(new Error('boom')) : Promise.resolve(null),
    );
    await expect(sut).resolves.toBeNull();
  });

  it('answers null with no candidates', async () => {
    await expect(firstByPriority([], () => Promise.resolve('x'))).resolves.toBeNull();
  });
});
