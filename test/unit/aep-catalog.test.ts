/**
 * The Platform read client with a stubbed fetch: where the token goes, how refusals read, Platform's error shapes.
 */
import { describe, expect, it } from 'vitest';
import { AepHttpError } from '#aep/errors';
import { PlatformCatalog, platformErrors } from '#aep/catalog';
import type { TokenSource } from '#aep/transport';

const PLATFORM = 'https://platform.example.test';

const tokens: TokenSource = {
  auth: async () => ({ accessToken: 'tok-1', clientId: 'client', orgId: 'ORG@AdobeOrg', expiresAtMs: 8.64e15 }),
  invalidate: () => undefined,
};

/** A fetch that answers from `routes` (path + query → response) and records every URL it was asked for. */
function stubFetch(routes: Record<string, () => Response>, seen: string[]): typeof fetch {
  return async (input) => {
    const url = new URL(String(input));
    seen.push(url.toString());
    const answer = routes[`${url.pathname}${url.search}`];
    return answer === undefined ? new Response('{"title":"Not Found"}', { status: 404 }) : answer();
  };
}

function client(fetchImpl: typeof fetch): PlatformCatalog {
  return new PlatformCatalog({
    target: { platformUrl: PLATFORM, sandbox: 'prod' },
    tokens,
    fetch: fetchImpl,
    retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1, maxRetryAfterMs: 1 },
  });
}

describe('PlatformCatalog', () => {
  it('should download a failed file from the Platform host even when the listing links elsewhere', async () => {
    // Prepare
    const seen: string[] = [];
    const listing = {
      data: [{ name: 'part-0.json', length: '40', _links: { self: { href: 'https://elsewhere.test/steal?path=x' } } }],
      _page: { limit: 100, count: 1 },
    };
    const fetchImpl = stubFetch(
      {
        '/data/foundation/export/batches/B1/failed?start=0&limit=100': () => Response.json(listing),
        '/data/foundation/export/batches/B1/failed?path=part-0.json': () =>
          new Response('{"_id":"a","_validationErrors":[{"message":"bad"}]}\nnot json\n'),
      },
      seen,
    );

    // Act
    const lines = [];
    for await (const line of client(fetchImpl).failedRecords('B1')) lines.push(line);

    // Assess
    expect(seen.every((u) => u.startsWith(`${PLATFORM}/`))).toBe(true);
    expect(lines).toEqual([
      {
        file: 'part-0.json',
        line: 1,
        record: { _id: 'a', _validationErrors: [{ message: 'bad' }] },
        text: expect.any(String),
      },
      { file: 'part-0.json', line: 2, record: undefined, text: 'not json' },
    ]);
  });

  it('should explain a refused Catalog read without retrying it', async () => {
    // Prepare
    const seen: string[] = [];
    const fetchImpl = stubFetch(
      { '/data/foundation/catalog/batches/B9': () => Response.json({ title: 'Forbidden' }, { status: 403 }) },
      seen,
    );

    // Act
    const error = await client(fetchImpl)
      .getBatch('B9')
      .catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(AepHttpError);
    expect(error).toMatchObject({ status: 403, kind: 'permanent', service: 'catalog' });
    expect((error as Error).message).toMatch(/sandbox "prod"/);
    // The 403 is retried once with a renewed token (transport rule), then reported.
    expect(seen).toHaveLength(2);
  });

  it('should refuse a page size Catalog does not allow', () => {
    // Act
    const make = (pageSize: number) => () =>
      new PlatformCatalog({ target: { platformUrl: PLATFORM, sandbox: 'prod' }, tokens, pageSize });

    // Assess
    expect(make(0)).toThrow(/from 1 to 100/);
    expect(make(101)).toThrow(/from 1 to 100/);
    expect(make(100)).not.toThrow();
  });

  it('should read every documented error shape of a failed record or row', () => {
    // Act
    const streaming = platformErrors({
      _validationErrors: [{ keyword: 'format', message: 'not a date-time', pointerToViolation: '#/timestamp' }],
    });
    const envelope = platformErrors({ _errors: { _streamingValidation: [{ message: 'missing Source Name' }] } });
    const row = platformErrors({ _errors: [{ code: '1401', message: 'Row is corrupted' }] });

    // Assess
    expect(streaming).toEqual([{ code: 'format', message: 'not a date-time', path: '#/timestamp' }]);
    expect(envelope).toEqual([{ code: 'streamingValidation', message: 'missing Source Name' }]);
    expect(row).toEqual([{ code: '1401', message: 'Row is corrupted' }]);
    expect(platformErrors(undefined)).toEqual([]);
  });
});
