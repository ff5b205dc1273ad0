using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Qwen3.Net.Benchmarks.Server;

/// <summary>What one streamed <c>chat.completions</c> request gave, and whether the stream was well-formed.</summary>
internal sealed record StreamOutcome
{
    public HttpStatusCode Status { get; init; }

    /// <summary>Why the stream is not what the protocol promises; null when it is well-formed.</summary>
    public string? Problem { get; init; }

    /// <summary>The client stopped reading on purpose after a few chunks.</summary>
    public bool Aborted { get; init; }

    public string Content { get; init; } = string.Empty;

    public string Reasoning { get; init; } = string.Empty;

    public string? FinishReason { get; init; }

    /// <summary>Tool calls joined from their deltas by index: name and arguments.</summary>
    public List<(string? Id, string Name, string Arguments)> ToolCalls { get; init; } = [];

    public int? CompletionTokens { get; init; }

    /// <summary>Seconds from sending to each chunk that carried text (content or reasoning).</summary>
    public List<double> TextChunkTimes { get; init; } = [];

    /// <summary>The error body of a refused request.</summary>
    public JsonNode? Error { get; init; }
}

/// <summary>Sends streamed chat requests and reads their server-sent events as an OpenAI client does, checking every line.</summary>
internal static class ChatStream
{
    public static async Task<StreamOutcome> RunAsync(HttpClient http, Uri completions, string body, int abortAfterChunks = -1, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        using var abort = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var request = new HttpRequestMessage(HttpMethod.Post, completions) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, abort.Token).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            string text = await response.Content.ReadAsStringAsync(abort.Token).ConfigureAwait(false);
            return new StreamOutcome { Status = response.StatusCode, Error = ParseOrNull(text), Problem = ParseOrNull(text)?["error"] is null ? "error without an OpenAI error body" : null };
        }

        if (response.Content.Headers.ContentType?.MediaType != "text/event-stream")
        {
            return new StreamOutcome { Status = response.StatusCode, Problem = $"content type {response.Content.Headers.ContentType}" };
        }

        var content = new StringBuilder();
        var reasoning = new StringBuilder();
        var calls = new SortedDictionary<int, (string? Id, string Name, StringBuilder Arguments)>();
        var times = new List<double>();
        string? finish = null;
        int? completionTokens = null;
        int chunks = 0;
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(abort.Token).ConfigureAwait(false));
        while (await reader.ReadLineAsync(abort.Token).ConfigureAwait(false) is { } line)
        {
            if (line.Length == 0)
            {
                continue;
            }

            if (!line.StartsWith("data: ", StringComparison.Ordinal))
            {
                return Bad($"a line that is not an event: {Cut(line)}");
            }

            string data = line["data: ".Length..];
            if (data == "[DONE]")
            {
                if (finish is null)
                {
                    return Bad("[DONE] without a finish_reason");
                }

                return new StreamOutcome
                {
                    Status = HttpStatusCode.OK, Content = content.ToString(), Reasoning = reasoning.ToString(), FinishReason = finish,
                    ToolCalls = [.. calls.Values.Select(c => (c.Id, c.Name, c.Arguments.ToString()))], CompletionTokens = completionTokens, TextChunkTimes = times,
                };
            }

            var chunk = ParseOrNull(data);
            string? kind = chunk?["object"]?.GetValue<string>();
            if (chunk is null || kind is not ("chat.completion.chunk" or "text_completion"))
            {
                return Bad($"a chunk that is neither a chat.completion.chunk nor a text_completion: {Cut(data)}");
            }

            if (chunk["usage"] is JsonObject usage && usage["completion_tokens"] is { } tokens)
            {
                completionTokens = tokens.GetValue<int>();
            }

            if (chunk["choices"] is not JsonArray { Count: > 0 } choices)
            {
                continue;
            }

            var choice = choices[0]!;
            if (choice["finish_reason"] is JsonValue reason)
            {
                if (finish is not null)
                {
                    return Bad("two finish reasons");
                }

                finish = reason.GetValue<string>();
            }

            // A text_completion chunk (the legacy completions endpoint) carries its text in choices[0].text.
            var delta = kind == "text_completion" ? new JsonObject { ["content"] = choice["text"]?.DeepClone() } : choice["delta"];
            bool text = false;
            if (delta?["content"] is JsonValue piece && piece.GetValue<string>().Length > 0)
            {
                content.Append(piece.GetValue<string>());
                text = true;
            }

            if (delta?["reasoning_content"] is JsonValue thought && thought.GetValue<string>().Length > 0)
            {
                reasoning.Append(thought.GetValue<string>());
                text = true;
            }

            if (delta?["tool_calls"] is JsonArray toolCalls)
            {
                foreach (var call in toolCalls)
                {
                    int index = call!["index"]!.GetValue<int>();
                    string fragment = call["function"]?["arguments"]?.GetValue<string>() ?? string.Empty;
                    if (!calls.TryGetValue(index, out var known))
                    {
                        if (call["id"] is null || call["function"]?["name"] is null)
                        {
                            return Bad($"the first delta of tool call {index} has no id or name");
                        }

                        calls[index] = (call["id"]!.GetValue<string>(), call["function"]!["name"]!.GetValue<string>(), new StringBuilder(fragment));
                    }
                    else
                    {
                        known.Arguments.Append(fragment);
                    }
                }
            }

            if (text)
            {
                times.Add(clock.Elapsed.TotalSeconds);
            }

            if (++chunks == abortAfterChunks)
            {
                // A client that goes away mid-stream: the connection is dropped without reading further.
                abort.Cancel();
                return new StreamOutcome { Status = HttpStatusCode.OK, Aborted = true, TextChunkTimes = times };
            }
        }

        return Bad("the stream ended without [DONE]");
    }

    private static StreamOutcome Bad(string problem) => new() { Status = HttpStatusCode.OK, Problem = problem };

    internal static JsonNode? ParseOrNull(string text)
    {
        try
        {
            return JsonNode.Parse(text);
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    private static string Cut(string text) => text.Length > 200 ? text[..200] + "…" : text;
}
