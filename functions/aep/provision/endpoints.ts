/**
 * Platform API paths and fixed ids the provisioner uses, each with the Adobe document that defines it. Paths are
 * relative to `AEP_PLATFORM_URL` (`https://platform.adobe.io`).
 */

/**
 * Schema Registry base path (AdobeDocs/experience-platform-apis static/swagger-specs/schema-registry.yaml
 * `basePath`).
 */
export const SCHEMA_REGISTRY = '/data/foundation/schemaregistry';
/** `GET /stats` → `{"imsOrg","tenantId",…}` (schema-registry.yaml `retrieveStats`, `statsResponse`). */
export const STATS_PATH = `${SCHEMA_REGISTRY}/stats`;
/**
 * `GET|POST /tenant/fieldgroups`, `PUT|PATCH /tenant/fieldgroups/{FIELD_GROUP_ID}` (schema-registry.yaml
 * `listFieldGroups`, `createFieldGroup`, `updateFieldGroup`; experience-platform.en help/xdm/api/field-groups.md).
 */
export const TENANT_FIELD_GROUPS_PATH = `${SCHEMA_REGISTRY}/tenant/fieldgroups`;
/**
 * `GET|POST /tenant/schemas`, `PUT|PATCH /tenant/schemas/{SCHEMA_ID}` (schema-registry.yaml `createSchema`,
 * `updateSchema`, `patchSchema`; help/xdm/api/schemas.md).
 */
export const TENANT_SCHEMAS_PATH = `${SCHEMA_REGISTRY}/tenant/schemas`;
/** `GET|POST /tenant/descriptors` (schema-registry.yaml `createDescriptor`; help/xdm/api/descriptors.md). */
export const TENANT_DESCRIPTORS_PATH = `${SCHEMA_REGISTRY}/tenant/descriptors`;

/**
 * Accept headers of the Schema Registry (schema-registry.yaml parameters `acceptListing`, `accept`,
 * `acceptDescriptors`): listings take `xed+json` (full objects), lookups need a version, descriptors use `xdm`.
 */
export const ACCEPT_XED_LISTING = 'application/vnd.adobe.xed+json';
export const ACCEPT_XED_LOOKUP = 'application/vnd.adobe.xed+json; version=1';
export const ACCEPT_XDM_DESCRIPTORS = 'application/vnd.adobe.xdm+json';

/**
 * Identity Service: `GET|POST /idnamespace/identities` under `https://platform.adobe.io/data/core`
 * (identity-service.yaml `getIdNamespaces`, `createNamespace`; help/identity-service/api/create-custom-namespace.md).
 */
export const NAMESPACES_PATH = '/data/core/idnamespace/identities';

/**
 * Catalog: `GET /dataSets?name=…` (an object keyed by dataset id), `POST /dataSets` → 201 `["@/dataSets/{id}"]`
 * (catalog.yaml `listDatasets`, `createDataset`; help/catalog/api/create-dataset.md).
 */
export const DATASETS_PATH = '/data/foundation/catalog/dataSets';

/**
 * Flow Service: base connections, source and target connections, dataflows
 * (flow-service.yaml; help/sources/tutorials/api/create/streaming/http.md).
 */
export const FLOW_SERVICE = '/data/foundation/flowservice';
export const CONNECTIONS_PATH = `${FLOW_SERVICE}/connections`;
export const SOURCE_CONNECTIONS_PATH = `${FLOW_SERVICE}/sourceConnections`;
export const TARGET_CONNECTIONS_PATH = `${FLOW_SERVICE}/targetConnections`;
export const FLOWS_PATH = `${FLOW_SERVICE}/flows`;

/** Connection spec of the HTTP API streaming source (help/sources/tutorials/api/create/streaming/http.md). */
export const HTTP_API_CONNECTION_SPEC = { id: 'bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb', version: '1.0' } as const;
/** Connection spec of the data lake target, for the target connection (same tutorial, "Create a target connection"). */
export const DATA_LAKE_CONNECTION_SPEC = { id: 'c604ff05-7f1a-43c0-8e18-33bf874cb11c', version: '1.0' } as const;
/** Flow spec of an HTTP API streaming dataflow without transformations (same tutorial, "Create a dataflow"). */
export const HTTP_API_FLOW_SPEC = { id: 'd8a6f005-7eaf-4153-983e-e8574508b877', version: '1.0' } as const;

/** The XDM ExperienceEvent class (adobe/xdm components/classes/experienceevent.schema.json `$id`). */
export const EXPERIENCE_EVENT_CLASS_ID = 'https://ns.adobe.com/xdm/context/experienceevent';

/** Schema format the target connection and the dataset reference (http.md target connection; catalog.yaml example). */
export const XED_FULL_CONTENT_TYPE = 'application/vnd.adobe.xed-full+json;version=1';
