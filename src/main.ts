#!/usr/bin/env node
import { holdYoungGeneration, startupComplete } from 'src/cli/startup-heap';
import { errorMessage } from 'src/common/error-fields';

// Before the CLI and the application load (required below, not imported, to keep that order).
holdYoungGeneration();
/* eslint-disable @typescript-eslint/no-require-imports -- loaded after holdYoungGeneration, on purpose */
require('reflect-metadata');
const { runCli } = require('src/cli/cli') as typeof import('src/cli/cli');
const { processEnvironment } = require('src/config/environment') as typeof import('src/config/environment');
/* eslint-enable @typescript-eslint/no-require-imports */

runCli(process.argv.slice(2), processEnvironment()).then(
  (code) => {
    // `serve` gave the heap its growth back once listening; other commands are done by now.
    startupComplete();
    if (code !== 0) process.exit(code);
  },
  (e: unknown) => {
    process.stderr.write(`ncps: ${errorMessage(e)}\n`);
    process.exit(1);
  },
);
