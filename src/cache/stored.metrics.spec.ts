import { Test } from '@nestjs/testing';
import { Registry } from 'prom-client';
import { NarFileRepository, NarInfoRepository } from 'src/database';
import { STORED_SAMPLE_TTL_MS, StoredDataMetrics } from './stored.metrics';

describe('StoredDataMetrics', () => {
  let registry: Registry;
  let bytes: jest.Mock<Promise<number>, []>;
  let now: jest.SpyInstance<number, []>;

  beforeEach(async () => {
    registry = new Registry();
    bytes = jest.fn(async () => 1000);
    const narFiles: Pick<NarFileRepository, 'sumStoredBytes' | 'countStored'> = { sumStoredBytes: bytes, countStored: async () => 3 };
    const narInfos: Pick<NarInfoRepository, 'count'> = { count: async () => 4 };
    // Built by Nest, which registers its gauges on the registry.
    await Test.createTestingModule({
      providers: [
        StoredDataMetrics,
        { provide: Registry, useValue: registry },
        { provide: NarFileRepository, useValue: narFiles },
        { provide: NarInfoRepository, useValue: narInfos },
      ],
    }).compile();
    now = jest.spyOn(Date, 'now').mockReturnValue(1_000_000);
  });
  afterEach(() => now.mockRestore());

  const scrape = async () => Object.fromEntries((await registry.getMetricsAsJSON()).map((m) => [m.name, m.values.map((v) => v.value)]));

  it('reads the stored size and counts from the database on scrape, once for both gauges', async () => {
    await expect(scrape()).resolves.toEqual({ ncps_stored_bytes: [1000], ncps_stored_entries: [4, 3] });
    expect(bytes).toHaveBeenCalledTimes(1);
  });

  it('reuses the figures for a while, then reads them again', async () => {
    await scrape();
    bytes.mockResolvedValue(2000);
    now.mockReturnValue(1_000_000 + STORED_SAMPLE_TTL_MS - 1);
    await expect(scrape()).resolves.toMatchObject({ ncps_stored_bytes: [1000] });
    now.mockReturnValue(1_000_000 + STORED_SAMPLE_TTL_MS);
    await expect(scrape()).resolves.toMatchObject({ ncps_stored_bytes: [2000] });
    expect(bytes).toHaveBeenCalledTimes(2);
  });

  it('keeps the last figures while the database fails, without failing the scrape', async () => {
    await scrape();
    bytes.mockRejectedValue(new Error('connection refused'));
    now.mockReturnValue(1_000_000 + STORED_SAMPLE_TTL_MS);
    await expect(scrape()).resolves.toMatchObject({ ncps_stored_bytes: [1000] });
  });
});
