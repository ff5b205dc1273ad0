import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { ChatOpenAI } from "@langchain/openai";
import { API_KEY, startServers, stopServers, waitForHealth } from "./server.js";

// What the scripted model writes (tests/Qwen3.Net.ScriptedModel/Script.cs).
const Script = {
  chatReasoning: "The user says hello, so I greet them in English and Chinese.",
  chatAnswer: "Hello! 你好，世界！This is a scripted test model 🌍 with one fixed answer.",
  toolName: "get_weather",
  toolArguments: { city: "Paris" },
  finalAnswer: "Today it looks sunny (21°C) ☀️ 巴黎今天是晴天。",
};

const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

// LangChain.js, when streaming, estimates token counts with tiktoken encodings it downloads from tiktoken.pages.dev,
// retrying for minutes when offline (as CI is); a 404 error makes it fall back to its approximate count at once. The usage
// the tests check is the server's, which LangChain reports in usage_metadata.
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) =>
  String(input?.url ?? input).startsWith("https://tiktoken.pages.dev/")
    ? Promise.reject(Object.assign(new Error("tiktoken encodings are not downloaded in these tests"), { status: 404 }))
    : realFetch(input, init);

let baseUrl; // the tiny random model's server
let client;
let model;
let scriptedUrl;
let scripted;

before(async () => {
  ({ tiny: baseUrl, scripted: scriptedUrl } = await startServers());
  const health = await waitForHealth(baseUrl, (h) => h.status === "ok");
  model = health.model;
  assert.equal(health.max_concurrent_requests, 1, "the tests expect the server started with --max-concurrent-requests 1");
  assert.equal((await waitForHealth(scriptedUrl, (h) => h.status === "ok")).model, "scripted");
  client = new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey: API_KEY, maxRetries: 0 });
  scripted = new OpenAI({ baseURL: `${scriptedUrl}/v1`, apiKey: API_KEY, maxRetries: 0 });
});

after(stopServers);

describe("LangChain ChatOpenAI (scripted model)", () => {
  const langchain = (enableThinking) =>
    new ChatOpenAI({
      model: "scripted",
      temperature: 0.5,
      configuration: { baseURL: `${scriptedUrl}/v1` },
      apiKey: API_KEY,
      streaming: true,
      modelKwargs: { enable_thinking: enableThinking, return_reasoning: true },
    });

  test("invoke with thinking on: the reasoning arrives apart from the answer", async () => {
    const message = await langchain(true).invoke("你是谁？");
    assert.equal(message.additional_kwargs.reasoning_content, Script.chatReasoning);
    assert.equal(message.content, Script.chatAnswer);
    assert.ok(message.usage_metadata.output_tokens > 0);
  });

  test("invoke with thinking off streams the answer to the callback, with no reasoning", async () => {
    const tokens = [];
    const message = await langchain(false).invoke("讲个笑话", {
      callbacks: [{ handleLLMNewToken: (token) => tokens.push(token) }],
    });
    assert.ok(tokens.filter((t) => t.length > 0).length > 5, "the answer arrives as several streamed tokens");
    assert.equal(tokens.join(""), Script.chatAnswer);
    assert.equal(message.content, Script.chatAnswer);
    assert.equal(message.additional_kwargs.reasoning_content, undefined);
  });

  test("bindTools: the model's call arrives as a LangChain tool call", async () => {
    const message = await langchain(false).bindTools([weatherTool]).invoke("What is the weather in Paris?");
    assert.equal(message.tool_calls.length, 1);
    assert.equal(message.tool_calls[0].name, Script.toolName);
    assert.deepEqual(message.tool_calls[0].args, Script.toolArguments);
    assert.match(message.tool_calls[0].id, /^call_/);
  });

  test("streaming bindTools: the call's argument chunks join into the LangChain tool call", async () => {
    let joined;
    let chunksWithArgs = 0;
    for await (const chunk of await langchain(false).bindTools([weatherTool]).stream("What is the weather in Paris?")) {
      chunksWithArgs += (chunk.tool_call_chunks ?? []).filter((c) => c.args).length;
      joined = joined === undefined ? chunk : joined.concat(chunk);
    }
    assert.ok(chunksWithArgs > 1, "the arguments arrive in several chunks");
    assert.equal(joined.tool_calls.length, 1);
    assert.equal(joined.tool_calls[0].name, Script.toolName);
    assert.deepEqual(joined.tool_calls[0].args, Script.toolArguments);
    assert.equal(joined.invalid_tool_calls.length, 0);
  });
});

