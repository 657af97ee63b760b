import { describe, expect, it } from 'vitest';
import { compileMapper, eventInstantMs, MappingConfigError, MS_THRESHOLD, presetConfig } from '#mapping/index';
import { IsoFormatter } from '#mapping/event-time';

/** Mixpanel legacy "local epoch" seconds for a wall-clock time: the wall clock written as if it were UTC. */
function localSeconds(wallClock: string): number {
  return Date.parse(`${wallClock}Z`) / 1000;
}

function utcOf(wallClock: string, projectTimezone: string): string {
  return new Date(eventInstantMs(localSeconds(wallClock), { legacyLocalTime: true, projectTimezone })).toISOString();
}

describe('eventInstantMs', () => {
  it('should read values below 1e11 as seconds and from 1e11 up as milliseconds', () => {
    // Prepare
    const utc = { legacyLocalTime: false, projectTimezone: 'UTC' };

    // Act
    const seconds = eventInstantMs(1717243200, utc);
    const millis = eventInstantMs(1717243200123, utc);
    const justBelow = eventInstantMs(MS_THRESHOLD - 1, utc);
    const atThreshold = eventInstantMs(MS_THRESHOLD, utc);

    // Assess
    expect(seconds).toBe(1717243200000);
    expect(millis).toBe(1717243200123);
    expect(justBelow).toBe((MS_THRESHOLD - 1) * 1000);
    expect(atThreshold).toBe(MS_THRESHOLD);
  });

  it('should leave time unchanged when it is not legacy local time, whatever the zone', () => {
    // Act
    const instant = eventInstantMs(1717243200, { legacyLocalTime: false, projectTimezone: 'America/New_York' });

    // Assess
    expect(instant).toBe(1717243200000);
  });

  it('should subtract the zone offset in effect at that local time, DST included', () => {
    // Act
    const summer = utcOf('2024-07-01T12:00:00', 'America/New_York');
    const winter = utcOf('2024-01-15T12:00:00', 'America/New_York');

    // Assess
    expect(summer).toBe('2024-07-01T16:00:00.000Z');
    expect(winter).toBe('2024-01-15T17:00:00.000Z');
  });

  it('should move a skipped spring-forward time forward by the gap (offset before the transition)', () => {
    // Act: on 2024-03-10 New York clocks jump from 02:00 EST to 03:00 EDT (07:00Z)
    const lastBefore = utcOf('2024-03-10T01:59:59', 'America/New_York');
    const gapStart = utcOf('2024-03-10T02:00:00', 'America/New_York');
    const inGap = utcOf('2024-03-10T02:30:00', 'America/New_York');
    const firstAfter = utcOf('2024-03-10T03:00:00', 'America/New_York');

    // Assess: 02:30 "EST" is 07:30Z, i.e. 03:30 EDT
    expect(lastBefore).toBe('2024-03-10T06:59:59.000Z');
    expect(gapStart).toBe('2024-03-10T07:00:00.000Z');
    expect(inGap).toBe('2024-03-10T07:30:00.000Z');
    expect(firstAfter).toBe('2024-03-10T07:00:00.000Z');
  });

  it('should resolve a repeated fall-back time to the earlier instant', () => {
    // Act: on 2024-11-03 New York clocks go back from 02:00 EDT to 01:00 EST (06:00Z), so 01:00–01:59 happen twice
    const before = utcOf('2024-11-03T00:59:59', 'America/New_York');
    const ambiguousStart = utcOf('2024-11-03T01:00:00', 'America/New_York');
    const ambiguous = utcOf('2024-11-03T01:30:00', 'America/New_York');
    const ambiguousEnd = utcOf('2024-11-03T01:59:59', 'America/New_York');
    const after = utcOf('2024-11-03T02:00:00', 'America/New_York');

    // Assess: the EDT reading (UTC−4), not the EST one an hour later
    expect(before).toBe('2024-11-03T04:59:59.000Z');
    expect(ambiguousStart).toBe('2024-11-03T05:00:00.000Z');
    expect(ambiguous).toBe('2024-11-03T05:30:00.000Z');
    expect(ambiguousEnd).toBe('2024-11-03T05:59:59.000Z');
    expect(after).toBe('2024-11-03T07:00:00.000Z');
  });

  it('should handle half-hour zones such as Asia/Kolkata (+05:30), in seconds and milliseconds', () => {
    // Act
    const seconds = utcOf('2024-06-01T10:00:00', 'Asia/Kolkata');
    const millis = eventInstantMs(localSeconds('2024-06-01T10:00:00') * 1000 + 250, {
      legacyLocalTime: true,
      projectTimezone: 'Asia/Kolkata',
    });

    // Assess
    expect(seconds).toBe('2024-06-01T04:30:00.000Z');
    expect(new Date(millis).toISOString()).toBe('2024-06-01T04:30:00.250Z');
  });

  it('should map every wall-clock reading of the zone back to its instant all year round', () => {
    // Prepare: instants every 5 hours through 2024 (every hour of the day over the year) in New York; in the repeated
    // hour the second (EST) reading resolves to the first (EDT) one by design
    const formatter = new Intl.DateTimeFormat('en-US', {
      timeZone: 'America/New_York',
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    const wallClock = (ms: number): string => {
      const p = Object.fromEntries(formatter.formatToParts(ms).map((x) => [x.type, x.value]));
      return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}:${p.second}`;
    };
    const start = Date.parse('2024-01-01T00:17:00Z');
    const mismatches: string[] = [];

    // Act
    for (let ms = start; ms < start + 366 * 86_400_000; ms += 5 * 3_600_000) {
      const local = wallClock(ms);
      const back = eventInstantMs(localSeconds(local), { legacyLocalTime: true, projectTimezone: 'America/New_York' });
      const repeated = local.startsWith('2024-11-03T01:');
      if (back !== ms && !(repeated && back === ms - 3_600_000))
        mismatches.push(`${new Date(ms).toISOString()} → ${local}`);
    }

    // Assess
    expect(mismatches).toEqual([]);
  });

  it('should throw for an unknown zone, and compileMapper should name the variable', () => {
    // Act
    const direct = () => eventInstantMs(1, { legacyLocalTime: true, projectTimezone: 'Mars/Olympus_Mons' });
    const compile = () =>
      compileMapper(presetConfig('default'), {
        projectId: '1',
        tenant: 'acme',
        projectTimezone: 'Mars/Olympus_Mons',
        legacyLocalTime: true,
      });

    // Assess
    expect(direct).toThrow(RangeError);
    expect(compile).toThrow(MappingConfigError);
    expect(compile).toThrow(/MIXPANEL_PROJECT_TIMEZONE: "Mars\/Olympus_Mons" is not an IANA time zone/);
  });
});

describe('IsoFormatter', () => {
  it('should format exactly like Date.prototype.toISOString', () => {
    // Prepare
    const formatter = new IsoFormatter();
    const instants = [
      0, 1, 999, 86_399_999, 951_782_400_000, 1_709_856_000_000, 253_402_300_799_999, 253_402_300_800_000,
    ];
    for (let i = 0; i < 2000; i++) instants.push(Math.floor(1_600_000_000_000 + i * 7_919_993.7));

    // Act
    const formatted = instants.map((ms) => formatter.format(ms));

    // Assess
    expect(formatted).toEqual(instants.map((ms) => new Date(ms).toISOString()));
  });
});
