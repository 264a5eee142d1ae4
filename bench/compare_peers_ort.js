// Times one ONNX model with onnxruntime-node (CPU execution provider), for bench/compare_peers.py.
//
//   NODE_PATH=build/compare/node/node_modules node bench/compare_peers_ort.js MODEL.onnx THREADS REPEAT [WARMUP]
//
// Prints one JSON line: {"latency_ms": {"median", "min"}, "threads", "repeat", "ort_version"}.
// Input: one float32 tensor of the model's first input, shape [1, 3, 224, 224], random values.
'use strict';

const ort = require('onnxruntime-node');

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

async function main() {
  const [model, threadsArg, repeatArg, warmupArg] = process.argv.slice(2);
  if (!model || !threadsArg || !repeatArg) {
    console.error('usage: compare_peers_ort.js MODEL.onnx THREADS REPEAT [WARMUP]');
    process.exit(2);
  }
  const threads = parseInt(threadsArg, 10);
  const repeat = parseInt(repeatArg, 10);
  const warmup = warmupArg === undefined ? 5 : parseInt(warmupArg, 10);

  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
  });
  const inputName = session.inputNames[0];
  const dims = [1, 3, 224, 224];
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
    threads, repeat, warmup,
    ort_version: (ort.env.versions && ort.env.versions.node) || null,
  }));
}

main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
