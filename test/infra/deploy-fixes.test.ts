/**
 * Template tests of what the deploy proof found (issue 17): the alarm topic's policy, exact secret ARNs, listing
 * limited to each role's own key prefixes, no unused S3 grants, a retention on every log group, the reserved
 * concurrency switch and its synth warning, and the optional VPC for stable egress.
 */
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { parseConnectorConfig } from '../../lib/config.ts';
import { secretArnRef } from '../../lib/constructs/secret-ref.ts';
import * as h from './helpers.ts';

const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:';
const variants = h.deployVariants();

describe('alarm topic policy', () => {
  it('should let CloudWatch alarms of this account and region publish to the email topic, next to the TLS deny', () => {
    // Act
    const { template } = h.synthStack(variants['two projects, EU, alarm email']!);

    // Assess
    const policies = Object.values(template.findResources('AWS::SNS::TopicPolicy'));
    expect(policies).toHaveLength(1);
    const statements = policies[0]!.Properties.PolicyDocument.Statement as Record<string, any>[];
    const allow = statements.filter((s) => s.Effect === 'Allow');
    expect(allow).toHaveLength(1);
    expect(allow[0]).toMatchObject({ Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: 'sns:Publish' });
    expect(allow[0]!.Condition.StringEquals).toEqual({ 'aws:SourceAccount': { Ref: 'AWS::AccountId' } });
    expect(h.render(allow[0]!.Condition.ArnLike['aws:SourceArn'])).toBe(
      'arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*',
    );
    expect(statements.some((s) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false')).toBe(
      true,
    );
  });

  it('should add no topic policy when alarms go to an existing topic only', () => {
    // Prepare
    const input = h.oneProjectConfig();
    input.alarms = { snsTopicArn: 'arn:aws:sns:eu-west-1:123456789012:ops' };

    // Act + Assess
    h.synthStack(input).template.resourceCountIs('AWS::SNS::TopicPolicy', 0);
  });
});

describe('secret ARNs: complete vs partial', () => {
  it('should read and grant a complete ARN exactly', () => {
    expect(secretArnRef(`${ARN}mixpanel/web-AbC123`, true)).toEqual({
      secretId: `${ARN}mixpanel/web-AbC123`,
      policyArn: `${ARN}mixpanel/web-AbC123`,
    });
  });

  it('should match the suffix of a partial ARN, and read an ambiguous partial one by its name', () => {
    // An unambiguous partial ARN: Secrets Manager resolves it as given.
    expect(secretArnRef(`${ARN}mixpanel/web`, undefined)).toEqual({
      secretId: `${ARN}mixpanel/web`,
      policyArn: `${ARN}mixpanel/web-??????`,
    });
    // A name ending in "-" + 6 alphanumerics: as an id it would be taken for a complete ARN, so its name is used.
    expect(secretArnRef(`${ARN}mixpanel-aep/app-mobile`, false)).toEqual({
      secretId: 'mixpanel-aep/app-mobile',
      policyArn: `${ARN}mixpanel-aep/app-mobile-??????`,
    });
  });

  it('should refuse an ambiguous ARN unless the config says whether it is complete', () => {
    // Prepare
    const input = h.oneProjectConfig();
    input.projects[0]!.secret = { arn: `${ARN}mixpanel-aep/app-mobile` };

    // Act + Assess
    expect(h.problemsOf(() => parseConnectorConfig(input))).toEqual([
      expect.stringMatching(
        /^projects\[0\]\.secret\.complete: is required: "-mobile" may be Secrets Manager's random suffix/,
      ),
    ]);
    input.projects[0]!.secret = { arn: `${ARN}mixpanel/web`, complete: true };
    expect(h.problemsOf(() => parseConnectorConfig(input))).toEqual([
      'projects[0].secret.complete: a complete ARN ends in "-" and the 6 characters Secrets Manager adds to the name',
    ]);
    input.projects[0]!.secret = { name: 'mixpanel/web', complete: false };
    expect(h.problemsOf(() => parseConnectorConfig(input))).toEqual([
      'projects[0].secret.complete: only applies to "arn"',
    ]);
  });

  it('should put the name in the environment and the suffix wildcard in the policy of an ambiguous partial ARN', () => {
    // Prepare
    const input = h.oneProjectConfig();
    input.projects[0]!.secret = { arn: `${ARN}mixpanel-aep/app-mobile`, complete: false };
    input.aep.secret = { arn: `${ARN}mixpanel-aep/aep-Xy12Zw`, complete: true };

    // Act
    const { template } = h.synthStack(input);

    // Assess
    const exp = h.exportFunctionId(template, '111');
    const fwd = h.forwardFunctionId(template);
    const secretGrants = (fn: string) =>
      h
        .statementsOf(template, h.roleOf(template, fn))
        .filter((s) => h.actionsOf(s).includes('secretsmanager:GetSecretValue'))
        .flatMap(h.resourcesOf);
    expect(h.props(template, exp).Environment.Variables.MIXPANEL_SECRET_ID).toBe('mixpanel-aep/app-mobile');
    expect(secretGrants(exp)).toEqual([`${ARN}mixpanel-aep/app-mobile-??????`]);
    expect(h.props(template, fwd).Environment.Variables.AEP_SECRET_ID).toBe(`${ARN}mixpanel-aep/aep-Xy12Zw`);
    expect(secretGrants(fwd)).toEqual([`${ARN}mixpanel-aep/aep-Xy12Zw`]);
  });
});

describe('S3 grants', () => {
  const { template } = h.synthStack(variants['three projects, prefix, customer-managed key, stack-created secrets']!);
  const listConditions = (fn: string) =>
    h
      .statementsOf(template, h.roleOf(template, fn))
      .filter((s) => h.actionsOf(s).includes('s3:ListBucket'))
      .map((s) => (s.Condition as { StringLike: { 's3:prefix': string[] } }).StringLike['s3:prefix']);

  it("should let each export role list only its own project's keys", () => {
    for (const id of ['111', '222', '333']) {
      expect(listConditions(h.exportFunctionId(template, id))).toEqual([
        [`mixpanel/staging/project=${id}/*`, `mixpanel/quarantine/project=${id}/*`, `mixpanel/state/project=${id}/*`],
      ]);
    }
    expect(listConditions(h.forwardFunctionId(template))).toEqual([
      ['mixpanel/staging/*', 'mixpanel/delivery/*', 'mixpanel/rejected/*', 'mixpanel/verify/*'],
    ]);
  });

  it('should grant no ListBucket without a prefix condition and no ListMultipartUploadParts anywhere', () => {
    const statements = Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
      (p) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Condition?: unknown }[],
    );
    const actions = (s: { Action: string | string[] }) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
    expect(statements.filter((s) => actions(s).includes('s3:ListBucket')).every((s) => s.Condition !== undefined)).toBe(
      true,
    );
    expect(statements.flatMap(actions)).not.toContain('s3:ListMultipartUploadParts');
  });
});

