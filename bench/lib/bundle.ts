/**
 * The Lambda bundles exactly as the stack builds them: the handler entries of lib/connector-stack.ts with the esbuild
 * settings of lib/constructs/connector-function.ts (`BUNDLING`), turned into esbuild options the way CDK's
 * NodejsFunction turns them into flags (`--bundle --platform=node --target --format --minify --sourcemap=external
 * --sources-content=false --external --banner:js --main-fields`). Sizes are of `index.mjs`, the file a cold start loads.
 */
import path from 'node:path';
import { build, type BuildOptions, type Metafile } from 'esbuild';
import { HANDLER_ENTRIES } from '../../lib/connector-stack.ts';
import { BUNDLING, PROJECT_ROOT } from '../../lib/constructs/connector-function.ts';

export interface BundleSize {
  readonly bytes: number;
  /** Largest inputs by bytes in the minified output (packages grouped). */
  readonly largest: Array<{ readonly input: string; readonly bytes: number }>;
}

/** esbuild options equivalent to the flags NodejsFunction derives from `BUNDLING`. */
function lambdaOptions(entry: string, outfile: string): BuildOptions {
  return {
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: BUNDLING.target,
    format: BUNDLING.format,
    outfile,
    minify: BUNDLING.minify,
    sourcemap: BUNDLING.sourceMapMode,
    sourcesContent: BUNDLING.sourcesContent,
    external: [...BUNDLING.externalModules],
    banner: { js: BUNDLING.banner },
    mainFields: [...BUNDLING.mainFields],
    absWorkingDir: PROJECT_ROOT,
    logLevel: 'silent',
  };
}

export async function measureBundle(role: keyof typeof HANDLER_ENTRIES): Promise<BundleSize> {
  const result = await build({
    ...lambdaOptions(
      path.join(PROJECT_ROOT, HANDLER_ENTRIES[role]),
      path.join(PROJECT_ROOT, 'cdk.out', 'bench-bundle', role, 'index.mjs'),
    ),
    write: false,
    metafile: true,
  });
  const js = result.outputFiles?.find((f) => f.path.endsWith('index.mjs'));
  if (js === undefined || result.metafile === undefined) throw new Error(`esbuild produced no index.mjs for ${role}`);
  return { bytes: js.contents.byteLength, largest: largestInputs(result.metafile) };
}

/**
 * Bundles a benchmark worker the way the Lambdas are bundled and writes it to `outdir/<name>.mjs`, so it runs on plain
 * Node without the TypeScript loader (whose own thread and isolate would add ~40 MB to a memory measurement).
 */
export async function bundleWorker(entry: string, outdir: string): Promise<string> {
  const outfile = path.join(outdir, `${path.basename(entry, '.ts')}.mjs`);
  await build({ ...lambdaOptions(path.join(PROJECT_ROOT, entry), outfile), write: true });
  return outfile;
}

/** Output bytes per package (node_modules/<pkg>) or per project folder. */
function largestInputs(metafile: Metafile, limit = 6): BundleSize['largest'] {
  const totals = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const nm = input.lastIndexOf('node_modules/');
      let group: string;
      if (nm >= 0) {
        const parts = input.slice(nm + 'node_modules/'.length).split('/');
        group = parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
      } else group = input.split('/').slice(0, 2).join('/');
      totals.set(group, (totals.get(group) ?? 0) + bytesInOutput);
    }
  }
  return [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([input, bytes]) => ({ input, bytes }));
}
