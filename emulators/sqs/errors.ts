/**
 * The SQS stand-in's errors, as the service answers them in the AWS JSON 1.0 protocol: a JSON body with `__type`
 * (the model's shape id) and `message`, the model's HTTP status, and the `x-amzn-query-error: <Code>;Sender` header
 * that @aws-sdk/client-sqs reads first to name the exception (the service is `awsQueryCompatible`; the codes and
 * statuses are the `awsQueryError` traits of the SQS model the SDK is generated from).
 * Codes: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html and each action's
 * "Errors" section of the API reference.
 */

/** One error the stand-in can answer: the model's shape name, the query-compatible code and the HTTP status. */
export interface SqsErrorShape {
  readonly type: string;
  readonly code: string;
  readonly status: number;
}

const shape = (type: string, code: string, status = 400): SqsErrorShape => ({ type, code, status });

export const SQS_ERRORS = {
  BatchEntryIdsNotDistinct: shape(
    'com.amazonaws.sqs#BatchEntryIdsNotDistinct',
    'AWS.SimpleQueueService.BatchEntryIdsNotDistinct',
  ),
  BatchRequestTooLong: shape('com.amazonaws.sqs#BatchRequestTooLong', 'AWS.SimpleQueueService.BatchRequestTooLong'),
  EmptyBatchRequest: shape('com.amazonaws.sqs#EmptyBatchRequest', 'AWS.SimpleQueueService.EmptyBatchRequest'),
  InvalidBatchEntryId: shape('com.amazonaws.sqs#InvalidBatchEntryId', 'AWS.SimpleQueueService.InvalidBatchEntryId'),
  TooManyEntriesInBatchRequest: shape(
    'com.amazonaws.sqs#TooManyEntriesInBatchRequest',
    'AWS.SimpleQueueService.TooManyEntriesInBatchRequest',
  ),
  QueueDoesNotExist: shape('com.amazonaws.sqs#QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue'),
  QueueNameExists: shape('com.amazonaws.sqs#QueueNameExists', 'QueueAlreadyExists'),
  ReceiptHandleIsInvalid: shape('com.amazonaws.sqs#ReceiptHandleIsInvalid', 'ReceiptHandleIsInvalid', 404),
  MessageNotInflight: shape('com.amazonaws.sqs#MessageNotInflight', 'AWS.SimpleQueueService.MessageNotInflight'),
  InvalidMessageContents: shape('com.amazonaws.sqs#InvalidMessageContents', 'InvalidMessageContents'),
  InvalidAttributeName: shape('com.amazonaws.sqs#InvalidAttributeName', 'InvalidAttributeName'),
  InvalidAttributeValue: shape('com.amazonaws.sqs#InvalidAttributeValue', 'InvalidAttributeValue'),
  // Common errors (CommonErrors.html): not modelled shapes, answered with their documented codes and statuses.
  InvalidParameterValue: shape('com.amazonaws.sqs#InvalidParameterValueException', 'InvalidParameterValue'),
  MissingParameter: shape('com.amazonaws.sqs#MissingParameterException', 'MissingParameter'),
  MissingAuthenticationToken: shape(
    'com.amazon.coral.service#MissingAuthenticationTokenException',
    'MissingAuthenticationToken',
    403,
  ),
  IncompleteSignature: shape('com.amazon.coral.service#IncompleteSignatureException', 'IncompleteSignature'),
  UnknownOperation: shape('com.amazon.coral.service#UnknownOperationException', 'InvalidAction'),
  Serialization: shape('com.amazon.coral.service#SerializationException', 'MalformedQueryString'),
} as const;

export type SqsErrorName = keyof typeof SQS_ERRORS;

/** An error a handler throws to answer the request with `name`'s shape. */
export class SqsFault extends Error {
  readonly shape: SqsErrorShape;
  constructor(name: SqsErrorName, message: string) {
    super(message);
    this.name = 'SqsFault';
    this.shape = SQS_ERRORS[name];
  }
}
