/**
 * Resolves `MAPPING`: a preset name (`default`, `adobe-source`), a local JSON file, or an `s3://bucket/key` URI.
 */
import { readFile } from 'node:fs/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  type MappingConfig,
  MappingConfigError,
  PRESET_NAMES,
  type PresetName,
  parseMappingConfig,
  presetConfig,
} from '#mapping/config';
import { getText } from '#staging/s3';

export async function loadMappingConfig(spec: string, s3: S3Client): Promise<MappingConfig> {
  if ((PRESET_NAMES as readonly string[]).includes(spec)) return presetConfig(spec as PresetName);
  let text: string | undefined;
  if (spec.startsWith('s3://')) {
    const [bucket, ...rest] = spec.slice(5).split('/');
    text = await getText(s3, bucket ?? '', rest.join('/'));
    if (text === undefined)
      throw new MappingConfigError(spec, [
        `(file): no object at ${spec}; upload the mapping JSON there or set MAPPING to a preset (${PRESET_NAMES.join(', ')})`,
      ]);
  } else {
    try {
      text = await readFile(spec, 'utf8');
    } catch (error) {
      throw new MappingConfigError(
        spec,
        [
          `(file): cannot read ${spec} (${(error as NodeJS.ErrnoException).code ?? 'error'}); set MAPPING to a preset (${PRESET_NAMES.join(', ')}), a JSON file or an s3:// URI`,
        ],
        { cause: error },
      );
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new MappingConfigError(spec, [`(file): not valid JSON (${(error as Error).message})`], { cause: error });
  }
  return parseMappingConfig(json, spec);
}
