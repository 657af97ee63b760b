/** The AEP client: IMS tokens, Platform headers, the streaming sink (DCS) and the batch sink (Batch Ingestion API). */
export * from './errors.ts';
export * from './ims.ts';
export * from './headers.ts';
export * from './transport.ts';
export * from './streaming.ts';
export * from './batch.ts';