describe('log groups', () => {
  it.each(Object.keys(variants))(
    'should give every log group a retention and every function its own group (%s)',
    (name) => {
      // Act
      const { template } = h.synthStack(variants[name]!);

      // Assess
      const groups = template.findResources('AWS::Logs::LogGroup');
      for (const [id, group] of Object.entries(groups)) expect(group.Properties?.RetentionInDays, id).toBe(30);
      const functions = template.findResources('AWS::Lambda::Function');
      for (const [id, fn] of Object.entries(functions)) {
        expect(Object.keys(groups), `${id} logs to a group of the stack`).toContain(
          fn.Properties.LoggingConfig?.LogGroup?.Ref,
        );
      }
      // CDK's bucket-notifications handler is among them.
      expect(Object.keys(functions).some((id) => id.startsWith('BucketNotificationsHandler'))).toBe(true);
    },
  );
});

describe('reserved concurrency of the exports', () => {
  const warningId = /connector:reserved-export-concurrency/;

  it('should reserve 1 per export and warn at synth about small account quotas', () => {
    // Act
    const { stack, template } = h.synthStack(variants['two projects, EU, alarm email']!);

    // Assess
    template.resourcePropertiesCountIs('AWS::Lambda::Function', { ReservedConcurrentExecutions: 1 }, 2);
    const warnings = Annotations.fromStack(stack).findWarning(
      '*',
      Match.stringLikeRegexp('reserves 1 concurrent execution'),
    );
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]!.entry.data)).toMatch(
      /below 102 \(new accounts: 10\)[\s\S]*"reserveExportConcurrency": false/,
    );
    expect(String(warnings[0]!.entry.data)).toMatch(warningId);
  });

  it('should reserve nothing and not warn with reserveExportConcurrency false', () => {
    // Act
    const { stack, template } = h.synthStack(variants['no reserved concurrency']!);

    // Assess
    template.resourcePropertiesCountIs('AWS::Lambda::Function', { ReservedConcurrentExecutions: Match.anyValue() }, 0);
    expect(
      Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('reserves 1 concurrent execution')),
    ).toEqual([]);
  });
});

