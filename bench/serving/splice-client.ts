/**
 * A load generator for NAR hits that copies no bytes: N keep-alive connections each GET one URL over
 * and over, parse the response head, and move exactly Content-Length body bytes socket → pipe →
 * /dev/null with splice(2). wrk reads every body into user space 8 KiB at a time; on a machine whose
 * other core runs the server, that copy is what limits a sendfile server, not the server.
 *
 * The C source is kept here and compiled with gcc into the benchmark's temporary directory, so that
 * the bench runs from any build without a separate install step. The client reads the servers' CPU
 * time from /proc itself, at the very instants its measured window opens and closes.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const SOURCE = String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *host, *path;
static int port, max_requests;
static char request[4096];
static size_t request_len;
static int devnull;
static atomic_uint_fast64_t total_bytes, total_requests;
static atomic_int failed;
static char failure[512];

static void fail(const char *what) {
  if (atomic_exchange(&failed, 1) == 0) snprintf(failure, sizeof failure, "%s: %s", what, errno ? strerror(errno) : "protocol");
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int dial(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
  inet_pton(AF_INET, host, &addr.sin_addr);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

/* One GET on the connection: 1 when done, 0 when the server had closed it (reconnect), -1 on error. */
static int get(int fd, int pipefd[2]) {
  if (write(fd, request, request_len) != (ssize_t)request_len) return 0;
  char head[16384];
  size_t have = 0;
  char *end = NULL;
  while (!end) {
    ssize_t n = read(fd, head + have, sizeof head - 1 - have);
    if (n <= 0) { if (have == 0) return 0; errno = 0; fail("response head cut short"); return -1; }
    have += n;
    head[have] = 0;
    end = strstr(head, "\r\n\r\n");
    if (!end && have == sizeof head - 1) { errno = 0; fail("response head too large"); return -1; }
  }
  if (strncmp(head, "HTTP/1.1 200", 12) != 0) { errno = 0; head[64] = 0; fail(head); return -1; }
  long long length = -1;
  for (char *line = strstr(head, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
    if (strncasecmp(line + 2, "content-length:", 15) == 0) length = atoll(line + 17);
  }
  if (length < 0) { errno = 0; fail("no Content-Length"); return -1; }
  long long already = (long long)(head + have - (end + 4));
  long long remaining = length - already;
  atomic_fetch_add(&total_bytes, already);
  while (remaining > 0) {
    ssize_t n = splice(fd, NULL, pipefd[1], NULL, remaining < (1 << 20) ? remaining : (1 << 20), SPLICE_F_MOVE | SPLICE_F_MORE);
    if (n <= 0) { if (n == 0) errno = 0; fail("body cut short"); return -1; }
    remaining -= n;
    atomic_fetch_add(&total_bytes, n);
    while (n > 0) {
      ssize_t m = splice(pipefd[0], NULL, devnull, NULL, n, SPLICE_F_MOVE);
      if (m <= 0) { fail("splice to /dev/null"); return -1; }
      n -= m;
    }
  }
  atomic_fetch_add(&total_requests, 1);
  return 1;
}

static void *client(void *arg) {
  (void)arg;
  int pipefd[2];
  if (pipe(pipefd) != 0) { fail("pipe"); return NULL; }
  fcntl(pipefd[1], F_SETPIPE_SZ, 1 << 20);
  int fd = dial();
  if (fd < 0) { fail("connect"); return NULL; }
  for (int done = 0; !atomic_load(&failed) && (max_requests == 0 || done < max_requests);) {
    int r = get(fd, pipefd);
    if (r < 0) break;
    if (r == 0) {
      close(fd);
      if ((fd = dial()) < 0) { fail("reconnect"); break; }
      continue;
    }
    done++;
  }
  close(fd);
  return NULL;
}

/* utime + stime of the given processes, in clock ticks. */
static long long cpu_ticks(int count, char **pids) {
  long long ticks = 0;
  for (int i = 0; i < count; i++) {
    char file[64], stat[2048];
    snprintf(file, sizeof file, "/proc/%s/stat", pids[i]);
    FILE *f = fopen(file, "r");
    if (!f) continue;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = 0;
    char *p = strrchr(stat, ')');
    unsigned long long utime = 0, stime = 0;
    /* after ") ": state (3) ... utime (14), stime (15) */
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) == 2) ticks += utime + stime;
  }
  return ticks;
}

