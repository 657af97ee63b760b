/** Mixpanel raw event → XDM ExperienceEvent: config, mapper, time, `_id` and field-group generation. */
export {
  MappingConfigError,
  MappingConfigSchema,
  type MappingConfig,
  parseMappingConfig,
  PRESET_NAMES,
  type PresetName,
  presetConfig,
} from './config.ts';
export {
  compileMapper,
  type IdentityEntry,
  type IdentityMap,
  type MapOutcome,
  type Mapper,
  type MapperContext,
  MAX_RECORD_BYTES,
  type RejectReason,
  type XdmRecord,
} from './mapper.ts';
export {
  EXPERIENCE_EVENT_CLASS,
  fieldGroupForMapping,
  type IdentityNamespace,
  identityNamespaces,
  requiredFieldGroups,
  standardFieldGroupsForMapping,
} from './schema.ts';
export { eventInstantMs, MS_THRESHOLD } from './event-time.ts';