describe("openai client", () => {
  test("non-streaming completion", async () => {
    const completion = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Hello" }],
      max_tokens: 8,
    });
    assert.match(completion.id, /^chatcmpl-/);
    assert.equal(completion.object, "chat.completion");
    assert.equal(completion.choices[0].finish_reason, "length");
    assert.equal(completion.choices[0].message.role, "assistant");
    assert.ok(completion.choices[0].message.content.length > 0);
    assert.equal(completion.usage.completion_tokens, 8);
    assert.equal(completion.usage.total_tokens, completion.usage.prompt_tokens + 8);
    assert.equal(completion.usage.completion_tokens_details.reasoning_tokens, 0);
    assert.equal(typeof completion.usage.prompt_tokens_details.cached_tokens, "number");
  });

  test("streaming with usage in the last chunk", async () => {
    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Hello" }],
      max_tokens: 8,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
    }

    assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0].id));
    assert.equal(chunks[0].choices[0].delta.role, "assistant");
    const text = chunks.flatMap((c) => c.choices).map((c) => c.delta.content ?? "").join("");
    assert.ok(text.length > 0);
    assert.deepEqual(chunks.flatMap((c) => c.choices).map((c) => c.finish_reason).filter(Boolean), ["length"]);
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.completion_tokens, 8);
    assert.equal(chunks.filter((c) => c.usage).length, 1);
  });

  test("streaming on the scripted model: reasoning deltas, then answer deltas", async () => {
    const stream = await scripted.chat.completions.create({
      model: "scripted",
      messages: [{ role: "user", content: "Hi there!" }],
      stream: true,
    });
    let reasoning = "";
    let answer = "";
    let finish;
    for await (const chunk of stream) {
      const [choice] = chunk.choices;
      assert.ok(!(choice.delta.content && reasoning === ""), "no answer text before the reasoning");
      reasoning += choice.delta.reasoning_content ?? "";
      answer += choice.delta.content ?? "";
      finish = choice.finish_reason ?? finish;
    }

    assert.equal(reasoning, Script.chatReasoning);
    assert.equal(answer, Script.chatAnswer);
    assert.equal(finish, "stop");
  });

  test("tool round trip on the scripted model: the call, its result, the answer", async () => {
    const messages = [{ role: "user", content: "What is the weather in Paris?" }];
    const asked = await scripted.chat.completions.create({ model: "scripted", messages, tools: [weatherTool] });
    assert.equal(asked.choices[0].finish_reason, "tool_calls");
    const [call] = asked.choices[0].message.tool_calls;
    assert.equal(call.type, "function");
    assert.equal(call.function.name, Script.toolName);
    assert.deepEqual(JSON.parse(call.function.arguments), Script.toolArguments);

    messages.push(asked.choices[0].message, { role: "tool", tool_call_id: call.id, content: '{"temperature": 21, "condition": "sunny"}' });
    const answered = await scripted.chat.completions.create({ model: "scripted", messages, tools: [weatherTool] });
    assert.equal(answered.choices[0].finish_reason, "stop");
    assert.equal(answered.choices[0].message.content, Script.finalAnswer);
    assert.ok(answered.choices[0].message.reasoning_content.length > 0, "thinking is on by default");
  });

  test("streamed tool call: the first delta names the call, argument fragments follow, the stream helper joins them", async () => {
    const stream = scripted.chat.completions.stream({
      model: "scripted",
      messages: [{ role: "user", content: "What is the weather in Paris?" }],
      tools: [weatherTool],
    });
    const deltas = [];
    stream.on("chunk", (chunk) => deltas.push(...(chunk.choices[0]?.delta?.tool_calls ?? [])));
    const completion = await stream.finalChatCompletion();

    assert.ok(deltas.length > 2, "the arguments arrive in several deltas");
    assert.match(deltas[0].id, /^call_/);
    assert.equal(deltas[0].type, "function");
    assert.equal(deltas[0].function.name, Script.toolName);
    assert.ok(deltas.every((d) => d.index === 0));
    assert.ok(deltas.slice(1).every((d) => d.id === undefined && d.function.name === undefined));
    const [call] = completion.choices[0].message.tool_calls;
    assert.equal(call.id, deltas[0].id);
    assert.equal(call.function.name, Script.toolName);
    assert.equal(call.function.arguments, deltas.map((d) => d.function.arguments).join(""));
    assert.deepEqual(JSON.parse(call.function.arguments), Script.toolArguments);
    assert.equal(completion.choices[0].finish_reason, "tool_calls");
  });

  test("response_format json_schema: the random model's content parses and validates", async () => {
    // The tiny model's weights are random: without the constraint its text never parses.
    const schema = {
      type: "object",
      properties: { city: { type: "string", maxLength: 6 }, rain: { type: "boolean" }, level: { type: "integer", minimum: 1, maximum: 5 } },
      required: ["city", "rain", "level"],
      additionalProperties: false,
    };
    let finished = 0;
    for (const seed of [1, 2, 3, 4]) {
      const completion = await client.chat.completions.create({
        model,
        messages: [{ role: "user", content: "Weather as JSON" }],
        max_tokens: 48,
        seed,
        temperature: 1,
        enable_thinking: false,
        response_format: { type: "json_schema", json_schema: { name: "weather", strict: true, schema } },
      });
      const choice = completion.choices[0];
      if (choice.finish_reason !== "stop") continue;
      finished++;
      const value = JSON.parse(choice.message.content);
      assert.deepEqual(Object.keys(value), ["city", "rain", "level"]);
      assert.equal(typeof value.city, "string");
      assert.ok([...value.city].length <= 6);
      assert.equal(typeof value.rain, "boolean");
      assert.ok(Number.isInteger(value.level) && value.level >= 1 && value.level <= 5);
    }
    assert.ok(finished > 0, "at least one seed finishes within max_tokens");
  });

  test("aborting a stream mid-way cancels the generation and frees the server's slot", async () => {
    const { cancelled_requests: cancelledBefore } = await waitForHealth(baseUrl, () => true);
    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Count to a million." }],
      max_tokens: 4000,
      stream: true,
    });
    let received = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content && ++received === 3) {
        stream.controller.abort();
        break;
      }
    }

    assert.equal(received, 3);
    // Uncancelled, the generation would run to 4000 tokens and end as "length", never counted as cancelled.
    await waitForHealth(baseUrl, (h) => h.cancelled_requests > cancelledBefore && h.running_requests === 0);
    // The slot is free: the one-request server takes the next request at once.
    const next = await client.chat.completions.create({ model, messages: [{ role: "user", content: "Hi" }], max_tokens: 2 });
    assert.equal(next.usage.completion_tokens, 2);
  });
});