int main(int argc, char **argv) {
  if (argc < 9) {
    fprintf(stderr, "usage: %s HOST PORT PATH CONNECTIONS WARMUP_S SECONDS MAX_REQUESTS_PER_CONNECTION SERVER_PIDS...\n", argv[0]);
    return 2;
  }
  host = argv[1]; port = atoi(argv[2]); path = argv[3];
  int connections = atoi(argv[4]);
  double warmup = atof(argv[5]), seconds = atof(argv[6]);
  max_requests = atoi(argv[7]);
  request_len = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: */*\r\n\r\n", path, host, port);
  devnull = open("/dev/null", O_WRONLY);
  pthread_t threads[1024];
  if (connections < 1 || connections > 1024) return 2;
  double started = now();
  for (int i = 0; i < connections; i++) pthread_create(&threads[i], NULL, client, NULL);
  double t0 = started, t1;
  unsigned long long bytes0 = 0, requests0 = 0, bytes1, requests1;
  long long cpu0 = cpu_ticks(argc - 8, argv + 8), cpu1;
  if (max_requests == 0) {
    /* Timed: a warm-up, then a window measured from its first to its last instant. */
    usleep((useconds_t)(warmup * 1e6));
    t0 = now(); cpu0 = cpu_ticks(argc - 8, argv + 8);
    bytes0 = atomic_load(&total_bytes); requests0 = atomic_load(&total_requests);
    usleep((useconds_t)(seconds * 1e6));
    t1 = now(); cpu1 = cpu_ticks(argc - 8, argv + 8);
    bytes1 = atomic_load(&total_bytes); requests1 = atomic_load(&total_requests);
  } else {
    /* Counted: every connection makes its requests; SECONDS is a time limit. */
    for (int i = 0; i < connections; i++) pthread_join(threads[i], NULL);
    t1 = now(); cpu1 = cpu_ticks(argc - 8, argv + 8);
    bytes1 = atomic_load(&total_bytes); requests1 = atomic_load(&total_requests);
    if (t1 - started > seconds) { errno = 0; fail("time limit exceeded"); }
  }
  if (atomic_load(&failed)) {
    fprintf(stderr, "splice-client: %s\n", failure);
    fflush(stderr);
    _exit(1);
  }
  printf("{\"bytes\":%llu,\"requests\":%llu,\"seconds\":%.6f,\"cpuSeconds\":%.4f}\n",
         bytes1 - bytes0, requests1 - requests0, t1 - t0, (double)(cpu1 - cpu0) / sysconf(_SC_CLK_TCK));
  fflush(stdout);
  /* Open connections are dropped mid-body: servers must take a hang-up as one. */
  _exit(0);
}
`;

export interface SpliceResult {
  bytes: number;
  requests: number;
  seconds: number;
  /** CPU time the server processes used during the measured window. */
  cpuSeconds: number;
}

/** Compiles the client into `dir`; returns the path of the executable. */
export async function buildSpliceClient(dir: string): Promise<string> {
  const source = join(dir, 'splice-client.c');
  const binary = join(dir, 'splice-client');
  await writeFile(source, SOURCE);
  await run('gcc', ['-O2', '-Wall', '-pthread', '-o', binary, source]);
  return binary;
}

export interface SpliceOptions {
  url: string;
  connections: number;
  /** Timed mode: `warmUpSeconds` uncounted, then `seconds` measured. */
  warmUpSeconds?: number;
  seconds: number;
  /** Counted mode: each connection makes this many requests (`seconds` is then a time limit). */
  requestsPerConnection?: number;
  /** Processes whose CPU time counts as the server's. */
  serverPids: number[];
  /** Runs the client through `taskset -c <cpu>`. */
  cpu?: string;
}

export async function runSpliceClient(binary: string, o: SpliceOptions): Promise<SpliceResult> {
  const url = new URL(o.url);
  const args = [
    binary,
    url.hostname,
    url.port,
    url.pathname + url.search,
    String(o.connections),
    String(o.warmUpSeconds ?? 0),
    String(o.seconds),
    String(o.requestsPerConnection ?? 0),
    ...o.serverPids.map(String),
  ];
  const [command, ...rest] = o.cpu === undefined ? args : ['taskset', '-c', o.cpu, ...args];
  const { stdout } = await run(command, rest, { timeout: (o.seconds + (o.warmUpSeconds ?? 0) + 60) * 1000 }).catch(
    (e: { stderr?: string; message: string }) => {
      throw new Error(`splice client on ${o.url}: ${e.stderr?.trim() || e.message}`);
    },
  );
  return JSON.parse(stdout) as SpliceResult;
}
