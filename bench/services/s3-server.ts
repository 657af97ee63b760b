/**
 * s3rver as a process of its own, so S3's CPU is not charged to the measured process:
 * `node --openssl-legacy-provider --import tsx bench/services/s3-server.ts <bucket>`.
 * Prints `{"url": "http://127.0.0.1:PORT"}` once the bucket exists; stops (and removes its folder) on SIGTERM/SIGINT.
 * `--openssl-legacy-provider`: s3rver's ListObjectsV2 continuation tokens need it (toolchain notes).
 */
import { startLocalS3 } from '#emulators/s3';

const bucket = process.argv[2] ?? 'mixpanel-aep-bench';
const s3 = await startLocalS3([bucket]);
process.stdout.write(`${JSON.stringify({ url: s3.endpoint })}\n`);
const stop = (): void => {
  s3.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
