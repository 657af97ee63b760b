/**
 * Least privilege, checked: the AWS requests the stand-ins saw are mapped to the IAM action and resource each one is
 * authorised as, and evaluated against the inline policies of the function's role in the synthesized template.
 *
 * The evaluation is the subset of IAM the stack uses: Allow statements, actions and resources with `*`/`?`
 * wildcards, and the StringEquals / StringLike / ArnLike condition operators (a key missing from the request's
 * context fails its condition). https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
 */

/** One authorised request: the action, the resource ARN and the condition keys the service evaluates. */
export interface AwsCall {
  readonly action: string;
  readonly resource: string;
  readonly context?: Readonly<Record<string, string>>;
  /** What was seen, for messages (e.g. `HEAD /bucket/key → 404`). */
  readonly request: string;
}

/** A policy statement with its intrinsics resolved to text. */
export interface ResolvedStatement {
  readonly effect: string;
  readonly actions: readonly string[];
  readonly resources: readonly string[];
  readonly conditions: Readonly<Record<string, Readonly<Record<string, string | readonly string[]>>>>;
}

/** Values of the template's pseudo parameters and resources, for resolving `Ref` and `Fn::GetAtt`. */
export interface Resolution {
  readonly partition: string;
  readonly region: string;
  readonly account: string;
  /** logicalId → value of `Ref`; logicalId.Attr → value of `Fn::GetAtt`. */
  readonly refs: Readonly<Record<string, string>>;
}

/** Renders a CloudFormation value to text; unknown references become `<logicalId>` / `<logicalId.Attr>`. */
export function resolveValue(value: unknown, r: Resolution): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, unknown>;
  if (Array.isArray(v?.['Fn::Join'])) {
    const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map((p) => resolveValue(p, r)).join(sep);
  }
  if (typeof v?.Ref === 'string') {
    const pseudo: Record<string, string> = {
      'AWS::Partition': r.partition,
      'AWS::Region': r.region,
      'AWS::AccountId': r.account,
      'AWS::URLSuffix': 'amazonaws.com',
    };
    return pseudo[v.Ref] ?? r.refs[v.Ref] ?? `<${v.Ref}>`;
  }
  if (Array.isArray(v?.['Fn::GetAtt'])) {
    const key = (v['Fn::GetAtt'] as string[]).join('.');
    return r.refs[key] ?? `<${key}>`;
  }
  return JSON.stringify(value);
}

type Resources = Record<string, { Type: string; Properties?: Record<string, any> }>;

/** The statements of every inline policy (AWS::IAM::Policy) attached to `roleId`, resolved. */
export function roleStatements(template: { Resources: Resources }, roleId: string, r: Resolution): ResolvedStatement[] {
  const list = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);
  return Object.values(template.Resources)
    .filter(
      (res) =>
        res.Type === 'AWS::IAM::Policy' &&
        list(res.Properties?.Roles).some((role: { Ref?: string }) => role.Ref === roleId),
    )
    .flatMap((res) => list(res.Properties!.PolicyDocument.Statement) as Record<string, any>[])
    .map((s) => ({
      effect: s.Effect,
      actions: list<string>(s.Action),
      resources: list<unknown>(s.Resource).map((x) => resolveValue(x, r)),
      conditions: Object.fromEntries(
        Object.entries((s.Condition ?? {}) as Record<string, Record<string, unknown>>).map(([op, keys]) => [
          op,
          Object.fromEntries(
            Object.entries(keys).map(([k, val]) => [
              k,
              Array.isArray(val) ? val.map((x) => resolveValue(x, r)) : resolveValue(val, r),
            ]),
          ),
        ]),
      ),
    }));
}

/** IAM's wildcard match: `*` any run of characters, `?` one character, case-sensitive. */
export function wildcardMatch(pattern: string, value: string, caseInsensitive = false): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    caseInsensitive ? 'is' : 's',
  );
  return re.test(value);
}

