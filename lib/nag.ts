/**
 * cdk-nag (AwsSolutionsChecks, registered in bin/app.ts) acknowledgements. Each one is recorded next to the construct
 * it concerns, narrowed to the exact finding (e.g. one IAM5 resource), and carries the reason it is acceptable here.
 */
import { Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/** Acknowledges one cdk-nag finding on `scope` (and its children). */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}
