/**
 * The stack's IAM prefixes and S3 notification filter against the keys the Lambdas really use
 * (functions/staging/layout.ts): if the layout moves, these fail here instead of as AccessDenied in AWS.
 */
import type { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { StagingLayout, type PartRef, type WindowRef } from '../../functions/staging/layout.ts';
import {
  actionsOf,
  exportFunctionId,
  forwardFunctionId,
  oneProjectConfig,
  render,
  resourcesOf,
  roleOf,
  statementsOf,
  synthStack,
} from './helpers.ts';

const PREFIX = 'cx/';

/** Whether any statement of `roleId` allows `action` on `key` of the staging bucket. */
function allows(template: Template, roleId: string, action: string, key: string): boolean {
  return statementsOf(template, roleId)
    .filter((s) => actionsOf(s).includes(action))
    .flatMap((s) => resourcesOf(s).map(render))
    .some((resource) => {
      const m = /^\$\{StagingBucket[0-9A-F]+\.Arn\}\/(.*)\*$/.exec(resource);
      return m !== null && key.startsWith(m[1]!);
    });
}

describe('staging layout contract', () => {
  let template: Template;
  let exportRole: string;
  let forwardRole: string;
  const layout = new StagingLayout(PREFIX);
  const window: WindowRef = {
    projectId: '111',
    mode: 'processing-time',
    windowId: '20240101T000000Z_20240101T010000Z',
  };
  const part: PartRef = { ...window, runId: '20240101T011000000Z-0abc', part: 0 };
  const otherProject: PartRef = { ...part, projectId: '999' };

  beforeAll(() => {
    const input = oneProjectConfig();
    input.staging = { prefix: PREFIX };
    ({ template } = synthStack(input));
    exportRole = roleOf(template, exportFunctionId(template, '111'));
    forwardRole = roleOf(template, forwardFunctionId(template));
  });

  it('should let the export write and read every key it uses, for its own project only', () => {
    // Prepare
    const written = [
      layout.partKey(part),
      layout.manifestKey(window),
      layout.quarantineKey(window, part.runId),
      layout.checkpointKey('111'),
      layout.budgetKey('111'),
    ];

    // Assess
    for (const key of written) {
      expect(allows(template, exportRole, 's3:PutObject', key), key).toBe(true);
      expect(allows(template, exportRole, 's3:GetObject', key), key).toBe(true);
    }
    expect(allows(template, exportRole, 's3:DeleteObject', layout.partKey(part))).toBe(true);
    expect(allows(template, exportRole, 's3:PutObject', layout.partKey(otherProject))).toBe(false);
    expect(allows(template, exportRole, 's3:PutObject', layout.checkpointKey('999'))).toBe(false);
    expect(allows(template, exportRole, 's3:PutObject', layout.receiptKey(part))).toBe(false);
  });

  it('should let the forwarder read staged windows and write receipts, ledgers and rejects, but not staging', () => {
    // Assess
    for (const key of [layout.manifestKey(window), layout.partKey(part), layout.partKey(otherProject)]) {
      expect(allows(template, forwardRole, 's3:GetObject', key), key).toBe(true);
      expect(allows(template, forwardRole, 's3:PutObject', key), key).toBe(false);
    }
    for (const key of [
      layout.receiptKey(part),
      layout.ledgerKey(part),
      `${layout.deliveryPrefix(window)}run=${part.runId}/batch.json`,
      layout.rejectedKey(part, 1),
    ]) {
      expect(allows(template, forwardRole, 's3:PutObject', key), key).toBe(true);
      expect(allows(template, forwardRole, 's3:GetObject', key), key).toBe(true);
    }
    expect(allows(template, forwardRole, 's3:PutObject', layout.checkpointKey('111'))).toBe(false);
  });

  it('should notify the forwarder for manifests and nothing else the export writes', () => {
    // Prepare
    const notifications = template.findResources('Custom::S3BucketNotifications');
    const [config] = Object.values(notifications).map(
      (r) => (r as { Properties: Record<string, any> }).Properties.NotificationConfiguration.QueueConfigurations[0],
    );
    const rules = Object.fromEntries(
      (config.Filter.Key.FilterRules as { Name: string; Value: string }[]).map((r) => [r.Name, r.Value]),
    );
    const notified = (key: string) => key.startsWith(rules.prefix!) && key.endsWith(rules.suffix!);

    // Assess
    expect(notified(layout.manifestKey(window))).toBe(true);
    expect(layout.parseManifestKey(layout.manifestKey(window))).toEqual(window);
    for (const key of [
      layout.partKey(part),
      layout.quarantineKey(window, part.runId),
      layout.checkpointKey('111'),
      layout.receiptKey(part),
    ]) {
      expect(notified(key), key).toBe(false);
    }
  });
});
