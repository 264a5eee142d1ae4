// Runs an ONNX model with onnxruntime-node on a batch of float32 inputs, for
// tests/check_qdq_import.py.
//
//   NODE_PATH=.../node_modules node tests/ort_run.js MODEL.onnx INPUT.f32 N C H W OUTPUT.f32
//
// INPUT.f32 holds N*C*H*W little-endian float32 values (NCHW); OUTPUT.f32 receives the first
// output's values, image after image. One image per run: the model's batch size is 1.
'use strict';

const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, input, n, c, h, w, output] = process.argv.slice(2);
  if (!output) {
    console.error('usage: ort_run.js MODEL.onnx INPUT.f32 N C H W OUTPUT.f32');
    process.exit(2);
  }
  const dims = [1, parseInt(c, 10), parseInt(h, 10), parseInt(w, 10)];
  const count = parseInt(n, 10);
  const per = dims[1] * dims[2] * dims[3];
  const buf = fs.readFileSync(input);
  if (buf.length !== count * per * 4) {
    console.error(`ort_run.js: ${input}: ${buf.length} bytes, expected ${count * per * 4}`);
    process.exit(1);
  }
  const data = new Float32Array(buf.buffer, buf.byteOffset, count * per);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: 1, interOpNumThreads: 1,
  });
  const chunks = [];
  for (let i = 0; i < count; i++) {
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data.slice(i * per, (i + 1) * per), dims) };
    const out = await session.run(feeds);
    chunks.push(Buffer.from(out[session.outputNames[0]].data.buffer.slice(0)));
  }
  fs.writeFileSync(output, Buffer.concat(chunks));
}

main().catch((e) => { console.error(`ort_run.js: ${e.message}`); process.exit(1); });
