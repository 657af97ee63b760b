/**
 * The subset of Mixpanel segmentation expressions the export emulator understands, compiled once per request into a
 * predicate. Grammar and typing follow mixpanel/docs reference/segmentation-expressions.mdx:
 *
 *   expr     := or
 *   or       := and ('or' and)*
 *   and      := not ('and' not)*
 *   not      := 'not' not | compare
 *   compare  := sum (('==' | '!=' | '<' | '<=' | '>' | '>=' | 'in') sum)*
 *   sum      := product (('+' | '-') product)*
 *   product  := unary (('*' | '/' | '%') unary)*
 *   unary    := '-' unary | primary
 *   primary  := literal | '[' list ']' | '(' expr ')' | fn '(' expr ')' | 'properties' '[' string ']'
 *             | 'event' '[' string ']' | 'user' '[' string ']'
 *   fn       := number | string | boolean | datetime | defined | floor | round | ceil
 *
 * The operator words `and`, `or`, `not`, `in` are read in any case (`AND` as in Mixpanel's examples); the other
 * keywords are lowercase only. Typing: `==` between different types is
 * false; `<`, `>`… compare numbers (or datetimes) and are undefined otherwise; `and`/`or` read undefined as false;
 * `not undefined` is true. An event matches when the expression is exactly `true`.
 *
 * `user["…"]` (a profile property, in the page's examples) parses; it is undefined here, as the emulator keeps no
 * profiles.
 *
 * Datetimes: `datetime("YYYY-MM-DDTHH:MM:SS")` (no zone suffix) and `datetime(<epoch seconds>)`; the event's time
 * (`properties["time"]`, `properties["$time"]`, `event["time"]`, `event["$time"]`) is a datetime read from the stored
 * `time` — so for legacy projects both sides are project-local wall-clock times, as Mixpanel stores them.
 */

import type { MixpanelEvent } from './generator.ts';

/** A `where` that does not parse; the server answers 400 with its message. */
export class WhereSyntaxError extends Error {
  readonly position: number;
  constructor(message: string, position: number) {
    super(`${message} at position ${position}`);
    this.name = 'WhereSyntaxError';
    this.position = position;
  }
}

/** A datetime value (ms since 1970-01-01T00:00, in the wall-clock frame `time` is stored in). */
class DateTime {
  constructor(readonly ms: number) {}
}

type Value = string | number | boolean | null | undefined | DateTime | readonly unknown[] | object;
type Fn = (e: MixpanelEvent) => Value;

export interface CompiledWhere {
  readonly source: string;
  /** True when the event matches. */
  readonly test: (e: MixpanelEvent) => boolean;
  /**
   * Integer bounds `[lo, hi)` on `mp_processing_time_ms` implied by the top-level `and` chain (±Infinity when none):
   * an event outside them cannot match. Lets the server skip whole ranges without evaluating anything.
   */
  readonly processingTime: { readonly lo: number; readonly hi: number };
  /** Property names the expression reads (`event["$time"]` counts as `time`). */
  readonly properties: ReadonlySet<string>;
  /** Whether it reads the event name. */
  readonly usesEventName: boolean;
}

// ---------------------------------------------------------------------------------------------------------------------
// Tokens.

type Token =
  | { readonly t: 'str'; readonly v: string; readonly at: number }
  | { readonly t: 'num'; readonly v: number; readonly at: number }
  | { readonly t: 'id'; readonly v: string; readonly at: number }
  | { readonly t: 'op'; readonly v: string; readonly at: number }
  | { readonly t: 'end'; readonly at: number };

