/**
 * Entry of the local CLI (`npm start` runs `demo`; `npm run cli -- <command>` runs any command).
 * Only wiring: the commands live in cli/ and take argv, the environment and output sinks, so tests run them directly.
 */
// Node 20 is supported by this project (package.json engines); the SDK's notice about it would only clutter the output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// Imported after the line above: the SDK reads it when it loads.
const { runCli } = await import('#cli/main');
process.exitCode = await runCli(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr });

export {};