function conditionHolds(
  op: string,
  key: string,
  expected: string | readonly string[],
  context: Readonly<Record<string, string>>,
): boolean {
  const actual = context[key];
  if (actual === undefined) return false;
  const values = typeof expected === 'string' ? [expected] : expected;
  switch (op) {
    case 'StringEquals':
      return values.includes(actual);
    case 'StringLike':
    case 'ArnLike':
      return values.some((v) => wildcardMatch(v, actual));
    default:
      throw new Error(`condition operator ${op} is not evaluated by this check: extend test/deploy/iam.ts`);
  }
}

/** The statement that allows `call`, if any. */
export function allowingStatement(
  call: AwsCall,
  statements: readonly ResolvedStatement[],
): ResolvedStatement | undefined {
  return statements.find(
    (s) =>
      s.effect === 'Allow' &&
      s.actions.some((a) => wildcardMatch(a, call.action, true)) &&
      s.resources.some((res) => wildcardMatch(res, call.resource)) &&
      Object.entries(s.conditions).every(([op, keys]) =>
        Object.entries(keys).every(([k, v]) => conditionHolds(op, k, v, call.context ?? {})),
      ),
  );
}

/** Calls no statement allows, as readable lines. */
export function deniedCalls(calls: readonly AwsCall[], statements: readonly ResolvedStatement[]): string[] {
  return [
    ...new Set(
      calls
        .filter((c) => allowingStatement(c, statements) === undefined)
        .map((c) => `${c.action} on ${c.resource} (${c.request})`),
    ),
  ];
}

/** Granted actions that no call used and the allow-list does not explain. */
export function unusedActions(
  calls: readonly AwsCall[],
  statements: readonly ResolvedStatement[],
  allowList: Readonly<Record<string, string>>,
): string[] {
  const used = new Set(calls.map((c) => c.action.toLowerCase()));
  const granted = new Set(statements.filter((s) => s.effect === 'Allow').flatMap((s) => s.actions));
  return [...granted].filter((a) => !used.has(a.toLowerCase()) && allowList[a] === undefined).sort();
}

/**
 * The IAM action and resource of an S3 REST request (path-style: `/bucket/key?query`), per the S3 API reference's
 * "Permissions" of each operation (https://docs.aws.amazon.com/AmazonS3/latest/API/API_Operations_Amazon_Simple_Storage_Service.html).
 * A GetObject/HeadObject of a missing key is also an s3:ListBucket check with the key as `s3:prefix`: only callers
 * allowed that get 404 instead of 403 (API_HeadObject.html, "Permissions").
 * @returns the calls, or undefined for a request this mapping does not know (the test then fails on it)
 */
export function s3Calls(method: string, url: string, status: number, partition = 'aws'): AwsCall[] | undefined {
  const parsed = new URL(url, 'http://s3.local');
  const [, bucket = '', ...keyParts] = parsed.pathname.split('/');
  const key = decodeURIComponent(keyParts.join('/'));
  const q = parsed.searchParams;
  const request = `${method} ${parsed.pathname}${parsed.search} → ${status}`;
  const object = `arn:${partition}:s3:::${bucket}/${key}`;
  const bucketArn = `arn:${partition}:s3:::${bucket}`;
  const one = (action: string, resource = object, context?: Record<string, string>): AwsCall[] => [
    { action, resource, request, ...(context ? { context } : {}) },
  ];
  if (key === '') {
    if (method === 'GET' && (q.has('list-type') || q.size === 0 || q.has('prefix')))
      return one('s3:ListBucket', bucketArn, { 's3:prefix': q.get('prefix') ?? '' });
    return undefined; // bucket-level writes (and DeleteObjects, whose keys are in the body) are not expected from a function
  }
  if (q.has('uploads') && method === 'POST') return one('s3:PutObject');
  if (q.has('uploadId')) {
    if (method === 'PUT' || method === 'POST') return one('s3:PutObject');
    if (method === 'DELETE') return one('s3:AbortMultipartUpload');
    if (method === 'GET') return one('s3:ListMultipartUploadParts');
  }
  if (method === 'PUT') return one('s3:PutObject');
  if (method === 'DELETE') return one('s3:DeleteObject');
  if (method === 'GET' || method === 'HEAD') {
    const read = one('s3:GetObject');
    return status === 404 ? [...read, ...one('s3:ListBucket', bucketArn, { 's3:prefix': key })] : read;
  }
  return undefined;
}
