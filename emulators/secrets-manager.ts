/**
 * A Secrets Manager stand-in: the awsJson1.1 protocol's GetSecretValue over HTTP on loopback, so the real
 * `@aws-sdk/client-secrets-manager` runs unchanged via `AWS_ENDPOINT_URL_SECRETS_MANAGER` (or `endpoint`).
 * Errors use the service's shapes (`ResourceNotFoundException`, `AccessDeniedException`).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the fake answered: which operation on which secret id, and how. */
export interface SecretsManagerRequest {
  readonly operation: string;
  readonly secretId: string;
  readonly status: number;
}

export interface SecretsManagerFake {
  readonly url: string;
  readonly calls: number;
  /** Every request, in order (the deploy test maps them to IAM actions). */
  readonly requests: readonly SecretsManagerRequest[];
  put(id: string, value: string): void;
  deny(id: string): void;
  close(): Promise<void>;
}

export async function startSecretsManagerFake(secrets: Record<string, string> = {}): Promise<SecretsManagerFake> {
  const store = new Map(Object.entries(secrets));
  const denied = new Set<string>();
  let calls = 0;
  const requests: SecretsManagerRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      calls++;
      const target = String(req.headers['x-amz-target'] ?? '');
      let id = '';
      const reply = (status: number, body: unknown): void => {
        const operation = target.replace(/^secretsmanager\./, '');
        requests.push({ operation, secretId: id, status });
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(body));
      };
      if (target !== 'secretsmanager.GetSecretValue') {
        reply(400, { __type: 'UnknownOperationException', message: `operation ${target} is not emulated` });
        return;
      }
      try {
        id = String((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { SecretId?: string }).SecretId ?? '');
      } catch {
        reply(400, { __type: 'SerializationException', message: 'body is not JSON' });
        return;
      }
      if (denied.has(id)) {
        reply(400, {
          __type: 'AccessDeniedException',
          Message: `User is not authorized to perform: secretsmanager:GetSecretValue on resource: ${id}`,
        });
        return;
      }
      const value = store.get(id);
      if (value === undefined) {
        reply(400, {
          __type: 'ResourceNotFoundException',
          Message: "Secrets Manager can't find the specified secret.",
        });
        return;
      }
      reply(200, {
        ARN: `arn:aws:secretsmanager:us-east-1:000000000000:secret:${id}`,
        Name: id,
        SecretString: value,
        VersionId: 'v1',
        VersionStages: ['AWSCURRENT'],
        CreatedDate: 0,
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get calls() {
      return calls;
    },
    requests,
    put: (id, value) => void store.set(id, value),
    deny: (id) => void denied.add(id),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
