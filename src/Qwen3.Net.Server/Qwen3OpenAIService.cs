using System.Diagnostics;
using System.Text;
using Qwen3.Net.Chat;
using Qwen3.Net.Generation;

namespace Qwen3.Net.Server;

/// <summary>
/// The OpenAI-compatible chat service of one model: it parses and checks requests, runs them on a
/// <see cref="ChatGenerator"/> (the model's scheduler batches concurrent requests) and writes OpenAI's response shapes.
/// Map it into an app with <see cref="Qwen3OpenAIEndpoints.MapQwen3OpenAI(Microsoft.AspNetCore.Routing.IEndpointRouteBuilder, Qwen3Model, Qwen3ServerOptions?)"/>.
/// </summary>
public sealed class Qwen3OpenAIService
{
    private readonly Qwen3Model _model;
    private readonly ChatGenerator _generator;
    private readonly ChatRequestParser _parser;
    private readonly ILogger _logger;
    private readonly byte[]? _apiKey;
    private int _running;
    private long _cancelled;

    /// <summary>Creates the service for <paramref name="model"/>.</summary>
    /// <param name="model">The model; it must stay loaded while the service runs.</param>
    /// <param name="options">Served name, API key and limits; null for the defaults.</param>
    /// <param name="logger">Where the one line per request goes; null for none.</param>
    /// <exception cref="ModelLoadException">The model folder has no usable chat template.</exception>
    public Qwen3OpenAIService(Qwen3Model model, Qwen3ServerOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        Options = options ?? new Qwen3ServerOptions();
        if (Options.ContextLength > model.Config.MaxPositionEmbeddings)
        {
            throw new ArgumentOutOfRangeException(nameof(options), Options.ContextLength, $"ContextLength exceeds the model's max_position_embeddings ({model.Config.MaxPositionEmbeddings}).");
        }

        _generator = new ChatGenerator(model);
        _parser = new ChatRequestParser(Options);
        _logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        _apiKey = Options.ApiKey is { } key ? Encoding.UTF8.GetBytes(key) : null;
        // A folder's name ("Qwen3-1.7B"), or a GGUF file's name without ".gguf" ("Qwen3-1.7B-Q8_0").
        ModelId = Options.ServedModelName ?? (File.Exists(model.Folder)
            ? Path.GetFileNameWithoutExtension(model.Folder)
            : Path.GetFileName(model.Folder.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar)));
    }

    /// <summary>The id clients send in <c>model</c>.</summary>
    public string ModelId { get; }

    /// <summary>The options the service runs with.</summary>
    public Qwen3ServerOptions Options { get; }

    /// <summary>Generations running now (also reported by <c>/health</c> as <c>running_requests</c>).</summary>
    public int RunningRequests => Volatile.Read(ref _running);

    /// <summary>Generations stopped because their client went away (<c>/health</c>: <c>cancelled_requests</c>).</summary>
    public long CancelledRequests => Interlocked.Read(ref _cancelled);

    internal int ContextLength => Options.ContextLength ?? _model.Config.MaxPositionEmbeddings;

    /// <summary>The models mapped beside this one, which say what a mismatched <c>model</c> field names; set by the mapping, the only way to the handlers.</summary>
    internal ServedModels Registry { get; set; } = null!;

    internal async Task HandleChatCompletionAsync(HttpContext http)
    {
        var aborted = http.RequestAborted;
        var clock = Stopwatch.StartNew();
        try
        {
            Authorize(http);
            var body = await ReadBodyAsync(http).ConfigureAwait(false);
            var request = _parser.Parse(body);
            if (request.Model != ModelId)
            {
                throw Registry.Refuse(ModelKind.Chat, request.Model);
            }

            var options = new ChatGenerationOptions
            {
                ThinkingMode = request.Thinking,
                Tools = request.Tools,
                ToolChoice = request.ToolChoice,
                ParallelToolCalls = request.ParallelToolCalls,
                ResponseFormat = request.ResponseFormat,
            };
            int promptTokens = EncodePrompt(request.Messages, options).Length;
            if (promptTokens >= ContextLength)
            {
                throw OpenAIException.Invalid($"The prompt has {promptTokens} tokens; the context holds {ContextLength}.", "messages", "context_length_exceeded");
            }

            int maxTokens = request.MaxTokens ?? Math.Min(Options.MaxTokensLimit, ContextLength - promptTokens);
            if (promptTokens + maxTokens > ContextLength)
            {
                throw OpenAIException.Invalid(
                    $"The prompt has {promptTokens} tokens and max_tokens is {maxTokens}; together they exceed the context of {ContextLength} tokens.",
                    "max_tokens", "context_length_exceeded");
            }

            options = options with { Sampling = request.ToSampling(maxTokens), StreamToolCallText = request.Stream };
            if (Interlocked.Increment(ref _running) > Options.MaxConcurrentRequests)
            {
                Interlocked.Decrement(ref _running);
                throw OpenAIException.Busy($"The server is running its limit of {Options.MaxConcurrentRequests} requests; retry later.");
            }

            try
            {
                await GenerateAsync(http, request, options, clock, aborted).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref _running);
            }
        }
        catch (OpenAIException e) when (!http.Response.HasStarted)
        {
            _logger.LogInformation("chat.completions refused: {Status} {Code} {Param}: {Message}", e.Status, e.Code ?? e.Type, e.Param, e.Message);
            await WriteErrorAsync(http, e).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            // The client went away while its request was read; there is no one to answer.
        }
        catch (Exception e) when (!http.Response.HasStarted && !aborted.IsCancellationRequested)
        {
            _logger.LogError(e, "chat.completions failed");
            await WriteErrorAsync(http, new OpenAIException(StatusCodes.Status500InternalServerError, "The server failed to run the request.", "server_error")).ConfigureAwait(false);
        }
    }

    internal Task HandleHealthAsync(HttpContext http) => WriteJsonAsync(http, 200, TurnAccumulator.Write(w =>
    {
        w.WriteStartObject();
        w.WriteString("status", "ok");
        w.WriteString("model", ModelId);
        w.WriteNumber("running_requests", RunningRequests);
        w.WriteNumber("cancelled_requests", CancelledRequests);
        w.WriteNumber("max_concurrent_requests", Options.MaxConcurrentRequests);
        w.WriteEndObject();
    }));

    internal static Task WriteNotFoundAsync(HttpContext http) =>
        WriteErrorAsync(http, OpenAIException.NotFound($"No route {http.Request.Method} {http.Request.Path}.", "unknown_url"));

    private async Task GenerateAsync(HttpContext http, ChatCompletionRequest request, ChatGenerationOptions options, Stopwatch clock, CancellationToken aborted)
    {
        var turn = new TurnAccumulator(ModelId);
        var updates = _generator.GenerateAsync(request.Messages, options, aborted).GetAsyncEnumerator(aborted);
        await using (updates.ConfigureAwait(false))
        {
            // The first update is awaited before anything is written, so a full queue or an unrenderable prompt still gets its status code.
            try
            {
                await updates.MoveNextAsync().ConfigureAwait(false);
            }
            catch (QueueFullException e)
            {
                throw OpenAIException.Busy(e.Message);
            }
            catch (ContextOverflowException e)
            {
                throw OpenAIException.Invalid(e.Message, "messages", "context_length_exceeded");
            }
            catch (ChatTemplateException e)
            {
                throw OpenAIException.Invalid($"The chat template cannot render these messages: {e.Message}", "messages");
            }

            // A turn cancelled before its first token (the client left while the prompt rendered) has no one to stream to.
            var sse = request.Stream && updates.Current.FinishReason != FinishReason.Cancelled ? await StartStreamAsync(http, turn).ConfigureAwait(false) : null;
            try
            {
                do
                {
                    var update = updates.Current;
                    if (update.Kind != ChatUpdateKind.Finished)
                    {
                        var (reasoning, answer, call) = turn.Add(update);
                        if (sse is not null && (answer is not null || call is not null || (reasoning is not null && request.ReturnReasoning)))
                        {
                            await SendAsync(sse, turn.Chunk(w =>
                            {
                                if (reasoning is not null)
                                {
                                    w.WriteString("reasoning_content", reasoning);
                                }
                                else if (answer is not null)
                                {
                                    w.WriteString("content", answer);
                                }
                                else
                                {
                                    w.WriteStartArray("tool_calls");
                                    TurnAccumulator.WriteToolCallDelta(w, call!);
                                    w.WriteEndArray();
                                }
                            }, null), aborted).ConfigureAwait(false);
                        }

                        continue;
                    }

                    var usage = update.Usage!;
                    if (update.FinishReason == FinishReason.Cancelled)
                    {
                        Interlocked.Increment(ref _cancelled);
                        Log(turn, "cancelled", usage, clock);
                        return;
                    }

                    string finish = turn.FinishReasonOf(update.FinishReason!.Value);
                    Log(turn, finish, usage, clock);
                    if (sse is null)
                    {
                        await WriteJsonAsync(http, 200, turn.Completion(finish, usage, request.ReturnReasoning)).ConfigureAwait(false);
                        return;
                    }

                    await SendAsync(sse, turn.Chunk(null, finish), aborted).ConfigureAwait(false);
                    if (request.IncludeUsage)
                    {
                        await SendAsync(sse, turn.UsageChunk(usage), aborted).ConfigureAwait(false);
                    }

                    await sse.WriteAsync("data: [DONE]\n\n"u8.ToArray(), aborted).ConfigureAwait(false);
                    await sse.FlushAsync(aborted).ConfigureAwait(false);
                    return;
                }
                while (await updates.MoveNextAsync().ConfigureAwait(false));
            }
            catch (Exception e) when (sse is not null && e is not OperationCanceledException && !aborted.IsCancellationRequested)
            {
                // Headers are gone, so the failure is reported in the stream, as OpenAI does.
                _logger.LogError(e, "{Id} failed mid-stream", turn.Id);
                var error = new OpenAIException(StatusCodes.Status500InternalServerError, "The server failed while generating.", "server_error");
                await SendAsync(sse, TurnAccumulator.Write(error.WriteTo), aborted).ConfigureAwait(false);
            }
            catch (Exception e) when (aborted.IsCancellationRequested && e is OperationCanceledException or IOException)
            {
                // The client disconnected while a chunk was being written; the generation stops with the request.
                Interlocked.Increment(ref _cancelled);
                Log(turn, "cancelled", null, clock);
            }
        }
    }

    private int[] EncodePrompt(IReadOnlyList<Message> messages, ChatGenerationOptions options)
    {
        try
        {
            return _generator.EncodePrompt(messages, options);
        }
        catch (ChatTemplateException e)
        {
            throw OpenAIException.Invalid($"The chat template cannot render these messages: {e.Message}", "messages");
        }
    }

    private void Log(TurnAccumulator turn, string finish, GenerationUsage? usage, Stopwatch clock) =>
        _logger.LogInformation(
            "{Id} {Finish}: prompt {PromptTokens} tokens ({CachedTokens} cached), completion {CompletionTokens} tokens ({ReasoningTokens} reasoning); prefill {PrefillMs:F0} ms, decode {DecodeMs:F0} ms, total {TotalMs:F0} ms",
            turn.Id, finish, usage?.PromptTokens, usage?.ReusedPromptTokens, usage?.GeneratedTokens, turn.ReasoningTokens,
            usage?.PrefillTime.TotalMilliseconds, usage?.DecodeTime.TotalMilliseconds, clock.Elapsed.TotalMilliseconds);

    private void Authorize(HttpContext http) => HttpExchange.Authorize(http, _apiKey);

    private Task<ReadOnlyMemory<byte>> ReadBodyAsync(HttpContext http) => HttpExchange.ReadBodyAsync(http, Options.MaxRequestBodyBytes);

    private static async Task<Stream> StartStreamAsync(HttpContext http, TurnAccumulator turn)
    {
        http.Response.StatusCode = 200;
        http.Response.ContentType = "text/event-stream; charset=utf-8";
        http.Response.Headers.CacheControl = "no-cache";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        var body = http.Response.Body;
        await SendAsync(body, turn.Chunk(w =>
        {
            w.WriteString("role", "assistant");
            w.WriteString("content", string.Empty);
        }, null), http.RequestAborted).ConfigureAwait(false);
        return body;
    }

    private static async Task SendAsync(Stream sse, byte[] json, CancellationToken cancellationToken)
    {
        await sse.WriteAsync("data: "u8.ToArray(), cancellationToken).ConfigureAwait(false);
        await sse.WriteAsync(json, cancellationToken).ConfigureAwait(false);
        await sse.WriteAsync("\n\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
        await sse.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private static Task WriteErrorAsync(HttpContext http, OpenAIException e) => HttpExchange.WriteErrorAsync(http, e);

    private static Task WriteJsonAsync(HttpContext http, int status, byte[] json) => HttpExchange.WriteJsonAsync(http, status, json);
}
