// The litespark command line. Parses arguments, maps errors to exit codes (0 success,
// 1 runtime failure, 2 bad usage or bad input) and prints the reason on stderr.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { CheckpointError } from '../checkpoint/safetensors.js';
import { ConfigError } from '../config/schema.js';
import { DataError } from '../data/errors.js';
import { benchCommand } from './bench.js';
import { exportCommand, importCommand } from './checkpoint.js';
import { evalCommand } from './eval.js';
import { collectStopId, generateCommand, parseTemperature, parseTopP } from './generate.js';
import { peakCommand } from './peak.js';
import { ACCELERATOR_HELP, planCommand } from './plan.js';
import { prepareCommand } from './prepare.js';
import { reportCommand } from './report.js';
import { trainCommand } from './train.js';

function int(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

function positive(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError(`${name} must be a number in [0, 1)`);
    return n;
  };
}

function nonNegative(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number >= 0`);
    return n;
  };
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('litespark')
    .description('LLM pre-training on native kernels: standard Llama models, measured tokens/s and MFU')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('train')
    .description('pre-train a Llama model (default: the demo preset on the corpus embedded in the project)')
    .option('--preset <name>', 'preset: demo, nano, micro, small, bench-xs, bench-s, bench-l, llama-1b, ...', undefined)
    .option('--config <file>', 'JSON or TOML config file, merged over the preset')
    .option('--data <path>', "'embedded' (default), a data directory made by `litespark prepare`, or inputs to prepare on the fly (a .txt/.md/.jsonl[.gz|.zst] file, a directory, a glob)")
    .option('--steps <n>', 'optimizer steps', int('--steps', 1))
    .option('--out <dir>', 'run directory (config.json, metrics.jsonl, tokenizer.json, summary.json)')
    .addOption(new Option('--kernels <path>', 'kernel path').choices(['standard', 'litespark']))
    .addOption(new Option('--dtype <dtype>', 'compute dtype').choices(['fp32', 'bf16']))
    .addOption(new Option('--recompute <mode>', 'activation checkpointing: none, selective (norms, SwiGLU activation), full (every layer)').choices(['none', 'selective', 'full']))
    .option('--seed <n>', 'seed for initialisation and data order', int('--seed', 0))
    .option('--threads <n>', 'threads (0 = all cores)', int('--threads', 0))
    .option('--set <key=value>', 'override any config field, e.g. --set train.lr=1e-3 (repeatable)', collect, [])
    .option('--resume <path>', "continue a run exactly: a checkpoint directory, a run directory (its newest good checkpoint), or 'latest' with --out")
    .option('--init <dir>', 'start from the weights of a checkpoint or Hugging Face Llama directory (fresh optimizer; the model shape comes from its config.json)')
    .option('--watts <w>', 'power draw in watts for the energy estimate (W x wall time) when no RAPL/NVML counter is readable', nonNegative('--watts'))
    .action(async (opts) => {
      process.exitCode = await trainCommand(opts);
    });

  program
    .command('prepare')
    .description('tokenize corpora (.txt, .md, .jsonl, .jsonl.gz, .jsonl.zst; files, directories, globs) into token shards')
    .argument('<inputs...>', 'input files, directories or glob patterns')
    .requiredOption('--out <dir>', 'output data directory (tokenizer.json, index.json, shards)')
    .option('--tokenizer <file>', 'a Hugging Face tokenizer.json to encode with')
    .option('--vocab-size <n>', 'or train a byte-level BPE tokenizer of this vocabulary size', int('--vocab-size', 260))
    .option('--tokenizer-train-bytes <n>', 'bytes of text from the start of the inputs to train the tokenizer on (default 64 MiB)', int('--tokenizer-train-bytes', 1))
    .option('--field <name>', 'jsonl field with the text (dotted path for nested objects)', 'text')
    .addOption(new Option('--text-docs <mode>', 'text files: one document per file, or per non-blank line').choices(['file', 'line']).default('file'))
    .option('--val-fraction <f>', 'fraction held out for validation', positive('--val-fraction'), 0.01)
    .option('--workers <n>', 'tokenizer worker threads (default: one per core; 0 = none)', int('--workers', 0))
    .option('--max-bytes <n>', 'read only this many bytes of the (uncompressed) inputs', int('--max-bytes', 1))
    .action(async (inputs: string[], opts) => {
      process.exitCode = await prepareCommand(inputs, opts);
    });

  program
    .command('import')
    .description('a Hugging Face Llama directory (config.json, tokenizer.json, model.safetensors or sharded) -> a litespark checkpoint')
    .argument('<hf_dir>', 'Hugging Face model directory')
    .requiredOption('--out <dir>', 'new checkpoint directory')
    .addOption(new Option('--dtype <dtype>', 'weights dtype in the checkpoint').choices(['fp32', 'bf16']).default('fp32'))
    .action(async (hfDir: string, opts) => {
      process.exitCode = await importCommand(hfDir, opts);
    });

  program
    .command('export')
    .description('a checkpoint (or a run directory: its newest good checkpoint) -> a clean inference checkpoint for the Hugging Face ecosystem')
    .argument('<checkpoint>', 'checkpoint or run directory')
    .requiredOption('--out <dir>', 'new directory')
    .addOption(new Option('--dtype <dtype>', 'weights dtype').choices(['fp32', 'bf16']).default('fp32'))
    .action(async (path: string, opts) => {
      process.exitCode = await exportCommand(path, opts);
    });

  program
    .command('generate')
    .description('continue a prompt with a checkpoint (KV cache), the text streamed to stdout; counts and tokens/s on stderr')
    .argument('<checkpoint>', 'checkpoint directory, run directory (its newest good checkpoint) or Hugging Face Llama directory')
    .requiredOption('--prompt <text>', 'text to continue')
    .option('--max-tokens <n>', 'new tokens at most', int('--max-tokens', 1), 128)
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', parseTemperature, 0.8)
    .option('--top-k <k>', 'keep the k most likely tokens (0 = all)', int('--top-k', 0), 40)
    .option('--top-p <p>', 'then keep the most likely tokens holding mass >= p (1 = all)', parseTopP, 0.95)
    .option('--seed <n>', 'sampling seed (default: random, printed at the end)', int('--seed', 0))
    .option('--stop-id <id>', "also stop at this token id (repeatable; the checkpoint's end-of-text always stops)", collectStopId, [])
    .option('--bos', "put the checkpoint's BOS token before the prompt")
    .option('--threads <n>', 'threads (0 = all cores)', int('--threads', 0))
    .addOption(new Option('--kernels <path>', "kernel path of the prompt's forward (default: the checkpoint's)").choices(['standard', 'litespark']))
    .action(async (dir: string, opts) => {
      process.exitCode = await generateCommand(dir, opts);
    });

  program
    .command('eval')
    .description('mean loss and perplexity of a checkpoint on a prepared split')
    .argument('<checkpoint>', 'checkpoint directory, run directory (its newest good checkpoint) or Hugging Face Llama directory')
    .requiredOption('--data <dir>', "a data directory made by `litespark prepare` with the checkpoint's tokenizer")
    .addOption(new Option('--split <name>', 'split to evaluate').choices(['val', 'train']).default('val'))
    .option('--batches <n>', 'batches to evaluate (default and most: every full batch of the split, once)', int('--batches', 1))
    .option('--batch <n>', 'sequences per batch', int('--batch', 1), 4)
    .option('--seq-len <n>', "tokens per sequence (default: the checkpoint's train.seq_len)", int('--seq-len', 2))
    .option('--threads <n>', 'threads (0 = all cores)', int('--threads', 0))
    .addOption(new Option('--kernels <path>', "kernel path (default: the checkpoint's)").choices(['standard', 'litespark']))
    .addOption(new Option('--dtype <dtype>', "precision of the matrix products (default: the checkpoint's training dtype)").choices(['fp32', 'bf16']))
    .option('--json', 'print one JSON object')
    .action(async (dir: string, opts) => {
      process.exitCode = await evalCommand(dir, opts);
    });

  program
    .command('peak')
    .description("measure this machine's peak FLOP/s per thread count (the denominator of MFU), cached per machine")
    .option('--threads <n>', 'measure only this thread count', int('--threads', 1))
    .option('--remeasure', 'ignore the cache and measure again')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      await peakCommand(opts);
    });

  program
    .command('plan')
    .description('before renting a cluster: memory per device, tokens/s, tokens/day, time and energy for N tokens, communication per step')
    .option('--preset <name>', 'preset, e.g. litespark-3b, litespark-30b, llama-8b')
    .option('--config <file>', 'JSON or TOML config file, merged over the preset')
    .option('--set <key=value>', 'override any config field (repeatable)', collect, [])
    .option('--seq-len <n>', "sequence length (default: the config's train.seq_len)")
    .option('--global-batch <n>', "sequences per optimizer step, or tokens with a 'tok' suffix (e.g. 4Mitok); default ranks x micro-batch x accumulation")
    .option('--micro-batch <n>', "sequences per rank per forward/backward (default: the config's)")
    .option('--nodes <n>', 'nodes (default 1)')
    .option('--devices-per-node <n>', 'devices per node (default 8; 1 for cpu)')
    .option('--accelerator <name>', ACCELERATOR_HELP)
    .option('--dtype <dtype>', 'bf16 (GPU default: bf16 mixed precision) or fp32')
    .option('--recompute <mode>', 'activation checkpointing: none, selective, full')
    .option('--kernels <path>', 'litespark or standard (activation memory)')
    .option('--zero <0|1>', 'ZeRO-1 shards the optimizer state over the data-parallel ranks')
    .option('--mfu <f>', 'model FLOPs utilization, e.g. 0.4, or several for columns side by side: 0.8935,0.4 (default 0.4, printed as assumed)')
    .option('--mfu-from <file>', 'take litespark\'s and standard\'s MFU from `litespark bench --json` rows')
    .option('--tokens <n>', 'tokens to train, e.g. 627e9 or 627B: time and energy')
    .option('--link-gbps <n>', 'data-parallel link bandwidth per device and direction, Gb/s (default: 400 across nodes; NVLink / Infinity Fabric on one node)')
    .option('--device-watts <w>', 'power per device (default: the datasheet TDP; none for cpu)')
    .option('--device-memory-gib <n>', 'memory per device, GiB (default: the datasheet capacity; cpu: this machine)')
    .option('--json', 'print one JSON object')
    .action(async (opts) => {
      process.exitCode = await planCommand(opts);
    });

  program
    .command('bench')
    .description('BENCH.md rows side by side: tokens/s, step ms, MFU, peak memory and the litespark/standard speed-up, one process per row')
    .option('--configs <list>', 'comma-separated BENCH.md configs (XS, S, L) or preset names', 'XS,S,L')
    .option('--kernels <list>', 'comma-separated kernel paths: standard, litespark', 'standard,litespark')
    .option('--dtype <list>', 'comma-separated compute dtypes: fp32, bf16', 'fp32')
    .option('--recompute <list>', 'comma-separated activation checkpointing modes, one row each: none, selective, full')
    .option('--steps <n>', 'measured steps per row (kernel runs with --kernels-only)', int('--steps', 1), 10)
    .option('--warmup <n>', 'unmeasured warm-up steps first', int('--warmup', 0), 3)
    .option('--threads <n>', 'threads per row (0 = all cores)', int('--threads', 0))
    .option('--json <file>', 'also write the rows (a JSON array) to this file')
    .option('--out <dir>', 'results directory (rows.json, results.md); default runs/bench-<timestamp>')
    .option('--kernels-only', 'time the kernels alone (GEMM shapes, attention, MLP, loss) instead of whole steps')
    .option('--watts <w>', 'power draw in watts for the J/token estimate (W x wall time) when no RAPL/NVML counter is readable', nonNegative('--watts'))
    .action(async (opts) => {
      process.exitCode = await benchCommand(opts);
    });

  program
    .command('report')
    .description('one self-contained HTML file of a run (loss, tokens/s, MFU, power and energy, memory, data wait) or of bench results')
    .argument('<dir>', 'run directory (metrics.jsonl; a rows.json in it adds the bench chart) or bench results directory (rows.json)')
    .option('--out <file>', 'HTML file to write (default: DIR/report.html)')
    .option('--bench <path>', 'bench results to compare: a bench directory or its rows.json')
    .action(async (dir: string, opts) => {
      process.exitCode = await reportCommand(dir, opts);
    });

  return program;
}

/** Runs the CLI on argv (as process.argv) and returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit 0; every parse error is bad usage
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof ConfigError || e instanceof DataError || e instanceof CheckpointError) {
      process.stderr.write(`litespark: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`litespark: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  }
}
