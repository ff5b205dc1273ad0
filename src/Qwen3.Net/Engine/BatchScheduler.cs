using System.Diagnostics;
using Qwen3.Net.Kernels;
using Qwen3.Net.Model;

namespace Qwen3.Net.Engine;

/// <summary>
/// The one loop that runs a model: evaluations of any number of contexts are queued here, and a dedicated thread runs
/// step after step, each one forward pass over a batch made of the next token of every decoding sequence plus chunks of
/// waiting prompts (vLLM's and llama-server's continuous batching). Decoding is memory-bound, so the matrix products of
/// a step read every weight once for the whole batch: sequences decoding together cost little more than one.
/// </summary>
/// <remarks>
/// <para>A sequence that is decoding gets one token in every step; prompts are cut into chunks that fill the rest of the
/// step's token budget, a small one while others decode (so a long prompt cannot stall their streams) and a whole block
/// otherwise. Sequences join and leave between steps; a cancelled one leaves at the next step, or between two layers
/// when it is alone in the step.</para>
/// <para>A prompt that starts at a page boundary first takes the full KV pages that another sequence already computed
/// for the same tokens (see <see cref="KvPagePool"/>), and computes only the rest.</para>
/// </remarks>
internal sealed class BatchScheduler : IDisposable
{
    /// <summary>
    /// Tokens of scratch faulted in before the first request: the steps of a few dozen decoding streams and their
    /// interleaved prompt chunks. A prompt's larger block faults in its own the first time (BatchState.Reserve).
    /// </summary>
    internal const int InitialScratchTokens = 64;

    private readonly Qwen3Config _config;
    private readonly Qwen3Weights _weights;
    private readonly BatchState _state;
    private readonly ForwardBatch _batch;
    private readonly Qwen3ModelOptions _options;
    private readonly object _gate = new();
    private readonly List<EvaluationRequest> _waiting = [];
    private readonly List<EvaluationRequest> _running = [];
    private readonly EvaluationRequest?[] _inBatch;
    private readonly List<EvaluationRequest> _candidates = [];
    private readonly List<EvaluationRequest> _returning = []; // the requests the last step completed: streams between two tokens
    private readonly Thread _thread;
    private readonly int _tileTokens;
    private bool _stopping;
    private bool _held;
    private bool _parked;
    private int _rotation;
    private long _lastStepTicks;

    public BatchScheduler(Qwen3Config config, Qwen3Weights weights, WorkerPool pool, Qwen3ModelOptions options)
    {
        _config = config;
        _weights = weights;
        _options = options;
        _state = new BatchState(config, options.MaxBatchTokens, pool);
        _batch = new ForwardBatch(options.MaxBatchTokens, options.MaxBatchSequences);
        _inBatch = new EvaluationRequest?[options.MaxBatchSequences];
        _tileTokens = MatMul.PromptTileTokens(weights.Layers[0].GateProj, KernelPaths.Default, KernelPaths.Quantized);
        _thread = new Thread(Loop) { IsBackground = true, Name = "Qwen3.Net scheduler" };
        _thread.Start();
    }

    /// <summary>The forward pass's scratch, for tests.</summary>
    internal BatchState State => _state;

    /// <summary>Bytes the scheduler thread had allocated when it last finished a step, for the allocation tests.</summary>
    internal long AllocatedBytes { get; private set; }

    /// <summary>Forward passes run so far, for tests that check how requests were batched.</summary>
    internal long Steps { get; private set; }

    /// <summary>Steps that ran more than one sequence, for tests that check batching really happened.</summary>
    internal long BatchedSteps { get; private set; }

    /// <summary>
    /// Requests queued or running (taken into a step and not yet complete), for tests that line requests up while the
    /// loop is held; read between steps, where the loop waits.
    /// </summary>
    internal int InFlightRequests
    {
        get
        {
            lock (_gate)
            {
                return _waiting.Count + _running.Count;
            }
        }
    }

    /// <summary>
    /// Whether the loop is waiting at the hold between two steps, for tests: only then is <see cref="InFlightRequests"/>
    /// exactly what the next step starts from (a step in progress may still complete requests it counts).
    /// </summary>
    internal bool Parked
    {
        get
        {
            lock (_gate)
            {
                return _parked;
            }
        }
    }

    /// <summary>Holds the loop before its next step (true) or lets it go on (false), so tests can queue requests deterministically.</summary>
    internal void Hold(bool held)
    {
        lock (_gate)
        {
            _held = held;
            Monitor.Pulse(_gate);
        }
    }