describe("errors", () => {
  const post = (body, headers = {}) =>
    fetch(`${baseUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}`, ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });

  async function expectError(responsePromise, status, { param, code } = {}) {
    const response = await responsePromise;
    assert.equal(response.status, status);
    const { error } = await response.json();
    assert.equal(typeof error.message, "string");
    assert.equal(typeof error.type, "string");
    if (param !== undefined) assert.equal(error.param, param);
    if (code !== undefined) assert.equal(error.code, code);
    return error;
  }

  const hello = [{ role: "user", content: "hi" }];

  test("400 for malformed JSON, wrong types, ranges, roles, n and unsupported fields", async () => {
    await expectError(post("{\"model\":"), 400, { param: null });
    await expectError(post({ model, messages: "hi" }), 400, { param: "messages" });
    await expectError(post({ model, messages: hello, temperature: 5 }), 400, { param: "temperature" });
    await expectError(post({ model, messages: [{ role: "wizard", content: "hi" }] }), 400, { param: "messages[0].role" });
    await expectError(post({ model, messages: hello, n: 2 }), 400, { param: "n" });
    await expectError(post({ model, messages: hello, logprobs: true }), 400, { param: "logprobs" });
    await expectError(post({ model, messages: hello, frequency_penalty: 1 }), 400, { param: "frequency_penalty" });
    const badSchema = { type: "json_schema", json_schema: { name: "x", schema: { type: "object", not: {} } } };
    const error = await expectError(post({ model, messages: hello, response_format: badSchema }), 400, { param: "response_format.json_schema.schema" });
    assert.match(error.message, /#\/not/);
  });

  test("400 context_length_exceeded", async () => {
    const { data } = await client.models.list();
    const contextLength = data[0].max_model_len;
    await expectError(post({ model, messages: hello, max_tokens: contextLength }), 400, { code: "context_length_exceeded" });
  });

  test("the openai client surfaces the error body", async () => {
    await assert.rejects(
      client.chat.completions.create({ model, messages: hello, top_p: 0 }),
      (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.error.param === "top_p",
    );
    await assert.rejects(
      client.chat.completions.create({ model: "gpt-4o", messages: hello }),
      (e) => e instanceof OpenAI.NotFoundError && e.error.code === "model_not_found",
    );
  });

  test("401 without or with a wrong API key", async () => {
    await expectError(post({ model, messages: hello }, { authorization: "" }), 401, { code: "invalid_api_key" });
    await expectError(post({ model, messages: hello }, { authorization: "Bearer wrong" }), 401, { code: "invalid_api_key" });
  });

  test("404 for an unknown model or route", async () => {
    await expectError(post({ model: "gpt-4o", messages: hello }), 404, { code: "model_not_found" });
    await expectError(fetch(`${baseUrl}/v1/completions`, { method: "POST" }), 404, { code: "unknown_url" });
  });

  test("413 above the request-size limit", async () => {
    const huge = { model, messages: [{ role: "user", content: "a".repeat(9 * 1024 * 1024) }] };
    await expectError(post(huge), 413, { code: "request_too_large" });
  });

  test("429 while the server runs its request limit", async () => {
    const stream = await client.chat.completions.create({ model, messages: hello, max_tokens: 4000, stream: true });
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next(); // the first request holds the only slot while its stream is open
    await expectError(post({ model, messages: hello, max_tokens: 2 }), 429, { code: "rate_limit_exceeded" });
    stream.controller.abort();
    await waitForHealth(baseUrl, (h) => h.running_requests === 0);
  });
});

describe("openai embeddings.create (the tiny model served with --embedding-model)", () => {
  const norm = (v) => Math.sqrt(v.reduce((sum, x) => sum + x * x, 0));

  test("a string and a list give unit vectors, the same in base64 (the client's default) and float, with usage", async () => {
    const one = await client.embeddings.create({ model, input: "hello world" });
    assert.equal(one.object, "list");
    assert.equal(one.model, model);
    assert.equal(one.data.length, 1);
    assert.equal(one.data[0].index, 0);
    assert.equal(one.data[0].embedding.length, 96);
    assert.ok(Math.abs(norm(one.data[0].embedding) - 1) < 1e-5);
    assert.ok(one.usage.prompt_tokens > 1);
    assert.equal(one.usage.total_tokens, one.usage.prompt_tokens);

    const asFloat = await client.embeddings.create({ model, input: "hello world", encoding_format: "float" });
    // JSON carries the shortest text of each float32; rounding it back to float32 gives the base64 bytes' values.
    assert.deepEqual(asFloat.data[0].embedding.map(Math.fround), one.data[0].embedding);

    const many = await client.embeddings.create({ model, input: ["hello world", "a second, longer text to embed"], dimensions: 32 });
    assert.deepEqual(many.data.map((d) => d.index), [0, 1]);
    for (const d of many.data) {
      assert.equal(d.embedding.length, 32);
      assert.ok(Math.abs(norm(d.embedding) - 1) < 1e-5);
    }
  });

  test("an empty input and out-of-range dimensions are 400s naming the field", async () => {
    await assert.rejects(client.embeddings.create({ model, input: "" }), (e) => e.status === 400 && e.param === "input");
    await assert.rejects(client.embeddings.create({ model, input: "x", dimensions: 97 }), (e) => e.status === 400 && e.param === "dimensions");
  });
});
