// Times one ONNX model with onnxruntime-node (CPU execution provider), for bench/compare_peers.py.
//
//   NODE_PATH=build/compare/node/node_modules node bench/compare_peers_ort.js MODEL.onnx THREADS REPEAT [WARMUP] [--batch N]
//   NODE_PATH=build/compare/node/node_modules node bench/compare_peers_ort.js MODEL.onnx --save-optimized OUT.onnx
//
// Timing prints one JSON line: {"latency_ms": {"median", "min"}, "threads", "repeat", "warmup",
// "batch", "ort_version"}; the latency is per run of one batch. Input: one float32 tensor of the
// model's first input, shape [N, 3, 224, 224] (N from --batch, default 1; it must be the batch size
// the model was exported with), random values.
// --save-optimized writes the graph as onnxruntime runs it after its optimisations (level all:
// e.g. QuantizeLinear/DequantizeLinear pairs fused into QLinearConv) and prints one JSON line
// {"optimized": OUT.onnx, "ort_version"}.
'use strict';

const ort = require('onnxruntime-node');

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

function usage() {
  console.error('usage: compare_peers_ort.js MODEL.onnx THREADS REPEAT [WARMUP] [--batch N]\n' +
                '       compare_peers_ort.js MODEL.onnx --save-optimized OUT.onnx');
  process.exit(2);
}

function parseArgs(argv) {
  const positional = [];
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--batch' || argv[i] === '--save-optimized') {
      if (i + 1 >= argv.length) usage();
      options[argv[i].slice(2)] = argv[++i];
    } else if (argv[i].startsWith('--')) {
      usage();
    } else {
      positional.push(argv[i]);
    }
  }
  return { positional, options };
}

function sessionOptions(threads) {
  return {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
  };
}

const version = () => (ort.env.versions && ort.env.versions.node) || null;

async function main() {
  const { positional, options } = parseArgs(process.argv.slice(2));
  const [model, threadsArg, repeatArg, warmupArg] = positional;
  if (!model) usage();

  if (options['save-optimized'] !== undefined) {
    if (positional.length !== 1) usage();
    const out = options['save-optimized'];
    await ort.InferenceSession.create(model, { ...sessionOptions(1), optimizedModelFilePath: out });
    console.log(JSON.stringify({ optimized: out, ort_version: version() }));
    return;
  }

  if (!threadsArg || !repeatArg) usage();
  const threads = parseInt(threadsArg, 10);
  const repeat = parseInt(repeatArg, 10);
  const warmup = warmupArg === undefined ? 5 : parseInt(warmupArg, 10);
  const batch = options.batch === undefined ? 1 : parseInt(options.batch, 10);
  if (!(threads > 0 && repeat > 0 && warmup >= 0 && batch > 0)) usage();

  const session = await ort.InferenceSession.create(model, sessionOptions(threads));
  const inputName = session.inputNames[0];
  const dims = [batch, 3, 224, 224];
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  let seed = 12345;
  for (let i = 0; i < data.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    data[i] = seed / 4294967296;
  }
  const feeds = { [inputName]: new ort.Tensor('float32', data, dims) };

  for (let i = 0; i < warmup; i++) await session.run(feeds);
  const times = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  console.log(JSON.stringify({
    latency_ms: { median: median(times), min: Math.min(...times) },
    threads, repeat, warmup, batch,
    ort_version: version(),
  }));
}

main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
