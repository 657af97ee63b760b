/**
 * The least-privilege check of the deploy test on its own: requests map to the IAM action and resource S3 authorises
 * them as, a call no statement allows is reported, and so is a granted action nothing used.
 */
import { describe, expect, it } from 'vitest';
import { type ResolvedStatement, deniedCalls, s3Calls, unusedActions } from './iam.ts';

const BUCKET = 'arn:aws:s3:::staging';
const exportRole: ResolvedStatement[] = [
  {
    effect: 'Allow',
    actions: ['s3:ListBucket'],
    resources: [BUCKET],
    conditions: { StringLike: { 's3:prefix': ['staging/project=111/*', 'state/project=111/*'] } },
  },
  {
    effect: 'Allow',
    actions: ['s3:GetObject', 's3:PutObject'],
    resources: [`${BUCKET}/staging/project=111/*`, `${BUCKET}/state/project=111/*`],
    conditions: {},
  },
  {
    effect: 'Allow',
    actions: ['secretsmanager:GetSecretValue'],
    resources: ['arn:aws:secretsmanager:us-east-1:123456789012:secret:mp-??????'],
    conditions: {},
  },
];

describe('deploy test: IAM mapping and evaluation', () => {
  it('should map S3 REST requests to their IAM actions, with the ListBucket check of a missing key', () => {
    expect(s3Calls('PUT', '/staging/state/project%3D111/checkpoint.json', 200)!.map((c) => c.action)).toEqual([
      's3:PutObject',
    ]);
    expect(s3Calls('POST', '/staging/staging/project=111/p.gz?uploads', 200)!.map((c) => c.action)).toEqual([
      's3:PutObject',
    ]);
    expect(s3Calls('DELETE', '/staging/staging/project=111/p.gz?uploadId=1', 204)!.map((c) => c.action)).toEqual([
      's3:AbortMultipartUpload',
    ]);
    expect(s3Calls('HEAD', '/staging/state/project%3D111/checkpoint.json', 404)).toEqual([
      expect.objectContaining({ action: 's3:GetObject', resource: `${BUCKET}/state/project=111/checkpoint.json` }),
      expect.objectContaining({
        action: 's3:ListBucket',
        resource: BUCKET,
        context: { 's3:prefix': 'state/project=111/checkpoint.json' },
      }),
    ]);
    expect(s3Calls('PUT', '/staging?notification', 200)).toBeUndefined();
  });

  it('should allow what the role grants and report what it does not', () => {
    // Prepare
    const own = [
      ...s3Calls('HEAD', '/staging/state/project=111/checkpoint.json', 404)!,
      ...s3Calls('PUT', '/staging/staging/project=111/a.gz', 200)!,
    ];
    const other = [
      ...s3Calls('HEAD', '/staging/state/project=222/checkpoint.json', 404)!,
      ...s3Calls('DELETE', '/staging/staging/project=111/a.gz', 204)!,
    ];
    const secret = {
      action: 'secretsmanager:GetSecretValue',
      resource: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:mp-Ab12Cd',
      request: 'x',
    };
    const otherSecret = { ...secret, resource: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:mp/other-Ab12Cd' };

    // Act + Assess
    expect(deniedCalls([...own, secret], exportRole)).toEqual([]);
    expect(deniedCalls([...other, otherSecret], exportRole)).toEqual([
      `s3:GetObject on ${BUCKET}/state/project=222/checkpoint.json (HEAD /staging/state/project=222/checkpoint.json → 404)`,
      `s3:ListBucket on ${BUCKET} (HEAD /staging/state/project=222/checkpoint.json → 404)`,
      `s3:DeleteObject on ${BUCKET}/staging/project=111/a.gz (DELETE /staging/staging/project=111/a.gz → 204)`,
      `secretsmanager:GetSecretValue on ${otherSecret.resource} (x)`,
    ]);
  });

  it('should report granted actions nothing used unless the allow-list says why', () => {
    const used = s3Calls('GET', '/staging/state/project=111/checkpoint.json', 200)!;
    expect(unusedActions(used, exportRole, {})).toEqual([
      's3:ListBucket',
      's3:PutObject',
      'secretsmanager:GetSecretValue',
    ]);
    expect(
      unusedActions(used, exportRole, {
        's3:PutObject': 'reason',
        's3:ListBucket': 'reason',
        'secretsmanager:GetSecretValue': 'r',
      }),
    ).toEqual([]);
  });
});