const OPERATORS = ['==', '!=', '<=', '>=', '<', '>', '+', '-', '*', '/', '%', '(', ')', '[', ']', ','];

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const at = i;
    if (c === '"' || c === "'") {
      let v = '';
      i++;
      for (;;) {
        if (i >= src.length) throw new WhereSyntaxError('unterminated string literal', at);
        const d = src[i] as string;
        if (d === c) {
          i++;
          break;
        }
        if (d === '\\') {
          const e = src[i + 1];
          if (e === undefined) throw new WhereSyntaxError('unterminated string literal', at);
          if (e === 'u') {
            const hex = src.slice(i + 2, i + 6);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw new WhereSyntaxError('invalid \\u escape', i);
            v += String.fromCharCode(parseInt(hex, 16));
            i += 6;
            continue;
          }
          const map: Record<string, string> = {
            n: '\n',
            t: '\t',
            r: '\r',
            b: '\b',
            f: '\f',
            '"': '"',
            "'": "'",
            '\\': '\\',
            '/': '/',
          };
          const m = map[e];
          if (m === undefined) throw new WhereSyntaxError(`invalid escape \\${e}`, i);
          v += m;
          i += 2;
          continue;
        }
        v += d;
        i++;
      }
      out.push({ t: 'str', v, at });
      continue;
    }
    if ((c >= '0' && c <= '9') || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(src.slice(i));
      const text = (m as RegExpExecArray)[0];
      out.push({ t: 'num', v: Number(text), at });
      i += text.length;
      if (/[A-Za-z_]/.test(src[i] ?? '')) throw new WhereSyntaxError(`invalid number '${text}${src[i] ?? ''}'`, at);
      continue;
    }
    if (/[A-Za-z_$]/.test(c)) {
      const m = /^[A-Za-z_$][A-Za-z0-9_$]*/.exec(src.slice(i)) as RegExpExecArray;
      // The grammar (mixpanel/docs reference/segmentation-expressions.mdx) writes the operators in
      // lowercase without calling them case-sensitive, and queries written with `AND`/`OR` work: read any case.
      const word = OPERATOR_WORDS.has(m[0].toLowerCase()) ? m[0].toLowerCase() : m[0];
      out.push({ t: 'id', v: word, at });
      i += m[0].length;
      continue;
    }
    const op = OPERATORS.find((o) => src.startsWith(o, i));
    if (op === undefined) {
      if (c === '=') throw new WhereSyntaxError("unexpected '=' (use '==' to compare)", at);
      if (c === '&' || c === '|' || c === '!') {
        throw new WhereSyntaxError(`unexpected '${c}' (use the keywords and, or, not)`, at);
      }
      throw new WhereSyntaxError(`unexpected character '${c}'`, at);
    }
    out.push({ t: 'op', v: op, at });
    i += op.length;
  }
  out.push({ t: 'end', at: src.length });
  return out;
}

// ---------------------------------------------------------------------------------------------------------------------
// Syntax tree.

type Node =
  | { readonly k: 'lit'; readonly v: Value }
  | { readonly k: 'list'; readonly items: readonly Node[] }
  | { readonly k: 'prop'; readonly name: string }
  | { readonly k: 'profile'; readonly name: string }
  | { readonly k: 'name' }
  | { readonly k: 'call'; readonly fn: string; readonly arg: Node }
  | { readonly k: 'not'; readonly x: Node }
  | { readonly k: 'neg'; readonly x: Node }
  | { readonly k: 'bin'; readonly op: string; readonly a: Node; readonly b: Node };

const FUNCTIONS = new Set(['number', 'string', 'boolean', 'datetime', 'defined', 'floor', 'round', 'ceil']);
const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'true', 'false', 'properties', 'event', 'user', ...FUNCTIONS]);
/** Operator keywords, case-insensitive; the other keywords (`properties`, `true`, function names) are lowercase. */
const OPERATOR_WORDS = new Set(['and', 'or', 'not', 'in']);
const COMPARISONS = new Set(['==', '!=', '<', '<=', '>', '>=', 'in']);
// `event["…"]` keys that are not properties.
const EVENT_NAME_KEYS = new Set(['$event_name', 'event', 'name']);
const EVENT_TIME_KEYS = new Set(['$time', 'time']);

class Parser {
  private i = 0;
  readonly props = new Set<string>();
  usesName = false;

  constructor(private readonly tokens: Token[]) {}

  parse(): Node {
    const first = this.peek();
    if (first.t === 'end') throw new WhereSyntaxError('empty expression', first.at);
    const node = this.or();
    const rest = this.peek();
    if (rest.t === 'id' && rest.v !== rest.v.toLowerCase() && KEYWORDS.has(rest.v.toLowerCase())) {
      throw new WhereSyntaxError(`unexpected '${rest.v}' (keywords are lowercase: ${rest.v.toLowerCase()})`, rest.at);
    }
    if (rest.t !== 'end') throw new WhereSyntaxError(`unexpected ${describe(rest)}`, rest.at);
    return node;
  }

  private peek(): Token {
    return this.tokens[this.i] as Token;
  }

  private take(): Token {
    return this.tokens[this.i++] as Token;
  }

  private isId(v: string): boolean {
    const t = this.peek();
    return t.t === 'id' && t.v === v;
  }

  private isOp(v: string): boolean {
    const t = this.peek();
    return t.t === 'op' && t.v === v;
  }

