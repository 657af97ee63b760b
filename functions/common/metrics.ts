/**
 * CloudWatch metrics through Powertools (EMF on stdout). Names and the `ProjectId` dimension are what the stack's
 * alarms and dashboard read. Disabled outside Lambda unless asked for (POWERTOOLS_METRICS_DISABLED=false).
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

export const METRICS_NAMESPACE = process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'MixpanelAepConnector';

export function createMetrics(): Metrics {
  if (process.env.AWS_LAMBDA_FUNCTION_NAME === undefined && process.env.POWERTOOLS_METRICS_DISABLED === undefined) {
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  }
  return new Metrics({
    namespace: METRICS_NAMESPACE,
    serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'mixpanel-aep-connector',
  });
}

export { MetricUnit };
