#!/usr/bin/env node
import 'reflect-metadata';
import { runCli } from 'src/cli/cli';
import { processEnvironment } from 'src/config/environment';

runCli(process.argv.slice(2), processEnvironment()).then(
  (code) => {
    if (code !== 0) process.exit(code);
  },
  (e: unknown) => {
    process.stderr.write(`ncps: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
