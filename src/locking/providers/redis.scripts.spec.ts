import { readerScripts, writerScripts } from './redis.scripts';

describe('redis lock scripts', () => {
  it('embeds the release channel as a Lua literal, escaping anything unusual in the prefix', () => {
    const { releaseScript } = writerScripts('we"ird\\préfix:released', false, 1000);
    expect(releaseScript).toContain(`redis.call('PUBLISH', "we\\034ird\\092pr\\195\\169fix:released", KEYS[1])`);
  });

  it('marks a waiting writer only in the waiting variant', () => {
    expect(writerScripts('c', true, 4500).acquireScript).toContain(`redis.call('SET', KEYS[3], '1', 'PX', 4500)`);
    expect(writerScripts('c', false, 4500).acquireScript).not.toContain("KEYS[3], '1'");
  });

  it('keeps readers out while a writer holds or waits', () => {
    expect(readerScripts('c').acquireScript).toContain(`redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[3]) == 1`);
  });
});
