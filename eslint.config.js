import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const only = (pkg, where) => ({
  name: pkg,
  message: `${pkg} belongs in ${where} only: keep foreign types behind the ports.`,
});

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', 'coverage/**', '.berth/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error',
    },
  },
  // Dependencies point one way; each foreign library lives in one adapter.
  {
    files: ['packages/contracts/**', 'packages/core/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            only('dockerode', 'packages/sandbox-docker'),
            only('pg', 'packages/db'),
            only('express', 'services/api'),
            only('multer', 'services/api'),
          ],
        },
      ],
    },
  },
  {
    files: ['packages/db/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [only('dockerode', 'packages/sandbox-docker'), only('express', 'services/api')] },
      ],
    },
  },
  {
    files: ['packages/sandbox-docker/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [only('pg', 'packages/db'), only('express', 'services/api')] },
      ],
    },
  },
  {
    files: ['services/api/src/**'],
    ignores: [
      'services/api/src/main.ts',
      'services/api/src/cli/**',
      'services/api/src/**/*.test.ts',
      'services/api/test/**',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [only('dockerode', 'packages/sandbox-docker'), only('pg', 'packages/db')] },
      ],
    },
  },
  {
    files: [
      '**/*.test.ts',
      'packages/testkit/**',
      'bench/**',
      'infra/**',
      'services/api/src/cli/**',
    ],
    rules: { 'no-console': 'off' },
  },
);
