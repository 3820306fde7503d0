// Lets a child process run the TypeScript sources directly (`node -r ./test/support/lock-child-register.js x.ts`),
// compiled in memory by SWC with the settings jest uses, so the lock tests' worker processes run OUR
// providers without a build step. `src/...` and `test/...` imports resolve from the repository root.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const Module = require('node:module');
const swc = require('@swc/core');

const root = path.resolve(__dirname, '..', '..');
const options = {
  sourceMaps: 'inline',
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    target: 'es2022',
  },
  module: { type: 'commonjs' },
};

require.extensions['.ts'] = (module, filename) => {
  const { code } = swc.transformSync(fs.readFileSync(filename, 'utf8'), { ...options, filename });
  module._compile(code, filename);
};

const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  const absolute = /^(src|test)\//.test(request) ? path.join(root, request) : request;
  return resolveFilename.call(this, absolute, ...rest);
};