    /// <summary>Queues <paramref name="request"/>; it is completed on the scheduler thread.</summary>
    /// <exception cref="QueueFullException">As many requests as <see cref="Qwen3ModelOptions.MaxQueuedRequests"/> are queued or running.</exception>
    /// <exception cref="ObjectDisposedException">The model is disposed.</exception>
    public void Submit(EvaluationRequest request)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopping, typeof(Qwen3Model));
            if (_waiting.Count + _running.Count >= _options.MaxQueuedRequests)
            {
                throw new QueueFullException(_options.MaxQueuedRequests);
            }

            _waiting.Add(request);
            Monitor.Pulse(_gate);
        }
    }

    /// <summary>Stops the loop after the step in progress; requests still queued fail with <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_stopping)
            {
                return;
            }

            _stopping = true;
            Monitor.Pulse(_gate);
        }

        _thread.Join();
        _state.Dispose();
    }

    private void Loop()
    {
        // The scratch of steps up to InitialScratchTokens is faulted in here, before any request; a larger step faults
        // in its own once (BatchState.Reserve).
        _state.FaultIn(Math.Min(InitialScratchTokens, _state.MaxTokens));
        while (true)
        {
            lock (_gate)
            {
                while ((_held || (_waiting.Count == 0 && _running.Count == 0)) && !_stopping)
                {
                    _parked = _held;
                    Monitor.Wait(_gate);
                }

                _parked = false;

                if (_stopping)
                {
                    var disposed = new ObjectDisposedException(nameof(Qwen3Model), "The model was disposed while this evaluation was queued or running.");
                    foreach (var request in _waiting)
                    {
                        request.Complete(disposed);
                    }

                    foreach (var request in _running)
                    {
                        request.Complete(disposed);
                    }

                    _waiting.Clear();
                    _running.Clear();
                    return;
                }

                GatherReturningSequences();
                _running.AddRange(_waiting);
                _waiting.Clear();
            }

            Step();
            AllocatedBytes = GC.GetAllocatedBytesForCurrentThread();
        }
    }

    /// <summary>
    /// Gives the sequences whose requests the last step completed a moment to submit their next one (a caller samples
    /// its token, then evaluates it), so they join this step instead of waiting out the next whole pass. Without it,
    /// streams decoding together fell into alternate, half-full steps. The wait is a tenth of the last step's time,
    /// 1 to 5 ms, and ends as soon as they are all back (those very requests: a new prompt arriving meanwhile does not
    /// end it, or the stream it raced would wait out a whole step beside the prompt); a sequence that has finished
    /// costs it once.
    /// </summary>
    private void GatherReturningSequences()
    {
        if (_returning.Count == 0)
        {
            return;
        }

        long deadline = Stopwatch.GetTimestamp() + Math.Clamp(_lastStepTicks / 10, Stopwatch.Frequency / 1000, Stopwatch.Frequency / 200);
        while (!AllReturned() && !_stopping && !_held)
        {
            long left = deadline - Stopwatch.GetTimestamp();
            if (left <= 0)
            {
                break;
            }

            Monitor.Wait(_gate, TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMillisecond, left * TimeSpan.TicksPerSecond / Stopwatch.Frequency)));
        }
    }

    private bool AllReturned() => AllReturned(_returning, _waiting);

    /// <summary>Whether every request of <paramref name="returning"/> is queued again in <paramref name="waiting"/>, whatever else is.</summary>
    internal static bool AllReturned(List<EvaluationRequest> returning, List<EvaluationRequest> waiting)
    {
        foreach (var request in returning)
        {
            if (!waiting.Contains(request))
            {
                return false;
            }
        }

        return true;
    }

    private void Step()
    {
        long started = Stopwatch.GetTimestamp();
        int returning = _returning.Count;
        _returning.Clear();
        try
        {
            StepCore(returning);
        }
        finally
        {
            _lastStepTicks = Stopwatch.GetTimestamp() - started;
        }
    }

    /// <param name="returning">Requests the step before completed: their streams are between two tokens.</param>
    private void StepCore(int returning)
    {
        for (int i = _running.Count - 1; i >= 0; i--)
        {
            var request = _running[i];
            if (request.Cancellation.IsCancellationRequested)
            {
                request.Complete(new OperationCanceledException(request.Cancellation));
                _running.RemoveAt(i);
            }
            else if (!request.Admitted)
            {
                request.Admitted = true;
                request.Context.TakeSharedPrefix(request);
                if (request.Remaining == 0)
                {
                    request.Complete(null);
                    _running.RemoveAt(i);
                }
            }
        }

        if (_running.Count == 0)
        {
            return;
        }

        Compose(returning);
        if (_batch.SegmentCount == 0)
        {
            return;
        }

        // Counted before any request of the step completes, so a caller that sees its result sees the step counted.
        Steps++;
        if (_batch.SegmentCount > 1)
        {
            BatchedSteps++;
        }

        try
        {
            Qwen3Transformer.Forward(_config, _weights, _state, _batch);
        }
        catch (Exception e)
        {
            // Cancelled between layers (each request sees its own cancellation at the next step), or failed: the
            // positions of the batch are not advanced, so what was half written is overwritten later.
            if (e is not OperationCanceledException)
            {
                for (int i = 0; i < _batch.SegmentCount; i++)
                {
                    _inBatch[i]!.Complete(e);
                    _running.Remove(_inBatch[i]!);
                }
            }

            Array.Clear(_inBatch);
            _batch.Clear();
            return;
        }

        for (int i = 0; i < _batch.SegmentCount; i++)
        {
            var request = _inBatch[i]!;
            ref readonly BatchSegment segment = ref _batch.Segments[i];
            request.Context.Advance(_batch.Tokens.AsSpan(segment.Offset, segment.Count));
            request.Done += segment.Count;
            if (request.Remaining == 0)
            {
                // An embedding's end brings no stream back for a next token: it must not shrink the next prompt chunks.
                if (!request.HiddenOnly)
                {
                    _returning.Add(request);
                }

                request.Complete(null);
                _running.Remove(request);
            }
        }

        Array.Clear(_inBatch);
        _batch.Clear();
    }

    /// <summary>
    /// Fills the batch: one token for every decoding sequence first, then prompt chunks up to the token budget, a
    /// small one while any sequence decodes (or, <paramref name="returning"/> &gt; 0, is between two tokens). Taken
    /// round-robin when more sequences run than a step holds.
    /// </summary>
    private void Compose(int returning)
    {
        _candidates.Clear();
        _candidates.AddRange(_running);
        var running = _candidates;
        int count = running.Count;
        int start = _rotation++ % count;
        bool decoding = false;
        for (int k = 0; k < count && _batch.SegmentCount < _batch.MaxSequences; k++)
        {
            var request = running[(start + k) % count];
            if (request.Remaining == 1 && AddSegment(request, 1))
            {
                decoding = true;
            }
        }

        // Sequences that finished a request in the last step are streams between two tokens: a prompt chunk is kept small
        // for them too, or a long prompt arriving between their steps would take a whole block while they wait.
        decoding |= returning > 0;
        int interleaved = InterleavedChunk(_batch.TokenCount, _options.InterleavedPrefillTokens, _tileTokens);
        int budget = Math.Min(_batch.MaxTokens - _batch.TokenCount, decoding ? interleaved : _batch.MaxTokens);
        for (int k = 0; k < count && budget > 0 && _batch.SegmentCount < _batch.MaxSequences; k++)
        {
            var request = running[(start + k) % count];
            if (request.Remaining > 1)
            {
                int chunk = Math.Min(request.Remaining, budget);
                if (AddSegment(request, chunk, beside: decoding))
                {
                    budget -= chunk;
                }
            }
        }
    }

    /// <summary>
    /// The prompt tokens a step with <paramref name="decodeTokens"/> decoding tokens takes while others decode:
    /// <paramref name="chunk"/> (<see cref="Qwen3ModelOptions.InterleavedPrefillTokens"/>), less the few that would
    /// spill past a whole number of the prompt tile's passes, <paramref name="tileTokens"/> tokens each. Those few would
    /// cost one more pass over every packed weight panel: with one stream decoding, 1 + 8 tokens took 13% longer than
    /// 1 + 7 on AVX-512 (docs/benchmarks.md), so the stream's step is shorter and the prompt comes on about as fast.
    /// Never less than half the chunk, and never so few that the step leaves the tile for the matrix-vector kernels
    /// (a prompt's results must not depend on its chunks).
    /// </summary>
    internal static int InterleavedChunk(int decodeTokens, int chunk, int tileTokens)
    {
        int spill = (decodeTokens + chunk) % tileTokens;
        return spill < (chunk + 1) / 2 && decodeTokens + chunk - spill >= MatMul.PrefillMinTokens ? chunk - spill : chunk;
    }

    /// <summary>
    /// Adds <paramref name="tokens"/> of <paramref name="request"/> to the step, its pages made writable first; false
    /// when they are not (yet) and the request stays out of this step, completed with the error if the pages failed.
    /// </summary>
    /// <param name="request">The request to take tokens from.</param>
    /// <param name="tokens">How many of its remaining tokens.</param>
    /// <param name="beside">
    /// Whether others decode in this step: then fresh pages the chunk needs are faulted in a share per step
    /// (<see cref="KvCache.FaultTowards"/>), the chunk joining the step once they are whole, rather than all at once
    /// inside a step the others wait for.
    /// </param>
    private bool AddSegment(EvaluationRequest request, int tokens, bool beside = false)
    {
        var context = request.Context;
        try
        {
            if (beside && !context.Cache.FaultTowards(context.Position, context.Position + tokens, _state.Pool))
            {
                return false;
            }

            // Pages are added (or copied before a write) here, so a sequence that cannot grow fails alone, not its batch.
            context.Cache.PrepareWrite(context.Position, context.Position + tokens, _state.Pool);
        }
        catch (Exception e) when (e is InsufficientMemoryException or OutOfMemoryException)
        {
            request.Complete(e);
            _running.Remove(request);
            return false;
        }

        bool last = tokens == request.Remaining;
        _inBatch[_batch.SegmentCount] = request;
        _batch.Add(
            new BatchSegment(context.Cache, context.Position, last ? request.Output : null, request.Cancellation, context.Observer) { HiddenOnly = request.HiddenOnly },
            request.Tokens.Slice(request.Done, tokens));
        return true;
    }
}
