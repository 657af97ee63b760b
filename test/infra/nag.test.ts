/**
 * cdk-nag AwsSolutions over every optional feature of the stack (the real `cdk synth` in synth.test.ts covers the
 * committed example): placeholder secrets, KMS-encrypted secrets, an email topic and an existing topic, an S3 mapping,
 * a staging prefix, a disabled project.
 */
import { App, Validations } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { parseConnectorConfig } from '../../lib/config.ts';
import { ConnectorStack } from '../../lib/connector-stack.ts';
import { STUB_HANDLER, deployVariants, twoProjectConfig } from './helpers.ts';

function checkedApp(mutate?: (stack: ConnectorStack) => void): App {
  const input = twoProjectConfig();
  input.staging = { prefix: 'mixpanel/' };
  input.mapping = 's3://shared-config/mapping.json';
  input.alarms = { email: 'ops@example.com', snsTopicArn: 'arn:aws:sns:eu-west-1:123456789012:ops' };
  input.aep.secret = { create: true };
  input.projects[0]!.secret = {
    name: 'mixpanel/web',
    kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
  };
  input.projects[1]!.enabled = false;
  const config = parseConnectorConfig(input);

  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] }, builtinCloudFormationValidation: false });
  const stack = new ConnectorStack(app, 'NagCheck', {
    config,
    entries: { export: STUB_HANDLER, forward: STUB_HANDLER },
  });
  mutate?.(stack);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return app;
}

describe('cdk-nag AwsSolutions', () => {
  it('should find nothing unacknowledged with every optional feature on', () => {
    // Act + Assess
    expect(() => checkedApp().synth()).not.toThrow();
  });

  it.each(['created VPC with 2 NAT gateways', 'existing VPC'])(
    'should find nothing unacknowledged with the functions in a VPC (%s)',
    (variant) => {
      // Prepare
      const config = parseConnectorConfig(deployVariants()[variant]!);
      const app = new App({ context: { 'aws:cdk:bundling-stacks': [] }, builtinCloudFormationValidation: false });
      new ConnectorStack(app, 'NagVpc', { config, entries: { export: STUB_HANDLER, forward: STUB_HANDLER } });
      Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

      // Act + Assess
      expect(() => app.synth()).not.toThrow();
    },
  );

  it('should still fail synth on a new finding (the checks are live, the acknowledgements narrow)', () => {
    // Prepare: a data action on "*" slipped into the forward role, next to the acknowledged X-Ray "*".
    const app = checkedApp((stack) =>
      stack.forwarder.fn.role.addToPrincipalPolicy(
        new PolicyStatement({ actions: ['s3:GetObject'], resources: ['*'] }),
      ),
    );

    // Act + Assess
    expect(() => app.synth()).toThrow(
      /NagCheck\/Forwarder\/Forward\/Role\/DefaultPolicy[\s\S]*AwsSolutions-IAM5\[Resource::\*\]/,
    );
  });
});
