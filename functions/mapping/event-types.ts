/**
 * Mixpanel's own events (the ones its SDKs send by themselves) → XDM `eventType` and the counters Adobe's field groups
 * expect on such an event, e.g. `web.webPageDetails.pageViews.value: 1` on a page view: page-view and launch metrics
 * built on Adobe's conventions count these (adobe/xdm components/datatypes/webinfo.example.1.json,
 * components/datatypes/application.example.1.json).
 *
 * `eventType` values come from the time-series behaviour's list (adobe/xdm
 * components/behaviors/time-series.schema.json, `xdm:eventType` `meta:enum`). That list is open (`meta:enum`, not
 * `enum`): Mixpanel events it has no value for (identity management, page leave) get a specific `mixpanel.*` value
 * instead of the generic fallback, so they can be told apart in Customer Journey Analytics.
 *
 * Event names: mixpanel/docs docs/tracking-methods/sdks/javascript.mdx (`$mp_web_page_view`, autocapture),
 * docs/tracking-methods/sdks/javascript/javascript-replay.mdx (`$mp_rage_click`, `$mp_dead_click`, `$mp_page_leave`),
 * docs/tracking-methods/sdks/swift.mdx and android.mdx (`$mp_page_view`, `$mp_page_leave` of trackScreenView/Leave),
 * docs/tracking-methods/sdks/ios.mdx ("Legacy automatically tracked events": `$ae_*`) and
 * docs/tracking-methods/id-management/identifying-users-original.mdx (`$identify`, `$create_alias`, `$merge`).
 */
import { APPLICATION_FIELD_GROUP, COMMERCE_FIELD_GROUP, WEB_DETAILS_FIELD_GROUP } from './presets.ts';
import { type CommerceCounter, COMMERCE_COUNTERS, type CommercePlan, IAP_EVENT } from './commerce.ts';

/** A constant written on every event of one name: `path` from the record root, and its value. */
export interface EventConstant {
  path: string;
  value: string | number | boolean;
  fieldGroup: string;
}

export interface StandardEvent {
  eventType: string;
  /** Counters (`measure.value`, a number: adobe/xdm components/datatypes/data/measure.schema.json) and flags. */
  constants: readonly EventConstant[];
}

type Value = EventConstant['value'];
const web = (path: string, value: Value): EventConstant => ({ path, value, fieldGroup: WEB_DETAILS_FIELD_GROUP });
const app = (path: string, value: Value): EventConstant => ({ path, value, fieldGroup: APPLICATION_FIELD_GROUP });

const PAGE_VIEW: StandardEvent = {
  eventType: 'web.webpagedetails.pageViews',
  constants: [web('web.webPageDetails.pageViews.value', 1)],
};
/** webinfo.schema.json: webInteraction.type is a closed enum (download, exit, other); an element click is "other". */
const CLICK: StandardEvent = {
  eventType: 'web.webinteraction.linkClicks',
  constants: [web('web.webInteraction.linkClicks.value', 1), web('web.webInteraction.type', 'other')],
};

/** The standard events table (docs/xdm-mapping.md, "Event types"). */
export const STANDARD_EVENTS: Readonly<Record<string, StandardEvent>> = {
  $mp_web_page_view: PAGE_VIEW,
  // Mobile screen views (trackScreenView): Adobe's page-view metric covers app screens too.
  $mp_page_view: PAGE_VIEW,
  $mp_click: CLICK,
  $mp_rage_click: CLICK,
  $mp_dead_click: CLICK,
  $mp_page_leave: { eventType: 'mixpanel.pageLeave', constants: [] },
  // application.schema.json: launches, firstLaunches, installs, upgrades, applicationCloses, crashes are measures.
  $ae_first_open: {
    eventType: 'application.launch',
    constants: [
      app('application.launches.value', 1),
      app('application.firstLaunches.value', 1),
      app('application.installs.value', 1),
      app('application.isLaunch', true),
      app('application.isInstall', true),
    ],
  },
  $ae_updated: {
    eventType: 'application.launch',
    constants: [app('application.upgrades.value', 1), app('application.isUpgrade', true)],
  },
  // Sent when a session of more than 10 seconds ends, with its length (`$ae_session_length`).
  $ae_session: {
    eventType: 'application.close',
    constants: [
      app('application.applicationCloses.value', 1),
      app('application.isClose', true),
      app('application.closeType', 'close'),
    ],
  },
  // closeType is a closed enum (close, unknown): a crash is not a regular close.
  $ae_crashed: {
    eventType: 'application.close',
    constants: [
      app('application.crashes.value', 1),
      app('application.isClose', true),
      app('application.closeType', 'unknown'),
    ],
  },
  $ae_iap: {
    eventType: 'commerce.purchases',
    constants: [{ path: 'commerce.purchases.value', value: 1, fieldGroup: COMMERCE_FIELD_GROUP }],
  },
  $identify: { eventType: 'mixpanel.identify', constants: [] },
  $create_alias: { eventType: 'mixpanel.createAlias', constants: [] },
  $merge: { eventType: 'mixpanel.merge', constants: [] },
};

/** Event name → eventType of the standard table (what `presetConfig('default')` writes out). */
export const DEFAULT_EVENT_TYPES: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(STANDARD_EVENTS).map(([name, e]) => [name, e.eventType]),
);

/** What an event of one name gets besides its fields: its eventType, constants and commerce counter. */
export interface EventRule {
  eventType: string;
  constants: readonly EventConstant[];
  /** The commerce measure the event counts (order and productListItems are read from its properties), or null. */
  commerce: CommerceCounter | null;
}

/**
 * Event name → rule: the standard events and the commerce events (preset default, `commerce` non-null), then the
 * config's own `eventTypes`; an event whose type the config changes loses the table's constants.
 */
export function eventRulesOf(
  commerce: CommercePlan | null,
  eventTypes: Readonly<Record<string, string>>,
): Map<string, EventRule> {
  const rules = new Map<string, EventRule>();
  if (commerce !== null) {
    for (const [name, e] of Object.entries(STANDARD_EVENTS)) {
      const counter = name === IAP_EVENT ? 'purchases' : null;
      rules.set(name, { eventType: e.eventType, constants: e.constants, commerce: counter });
    }
    for (const counter of COMMERCE_COUNTERS) {
      for (const name of commerce.events[counter]) {
        const constants = [{ path: `commerce.${counter}.value`, value: 1, fieldGroup: COMMERCE_FIELD_GROUP }];
        rules.set(name, { eventType: `commerce.${counter}`, constants, commerce: counter });
      }
    }
  }
  for (const [name, type] of Object.entries(eventTypes)) {
    const rule = rules.get(name);
    if (rule === undefined || rule.eventType !== type) {
      rules.set(name, { eventType: type, constants: [], commerce: null });
    }
  }
  return rules;
}
