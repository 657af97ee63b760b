/**
 * AWS's offline CloudFormation validator as shipped inside aws-cdk-lib (`@aws/cloudformation-validate`: resource
 * schemas, SQS visibility vs function timeout, IAM action existence, trust policies, …), over synthesized templates.
 * README of the package: `new CompositeEngine()`, `validateTemplate(template)` → `report.diagnostics`, then `free()`.
 */
import { createRequire } from 'node:module';

/** One finding of the validator. */
export interface CfnDiagnostic {
  readonly template: string;
  readonly severity: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'FATAL';
  readonly ruleId: string;
  readonly message: string;
  readonly logicalId?: string;
}

interface Validator {
  CompositeEngine: new () => {
    validateTemplate(t: unknown): {
      diagnostics: {
        severity: CfnDiagnostic['severity'];
        ruleId: string;
        message: string;
        entity?: { logicalId?: string };
      }[];
    };
    free(): void;
  };
  TemplateContent: new (content: string, name?: string) => unknown;
}

/** Loads the validator nested in aws-cdk-lib (it is not a top-level dependency of this project). */
function loadValidator(): Validator {
  const fromCdk = createRequire(createRequire(import.meta.url).resolve('aws-cdk-lib/package.json'));
  return fromCdk('@aws/cloudformation-validate') as Validator;
}

/**
 * Validates each template (name → CloudFormation JSON) and returns every finding at WARN or above.
 * One engine serves all templates (its rules compile once).
 */
export function validateTemplates(templates: Record<string, unknown>): CfnDiagnostic[] {
  const v = loadValidator();
  const engine = new v.CompositeEngine();
  try {
    return Object.entries(templates).flatMap(([name, template]) =>
      engine
        .validateTemplate(new v.TemplateContent(JSON.stringify(template), name))
        .diagnostics.filter((d) => d.severity === 'WARN' || d.severity === 'ERROR' || d.severity === 'FATAL')
        .map((d) => ({
          template: name,
          severity: d.severity,
          ruleId: d.ruleId,
          message: d.message,
          ...(d.entity?.logicalId !== undefined ? { logicalId: d.entity.logicalId } : {}),
        })),
    );
  } finally {
    engine.free();
  }
}

/** `[WARN] W3005 Logical: message (template)` lines, for the test output. */
export function formatDiagnostics(diagnostics: readonly CfnDiagnostic[]): string {
  return diagnostics
    .map((d) => `[${d.severity}] ${d.ruleId} ${d.logicalId ?? '-'}: ${d.message} (${d.template})`)
    .join('\n');
}

/** Errors only (ERROR and FATAL). */
export const errorsOf = (diagnostics: readonly CfnDiagnostic[]): CfnDiagnostic[] =>
  diagnostics.filter((d) => d.severity === 'ERROR' || d.severity === 'FATAL');
