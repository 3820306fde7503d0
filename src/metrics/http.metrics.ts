import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Histogram, Registry } from 'prom-client';
import { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { frontDoorOf } from 'src/common/front-door';
import { ServedSource, servedSourceOf } from './served-source';

type ServedKind = 'nar' | 'narinfo';

/** Body kinds counted in ncps_served_bytes_total, recognised by the content type the cache routes set. */
const SERVED_KINDS: Readonly<Record<string, ServedKind>> = {
  'application/x-nix-nar': 'nar',
  'text/x-nix-narinfo': 'narinfo',
};

/** Label of requests that matched no route: raw URLs would make one series per scanned path. */
const UNMATCHED_ROUTE = 'unmatched';

/** Counts `bytes` of one body: a function per kind and source, its label children bound once. */
type BodyCounter = (bytes: number) => void;

/**
 * HTTP request durations by route pattern (`/nar/:name`, never the URL) and status, and the bytes of
 * narinfo and NAR bodies sent, in all and by source for the routes that say it (markServedSource).
 * Measured by Fastify hooks, so 404s, guard refusals and streamed bodies count too, and for the hits
 * answered at the front door by its observer. A response the client hung up on is `status="aborted"`.
 */
@Injectable()
export class HttpMetrics implements OnModuleInit {
  private readonly duration: Histogram<'method' | 'route' | 'status'>;
  private readonly counters: Record<ServedKind, Record<ServedSource | 'unsaid', BodyCounter>>;

  constructor(
    registry: Registry,
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
    private readonly adapterHost: HttpAdapterHost,
  ) {
    const registers = [registry];
    this.duration = new Histogram({
      name: 'ncps_http_request_duration_seconds',
      help: 'HTTP requests from arrival to the last byte sent, by method, route pattern and status (aborted: the client hung up)',
      labelNames: ['method', 'route', 'status'],
      // From a cached narinfo (milliseconds) to a large NAR streamed while it downloads (minutes).
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    const servedBytes = new Counter({
      name: 'ncps_served_bytes_total',
      help: 'Bytes of narinfo and NAR bodies sent, by kind (NARs streamed to other instances included)',
      labelNames: ['kind'],
      registers,
    });
    const bySource = new Counter({
      name: 'ncps_cache_served_bytes_total',
      help:
        'Bytes of narinfo and NAR bodies sent to clients, by kind and source: ' +
        'cache (read from storage: upstream bandwidth saved) or upstream (fetched for the request)',
      labelNames: ['kind', 'source'],
      registers,
    });
    const counter = (kind: ServedKind, source?: ServedSource): BodyCounter => {
      const all = servedBytes.labels({ kind });
      all.inc(0);
      if (source === undefined) return (bytes) => all.inc(bytes);
      const sourced = bySource.labels({ kind, source });
      sourced.inc(0);
      return (bytes) => {
        all.inc(bytes);
        sourced.inc(bytes);
      };
    };
    const counters = (kind: ServedKind) => ({ unsaid: counter(kind), cache: counter(kind, 'cache'), upstream: counter(kind, 'upstream') });
    this.counters = { nar: counters('nar'), narinfo: counters('narinfo') };
  }

  onModuleInit(): void {
    // Without --prometheus-enabled nobody reads them: requests then pay for no hook at all.
    if (!this.config.prometheusEnabled) return;
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    if (!fastify) return;
    fastify.addHook('onRequest', (request, reply, done) => {
      this.timeRequest(request, reply);
      done();
    });
    fastify.addHook('onSend', (_request, reply, payload, done) => done(null, this.countBody(reply, payload)));
    // The requests answered at the front door, which no hook sees: timed and counted alike.
    frontDoorOf(fastify.server)?.observe(({ req, res, route, started, answer }) => {
      this.observe(req.method ?? '', route.pattern, res, started);
      this.counterFor(answer.type, res)?.(answer.body.length);
    });
  }

  private timeRequest(request: FastifyRequest, reply: FastifyReply): void {
    const started = process.hrtime.bigint();
    // 'close' comes for every response, finished or not; 'finish' never comes for an aborted one.
    reply.raw.once('close', () => this.observe(request.method, request.routeOptions.url ?? UNMATCHED_ROUTE, reply.raw, started));
  }

  /** Once `res` closed. */
  private observe(method: string, route: string, res: ServerResponse, started: bigint): void {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const status = res.writableFinished ? String(res.statusCode) : 'aborted';
    this.duration.observe({ method, route, status }, seconds);
  }

  /** The counter of bodies of `contentType` sent on `res`; undefined for a type that is not counted. */
  private counterFor(contentType: string | number | string[] | undefined, res: ServerResponse): BodyCounter | undefined {
    const kind =
      SERVED_KINDS[
        String(contentType ?? '')
          .split(';')[0]
          .trim()
      ];
    return kind && this.counters[kind][servedSourceOf(res) ?? 'unsaid'];
  }

  private countBody(reply: FastifyReply, payload: unknown): unknown {
    const count = this.counterFor(reply.getHeader('content-type'), reply.raw);
    if (!count || payload === null || payload === undefined) return payload;
    if (payload instanceof Readable) {
      countWrites(reply.raw, count);
      return payload;
    }
    if (typeof payload === 'string' || Buffer.isBuffer(payload)) count(Buffer.byteLength(payload));
    return payload;
  }
}

/**
 * Counts the body bytes handed to `response`, as they are written. Wrapping the body stream in a
 * Transform to count them would also take a stored NAR off its fast path (FileReadStream.pipe).
 */
function countWrites(response: ServerResponse, count: (bytes: number) => void): void {
  const write = response.write.bind(response) as (chunk: unknown, ...rest: unknown[]) => boolean;
  response.write = ((chunk: unknown, ...rest: unknown[]) => {
    count(typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Uint8Array).byteLength);
    return write(chunk, ...rest);
  }) as ServerResponse['write'];
}