describe('stable egress (network)', () => {
  const connectorFunctions = (template: ReturnType<typeof h.synthStack>['template']) =>
    Object.values(template.findResources('AWS::Lambda::Function')).filter(
      (f) => f.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME,
    );

  it('should keep the functions out of any VPC by default', () => {
    // Act
    const { template } = h.synthStack(variants['two projects, EU, alarm email']!);

    // Assess
    for (const fn of connectorFunctions(template)) expect(fn.Properties.VpcConfig).toBeUndefined();
    expect(Object.keys(template.toJSON().Resources).filter((id) => /^Network/.test(id))).toEqual([]);
    expect(template.toJSON().Outputs.EgressIps).toBeUndefined();
  });

  it('should create a VPC whose NAT gateways leave through Elastic IPs, output those, and add S3 and Secrets Manager endpoints', () => {
    // Act
    const { template } = h.synthStack(variants['created VPC with 2 NAT gateways']!);

    // Assess
    const eips = Object.keys(template.findResources('AWS::EC2::EIP'));
    expect(eips).toHaveLength(2);
    const nats = Object.values(template.findResources('AWS::EC2::NatGateway'));
    expect(nats.map((n) => n.Properties.AllocationId['Fn::GetAtt'][0]).sort()).toEqual([...eips].sort());
    expect(template.toJSON().Outputs.EgressIps.Value).toEqual({ 'Fn::Join': [',', eips.map((id) => ({ Ref: id }))] });
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: Match.objectLike({}),
    });
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Interface', PrivateDnsEnabled: true });
    const endpoints = Object.values(template.findResources('AWS::EC2::VPCEndpoint')).map((e) =>
      h.render(e.Properties.ServiceName),
    );
    expect(endpoints.sort()).toEqual([
      'com.amazonaws.${AWS::Region}.s3',
      'com.amazonaws.${AWS::Region}.secretsmanager',
    ]);
    template.resourceCountIs('AWS::EC2::FlowLog', 1);
    for (const fn of connectorFunctions(template)) {
      expect(fn.Properties.VpcConfig.SubnetIds).toHaveLength(2);
      expect(fn.Properties.VpcConfig.SecurityGroupIds).toHaveLength(1);
    }
    // Outbound HTTPS only.
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: 'Connector functions: outbound HTTPS only',
      SecurityGroupEgress: [Match.objectLike({ CidrIp: '0.0.0.0/0', FromPort: 443, ToPort: 443, IpProtocol: 'tcp' })],
    });
  });

  it("should place the functions in an existing VPC's private subnets and output the configured egress IPs", () => {
    // Act
    const { template } = h.synthStack(variants['existing VPC']!);

    // Assess
    template.resourceCountIs('AWS::EC2::VPC', 0);
    template.resourceCountIs('AWS::EC2::EIP', 0);
    template.resourceCountIs('AWS::EC2::VPCEndpoint', 2);
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      RouteTableIds: ['rtb-0123456789abcdef0', 'rtb-0123456789abcdef1'],
    });
    for (const fn of connectorFunctions(template)) {
      expect(fn.Properties.VpcConfig.SubnetIds).toEqual(['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1']);
    }
    expect(template.toJSON().Outputs.EgressIps.Value).toBe('203.0.113.10,203.0.113.11');
  });

  it('should refuse an existing VPC whose subnets, zones and route tables do not line up', () => {
    // Prepare
    const input = {
      ...variants['existing VPC']!,
      network: { ...(variants['existing VPC']!.network as object), availabilityZones: ['eu-west-1a'] },
    };

    // Act + Assess
    expect(h.problemsOf(() => parseConnectorConfig(input))).toEqual([
      'network.privateSubnetIds: needs one availability zone and one route table per subnet, in the same order',
    ]);
  });
});
