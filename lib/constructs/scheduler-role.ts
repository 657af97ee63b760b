import { Stack } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { ISchedule } from 'aws-cdk-lib/aws-scheduler';
import type { Construct } from 'constructs';

/**
 * The role EventBridge Scheduler assumes to run one schedule's target: `lambda:InvokeFunction` on one function ARN and
 * whatever `extra` adds, nothing else. Confused-deputy guard: only schedules of this account's schedule group may
 * assume it (https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html#setting-up-execution-role).
 */
export function schedulerInvokeRole(
  scope: Construct,
  schedule: ISchedule,
  props: { readonly description: string; readonly functionArn: string; readonly extra?: readonly PolicyStatement[] },
): Role {
  const stack = Stack.of(scope);
  const role = new Role(scope, 'SchedulerRole', {
    description: props.description,
    assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
      conditions: {
        StringEquals: {
          'aws:SourceAccount': stack.account,
          'aws:SourceArn': stack.formatArn({
            service: 'scheduler',
            resource: 'schedule-group',
            resourceName: schedule.scheduleGroup?.scheduleGroupName ?? 'default',
          }),
        },
      },
    }),
  });
  role.addToPrincipalPolicy(
    new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [props.functionArn] }),
  );
  for (const statement of props.extra ?? []) role.addToPrincipalPolicy(statement);
  return role;
}
