import { Duration } from 'aws-cdk-lib';
import {
  type ISchedule,
  type IScheduleTarget,
  Schedule,
  ScheduleExpression,
  type ScheduleTargetConfig,
  ScheduleTargetInput,
  TimeWindow,
} from 'aws-cdk-lib/aws-scheduler';
import { Construct } from 'constructs';
import type { ConnectorFunction } from './connector-function.ts';
import { schedulerInvokeRole } from './scheduler-role.ts';

/** The event the forward Lambda reads as "run the Platform verifier" (docs/architecture.md). */
export const VERIFY_EVENT = { action: 'verify' } as const;

/**
 * Scheduler's shortest event age is 60 s
 * (https://docs.aws.amazon.com/scheduler/latest/APIReference/API_RetryPolicy.html, MaximumEventAgeInSeconds).
 */
const MIN_EVENT_AGE_SECONDS = 60;

/** Props of {@link VerifySchedule}. */
export interface VerifyScheduleProps {
  /** The forward function, which runs the verifier on {@link VERIFY_EVENT}. */
  readonly forward: ConnectorFunction;
  /** Config `aep.verifyEveryMinutes`. */
  readonly everyMinutes: number;
}

/**
 * Runs the Platform verifier every few minutes: an EventBridge Scheduler schedule invokes the forward function with
 * `{"action":"verify"}`. Each run re-reads what is still pending, so a run that is late, lost or fails is made good by
 * the next one: the invocation is neither retried nor dead-lettered, and an event older than one interval is dropped
 * rather than piled up behind a slow run.
 */
export class VerifySchedule extends Construct {
  readonly schedule: Schedule;

  constructor(scope: Construct, id: string, props: VerifyScheduleProps) {
    super(scope, id);
    const every = Duration.minutes(props.everyMinutes);
    const maxAge = Math.max(MIN_EVENT_AGE_SECONDS, every.toSeconds());
    // Scheduler invokes Lambda asynchronously: Lambda's own retries of a failed run are the next scheduled run.
    props.forward.function.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.seconds(maxAge) });
    this.schedule = new Schedule(this, 'Schedule', {
      description:
        'Asks Platform what it stored of each forwarded window (the forward function with {"action":"verify"})',
      schedule: ScheduleExpression.rate(every),
      timeWindow: TimeWindow.off(),
      target: new VerifyInvokeTarget(this, props.forward, maxAge),
    });
  }
}

/** Invokes the forward function with {@link VERIFY_EVENT}; the role may call `lambda:InvokeFunction` on it, nothing else. */
class VerifyInvokeTarget implements IScheduleTarget {
  constructor(
    private readonly scope: Construct,
    private readonly fn: ConnectorFunction,
    private readonly maxEventAgeSeconds: number,
  ) {}

  bind(schedule: ISchedule): ScheduleTargetConfig {
    const role = schedulerInvokeRole(this.scope, schedule, {
      description: 'Lets EventBridge Scheduler start the Platform verifier (forward function)',
      functionArn: this.fn.function.functionArn,
    });
    return {
      arn: this.fn.function.functionArn,
      role,
      input: ScheduleTargetInput.fromObject(VERIFY_EVENT),
      retryPolicy: { maximumEventAgeInSeconds: this.maxEventAgeSeconds, maximumRetryAttempts: 0 },
    };
  }
}
