#!/usr/bin/env node
// A klinehouse gRPC client in Node: the candles of one series and the champion's
// prediction for its next bar, printed as JSON lines. See docs/grpc-clients.md.
//
//   KLINEHOUSE_GRPC_TOKEN=... node docs/examples/node/client.js \
//     --address 127.0.0.1:50051 --symbol BTCUSDT --interval 1h \
//     --start 2024-03-01T00:00:00Z --end 2024-03-01T03:00:00Z
//
// Output: one {"candle": ...} line per candle, then one {"prediction": ...} line.
// A failed call prints "<STATUS_CODE> <message>" on stderr and exits with 1.
"use strict";

const path = require("node:path");
const { parseArgs } = require("node:util");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

// The include path is protos/ (the Buf module root), so that the imports
// "klinehouse/v1/candle.proto" resolve; google/protobuf/*.proto come with protobufjs.
const PROTOS = path.resolve(__dirname, "..", "..", "..", "protos");

// keepCase: field names as in the .proto (open_time, not openTime).
// longs: String: int64 fields (Timestamp.seconds, trades) as decimal strings, not Long objects.
// enums: String: enum values by name ("MARKET_SPOT", "ADVICE_BUY"), not numbers.
// defaults: true: fields at their default are present (nanos: 0 instead of missing).
const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true };

function loadServices(protos) {
  const definition = protoLoader.loadSync(
    ["klinehouse/v1/candle_service.proto", "klinehouse/v1/prediction_service.proto"],
    { ...LOADER_OPTIONS, includeDirs: [protos] },
  );
  return grpc.loadPackageDefinition(definition).klinehouse.v1;
}

// A google.protobuf.Timestamp as RFC 3339 with all nine digits of nanos
// (a JavaScript Date keeps only milliseconds).
function isoOf(ts) {
  const whole = new Date(Number(ts.seconds) * 1000).toISOString().slice(0, 19);
  return `${whole}.${String(ts.nanos).padStart(9, "0")}Z`;
}

function timestampOf(iso) {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`not a time: ${iso}`);
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}

// A unary call as a promise, with the bearer token (if any) and a deadline.
function call(client, method, request, metadata) {
  const deadline = new Date(Date.now() + 10_000);
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline }, (err, response) =>
      err ? reject(err) : resolve(response),
    );
  });
}

async function main() {
  const { values } = parseArgs({
    options: {
      address: { type: "string", default: "127.0.0.1:50051" },
      market: { type: "string", default: "MARKET_SPOT" },
      symbol: { type: "string", default: "BTCUSDT" },
      interval: { type: "string", default: "1h" },
      start: { type: "string" },
      end: { type: "string" },
      protos: { type: "string", default: PROTOS },
    },
  });
  const v1 = loadServices(values.protos);
  const credentials = grpc.credentials.createInsecure(); // createSsl() for a TLS server
  const candles = new v1.CandleService(values.address, credentials);
  const predictions = new v1.PredictionService(values.address, credentials);
  const metadata = new grpc.Metadata();
  if (process.env.KLINEHOUSE_GRPC_TOKEN) {
    metadata.set("authorization", `Bearer ${process.env.KLINEHOUSE_GRPC_TOKEN}`);
  }
  const series = { market: values.market, symbol: values.symbol, interval: values.interval };
  try {
    const range = { ...series, start_time: timestampOf(values.start) };
    if (values.end) range.end_time = timestampOf(values.end);
    const { candles: rows } = await call(candles, "GetCandles", range, metadata);
    for (const c of rows) {
      // Prices and volumes stay decimal strings: parse them with a decimal library, not Number.
      const candle = {
        market: c.market,
        symbol: c.symbol,
        interval: c.interval,
        open_time: isoOf(c.open_time),
        close_time: isoOf(c.close_time),
        open: c.open,
        high: c.high,
        low: c.low,
        close: c.close,
        volume: c.volume,
        trades: c.trades,
      };
      console.log(JSON.stringify({ candle }));
    }
    const { prediction: p } = await call(predictions, "GetPrediction", series, metadata);
    const prediction = {
      symbol: p.symbol,
      interval: p.interval,
      p_up: p.p_up,
      expected_log_return: p.expected_log_return,
      advice: p.advice,
      model_version: p.model_version,
      feature_open_time: isoOf(p.feature_open_time),
      feature_age_seconds: Number(p.feature_age.seconds),
      stale: p.stale,
    };
    console.log(JSON.stringify({ prediction }));
  } catch (err) {
    // err.code is a number of grpc.status; its name is the status code of the docs.
    const name =
      err.code === undefined
        ? "ERROR"
        : Object.keys(grpc.status).find((k) => grpc.status[k] === err.code);
    console.error(`${name} ${err.details ?? err.message}`);
    process.exitCode = 1;
  } finally {
    candles.close();
    predictions.close();
  }
}

main();
