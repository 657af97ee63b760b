/**
 * AWS's own CloudFormation validator over the template of every deploy variant: 0 errors; warnings are listed in the
 * output. The deploy test (test/deploy/) runs it over the templates of a real `cdk synth` too.
 */
import { App, Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { parseConnectorConfig } from '../../lib/config.ts';
import { ConnectorStack } from '../../lib/connector-stack.ts';
import { errorsOf, formatDiagnostics, validateTemplates } from '../support/cfn-validate.ts';
import { STUB_HANDLER, deployVariants, synthStack } from './helpers.ts';

describe('@aws/cloudformation-validate', () => {
  it('should report no error on the template of any deploy variant', () => {
    // Prepare
    const templates = Object.fromEntries(
      Object.entries(deployVariants()).map(([name, input]) => [name, synthStack(input).template.toJSON()]),
    );

    // Act
    const diagnostics = validateTemplates(templates);

    // Assess
    console.log(
      `validator warnings (${diagnostics.length - errorsOf(diagnostics).length}):\n${formatDiagnostics(diagnostics)}`,
    );
    expect(formatDiagnostics(errorsOf(diagnostics))).toBe('');
  });

  it('should report an error the stack would hit on deploy (the check is live)', () => {
    // Prepare: a manifest queue whose visibility timeout is shorter than the forwarder's timeout.
    const config = parseConnectorConfig(deployVariants()['two projects, EU, alarm email']!);
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] }, builtinCloudFormationValidation: false });
    const stack = new ConnectorStack(app, 'Broken', {
      config,
      entries: { export: STUB_HANDLER, forward: STUB_HANDLER },
    });
    (stack.forwarder.queue.node.defaultChild as unknown as { visibilityTimeout: number }).visibilityTimeout =
      Duration.seconds(60).toSeconds();

    // Act
    const errors = errorsOf(validateTemplates({ broken: Template.fromStack(stack).toJSON() }));

    // Assess
    const queueId = stack.getLogicalId(stack.forwarder.queue.node.defaultChild as never);
    expect(errors).toContainEqual(expect.objectContaining({ ruleId: 'E3505', logicalId: queueId, severity: 'ERROR' }));
  });
});
