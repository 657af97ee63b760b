/**
 * Runs the SQS stand-in as a process: `tsx emulators/sqs/main.ts --config <options.json>`.
 *
 * The config file holds SqsEmulatorOptions as JSON, e.g. `{"queues":[{"name":"dlq"},{"name":"forward",
 * "visibilityTimeout":3600,"redrive":{"deadLetterQueue":"dlq","maxReceiveCount":5}}]}`. Once listening, prints one
 * JSON line to stdout, `{"url":"http://127.0.0.1:PORT"}`; a queue's URL is `sqsQueueUrl(url, name)` (server.ts).
 * Stops on SIGINT / SIGTERM.
 */
import { parseSqsEmulatorOptions } from './options.ts';
import { startSqsEmulator } from './server.ts';

import { runEmulatorProcess } from '../process.ts';

runEmulatorProcess(
  'SQS emulator',
  'emulators/sqs/main.ts',
  (raw) => startSqsEmulator(parseSqsEmulatorOptions(raw)),
  (e) => ({ url: e.url }),
);
