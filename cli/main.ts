/**
 * The CLI: `demo` (what `npm start` runs), `sync`, `forward`, `replay`, `verify`, `resend`, `schema`, `provision`,
 * `validate-mapping`. Each command is
 * a function `(argv, env, io, ctx?) → exit code`; this module dispatches and turns failures into messages that say
 * what to fix.
 * Exit codes: 0 success, 1 the run failed or found problems, 2 bad usage or configuration.
 */
import { redact } from '#common/log';
import { UsageError } from './args.ts';
import { DEMO_USAGE, demoCommand } from './demo.ts';
import { describeFailure } from './errors.ts';
import { type CliContext, type CliIo, type Command, EXIT_OK, EXIT_USAGE, line } from './io.ts';
import {
  MAPPING_INIT_USAGE,
  SCHEMA_USAGE,
  VALIDATE_USAGE,
  mappingInitCommand,
  schemaCommand,
  validateMappingCommand,
} from './mapping.ts';
import { PROVISION_USAGE, provisionCommand } from './provision.ts';
import { FORWARD_USAGE, REPLAY_USAGE, forwardCommand, replayCommand } from './window.ts';
import { SYNC_USAGE, syncCommand } from './sync.ts';
import { RESEND_USAGE, VERIFY_USAGE, resendCommand, verifyCommand } from './verify.ts';

export const USAGE = `Usage: npm run cli -- <command> [options]        (npm start = demo)

Commands:
  demo                         the whole pipeline on local emulators: no configuration, credentials or network
  sync                         export the previous window (or --from/--to) from Mixpanel and forward it to Platform
                               (--dry-run: export and map, stage and send nothing)
  forward --window <id>        forward a committed window from staging, sending only what was not delivered yet
  replay --window <id>         re-send a committed window from staging to Platform (on purpose: Platform stores it again)
  verify --window <id>         ask Platform what it stored of a forwarded window (ingested / failed at Platform)
  resend --window <id>         re-send the records of a batch Platform failed, in a new batch (batch sink)
  schema                       print the XDM field group JSON for the configured mapping
  provision                    set up the Platform side (schema, identities, dataset, streaming dataflow) and print
                               the AEP_* values (--dry-run: list the calls; --write-config: write them)
  validate-mapping <file>      map a file of raw Mixpanel export lines and report rejected lines with reasons
  mapping-init                 print a preset's mapping config with its defaults, to start a mapping file

Run \`npm run cli -- <command> --help\` for a command's options. Configuration for sync, forward, replay, schema
and validate-mapping comes from the environment or a .env file (the environment wins); see the README.
`;

const COMMANDS: Record<string, { run: Command; usage: string }> = {
  demo: { run: demoCommand as Command, usage: DEMO_USAGE },
  sync: { run: syncCommand, usage: SYNC_USAGE },
  forward: { run: forwardCommand, usage: FORWARD_USAGE },
  replay: { run: replayCommand, usage: REPLAY_USAGE },
  verify: { run: verifyCommand, usage: VERIFY_USAGE },
  resend: { run: resendCommand, usage: RESEND_USAGE },
  schema: { run: schemaCommand, usage: SCHEMA_USAGE },
  provision: { run: provisionCommand, usage: PROVISION_USAGE },
  'validate-mapping': { run: validateMappingCommand, usage: VALIDATE_USAGE },
  'mapping-init': { run: mappingInitCommand as Command, usage: MAPPING_INIT_USAGE },
};

/** Runs one CLI invocation; never throws. */
export async function runCli(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: CliIo,
  ctx: CliContext = {},
): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout).write(USAGE);
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    line(io.stderr, `error: unknown command "${name}"`);
    line(io.stderr);
    io.stderr.write(USAGE);
    return EXIT_USAGE;
  }
  try {
    return await command.run(rest, env, io, ctx);
  } catch (error) {
    if (error instanceof UsageError) {
      line(io.stderr, `error: ${error.message}`);
      line(io.stderr);
      io.stderr.write(command.usage);
      return EXIT_USAGE;
    }
    const { text, code } = describeFailure(error, env);
    line(io.stderr, text);
    if (rest.includes('--verbose') && error instanceof Error && error.stack) line(io.stderr, redact(error.stack));
    return code;
  }
}
