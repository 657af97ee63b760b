/**
 * Golden digests of the mapper's output over seeded emulator datasets: every record's JSON text (or rejection) under
 * several configurations, hashed. Guards performance work on the mapper: a rewrite must keep every byte of every
 * record. A deliberate change of the mapping rules (or of the emulator's generator) updates the digests below, after
 * checking the records that changed.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateDataset } from '#emulators/mixpanel/generator';
import { compileMapper, type MapperContext, type MappingConfig, presetConfig } from '#mapping/index';

const START = Date.UTC(2026, 11, 1, 10);
const HOUR = 3_600_000;
const UTC: MapperContext = { projectId: '3141592', tenant: 'acme', projectTimezone: 'UTC', legacyLocalTime: false };

interface Case {
  name: string;
  config: MappingConfig;
  ctx: MapperContext;
  legacy?: boolean;
  digest: string;
}

const withRules: MappingConfig = {
  ...presetConfig('default'),
  drop: ['properties.$os', 'properties.$city'],
  hash: ['properties.distinct_id', 'properties.$device_id'],
};

const CASES: Case[] = [
  {
    name: 'default preset',
    config: presetConfig('default'),
    ctx: UTC,
    digest: '94e296b97dd6ca9398bf849414eed82d07c270d7b68a00eac51617c2b6d87048',
  },
  {
    name: 'default preset, legacy local time',
    config: presetConfig('default'),
    ctx: { ...UTC, projectTimezone: 'America/Los_Angeles', legacyLocalTime: true },
    legacy: true,
    digest: 'f42eabea9ee3f8604890d6b76197fa8e738dc863c5a0f342b1d3f6858d7fa02f',
  },
  {
    name: 'adobe-source preset',
    config: presetConfig('adobe-source'),
    ctx: UTC,
    digest: '1cd3bb423d2e04849c5f6624ed8dbe4a5d1e9509231d9e0d77313de5b86f891a',
  },
  {
    name: 'drop, hash, Profile limits',
    config: withRules,
    ctx: { ...UTC, profile: true },
    digest: '3f6be2b6aa8a9c4220e52b11553c843d0f5ad06104e44d074ed3583cc3c50707',
  },
];

/** SHA-256 over every outcome of the case's mapper on 2,000 seeded events (duplicates and large events included). */
function digestOf(c: Case): string {
  const mapper = compileMapper(c.config, c.ctx);
  const sha = createHash('sha256');
  const spec = { seed: 6, count: 2_000, start: START, end: START + HOUR, largeFraction: 0.01 };
  const events = generateDataset(
    c.legacy === true ? { ...spec, projectTimezone: c.ctx.projectTimezone, legacyLocalTime: true } : spec,
  );
  for (const event of events) {
    const out = mapper(event);
    sha.update(out.ok ? `${out.identified ? '+' : '-'}${out.json}\n` : `!${out.reason}:${out.detail}\n`);
  }
  return sha.digest('hex');
}

describe('mapper output (golden digests)', () => {
  it.each(CASES)('$name', (c) => {
    expect(digestOf(c)).toBe(c.digest);
  });
});
