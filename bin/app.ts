#!/usr/bin/env -S npx tsx
/**
 * The CDK app: reads connector.config.json (or `-c config=path`), validates it, and defines the connector stack with
 * cdk-nag's AWS Solutions checks. On a fresh clone without a config it falls back to connector.config.example.json
 * (with a warning) so `npx cdk synth` works out of the box.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ConnectorConfigError, loadConnectorConfig } from '../lib/config.ts';
import { ConnectorStack } from '../lib/connector-stack.ts';

const DEFAULT_CONFIG = 'connector.config.json';
const EXAMPLE_CONFIG = 'connector.config.example.json';

const app = new App();

const explicit = app.node.tryGetContext('config') as string | undefined;
let configFile = resolve(explicit ?? DEFAULT_CONFIG);
if (explicit === undefined && !existsSync(configFile)) {
  process.stderr.write(
    `[warning] ${DEFAULT_CONFIG} not found: synthesising ${EXAMPLE_CONFIG} (placeholder values). ` +
      `Copy it to ${DEFAULT_CONFIG} and fill it in before deploying.\n`,
  );
  configFile = resolve(EXAMPLE_CONFIG);
}

let config: ReturnType<typeof loadConnectorConfig>;
try {
  config = loadConnectorConfig(configFile);
} catch (error) {
  if (error instanceof ConnectorConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  throw error;
}

new ConnectorStack(app, config.stackName, {
  config,
  description: 'Mixpanel raw events → Adobe Experience Platform (scheduled export, S3 staging, forward)',
  env: {
    account: config.env?.account ?? process.env.CDK_DEFAULT_ACCOUNT,
    region: config.env?.region ?? process.env.CDK_DEFAULT_REGION,
  },
});

Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
