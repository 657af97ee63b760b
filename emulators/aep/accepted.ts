/** What Platform holds: every accepted record, in arrival order, repeats included (the data lake does not dedupe). */

export type KeepMode = 'records' | 'ids';

export interface DatasetCounts {
  readonly accepted: number;
  readonly unique: number;
  /** `accepted - unique`: records whose `_id` was already held (a double delivery). */
  readonly duplicates: number;
}

export class AcceptedStore {
  readonly #keep: KeepMode;
  readonly #datasetIndex = new Map<string, number>();
  readonly #datasetIds: string[] = [];
  /** Parallel arrays, one slot per accepted record. */
  readonly #ids: string[] = [];
  readonly #datasets: number[] = [];
  readonly #records: unknown[] = [];

  constructor(keep: KeepMode) {
    this.#keep = keep;
  }

  get keep(): KeepMode {
    return this.#keep;
  }

  get size(): number {
    return this.#ids.length;
  }

  add(datasetId: string, id: string, record: unknown): void {
    let index = this.#datasetIndex.get(datasetId);
    if (index === undefined) {
      index = this.#datasetIds.length;
      this.#datasetIndex.set(datasetId, index);
      this.#datasetIds.push(datasetId);
    }
    this.#ids.push(id);
    this.#datasets.push(index);
    if (this.#keep === 'records') this.#records.push(record);
  }

  ids(datasetId?: string): string[] {
    return this.#select(this.#ids, datasetId);
  }

  records(datasetId?: string): unknown[] {
    if (this.#keep !== 'records') {
      throw new Error(
        "acceptedRecords() needs the emulator started with keep: 'records' (it was started with keep: 'ids')",
      );
    }
    return this.#select(this.#records, datasetId);
  }

  /** Counts per dataset. Computed on demand: it walks every id once. */
  counts(): Record<string, DatasetCounts> {
    const out: Record<string, DatasetCounts> = {};
    this.#datasetIds.forEach((datasetId) => {
      const ids = this.ids(datasetId);
      const unique = new Set(ids).size;
      out[datasetId] = { accepted: ids.length, unique, duplicates: ids.length - unique };
    });
    return out;
  }

  #select<T>(values: T[], datasetId: string | undefined): T[] {
    if (datasetId === undefined) return values.slice();
    const index = this.#datasetIndex.get(datasetId);
    if (index === undefined) return [];
    const out: T[] = [];
    for (let i = 0; i < values.length; i += 1) if (this.#datasets[i] === index) out.push(values[i] as T);
    return out;
  }
}
