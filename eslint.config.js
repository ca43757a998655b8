import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const only = (pkg, where) => ({
  name: pkg,
  message: `${pkg} belongs in ${where} only: keep foreign types behind the ports.`,
});

const FOREIGN = {
  dockerode: 'packages/sandbox-docker',
  pg: 'packages/db',
  express: 'services/api',
  multer: 'services/api',
  'node-cron': 'services/api',
  sockopt: 'packages/socket-buffer',
};
const ADAPTERS = ['db', 'sandbox-docker', 'egress', 'blob-store-fs'];

/** One block per layer: which workspace packages and foreign libraries it may not import. */
function boundaries() {
  const foreign = (allowed = []) =>
    Object.entries(FOREIGN)
      .filter(([pkg]) => !allowed.includes(pkg))
      .map(([pkg, where]) => only(pkg, where));
  const workspace = (names, message, extra = {}) =>
    names.map((n) => ({ group: [`@berth/${n}`, `@berth/${n}/*`], message, ...extra }));
  const block = (files, { paths, patterns = [], ignores = [] }) => ({
    files,
    ignores,
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { paths, patterns }] },
  });
  const inward = 'Dependencies point one way: contracts ← core ← adapters ← services.';
  return [
    // Pure libraries: the wire's schemas, skill bundles (zip checks), and sockets' send buffers
    // (setsockopt); nothing of ours below them.
    block(['packages/contracts/**', 'packages/skill-bundle/**'], {
      paths: foreign(),
      patterns: workspace(['core', ...ADAPTERS, 'testkit', 'api'], inward),
    }),
    block(['packages/socket-buffer/**'], {
      paths: foreign(['sockopt']),
      patterns: workspace(['core', ...ADAPTERS, 'testkit', 'api'], inward),
    }),
    block(['packages/core/**'], {
      paths: foreign(),
      patterns: workspace([...ADAPTERS, 'api'], inward),
      ignores: ['packages/core/**/*.test.ts'],
    }),
    ...ADAPTERS.map((name) =>
      block([`packages/${name}/**`], {
        paths: foreign(name === 'db' ? ['pg'] : name === 'sandbox-docker' ? ['dockerode'] : []),
        patterns: workspace(
          [...ADAPTERS.filter((a) => a !== name), 'api'],
          'Adapters do not know each other: the composition root (services/api/src/compose.ts) wires them.',
        ),
        ignores: [`packages/${name}/**/*.test.ts`],
      }),
    ),
    block(['services/api/src/**'], {
      paths: foreign(['express', 'multer', 'node-cron']),
      patterns: workspace(['testkit'], '@berth/testkit is for tests only.'),
      ignores: ['services/api/src/**/*.test.ts'],
    }),
    // Routes and middleware speak the domain: adapters' values only through the wiring files.
    block(['services/api/src/**'], {
      paths: foreign(['express', 'multer', 'node-cron']),
      patterns: [
        ...workspace(['testkit'], '@berth/testkit is for tests only.'),
        ...workspace(
          ADAPTERS,
          'Only the wiring files (compose.ts, main.ts, database.ts, egress.ts, pool.ts, config.ts, cli/) build adapters.',
          { allowTypeImports: true },
        ),
      ],
      ignores: [
        'services/api/src/**/*.test.ts',
        'services/api/src/{compose,main,database,egress,config,pool}.ts',
        'services/api/src/cli/**',
      ],
    }),
  ];
}

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
  // Dependencies point one way (contracts ← core ← adapters ← services) and each foreign library
  // lives in one adapter. Every package is covered; the rules are generated from this table.
  ...boundaries(),
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
