// Lint: typescript-eslint with type information (the checks that catch real bugs: floating and
// misused promises, awaiting non-promises, unsafe any), plus Prettier's config so that formatting is
// Prettier's business alone. Run by `npm run lint`, which `npm test` runs first.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', 'node_modules/', 'test-artifacts/', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Async signatures often exist for an interface (a port method, a Nest hook) with nothing to await.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Tests read JSON answers and log lines whose shape they then assert: `any` there is checked by the assertions.
    files: ['test/**/*.ts', '**/*.spec.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/unbound-method': 'off',
      // Terminal escapes are what some tests assert; untyped CommonJS test servers (s3rver) are required with a cast.
      'no-control-regex': 'off',
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  prettier,
);
