/**
 * The one family every error of the product belongs to. Callers decide by `instanceof` and `kind` (never by `name`):
 * the CLI picks its exit code and advice from the kind, the pipelines tell "try again later" from "fix something".
 */

/**
 * What it takes to get past a failure:
 * - `config`: the connector's own settings are wrong (environment variables, the CDK config file, the mapping
 *   config). Fix them, then run again.
 * - `input`: one request is wrong (the command line, the Lambda event, a window id or range). Fix it and send it again.
 * - `transient`: waiting and trying again should get past it (throttling, 5xx, network, retries used up on those, a
 *   deadline, a lease held by another forwarder, an export cut short).
 * - `permanent`: trying again unchanged fails the same way (refused credentials, a plan without the API, a bad secret,
 *   damaged staging data, a file too large for one upload). Someone has to act first.
 */
export type ErrorKind = 'config' | 'input' | 'transient' | 'permanent';

/** `cause` as ES2022 `Error` takes it, and `hint`: the advice the message ends with, for callers that show it apart. */
export interface ConnectorErrorOptions extends ErrorOptions {
  readonly hint?: string;
}

/** Base of every product error; subclasses keep their own `name` and fields and choose the `kind`. */
export abstract class ConnectorError extends Error {
  readonly kind: ErrorKind;
  /** What to do about it, when the error carries that advice on its own (it is also part of the message). */
  readonly hint: string | undefined;

  /** `options` goes to `Error` as given, so an error built without a cause has no `cause` property. */
  constructor(kind: ErrorKind, message: string, options?: ConnectorErrorOptions) {
    super(message, options);
    this.name = 'ConnectorError';
    this.kind = kind;
    this.hint = options?.hint;
  }
}

/** The kind of a product error; undefined for anything else (an SDK error, a plain `Error`). */
export function errorKind(error: unknown): ErrorKind | undefined {
  return error instanceof ConnectorError ? error.kind : undefined;
}

/**
 * The kind of an error that reports a failed step with its `cause`: transient when the cause is, otherwise
 * permanent. A failed step is never a usage problem of its own, and a cause of unknown kind is not assumed to pass.
 */
export function kindFromCause(cause: unknown): 'transient' | 'permanent' {
  return errorKind(cause) === 'transient' ? 'transient' : 'permanent';
}
