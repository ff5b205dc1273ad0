using System.Runtime.CompilerServices;
using Qwen3.Net.Generation;

namespace Qwen3.Net.Chat;

/// <summary>
/// A conversation with a Qwen3 model: keeps the history, renders it with the model's own chat template, streams each
/// assistant turn as reasoning, answer and tool calls, and reuses the KV cache between turns.
/// </summary>
/// <remarks>
/// <para>One turn runs at a time: starting another while one is streaming throws <see cref="InvalidOperationException"/>.
/// Many sessions may share one <see cref="Qwen3Model"/> and run on different threads at once.</para>
/// <para>Tokens are evaluated by the model's scheduler, in the same forward passes as other sessions' and contexts'
/// tokens; awaiting the stream never blocks the caller's thread on them.</para>
/// <para>A turn is added to <see cref="History"/> only when it finishes; a cancelled or failed turn leaves the history as it was.</para>
/// </remarks>
public sealed class ChatSession : IDisposable
{
    private readonly Qwen3Model _model;
    private readonly ChatGenerator _chat;
    private readonly InferenceContext _context;
    private readonly Generator _generator;
    private readonly ChatSessionOptions _options;
    private readonly Message[] _initialMessages;
    private readonly ToolDefinition[] _tools;
    private readonly List<Message> _history;
    private readonly Lock _gate = new();
    private CancellationTokenSource? _abandon;
    private bool _busy;
    private bool _disposed;