  private expectOp(v: string): void {
    const t = this.take();
    if (t.t !== 'op' || t.v !== v) throw new WhereSyntaxError(`expected '${v}' but found ${describe(t)}`, t.at);
  }

  private or(): Node {
    let a = this.and();
    while (this.isId('or')) {
      this.take();
      a = { k: 'bin', op: 'or', a, b: this.and() };
    }
    return a;
  }

  private and(): Node {
    let a = this.not();
    while (this.isId('and')) {
      this.take();
      a = { k: 'bin', op: 'and', a, b: this.not() };
    }
    return a;
  }

  private not(): Node {
    if (this.isId('not')) {
      this.take();
      return { k: 'not', x: this.not() };
    }
    return this.compare();
  }

  private compare(): Node {
    let a = this.sum();
    for (;;) {
      const t = this.peek();
      const op = t.t === 'op' && COMPARISONS.has(t.v) ? t.v : t.t === 'id' && t.v === 'in' ? 'in' : undefined;
      if (op === undefined) return a;
      this.take();
      a = { k: 'bin', op, a, b: this.sum() };
    }
  }

  private sum(): Node {
    let a = this.product();
    while (this.isOp('+') || this.isOp('-')) {
      const op = (this.take() as { v: string }).v;
      a = { k: 'bin', op, a, b: this.product() };
    }
    return a;
  }

  private product(): Node {
    let a = this.unary();
    while (this.isOp('*') || this.isOp('/') || this.isOp('%')) {
      const op = (this.take() as { v: string }).v;
      a = { k: 'bin', op, a, b: this.unary() };
    }
    return a;
  }

  private unary(): Node {
    if (this.isOp('-')) {
      this.take();
      const x = this.unary();
      if (x.k === 'lit' && typeof x.v === 'number') return { k: 'lit', v: -x.v };
      return { k: 'neg', x };
    }
    return this.primary();
  }

  private primary(): Node {
    const t = this.take();
    switch (t.t) {
      case 'str':
        return { k: 'lit', v: t.v };
      case 'num':
        return { k: 'lit', v: t.v };
      case 'op':
        if (t.v === '(') {
          const x = this.or();
          this.expectOp(')');
          return x;
        }
        if (t.v === '[') {
          const items: Node[] = [];
          if (!this.isOp(']')) {
            for (;;) {
              items.push(this.or());
              if (this.isOp(',')) {
                this.take();
                continue;
              }
              break;
            }
          }
          this.expectOp(']');
          return { k: 'list', items };
        }
        throw new WhereSyntaxError(`unexpected ${describe(t)}`, t.at);
      case 'end':
        throw new WhereSyntaxError('unexpected end of expression', t.at);
      case 'id':
        return this.identifier(t);
    }
  }

  private identifier(t: { readonly v: string; readonly at: number }): Node {
    const id = t.v;
    if (id === 'true') return { k: 'lit', v: true };
    if (id === 'false') return { k: 'lit', v: false };
    if (id === 'properties' || id === 'event' || id === 'user') {
      this.expectOp('[');
      const key = this.take();
      if (key.t !== 'str')
        throw new WhereSyntaxError(`${id}[…] takes a quoted property name, found ${describe(key)}`, key.at);
      this.expectOp(']');
      // `user["$email"] == "allison@example.com"` is one of the page's examples: a profile property.
      if (id === 'user') return { k: 'profile', name: key.v };
      if (id === 'event' && EVENT_NAME_KEYS.has(key.v)) {
        this.usesName = true;
        return { k: 'name' };
      }
      const name = EVENT_TIME_KEYS.has(key.v)
        ? 'time'
        : key.v === '$distinct_id' && id === 'event'
          ? 'distinct_id'
          : key.v;
      this.props.add(name);
      return { k: 'prop', name };
    }
    if (FUNCTIONS.has(id)) {
      if (!this.isOp('(')) throw new WhereSyntaxError(`expected '(' after ${id}`, this.peek().at);
      this.take();
      const arg = this.or();
      this.expectOp(')');
      if (id === 'datetime' && arg.k === 'lit') {
        const v = toDateTime(arg.v);
        if (v === undefined) {
          throw new WhereSyntaxError(
            `invalid datetime ${JSON.stringify(arg.v)} (expected "YYYY-MM-DDTHH:MM:SS" or epoch seconds)`,
            t.at,
          );
        }
        return { k: 'lit', v };
      }
      return { k: 'call', fn: id, arg };
    }
    if (id === 'people') {
      throw new WhereSyntaxError("unknown identifier 'people' (profile properties are read with user[…])", t.at);
    }
    const lower = id.toLowerCase();
    if (KEYWORDS.has(lower))
      throw new WhereSyntaxError(`unknown identifier '${id}' (keywords are lowercase: ${lower})`, t.at);
    throw new WhereSyntaxError(`unknown identifier '${id}'`, t.at);
  }
}

