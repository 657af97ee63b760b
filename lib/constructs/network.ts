import { RemovalPolicy } from 'aws-cdk-lib';
import {
  CfnEIP,
  FlowLogDestination,
  FlowLogTrafficType,
  GatewayVpcEndpointAwsService,
  InterfaceVpcEndpointAwsService,
  IpAddresses,
  type IVpc,
  NatProvider,
  Peer,
  Port,
  SecurityGroup,
  type SubnetSelection,
  SubnetType,
  Vpc,
} from 'aws-cdk-lib/aws-ec2';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { NetworkConfig } from '../config.ts';

/** What a function needs to run inside the connector's VPC. */
export interface FunctionNetwork {
  readonly vpc: IVpc;
  readonly vpcSubnets: SubnetSelection;
  readonly securityGroups: SecurityGroup[];
}

/** Props of {@link ConnectorNetwork}. */
export interface ConnectorNetworkProps {
  readonly config: Exclude<NetworkConfig, { mode: 'none' }>;
  /** Retention of the VPC flow logs (a created VPC only). */
  readonly logRetention: RetentionDays;
}

/**
 * Stable egress for the functions: a VPC (created, or an existing one) whose private subnets leave through NAT, plus
 * a gateway endpoint for S3 and an interface endpoint for Secrets Manager, so that only Mixpanel and Adobe traffic
 * crosses the NAT (and its per-GB charge). A created VPC gets one Elastic IP per NAT gateway: those are the addresses
 * to allow-list, in the stack's EgressIps output.
 * https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc-internet.html
 */
export class ConnectorNetwork extends Construct {
  readonly vpc: IVpc;
  readonly functions: FunctionNetwork;
  /** Public egress addresses (Elastic IP refs for a created VPC; the configured ones for an existing VPC). */
  readonly egressIps: string[];

  constructor(scope: Construct, id: string, props: ConnectorNetworkProps) {
    super(scope, id);
    const { config } = props;
    let createEndpoints = true;
    if (config.mode === 'create') {
      const eips = Array.from(
        { length: config.natGateways },
        (_, i) => new CfnEIP(this, `NatIp${i + 1}`, { domain: 'vpc' }),
      );
      this.vpc = new Vpc(this, 'Vpc', {
        ipAddresses: IpAddresses.cidr(config.cidr),
        // Two AZs at least, so the functions keep running when one is down (even with a single NAT gateway).
        maxAzs: Math.max(2, config.natGateways),
        natGateways: config.natGateways,
        natGatewayProvider: NatProvider.gateway({ eipAllocationIds: eips.map((e) => e.attrAllocationId) }),
        subnetConfiguration: [
          { name: 'public', subnetType: SubnetType.PUBLIC, cidrMask: 24 },
          { name: 'functions', subnetType: SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
        ],
      });
      // Rejected connections only: enough to see a blocked egress, at a fraction of the cost of ALL.
      const flowLogs = new LogGroup(this, 'FlowLogs', {
        retention: props.logRetention,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      this.vpc.addFlowLog('FlowLog', {
        destination: FlowLogDestination.toCloudWatchLogs(flowLogs),
        trafficType: FlowLogTrafficType.REJECT,
      });
      // Ref of an AWS::EC2::EIP is its public address.
      this.egressIps = eips.map((e) => e.ref);
    } else {
      this.vpc = Vpc.fromVpcAttributes(this, 'Vpc', {
        vpcId: config.vpcId,
        availabilityZones: config.availabilityZones,
        privateSubnetIds: config.privateSubnetIds,
        privateSubnetRouteTableIds: config.privateSubnetRouteTableIds,
      });
      createEndpoints = config.createEndpoints;
      this.egressIps = config.egressIps ?? [];
    }

    // Outbound HTTPS only (Mixpanel, Adobe, and the endpoints); nothing inbound.
    const functionsGroup = new SecurityGroup(this, 'FunctionsSecurityGroup', {
      vpc: this.vpc,
      description: 'Connector functions: outbound HTTPS only',
      allowAllOutbound: false,
    });
    functionsGroup.addEgressRule(Peer.anyIpv4(), Port.tcp(443), 'HTTPS to Mixpanel, Adobe and the AWS endpoints');

    const vpcSubnets: SubnetSelection = { subnetType: SubnetType.PRIVATE_WITH_EGRESS };
    if (createEndpoints) {
      this.vpc.addGatewayEndpoint('S3Endpoint', { service: GatewayVpcEndpointAwsService.S3, subnets: [vpcSubnets] });
      // Reachable from the connector's functions only; private DNS makes the SDK's default host resolve to it.
      const endpointGroup = new SecurityGroup(this, 'SecretsManagerEndpointSecurityGroup', {
        vpc: this.vpc,
        description: 'Secrets Manager endpoint: HTTPS from the connector functions',
        allowAllOutbound: false,
      });
      endpointGroup.addIngressRule(functionsGroup, Port.tcp(443), 'HTTPS from the connector functions');
      this.vpc.addInterfaceEndpoint('SecretsManagerEndpoint', {
        service: InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
        privateDnsEnabled: true,
        subnets: vpcSubnets,
        securityGroups: [endpointGroup],
        open: false,
      });
    }
    this.functions = { vpc: this.vpc, vpcSubnets, securityGroups: [functionsGroup] };
  }
}
