// The official `ollama` JavaScript client against a running ollmlx: listing, streamed chat with
// thinking and a tool call (the scripted agent model in OLLMLX_TEST_AGENT), streamed generate
// (OLLMLX_TEST_MODEL), structured output, and errors. ollama-js throws if a stream ends without
// its `done` line, so a stream that completes is itself a check. Run by tests/it/agent.rs.
import assert from "node:assert/strict";
import { Ollama } from "ollama";

const ollama = new Ollama({ host: process.env.OLLAMA_HOST });
const agent = process.env.OLLMLX_TEST_AGENT;
const model = process.env.OLLMLX_TEST_MODEL;

const { models } = await ollama.list();
assert.ok(models.some((m) => m.name === `${agent}:latest`), JSON.stringify(models.map((m) => m.name)));

const show = await ollama.show({ model: agent });
assert.ok(show.capabilities.includes("tools") && show.capabilities.includes("thinking"));

const tools = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "The weather in a city",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
    },
  },
];
let thinking = "";
let calls = [];
let last;
for await (const part of await ollama.chat({
  model: agent,
  messages: [{ role: "user", content: "Weather in Paris?" }],
  tools,
  stream: true,
})) {
  thinking += part.message.thinking ?? "";
  calls = calls.concat(part.message.tool_calls ?? []);
  last = part;
}
assert.equal(thinking, "Let me check the weather.");
assert.equal(calls.length, 1);
assert.equal(calls[0].function.name, "get_weather");
assert.deepEqual(calls[0].function.arguments, { city: "Paris", unit: "celsius" });
assert.equal(last.done, true);
assert.equal(last.done_reason, "stop");

let text = "";
for await (const part of await ollama.generate({
  model,
  prompt: "Once upon a time",
  stream: true,
  options: { num_predict: 5, temperature: 0 },
})) {
  text += part.response;
  last = part;
}
assert.equal(last.done_reason, "length");
assert.equal(last.eval_count, 5);
assert.ok(text.length > 0);

const schema = {
  type: "object",
  properties: { ok: { type: "boolean" }, n: { type: "integer", minimum: 0, maximum: 9 } },
  required: ["ok", "n"],
};
const shaped = await ollama.chat({
  model,
  messages: [{ role: "user", content: "Answer in JSON." }],
  format: schema,
  options: { num_predict: 100 },
});
const value = JSON.parse(shaped.message.content);
assert.equal(typeof value.ok, "boolean");
assert.ok(Number.isInteger(value.n) && value.n >= 0 && value.n <= 9);

await assert.rejects(ollama.chat({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }), (e) => {
  assert.equal(e.status_code, 404);
  assert.match(e.error, /not found/);
  return true;
});
console.log("all checks passed");
