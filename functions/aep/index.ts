/** The AEP client: IMS tokens, Platform headers, the streaming sink (DCS), the batch sink (Batch Ingestion API) and
 * the read client of Catalog batches and Data Access files. */
export * from './errors.ts';
export * from './ims.ts';
export * from './headers.ts';
export * from './transport.ts';
export * from './streaming.ts';
export * from './batch.ts';
export * from './catalog.ts';
