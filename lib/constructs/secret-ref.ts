import { ArnFormat, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { type IGrantable, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { SECRET_SUFFIX_LIKE, type SecretConfig } from '../config.ts';
import { acknowledge } from '../nag.ts';

/** What a placeholder secret must hold, written into its description and pre-filled as a template. */
export interface SecretShape {
  /** Human description of the JSON, e.g. `{"username":"...","secret":"..."}`. */
  readonly json: string;
  /** Fields pre-filled with FILL_ME values (the operator overwrites them). */
  readonly template: Record<string, string>;
  /** The field CloudFormation fills with a random string, so no plaintext placeholder sits in the template. */
  readonly generatedKey: string;
}

/** The Mixpanel service account secret. */
export const MIXPANEL_SECRET_SHAPE: SecretShape = {
  json: '{"username":"<service account username>","secret":"<service account secret>"}',
  template: { username: 'FILL_ME' },
  generatedKey: 'secret',
};

/** Adobe OAuth Server-to-Server credentials. */
export const AEP_SECRET_SHAPE: SecretShape = {
  json: '{"clientId":"...","clientSecret":"...","orgId":"...@AdobeOrg","scopes":["openid","AdobeID","read_organizations","additional_info.projectedProductContext","session"]} (scopes optional)',
  template: { clientId: 'FILL_ME', orgId: 'FILL_ME@AdobeOrg' },
  generatedKey: 'clientSecret',
};

/** Props of {@link SecretRef}. */
export interface SecretRefProps {
  readonly config: SecretConfig;
  readonly shape: SecretShape;
  /** Used in the placeholder's description, e.g. `Mixpanel project 123`. */
  readonly purpose: string;
}

/**
 * A secret the connector reads: an existing one referenced by name or ARN, or a placeholder created here. Exposes the
 * id that goes into a Lambda's environment and grants `secretsmanager:GetSecretValue` on exactly that secret.
 */
export class SecretRef extends Construct {
  /** The value for `*_SECRET_ID`: the name or ARN (never the secret's value). */
  readonly secretId: string;
  /** The IAM resource of the secret (names get Secrets Manager's 6-character suffix as `-??????`). */
  readonly policyArn: string;
  /** The placeholder secret, when the stack creates it. */
  readonly created?: Secret;
  private readonly kmsKeyArn: string | undefined;

  constructor(scope: Construct, id: string, props: SecretRefProps) {
    super(scope, id);
    const { config, shape } = props;
    this.kmsKeyArn = config.kmsKeyArn;
    if (config.create) {
      this.created = new Secret(this, 'Placeholder', {
        description: `${props.purpose}: fill me with ${shape.json}`,
        generateSecretString: {
          secretStringTemplate: JSON.stringify(shape.template),
          generateStringKey: shape.generatedKey,
        },
        // It holds third-party credentials once filled in: keep it when the stack goes.
        removalPolicy: RemovalPolicy.RETAIN,
      });
      acknowledge(
        this.created,
        'AwsSolutions-SMG4',
        'It holds third-party credentials (a Mixpanel service account secret or an Adobe OAuth client secret) that only Mixpanel or the Adobe Developer Console can issue, so a Secrets Manager rotation Lambda cannot rotate them; rotate them at the provider and run put-secret-value (docs/deploy.md).',
      );
      this.secretId = this.created.secretArn;
      this.policyArn = this.created.secretArn;
    } else if (config.arn !== undefined) {
      const ref = secretArnRef(config.arn, config.complete);
      this.secretId = ref.secretId;
      this.policyArn = ref.policyArn;
    } else {
      const name = config.name!;
      this.secretId = name;
      this.policyArn = Stack.of(this).formatArn({
        service: 'secretsmanager',
        resource: 'secret',
        resourceName: `${name}-??????`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      });
    }
  }

  /** Lets `grantee` read this secret's value, and nothing else (plus decrypt through Secrets Manager for a CMK). */
  grantRead(grantee: IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [this.policyArn] }),
    );
    if (this.kmsKeyArn !== undefined) {
      grantee.grantPrincipal.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['kms:Decrypt'],
          resources: [this.kmsKeyArn],
          conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com` } },
        }),
      );
    }
  }
}

/**
 * How an existing secret given by ARN is read and granted.
 *
 * A complete ARN ends with the "-" and 6 random characters Secrets Manager appends to the name; a partial ARN stops
 * at the name and is granted with `-??????` for that suffix. Whether `…:secret:app-mobile` is complete or partial
 * cannot be told from the text, and Secrets Manager itself takes such a partial ARN for a complete one (SecretId of
 * GetSecretValue: https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html).
 * So the config says which (`complete`, checked by lib/config.ts), and a partial one whose name looks suffixed is read
 * by its name, which Secrets Manager resolves without guessing.
 * @param complete `true`/`false` from the config; required by the config schema when the ARN ends like a suffix
 */
export function secretArnRef(arn: string, complete: boolean | undefined): { secretId: string; policyArn: string } {
  const isComplete = complete ?? SECRET_SUFFIX_LIKE.test(arn);
  if (isComplete) return { secretId: arn, policyArn: arn };
  const name = arn.slice(arn.indexOf(':secret:') + ':secret:'.length);
  return { secretId: SECRET_SUFFIX_LIKE.test(name) ? name : arn, policyArn: `${arn}-??????` };
}