function describe(t: Token): string {
  switch (t.t) {
    case 'end':
      return 'end of expression';
    case 'str':
      return `string ${JSON.stringify(t.v)}`;
    case 'num':
      return `number ${t.v}`;
    default:
      return `'${t.v}'`;
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Values and casts (segmentation-expressions.mdx, "Typecast Operations").

const DATETIME_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?$/;

function toDateTime(v: Value): DateTime | undefined {
  if (v instanceof DateTime) return v;
  if (typeof v === 'number') return Number.isFinite(v) ? new DateTime(v * 1000) : undefined;
  if (typeof v !== 'string') return undefined;
  const m = DATETIME_RE.exec(v);
  if (m === null) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x))) as number[];
  const ms = Date.UTC(y as number, (mo as number) - 1, d, h, mi, s);
  const back = new Date(ms);
  if (
    back.getUTCMonth() !== (mo as number) - 1 ||
    back.getUTCDate() !== d ||
    (h as number) > 23 ||
    (mi as number) > 59 ||
    (s as number) > 59
  ) {
    return undefined;
  }
  return new DateTime(ms);
}

const DECIMAL_RE = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

function toNumber(v: Value): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return DECIMAL_RE.test(v) ? Number(v) : undefined;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof DateTime) return v.ms / 1000;
  return undefined;
}

function toStringValue(v: Value): Value {
  if (typeof v === 'string' || v === null || v === undefined) return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v instanceof DateTime) return new Date(v.ms).toISOString().slice(0, 19);
  return undefined;
}

function toBoolean(v: Value): Value {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string') return v !== '' && v !== 'false';
  return undefined;
}

function typeOf(v: Value): string {
  if (v === null) return 'null';
  if (v instanceof DateTime) return 'datetime';
  if (Array.isArray(v)) return 'list';
  return typeof v;
}

function equals(a: Value, b: Value): boolean {
  if (a instanceof DateTime && b instanceof DateTime) return a.ms === b.ms;
  if (typeOf(a) !== typeOf(b)) return false;
  if (Array.isArray(a) || (typeof a === 'object' && a !== null)) return JSON.stringify(a) === JSON.stringify(b);
  return a === b;
}

/** Time of the event as a datetime, from the stored `time` (seconds, or ms in a `time_in_ms` export). */
function eventTime(e: MixpanelEvent): Value {
  const t = e.properties.time;
  if (typeof t !== 'number' || !Number.isFinite(t)) return undefined;
  return new DateTime(Math.abs(t) >= 100_000_000_000 ? t : t * 1000);
}

// ---------------------------------------------------------------------------------------------------------------------
// Compilation to closures.

function compile(n: Node): Fn {
  switch (n.k) {
    case 'lit': {
      const v = n.v;
      return () => v;
    }
    case 'list': {
      const items = n.items.map(compile);
      return (e) => items.map((f) => f(e));
    }
    case 'name':
      return (e) => e.event;
    case 'profile':
      // The emulator keeps no profiles: every profile property is undefined (not set).
      return () => undefined;
    case 'prop': {
      const name = n.name;
      if (name === 'time') return eventTime;
      return (e) => e.properties[name] as Value;
    }
    case 'neg': {
      const x = compile(n.x);
      return (e) => {
        const v = x(e);
        return typeof v === 'number' ? -v : undefined;
      };
    }
    case 'not': {
      const x = compile(n.x);
      return (e) => {
        const v = x(e);
        return typeof v === 'boolean' ? !v : v === undefined ? true : undefined;
      };
    }
    case 'call':
      return compileCall(n.fn, compile(n.arg));
    case 'bin':
      return compileBinary(n.op, compile(n.a), compile(n.b));
  }
}

function compileCall(fn: string, x: Fn): Fn {
  switch (fn) {
    case 'number':
      return (e) => {
        const v = x(e);
        return typeof v === 'number' ? v : toNumber(v);
      };
    case 'string':
      return (e) => toStringValue(x(e));
    case 'boolean':
      return (e) => toBoolean(x(e));
    case 'datetime':
      return (e) => toDateTime(x(e));
    case 'defined':
      return (e) => {
        const v = x(e);
        return v !== undefined && v !== null;
      };
    default: {
      const op = fn === 'floor' ? Math.floor : fn === 'ceil' ? Math.ceil : Math.round;
      return (e) => {
        const v = x(e);
        return typeof v === 'number' ? op(v) : undefined;
      };
    }
  }
}

