using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Qwen3.Net.Chat;

/// <summary>
/// A conversation with a Qwen3 model: keeps the history, renders it with the model's own chat template, streams each
/// assistant turn as reasoning, answer and tool calls, and reuses the KV cache between turns.
/// </summary>
/// <remarks>
/// <para>One turn runs at a time: starting another while one is streaming throws <see cref="InvalidOperationException"/>.
/// Many sessions may share one <see cref="Qwen3Model"/> and run on different threads at once.</para>
/// <para>The forward pass runs on a dedicated thread, so awaiting the stream never blocks the caller's thread on it.</para>
/// <para>A turn is added to <see cref="History"/> only when it finishes; a cancelled or failed turn leaves the history as it was.</para>
/// </remarks>
public sealed class ChatSession : IDisposable
{
    // Prefill in slices so a cancellation during a long prompt is seen within one slice.
    private const int PrefillSlice = 64;

    // A few updates of slack between the generating thread and the reader; more would let cancellation lag further.
    private const int UpdateBuffer = 4;

    private readonly Qwen3Model _model;
    private readonly Qwen3Tokenizer _tokenizer;
    private readonly ChatTemplate _template;
    private readonly InferenceContext _context;
    private readonly ChatSessionOptions _options;
    private readonly Message[] _initialMessages;
    private readonly IReadOnlyList<ToolDefinition>? _tools;
    private readonly HashSet<int> _endOfTurnIds;
    private readonly List<Message> _history;
    private readonly List<int> _cachedTokens = [];
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
            ArgumentOutOfRangeException.ThrowIfLessThan(size, 1, nameof(ChatSessionOptions.ContextSize));
            ArgumentOutOfRangeException.ThrowIfGreaterThan(size, model.Config.MaxPositionEmbeddings, nameof(ChatSessionOptions.ContextSize));
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
        _tokenizer = model.Tokenizer;
        _initialMessages = [.. initial];
        _history = [.. initial];
        _tools = options.Tools.Count > 0 ? [.. options.Tools] : null;
        _endOfTurnIds = [.. model.Config.EosTokenIds, _tokenizer.ImEndId];
        _template = ChatTemplate.FromTokenizerConfig(Path.Combine(model.Folder, "tokenizer_config.json"));
        _context = model.CreateContext(options.ContextSize);
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
    /// <param name="cancellationToken">Stops generation within one token; the stream then ends with a <see cref="ChatFinishReason.Cancelled"/> update.</param>
    /// <returns>The turn's updates; the last one is <see cref="ChatUpdateKind.Finished"/>. The turn starts when enumeration starts.</returns>
    /// <exception cref="InvalidOperationException">(On enumeration) another turn of this session is running.</exception>
    /// <exception cref="ContextOverflowException">(On enumeration) the conversation does not fit in the context; nothing was evaluated.</exception>
    public IAsyncEnumerable<ChatUpdate> SendAsync(string userMessage, CancellationToken cancellationToken = default) =>
        SendAsync(userMessage, null, cancellationToken);

    /// <summary>Sends a user message with per-turn overrides and streams the assistant's turn.</summary>
    /// <param name="userMessage">The user's text.</param>
    /// <param name="options">Thinking mode and sampling for this turn; null keeps the session's.</param>
    /// <param name="cancellationToken">Stops generation within one token; the stream then ends with a <see cref="ChatFinishReason.Cancelled"/> update.</param>
    /// <returns>The turn's updates; the last one is <see cref="ChatUpdateKind.Finished"/>. The turn starts when enumeration starts.</returns>
    /// <exception cref="InvalidOperationException">(On enumeration) another turn of this session is running.</exception>
    /// <exception cref="ContextOverflowException">(On enumeration) the conversation does not fit in the context; nothing was evaluated.</exception>
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
    /// <param name="cancellationToken">Stops generation within one token; the stream then ends with a <see cref="ChatFinishReason.Cancelled"/> update.</param>
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

