/**
 * Structured JSON logging for the Lambdas and the CLI.
 *
 * Powertools' Logger gives CloudWatch-friendly JSON with the Lambda context; the CLI runs the same code with a quiet
 * log level so its own progress output stays readable. Secrets never reach a log line: the redaction below is a net
 * under the rule that code never passes them in the first place.
 */
import { Logger } from '@aws-lambda-powertools/logger';

export const logger = new Logger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'mixpanel-aep-connector',
  logLevel: (process.env.POWERTOOLS_LOG_LEVEL ?? process.env.LOG_LEVEL ?? 'INFO') as 'INFO',
});

export type Log = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

const secretValues = new Set<string>();

/** Registers a secret value so that `redact` removes it from any text (error messages, URLs). */
export function registerSecret(value: string | undefined): void {
  if (value !== undefined && value.length >= 4) secretValues.add(value);
}

/** Replaces every registered secret value in `text` by `***`. */
export function redact(text: string): string {
  let out = text;
  for (const value of secretValues) {
    if (out.includes(value)) out = out.split(value).join('***');
  }
  return out;
}