function compileBinary(op: string, a: Fn, b: Fn): Fn {
  switch (op) {
    case 'and':
      return (e) => a(e) === true && b(e) === true;
    case 'or':
      return (e) => a(e) === true || b(e) === true;
    case '==':
      return (e) => equals(a(e), b(e));
    case '!=':
      return (e) => !equals(a(e), b(e));
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const cmp =
        op === '<'
          ? (x: number, y: number) => x < y
          : op === '<='
            ? (x: number, y: number) => x <= y
            : op === '>'
              ? (x: number, y: number) => x > y
              : (x: number, y: number) => x >= y;
      return (e) => {
        const x = a(e);
        const y = b(e);
        if (typeof x === 'number' && typeof y === 'number') return cmp(x, y);
        if (x instanceof DateTime && y instanceof DateTime) return cmp(x.ms, y.ms);
        return undefined;
      };
    }
    case 'in':
      return (e) => {
        const x = a(e);
        const y = b(e);
        if (typeof x === 'string' && typeof y === 'string') return y.includes(x);
        if (Array.isArray(y)) return y.some((item) => equals(x, item as Value));
        return undefined;
      };
    case '+':
      return (e) => {
        const x = a(e);
        const y = b(e);
        if (typeof x === 'number' && typeof y === 'number') return x + y;
        if (typeof x === 'string' && typeof y === 'string') return x + y;
        return undefined;
      };
    default:
      return (e) => {
        const x = a(e);
        const y = b(e);
        if (typeof x !== 'number' || typeof y !== 'number') return undefined;
        switch (op) {
          case '-':
            return x - y;
          case '*':
            return x * y;
          case '/':
            return y === 0 ? undefined : x / y;
          default:
            // The remainder takes the sign of the dividend, as in JavaScript.
            return y === 0 ? undefined : x % y;
        }
      };
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Bounds on mp_processing_time_ms (for the connector's windows: `number(properties["mp_processing_time_ms"]) >= A and
// number(properties["mp_processing_time_ms"]) < B`).

const PROCESSING = 'mp_processing_time_ms';

function isProcessingTime(n: Node): boolean {
  return (n.k === 'prop' && n.name === PROCESSING) || (n.k === 'call' && n.fn === 'number' && isProcessingTime(n.arg));
}

function processingBounds(n: Node): { lo: number; hi: number } {
  let lo = Number.NEGATIVE_INFINITY;
  let hi = Number.POSITIVE_INFINITY;
  const visit = (x: Node): void => {
    if (x.k !== 'bin') return;
    if (x.op === 'and') {
      visit(x.a);
      visit(x.b);
      return;
    }
    let op = x.op;
    let lit: Node;
    if (isProcessingTime(x.a)) lit = x.b;
    else if (isProcessingTime(x.b)) {
      lit = x.a;
      op = op === '<' ? '>' : op === '<=' ? '>=' : op === '>' ? '<' : op === '>=' ? '<=' : op;
    } else return;
    if (lit.k !== 'lit' || typeof lit.v !== 'number') return;
    const v = lit.v;
    // Processing times are integers (ms).
    if (op === '>=') lo = Math.max(lo, Math.ceil(v));
    else if (op === '>') lo = Math.max(lo, Math.floor(v) + 1);
    else if (op === '<') hi = Math.min(hi, Math.ceil(v));
    else if (op === '<=') hi = Math.min(hi, Math.floor(v) + 1);
    else if (op === '==') {
      lo = Math.max(lo, Math.ceil(v));
      hi = Math.min(hi, Number.isInteger(v) ? v + 1 : Math.ceil(v));
    }
  };
  visit(n);
  return { lo, hi };
}

// ---------------------------------------------------------------------------------------------------------------------

/** Parses and compiles a `where` expression; throws WhereSyntaxError. */
export function compileWhere(source: string): CompiledWhere {
  const parser = new Parser(tokenize(source));
  const ast = parser.parse();
  const fn = compile(ast);
  return {
    source,
    test: (e) => fn(e) === true,
    processingTime: processingBounds(ast),
    properties: parser.props,
    usesEventName: parser.usesName,
  };
}

/** Parses a `where` expression into a predicate; throws WhereSyntaxError. */
export function parseWhere(source: string): (e: MixpanelEvent) => boolean {
  return compileWhere(source).test;
}
