using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Qwen3.Net.Chat;
using Qwen3.Net.Generation;

namespace Qwen3.Net.Extensions.AI;

/// <summary>
/// A Microsoft.Extensions.AI <see cref="IChatClient"/> over a loaded <see cref="Qwen3Model"/>. Stateless: every call
/// receives the whole conversation and runs on a context of its own, so one client serves any number of concurrent
/// calls; a conversation re-sent with new turns reuses the KV pages of its prefix, which
/// <see cref="UsageDetails.CachedInputTokenCount"/> reports.
/// </summary>
/// <remarks>
/// <para>
/// Reasoning streams as <see cref="TextReasoningContent"/>, the answer as <see cref="TextContent"/>, tool calls as
/// <see cref="FunctionCallContent"/> and the usage as a final <see cref="UsageContent"/>. Thinking is on by default,
/// as in Qwen3; turn it off with <c>AdditionalProperties["enable_thinking"] = false</c> or
/// <see cref="ReasoningEffort.None"/>. Sampling follows the model card for the thinking mode unless set.
/// </para>
/// <para>
/// <see cref="ChatResponseFormat.Json"/> and JSON-schema formats, and <see cref="ChatToolMode.RequireAny"/> /
/// <c>RequireSpecific</c>, are enforced by constrained decoding. Options and contents the model cannot honour (images,
/// frequency penalty, server-side conversations) throw <see cref="NotSupportedException"/> naming them; see docs/ichatclient.md.
/// </para>
/// </remarks>
public sealed class Qwen3ChatClient : IChatClient
{
    /// <summary>The provider name reported in <see cref="ChatClientMetadata"/>.</summary>
    public const string ProviderName = "qwen3.net";

    private readonly Qwen3Model _model;
    private readonly ChatGenerator _generator;
    private readonly ChatClientMetadata _metadata;
    private readonly bool _ownsModel;
    private volatile bool _disposed;

    /// <summary>Creates a client for <paramref name="model"/>, with the chat template of its <c>tokenizer_config.json</c>.</summary>
    /// <param name="model">The model; it must stay loaded while the client is used.</param>
    /// <param name="ownsModel">
    /// Whether disposing the client disposes the model. False by default: the caller loaded the model and disposes it
    /// after the client, which lets other clients or sessions share it.
    /// </param>
    /// <exception cref="ModelLoadException">The model folder has no usable chat template.</exception>
    public Qwen3ChatClient(Qwen3Model model, bool ownsModel = false)
        : this(model, new ChatGenerator(model ?? throw new ArgumentNullException(nameof(model))), ownsModel)
    {
    }

    /// <summary>Creates a client for <paramref name="model"/> that renders prompts with another chat template.</summary>
    /// <param name="model">The model; it must stay loaded while the client is used.</param>
    /// <param name="template">The chat template, e.g. one whose generation prompt opens a think block.</param>
    /// <param name="ownsModel">Whether disposing the client disposes the model.</param>
    public Qwen3ChatClient(Qwen3Model model, ChatTemplate template, bool ownsModel = false)
        : this(model, new ChatGenerator(model ?? throw new ArgumentNullException(nameof(model)), template), ownsModel)
    {
    }

    private Qwen3ChatClient(Qwen3Model model, ChatGenerator generator, bool ownsModel)
    {
        _model = model;
        _generator = generator;
        _ownsModel = ownsModel;
        ModelId = Path.GetFileName(Path.TrimEndingDirectorySeparator(model.Folder));
        _metadata = new ChatClientMetadata(ProviderName, null, ModelId);
    }

    /// <summary>The model's id: the name of its folder, e.g. <c>Qwen3-1.7B</c>.</summary>
    public string ModelId { get; }

    /// <inheritdoc/>
    /// <exception cref="NotSupportedException">A message content, role or option cannot be honoured; the message names it.</exception>
    /// <exception cref="ChatTemplateException">The template cannot render the conversation.</exception>
    /// <exception cref="ContextOverflowException">The prompt does not fit in the model's context.</exception>
    /// <exception cref="QueueFullException">The model's evaluation queue is full.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    /// <inheritdoc/>
    /// <exception cref="NotSupportedException">A message content, role or option cannot be honoured; the message names it (thrown here, before streaming).</exception>
    /// <exception cref="ChatTemplateException">(On enumeration) the template cannot render the conversation.</exception>
    /// <exception cref="ContextOverflowException">(On enumeration) the prompt does not fit in the model's context.</exception>
    /// <exception cref="QueueFullException">(On enumeration) the model's evaluation queue is full.</exception>
    /// <exception cref="OperationCanceledException">(On enumeration) <paramref name="cancellationToken"/> was cancelled.</exception>
    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return StreamAsync(Qwen3ChatMapper.ToRequest(this, messages, options, ModelId), cancellationToken);
    }

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        return serviceKey is not null ? null
            : serviceType == typeof(ChatClientMetadata) ? _metadata
            : serviceType == typeof(Qwen3Model) ? _model
            : serviceType == typeof(ChatGenerator) ? _generator
            : serviceType.IsInstanceOfType(this) ? this
            : null;
    }

    /// <summary>Disposes the model if the client was created to own it; otherwise the model stays loaded. Call it after the client's calls are done.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_ownsModel)
        {
            _model.Dispose();
        }
    }

    private async IAsyncEnumerable<ChatResponseUpdate> StreamAsync(Qwen3ChatRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string responseId = "chatcmpl-" + Guid.NewGuid().ToString("N");
        string messageId = "msg-" + Guid.NewGuid().ToString("N");
        var createdAt = DateTimeOffset.UtcNow;
        bool calledTools = false;
        int reasoningTokens = 0;
        await foreach (var update in _generator.GenerateAsync(request.Messages, request.Options, cancellationToken).ConfigureAwait(false))
        {
            var contents = new List<AIContent>(1);
            ChatFinishReason? finishReason = null;
            if (update.Kind == ChatUpdateKind.Reasoning)
            {
                // Counted as the server counts completion_tokens_details.reasoning_tokens: the tokens of the reasoning updates.
                reasoningTokens += update.TokenIds.Count;
            }

            switch (update.Kind)
            {
                case ChatUpdateKind.Reasoning when request.IncludeReasoning:
                    contents.Add(new TextReasoningContent(update.Text));
                    break;
                case ChatUpdateKind.Reasoning:
                    continue;
                case ChatUpdateKind.Answer:
                    contents.Add(new TextContent(update.Text));
                    break;
                case ChatUpdateKind.ToolCall:
                    calledTools = true;
                    contents.Add(Qwen3ChatMapper.ToFunctionCall(update.ToolCall!));
                    break;
                case ChatUpdateKind.MalformedToolCall:
                    contents.Add(Qwen3ChatMapper.ToMalformedText(update.MalformedToolCall!));
                    break;
                default:
                    if (update.FinishReason == FinishReason.Cancelled)
                    {
                        // Microsoft.Extensions.AI clients report cancellation by throwing, not as a finish reason.
                        throw new OperationCanceledException(cancellationToken);
                    }

                    finishReason = Qwen3ChatMapper.ToFinishReason(update.FinishReason!.Value, calledTools);
                    contents.Add(new UsageContent(Qwen3ChatMapper.ToUsage(update.Usage!, reasoningTokens)));
                    break;
            }

            yield return new ChatResponseUpdate(ChatRole.Assistant, contents)
            {
                ResponseId = responseId,
                MessageId = messageId,
                CreatedAt = createdAt,
                ModelId = ModelId,
                FinishReason = finishReason,
                RawRepresentation = update,
            };
        }
    }
}