        var sampling = options?.Sampling ?? _options.Sampling ?? SamplingOptions.For(mode);
        return new Turn(mode, sampling, sampling.Seed ?? (ulong)Random.Shared.NextInt64());
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
            abandon = new CancellationTokenSource();
            _abandon = abandon;
            conversation = [.. _history];
        }

        if (userMessage is not null)
        {
            conversation.Add(userMessage);
        }

        var channel = Channel.CreateBounded<ChatUpdate>(new BoundedChannelOptions(UpdateBuffer) { SingleReader = true, SingleWriter = true });
        Task producer = Task.CompletedTask;
        try
        {
            // A dedicated thread: the forward pass is long synchronous CPU work that should not hold a pool thread.
            producer = Task.Factory.StartNew(
                () => Generate(conversation, turn, channel.Writer, cancellationToken, abandon.Token),
                CancellationToken.None,
                TaskCreationOptions.LongRunning,
                TaskScheduler.Default);

            await foreach (var update in channel.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                yield return update;
            }
        }
        finally
        {
            // Reached early when the reader stops enumerating: stop the generator before freeing the session.
            abandon.Cancel();
            await producer.ConfigureAwait(false);
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

    private void Generate(List<Message> conversation, Turn turn, ChannelWriter<ChatUpdate> writer, CancellationToken cancellation, CancellationToken abandon)
    {
        try
        {
            var (assistant, finished) = GenerateTurn(conversation, turn, writer, cancellation, abandon);

            // Recorded before the final update is sent, so a reader that sees it also sees the turn in History.
            if (assistant is not null)
            {
                lock (_gate)
                {
                    _history.Clear();
                    _history.AddRange(conversation);
                    _history.Add(assistant);
                }
            }

            Write(writer, finished, abandon);
            writer.TryComplete();
        }
        catch (OperationCanceledException) when (abandon.IsCancellationRequested)
        {
            writer.TryComplete();
        }
        catch (Exception e)
        {
            writer.TryComplete(e);
        }
    }

    /// <summary>Runs one turn; returns the assistant message to keep (null when cancelled) and the final update to send.</summary>
    private (Message? Assistant, ChatUpdate Finished) GenerateTurn(List<Message> conversation, Turn turn, ChannelWriter<ChatUpdate> writer, CancellationToken cancellation, CancellationToken abandon)
    {
        string prompt = _template.Render(conversation, _tools, true, turn.Mode == ThinkingMode.Enabled);
        int[] promptIds = [.. _tokenizer.Encode(prompt)];

        // Checked before anything is evaluated: the prompt and at least one generated token must fit.
        if (promptIds.Length + 1 > _context.Capacity)
        {
            throw new ContextOverflowException(0, promptIds.Length + 1, _context.Capacity);
        }

        var clock = Stopwatch.StartNew();
        int reused = SharedPrefixLength(promptIds);

        // At least the last prompt token is evaluated again: its logits predict the first generated token.
        reused = Math.Min(reused, promptIds.Length - 1);
        _context.Truncate(reused);
        _cachedTokens.RemoveRange(reused, _cachedTokens.Count - reused);

        ReadOnlySpan<float> logits = default;
        for (int offset = reused; offset < promptIds.Length; offset += PrefillSlice)
        {
            if (cancellation.IsCancellationRequested || abandon.IsCancellationRequested)
            {
                var usage = new ChatUsage(promptIds.Length, reused, 0, clock.Elapsed, TimeSpan.Zero);
                return (null, new ChatUpdate(ChatUpdateKind.Finished, string.Empty, [], finishReason: ChatFinishReason.Cancelled, usage: usage));
            }

            var slice = promptIds.AsSpan(offset, Math.Min(PrefillSlice, promptIds.Length - offset));
            logits = _context.Evaluate(slice);
            _cachedTokens.AddRange(slice);
        }

        var prefillTime = clock.Elapsed;
        clock.Restart();

        var sampler = new Sampler(logits.Length, turn.Sampling, promptIds, turn.Seed);
        var parser = new ChatOutputParser(_tokenizer.ThinkStartId, _tokenizer.ThinkEndId, OpensThinkBlock(promptIds), turn.Sampling.StopStrings);
        var detokenizer = new StreamingDetokenizer(_tokenizer, skipSpecialTokens: true);
        var segments = new List<OutputSegment>();
        var pendingIds = new List<int>();
        var next = new int[1];
        int generated = 0;
        ChatFinishReason reason;
        while (true)
        {
            if (cancellation.IsCancellationRequested || abandon.IsCancellationRequested)
            {
                reason = ChatFinishReason.Cancelled;
                break;
            }

            int token = sampler.Sample(logits);
            sampler.Accept(token);
            generated++;
            pendingIds.Add(token);
            if (_endOfTurnIds.Contains(token))
            {
                reason = ChatFinishReason.Stop;
                break;
            }

            // Ids past the tokenizer's vocabulary are embedding padding: they exist in the model but have no text.
            string text = token < _tokenizer.VocabularySize ? detokenizer.Append(token) : string.Empty;
            bool stopped = parser.Push(token, text, segments);
            Publish(segments, pendingIds, writer, abandon);
            if (stopped)
            {
                reason = ChatFinishReason.StopString;
                break;
            }

            if (generated == turn.Sampling.MaxNewTokens)
            {
                reason = ChatFinishReason.Length;
                break;
            }

            if (_context.Position == _context.Capacity)
            {
                reason = ChatFinishReason.ContextFull;
                break;
            }

            next[0] = token;
            logits = _context.Evaluate(next);
            _cachedTokens.Add(token);
        }

        if (reason != ChatFinishReason.StopString)
        {
            parser.PushText(detokenizer.Flush(), segments);
            parser.Finish(segments);
            Publish(segments, pendingIds, writer, abandon);
        }

        var finalUsage = new ChatUsage(promptIds.Length, reused, generated, prefillTime, clock.Elapsed);
        var final = new ChatUpdate(ChatUpdateKind.Finished, string.Empty, [.. pendingIds], finishReason: reason, usage: finalUsage);
        if (reason == ChatFinishReason.Cancelled)
        {
            return (null, final);
        }

        var assistant = Message.Assistant(
            parser.HistoryContent,
            parser.HasReasoning ? parser.Reasoning : null,
            parser.ToolCalls.Count > 0 ? [.. parser.ToolCalls] : null);
        return (assistant, final);
    }

    private int SharedPrefixLength(int[] promptIds)
    {
        int limit = Math.Min(Math.Min(_cachedTokens.Count, _context.Position), promptIds.Length);
        int shared = 0;
        while (shared < limit && _cachedTokens[shared] == promptIds[shared])
        {
            shared++;
        }

        return shared;
    }

    /// <summary>Whether the prompt's last turn leaves a think block open, so generation starts inside the reasoning.</summary>
    private bool OpensThinkBlock(int[] promptIds)
    {
        for (int i = promptIds.Length - 1; i >= 0 && promptIds[i] != _tokenizer.ImStartId; i--)
        {
            if (promptIds[i] == _tokenizer.ThinkEndId)
            {
                return false;
            }

            if (promptIds[i] == _tokenizer.ThinkStartId)
            {
                return true;
            }
        }

        return false;
    }

    private static void Publish(List<OutputSegment> segments, List<int> pendingIds, ChannelWriter<ChatUpdate> writer, CancellationToken abandon)
    {
        foreach (var segment in segments)
        {
            var kind = segment.Kind switch
            {
                OutputSegmentKind.Reasoning => ChatUpdateKind.Reasoning,
                OutputSegmentKind.Answer => ChatUpdateKind.Answer,
                OutputSegmentKind.ToolCall => ChatUpdateKind.ToolCall,
                _ => ChatUpdateKind.MalformedToolCall,
            };

            // The tokens since the last update go with the first piece of text they produced.
            Write(writer, new ChatUpdate(kind, segment.Text, [.. pendingIds], segment.ToolCall, segment.Malformed), abandon);
            pendingIds.Clear();
        }

        segments.Clear();
    }

    private static void Write(ChannelWriter<ChatUpdate> writer, ChatUpdate update, CancellationToken abandon)
    {
        // The generating thread is dedicated to this turn, so waiting for the reader here blocks nothing else.
        if (!writer.TryWrite(update))
        {
            writer.WriteAsync(update, abandon).AsTask().GetAwaiter().GetResult();
        }
    }

    private readonly record struct Turn(ThinkingMode Mode, SamplingOptions Sampling, ulong Seed);
}