    /// <summary>Starts a conversation on <paramref name="model"/>.</summary>
    /// <param name="model">The model; it must stay loaded while the session is used.</param>
    /// <param name="options">System prompt, thinking mode, sampling, tools and context size; null for the defaults.</param>
    /// <exception cref="ArgumentException"><see cref="ChatSessionOptions.Messages"/> starts with a system message while <see cref="ChatSessionOptions.SystemPrompt"/> is also set.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The context size is below 1 or above the model's <c>max_position_embeddings</c>.</exception>
    /// <exception cref="ModelLoadException">The model folder's <c>tokenizer_config.json</c> has no usable chat template.</exception>
    public ChatSession(Qwen3Model model, ChatSessionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new ChatSessionOptions();
        if (options.ContextSize is { } size)
        {
            ArgumentChecks.InRange(size, 1, model.Config.MaxPositionEmbeddings, nameof(ChatSessionOptions.ContextSize));
        }

        if (!Enum.IsDefined(options.ThinkingMode))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.ThinkingMode, "Unknown thinking mode.");
        }

        var initial = new List<Message>();
        if (options.SystemPrompt is { } system)
        {
            if (options.Messages.Count > 0 && options.Messages[0].Role == MessageRole.System)
            {
                throw new ArgumentException("Give the system prompt either as SystemPrompt or as the first message, not both.", nameof(options));
            }

            initial.Add(Message.System(system));
        }

        foreach (var message in options.Messages)
        {
            ArgumentNullException.ThrowIfNull(message, nameof(options));
            initial.Add(message);
        }

        _model = model;
        _options = options;
        _initialMessages = [.. initial];
        _history = [.. initial];
        _tools = [.. options.Tools];
        _chat = new ChatGenerator(model);
        _context = model.CreateContext(options.ContextSize);
        _generator = new Generator(_context);
    }

    /// <summary>The session's thinking mode, used by every turn that does not override it.</summary>
    public ThinkingMode ThinkingMode => _options.ThinkingMode;

    /// <summary>Most tokens the conversation may hold.</summary>
    public int ContextSize => _context.Capacity;

    /// <summary>A snapshot of the conversation so far: the initial messages and every finished turn.</summary>
    public IReadOnlyList<Message> History
    {
        get
        {
            lock (_gate)
            {
                return [.. _history];
            }
        }
    }

    /// <summary>
    /// Sends a user message and streams the assistant's turn. The message may end with Qwen's soft switches
    /// <c>/think</c> or <c>/no_think</c>, which stay in the prompt.
    /// </summary>
    /// <param name="userMessage">The user's text.</param>
    /// <param name="cancellationToken">Stops generation within one token; the stream then ends with a <see cref="FinishReason.Cancelled"/> update.</param>
    /// <returns>The turn's updates; the last one is <see cref="ChatUpdateKind.Finished"/>. The turn starts when enumeration starts.</returns>
    /// <exception cref="InvalidOperationException">(On enumeration) another turn of this session is running.</exception>
    /// <exception cref="ContextOverflowException">(On enumeration) the conversation does not fit in the context; nothing was evaluated.</exception>
    public IAsyncEnumerable<ChatUpdate> SendAsync(string userMessage, CancellationToken cancellationToken = default) =>
        SendAsync(userMessage, null, cancellationToken);

    /// <summary>Sends a user message with per-turn overrides and streams the assistant's turn.</summary>
    /// <param name="userMessage">The user's text.</param>
    /// <param name="options">Thinking mode and sampling for this turn; null keeps the session's.</param>
    /// <param name="cancellationToken">Stops generation within one token; the stream then ends with a <see cref="FinishReason.Cancelled"/> update.</param>
    /// <returns>The turn's updates; the last one is <see cref="ChatUpdateKind.Finished"/>. The turn starts when enumeration starts.</returns>
    /// <exception cref="InvalidOperationException">(On enumeration) another turn of this session is running.</exception>
    /// <exception cref="ContextOverflowException">(On enumeration) the conversation does not fit in the context; nothing was evaluated.</exception>
    /// <exception cref="ArgumentException"><see cref="ChatTurnOptions.ToolChoice"/> forces calls but the session has no tools, or names a tool it does not have.</exception>
    /// <exception cref="Generation.Constraints.SchemaException">A forced tool's parameters schema cannot constrain generation.</exception>
    public IAsyncEnumerable<ChatUpdate> SendAsync(string userMessage, ChatTurnOptions? options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(userMessage);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return RunTurnAsync(Message.User(userMessage), Resolve(options), cancellationToken);
    }

    /// <summary>Sends a user message and waits for the whole turn.</summary>
    /// <param name="userMessage">The user's text.</param>
    /// <param name="options">Thinking mode and sampling for this turn; null keeps the session's.</param>
    /// <param name="cancellationToken">Cancels the turn.</param>
    /// <returns>The reasoning, answer and tool calls, kept apart.</returns>
    /// <exception cref="OperationCanceledException">The turn was cancelled; the history is unchanged.</exception>
    /// <exception cref="InvalidOperationException">Another turn of this session is running.</exception>
    /// <exception cref="ContextOverflowException">The conversation does not fit in the context.</exception>
    public Task<ChatTurn> GetResponseAsync(string userMessage, ChatTurnOptions? options = null, CancellationToken cancellationToken = default) =>
        ChatTurn.CollectAsync(SendAsync(userMessage, options, cancellationToken), cancellationToken);

    /// <summary>
    /// Adds the result of one of the tool calls of the last assistant turn. Add one per call, in order, then call
    /// <see cref="ContinueAsync"/> to let the model use them.
    /// </summary>
    /// <param name="content">The tool's output, usually JSON text.</param>
    /// <exception cref="InvalidOperationException">The last message is neither an assistant turn with tool calls nor another tool result, or a turn is running.</exception>
    public void AddToolResult(string content)
    {
        ArgumentNullException.ThrowIfNull(content);
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_gate)
        {
            ThrowIfBusy();
            var last = _history.Count > 0 ? _history[^1] : null;
            bool follows = last is not null && (last.Role == MessageRole.Tool || (last.Role == MessageRole.Assistant && last.ToolCalls is { Count: > 0 }));
            if (!follows)
            {
                throw new InvalidOperationException("A tool result must follow an assistant turn that made tool calls, or another tool result.");
            }

            _history.Add(Message.Tool(content));
        }
    }

    /// <summary>Streams the assistant's next turn after tool results were added with <see cref="AddToolResult"/>.</summary>
    /// <param name="options">Thinking mode and sampling for this turn; null keeps the session's.</param>
    /// <param name="cancellationToken">Stops generation within one token; the stream then ends with a <see cref="FinishReason.Cancelled"/> update.</param>
    /// <returns>The turn's updates; the last one is <see cref="ChatUpdateKind.Finished"/>.</returns>
    /// <exception cref="InvalidOperationException">(On enumeration) the last message is not a tool result, or another turn is running.</exception>
    public IAsyncEnumerable<ChatUpdate> ContinueAsync(ChatTurnOptions? options = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return RunTurnAsync(null, Resolve(options), cancellationToken);
    }

    /// <summary>
    /// Starts the conversation over from the initial messages (system prompt included). The KV cache is kept, so the
    /// shared beginning of the next prompt is not evaluated again.
    /// </summary>
    /// <exception cref="InvalidOperationException">A turn is running.</exception>
    public void Reset()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_gate)
        {
            ThrowIfBusy();
            _history.Clear();
            _history.AddRange(_initialMessages);
        }
    }

    /// <summary>Cancels a running turn and releases the KV cache once it has stopped.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _abandon?.Cancel();
            if (_busy)
            {
                // The running turn releases the context when it ends.
                return;
            }
        }

        _context.Dispose();
    }

    private Turn Resolve(ChatTurnOptions? options)
    {
        var mode = options?.ThinkingMode ?? _options.ThinkingMode;
        if (!Enum.IsDefined(mode))
        {
            throw new ArgumentOutOfRangeException(nameof(options), mode, "Unknown thinking mode.");
        }

        var choice = options?.ToolChoice ?? ToolChoice.Auto;
        var format = ChatGenerator.ResolveFormat(_tools, choice, options?.ParallelToolCalls ?? true, options?.ResponseFormat);
        var settings = new ChatGenerator.TurnSettings(
            mode, options?.Sampling ?? _options.Sampling ?? SamplingOptions.For(mode == ThinkingMode.Enabled), format, options?.MaxThinkingTokens);
        return new Turn(settings, ChatGenerator.RenderedTools(_tools, choice));
    }

    private void ThrowIfBusy()
    {
        if (_busy)
        {
            throw new InvalidOperationException("A turn of this chat session is already running; wait for it to finish (sessions handle one turn at a time).");
        }
    }

    private async IAsyncEnumerable<ChatUpdate> RunTurnAsync(Message? userMessage, Turn turn, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        List<Message> conversation;
        CancellationTokenSource abandon;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ThrowIfBusy();
            if (userMessage is null && (_history.Count == 0 || _history[^1].Role != MessageRole.Tool))
            {
                throw new InvalidOperationException("ContinueAsync needs tool results: call AddToolResult after a turn that made tool calls.");
            }

            _busy = true;
            abandon = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            _abandon = abandon;
            conversation = [.. _history];
        }

        try
        {
            if (userMessage is not null)
            {
                conversation.Add(userMessage);
            }

            await foreach (var update in _chat.RunTurnAsync(_context, _generator, conversation, turn.Tools, turn.Settings, abandon.Token).ConfigureAwait(false))
            {
                // Recorded before the final update is sent, so a reader that sees it also sees the turn in History.
                if (update.Message is { } assistant)
                {
                    lock (_gate)
                    {
                        _history.Clear();
                        _history.AddRange(conversation);
                        _history.Add(assistant);
                    }
                }

                yield return update;
            }
        }
        finally
        {
            bool disposeContext;
            lock (_gate)
            {
                _busy = false;
                _abandon = null;
                disposeContext = _disposed;
            }

            abandon.Dispose();
            if (disposeContext)
            {
                _context.Dispose();
            }
        }
    }

    private readonly record struct Turn(ChatGenerator.TurnSettings Settings, IReadOnlyList<ToolDefinition>? Tools);
}
