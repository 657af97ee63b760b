import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ConnectorConfigError, type ConnectorConfigInput, parseConnectorConfig } from '../../lib/config.ts';
import { ConnectorStack } from '../../lib/connector-stack.ts';

/** Template tests skip bundling, so a stub stands in for both handlers (only its existence is checked). */
export const STUB_HANDLER = fileURLToPath(new URL('./fixtures/stub-handler.ts', import.meta.url));

/** Two projects: one on a rate with a named secret, one on a cron with a placeholder secret. */
export function twoProjectConfig(): ConnectorConfigInput {
  return {
    projects: [
      {
        id: '111',
        name: 'web',
        timezone: 'America/Los_Angeles',
        secret: { name: 'mixpanel/web' },
        schedule: { expression: 'rate(1 hour)' },
      },
      {
        id: '222',
        region: 'eu',
        timezone: 'Europe/Paris',
        legacyLocalTime: true,
        secret: { create: true },
        schedule: { expression: 'cron(15 */2 * * ? *)', timezone: 'UTC', intervalMinutes: 120 },
        window: { minutes: 120, mode: 'event-time', settleMinutes: 10, lookbackDays: 2, maxWindowsPerRun: 12 },
      },
    ],
    aep: {
      secret: { name: 'aep/creds' },
      inletUrl: 'https://dcs.adobedc.net/collection/abc123',
      flowId: 'flow-abc123',
      datasetId: 'ds123',
      schemaId: 'https://ns.adobe.com/acme/schemas/s1',
      tenantId: 'acme',
    },
    alarms: { email: 'ops@example.com' },
  };
}

/** A single-project config. */
export function oneProjectConfig(): ConnectorConfigInput {
  const c = twoProjectConfig();
  return { ...c, projects: [c.projects[0]!] };
}

/** Synthesises the stack without bundling or CloudFormation validation (fast); returns its template. */
export function synthStack(
  input: ConnectorConfigInput,
  baseDir?: string,
): { stack: ConnectorStack; template: Template } {
  const config = parseConnectorConfig(input, 'test config', baseDir);
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] }, builtinCloudFormationValidation: false });
  const stack = new ConnectorStack(app, config.stackName, {
    config,
    entries: { export: STUB_HANDLER, forward: STUB_HANDLER },
  });
  return { stack, template: Template.fromStack(stack) };
}

type Resources = Record<string, { Type: string; Properties: Record<string, any>; DeletionPolicy?: string }>;

/** The logical id of the export function of `projectId`. */
export function exportFunctionId(template: Template, projectId: string): string {
  const fns = template.findResources('AWS::Lambda::Function', {
    Properties: { Environment: { Variables: { MIXPANEL_PROJECT_ID: projectId } } },
  }) as Resources;
  const ids = Object.keys(fns);
  if (ids.length !== 1) throw new Error(`expected one export function for ${projectId}, found ${ids.length}`);
  return ids[0]!;
}

/** The logical id of the forward function. */
export function forwardFunctionId(template: Template): string {
  const fns = template.findResources('AWS::Lambda::Function', {
    Properties: { Environment: { Variables: { POWERTOOLS_SERVICE_NAME: 'mixpanel-aep-forward' } } },
  }) as Resources;
  return Object.keys(fns)[0]!;
}

/** A resource's properties by logical id. */
export function props(template: Template, logicalId: string): Record<string, any> {
  const all = template.toJSON().Resources as Resources;
  return all[logicalId]!.Properties;
}

/** The role logical id of a function (from its `Role: {Fn::GetAtt: [role, 'Arn']}`). */
export function roleOf(template: Template, functionId: string): string {
  return props(template, functionId).Role['Fn::GetAtt'][0];
}

export interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}

/** Every statement of the inline policies attached to `roleId`. */
export function statementsOf(template: Template, roleId: string): Statement[] {
  const policies = template.findResources('AWS::IAM::Policy') as Resources;
  return Object.values(policies)
    .filter((p) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
}

export const actionsOf = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);
export const resourcesOf = (s: Statement): unknown[] => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);

/** Renders CloudFormation intrinsics as readable text: `${Bucket.Arn}/staging/*`. */
export function render(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    const v = value as Record<string, any>;
    if ('Fn::Join' in v) return (v['Fn::Join'][1] as unknown[]).map(render).join(v['Fn::Join'][0]);
    if ('Fn::GetAtt' in v) return `\${${v['Fn::GetAtt'].join('.')}}`;
    if ('Ref' in v) return `\${${v.Ref}}`;
  }
  return JSON.stringify(value);
}

const KMS_KEY = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/**
 * The configurations the deploy checks run over (template tests and AWS's validator): several projects, EU,
 * customer-managed key, alarm email, stack-created secrets, VPC off / created / existing.
 */
export function deployVariants(): Record<string, ConnectorConfigInput> {
  const base = twoProjectConfig(); // two projects (one EU, one stack-created secret), alarm email
  const several: ConnectorConfigInput = {
    ...base,
    staging: { prefix: 'mixpanel/' },
    projects: [
      ...base.projects,
      { ...base.projects[0]!, id: '333', name: 'app', secret: { name: 'mixpanel/app', kmsKeyArn: KMS_KEY } },
    ],
    aep: { ...base.aep, secret: { create: true } },
  };
  return {
    'two projects, EU, alarm email': base,
    'three projects, prefix, customer-managed key, stack-created secrets': several,
    'created VPC with 2 NAT gateways': { ...base, network: { mode: 'create', natGateways: 2 } },
    'existing VPC': {
      ...base,
      network: {
        mode: 'existing',
        vpcId: 'vpc-0123456789abcdef0',
        availabilityZones: ['eu-west-1a', 'eu-west-1b'],
        privateSubnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
        privateSubnetRouteTableIds: ['rtb-0123456789abcdef0', 'rtb-0123456789abcdef1'],
        egressIps: ['203.0.113.10', '203.0.113.11'],
      },
    },
    'no reserved concurrency': { ...base, reserveExportConcurrency: false },
  };
}

/** The problems a config error lists (fails when `fn` does not throw one). */
export function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConnectorConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConnectorConfigError');
}
