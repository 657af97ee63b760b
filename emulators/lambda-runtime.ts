/**
 * A stand-in for the Lambda Runtime API on loopback: what a function's runtime polls for events and answers to.
 *
 * The documented protocol ("Using the Lambda runtime API for custom runtimes",
 * https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), version 2018-06-01:
 * - `GET /runtime/invocation/next` waits for the next event; the answer carries it as the body and the request id,
 *   deadline, function ARN and trace id as `Lambda-Runtime-*` headers;
 * - `POST /runtime/invocation/{id}/response` and `/runtime/invocation/{id}/error` end that invocation;
 * - `POST /runtime/init/error` reports a runtime that could not start (the handler module did not load).
 * One runtime process at a time polls it, as in a Lambda execution environment.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const BASE = '/2018-06-01/runtime';

/** An error the function (or its runtime) reported, as Lambda's Invoke API would surface it. */
export class LambdaInvocationError extends Error {
  constructor(
    readonly kind: 'function' | 'init' | 'timeout',
    readonly errorType: string,
    message: string,
  ) {
    super(`${kind} error ${errorType}: ${message}`);
    this.name = 'LambdaInvocationError';
  }
}

export interface LambdaRuntimeApiOptions {
  /** ARN handed to the function in `Lambda-Runtime-Invoked-Function-Arn`. */
  readonly functionArn: string;
  /** The function's timeout: the deadline of each invocation. */
  readonly timeoutMs: number;
}

export interface LambdaRuntimeApi {
  /** `host:port`, the value of AWS_LAMBDA_RUNTIME_API. */
  readonly address: string;
  /** Queues an event and resolves with the function's JSON answer (rejects with {@link LambdaInvocationError}). */
  invoke(event: unknown): Promise<unknown>;
  /** The error posted to `/runtime/init/error`, if any. */
  readonly initError: LambdaInvocationError | undefined;
  close(): Promise<void>;
}

interface Pending {
  readonly id: string;
  readonly body: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer?: NodeJS.Timeout;
}

/** Starts the Runtime API stand-in on a free loopback port. */
export async function startLambdaRuntimeApi(options: LambdaRuntimeApiOptions): Promise<LambdaRuntimeApi> {
  const queue: Pending[] = [];
  const inFlight = new Map<string, Pending>();
  let waiting: http.ServerResponse | undefined;
  let initError: LambdaInvocationError | undefined;

  const deliver = (): void => {
    if (waiting === undefined || queue.length === 0) return;
    const next = queue.shift()!;
    const res = waiting;
    waiting = undefined;
    const deadline = Date.now() + options.timeoutMs;
    inFlight.set(next.id, next);
    next.timer = setTimeout(() => {
      inFlight.delete(next.id);
      next.reject(
        new LambdaInvocationError('timeout', 'Sandbox.Timedout', `Task timed out after ${options.timeoutMs} ms`),
      );
    }, options.timeoutMs);
    res.writeHead(200, {
      'content-type': 'application/json',
      'lambda-runtime-aws-request-id': next.id,
      'lambda-runtime-deadline-ms': String(deadline),
      'lambda-runtime-invoked-function-arn': options.functionArn,
      'lambda-runtime-trace-id': `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomUUID().replaceAll('-', '').slice(0, 24)};Sampled=0`,
    });
    res.end(next.body);
  };

  const failAll = (error: LambdaInvocationError): void => {
    for (const p of [...queue.splice(0), ...inFlight.values()]) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    inFlight.clear();
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const path = (req.url ?? '').split('?')[0]!;
      const accepted = (): void => {
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end('{"status":"OK"}');
      };
      if (req.method === 'GET' && path === `${BASE}/invocation/next`) {
        waiting = res;
        deliver();
        return;
      }
      if (req.method === 'POST' && path === `${BASE}/init/error`) {
        initError = new LambdaInvocationError(
          'init',
          String(req.headers['lambda-runtime-function-error-type'] ?? 'Runtime.Unknown'),
          errorMessage(body),
        );
        failAll(initError);
        accepted();
        return;
      }
      const m = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(path);
      const pending = m ? inFlight.get(decodeURIComponent(m[1]!)) : undefined;
      if (req.method !== 'POST' || m === null || pending === undefined) {
        res.writeHead(m === null ? 404 : 400, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            errorType: m === null ? 'NotFound' : 'InvalidRequestID',
            errorMessage: `${req.method} ${path}`,
          }),
        );
        return;
      }
      inFlight.delete(pending.id);
      clearTimeout(pending.timer);
      if (m[2] === 'response') {
        try {
          pending.resolve(body === '' ? null : JSON.parse(body));
        } catch {
          pending.resolve(body);
        }
      } else {
        const type = String(req.headers['lambda-runtime-function-error-type'] ?? 'Unhandled');
        pending.reject(new LambdaInvocationError('function', type, errorMessage(body)));
      }
      accepted();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    address: `127.0.0.1:${port}`,
    get initError() {
      return initError;
    },
    invoke(event) {
      if (initError !== undefined) return Promise.reject(initError);
      return new Promise((resolve, reject) => {
        queue.push({ id: randomUUID(), body: JSON.stringify(event), resolve, reject });
        deliver();
      });
    },
    close: async () => {
      failAll(new LambdaInvocationError('init', 'Runtime.Closed', 'the runtime API stand-in was closed'));
      waiting?.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** `errorMessage` of the runtime's JSON error body, or the body itself. */
function errorMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { errorMessage?: unknown };
    if (typeof parsed.errorMessage === 'string') return parsed.errorMessage;
  } catch {
    // not JSON: keep the text
  }
  return body;
}
