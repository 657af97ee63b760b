import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The JSON report is what .ci/run counts (CI does not read vitest's own summary).
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
    // s3rver's ListObjectsV2 pagination needs the legacy OpenSSL provider (md5 of continuation tokens).
    execArgv: ['--openssl-legacy-provider'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
