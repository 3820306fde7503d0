import { ConfigError } from 'src/config/option';
import { dataSourceOptions } from './data-source';

describe('dataSourceOptions', () => {
  it('maps the PostgreSQL URL and pool sizes onto pg', () => {
    const sut = dataSourceOptions({
      url: 'postgres://ncps:pw@db:5433/ncps?sslmode=require',
      dialect: 'postgres',
      poolMaxOpen: 25,
      poolMaxIdle: 5,
    });

    expect(sut).toMatchObject({
      type: 'postgres',
      host: 'db',
      port: 5433,
      username: 'ncps',
      password: 'pw',
      database: 'ncps',
      ssl: { rejectUnauthorized: false },
      synchronize: false,
      extra: { max: 25, min: 5, idleTimeoutMillis: 10_000 },
    });
  });

  it('maps the MySQL URL and pool sizes onto mysql2', () => {
    const sut = dataSourceOptions({
      url: 'mysql://root@db/ncps?socket=/run/mysqld/mysqld.sock',
      dialect: 'mysql',
      poolMaxOpen: 10,
      poolMaxIdle: 20,
    });

    expect(sut).toMatchObject({
      type: 'mysql',
      connectorPackage: 'mysql2',
      socketPath: '/run/mysqld/mysqld.sock',
      database: 'ncps',
      supportBigNumbers: true,
      bigNumberStrings: true,
      poolSize: 10,
      extra: { maxIdle: 10 },
      synchronize: false,
    });
  });

  it('reports a bad URL as a configuration error that shows the URL without its password', () => {
    const sut = () =>
      dataSourceOptions({ url: 'postgres://ncps:hunter2@db/ncps?sslmode=maybe', dialect: 'postgres', poolMaxOpen: 1, poolMaxIdle: 1 });

    expect(sut).toThrow(ConfigError);
    expect(sut).toThrow('database URL postgres://ncps:***@db/ncps?sslmode=maybe: sslmode must be one of');
  });
});
