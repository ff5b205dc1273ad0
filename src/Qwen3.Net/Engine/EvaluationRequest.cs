using System.Threading.Tasks.Sources;

namespace Qwen3.Net.Engine;

/// <summary>
/// One context's pending evaluation: the tokens to append, how many are done, and how the caller is told. One object
/// per context, reused for every call, so submitting and completing allocate nothing; a context has at most one in
/// flight. A synchronous caller waits on <see cref="Wait"/>; an asynchronous one awaits <see cref="AsValueTask"/>.
/// </summary>
internal sealed class EvaluationRequest(InferenceContext context) : IValueTaskSource
{
    private readonly ManualResetEventSlim _done = new(false);
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private bool _async;
    private int[] _tokens = new int[16];

    public InferenceContext Context { get; } = context;

    /// <summary>Tokens to evaluate: [0, Count).</summary>
    public ReadOnlySpan<int> Tokens => _tokens.AsSpan(0, Count);

    public int Count { get; private set; }

    /// <summary>Tokens evaluated (or taken from shared prefix pages) so far; written by the scheduler thread only.</summary>
    public int Done { get; set; }

    /// <summary>Of <see cref="Done"/>, how many came from shared prefix pages instead of being computed.</summary>
    public int Reused { get; set; }

    /// <summary>Whether the scheduler has looked for shared prefix pages for this request yet.</summary>
    public bool Admitted { get; set; }

    public CancellationToken Cancellation { get; private set; }

    public Exception? Failure { get; private set; }

    /// <summary>Where the last token's result goes: its logits, or its final-norm hidden state when <see cref="HiddenOnly"/>.</summary>
    public float[]? Output { get; private set; }

    /// <summary>Whether the result is the final-norm hidden state (an embedding), so the output head is skipped.</summary>
    public bool HiddenOnly { get; private set; }

    public int Remaining => Count - Done;

    /// <summary>Readies the request for a new call; the tokens are copied, so the caller's buffer may change afterwards.</summary>
    public void Prepare(ReadOnlySpan<int> tokens, CancellationToken cancellation, bool asynchronous, float[] output, bool hiddenOnly)
    {
        Output = output;
        HiddenOnly = hiddenOnly;
        if (_tokens.Length < tokens.Length)
        {
            _tokens = new int[Math.Max(tokens.Length, 2 * _tokens.Length)];
        }

        tokens.CopyTo(_tokens);
        Count = tokens.Length;
        Done = 0;
        Reused = 0;
        Admitted = false;
        Failure = null;
        Cancellation = cancellation;
        _async = asynchronous;
        _done.Reset();
        if (asynchronous)
        {
            _core.Reset();
        }
    }

    /// <summary>Called by the scheduler when the request ends: all done, cancelled, or failed with <paramref name="failure"/>.</summary>
    public void Complete(Exception? failure)
    {
        Failure = failure;
        if (_async)
        {
            _core.SetResult(true);
        }
        else
        {
            _done.Set();
        }
    }

    /// <summary>Blocks until the scheduler completes the request.</summary>
    public void Wait() => _done.Wait();

    public ValueTask AsValueTask() => new(this, _core.Version);

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
