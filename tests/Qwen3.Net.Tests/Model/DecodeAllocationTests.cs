namespace Qwen3.Net.Tests.Model;

public sealed class DecodeAllocationTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void Decoding_allocates_nothing_once_warm(int sequences)
    {
        using var tiny = new TinyModel();
        var contexts = Enumerable.Range(0, sequences).Select(_ => tiny.Model.CreateContext()).ToArray();
        try
        {
            // 500 prompt tokens and 5 decoded ones grow each KV cache (three pages, 768 positions), the scores, the
            // logits scratch and the RoPE table past the 250 decode steps that follow, so only steady state is measured.
            RunTogether(contexts, (ctx, index) =>
            {
                ctx.Evaluate([.. Enumerable.Range(1000 + index, 500)]);
                var token = new int[1];
                for (int i = 0; i < 5; i++)
                {
                    token[0] = 2000 + i;
                    ctx.Evaluate(token);
                }

                return 0;
            });

            // Only the threads that take part are counted: the callers, the scheduler, which runs part of every kernel,
            // and the pool's workers. Process-wide totals also count the test runner, which on a busy CI machine
            // allocated a few KB in every window. Each thread may still allocate once, lazily, the first time it blocks
            // (120 bytes seen), so take the quietest of more windows than there are threads: a per-token allocation
            // shows in every window.
            var scheduler = tiny.Model.Scheduler;
            var pool = tiny.Model.Pool;
            long quietest = long.MaxValue;
            for (int window = 0; window < pool.ThreadCount + sequences + 4; window++)
            {
                long before = scheduler.AllocatedBytes + pool.WorkerAllocatedBytes;
                long callers = RunTogether(contexts, (ctx, index) =>
                {
                    var token = new int[1];
                    long start = GC.GetAllocatedBytesForCurrentThread();
                    for (int i = 0; i < 50; i++)
                    {
                        token[0] = 3000 + index * 50 + i;
                        ctx.Evaluate(token);
                    }

                    return GC.GetAllocatedBytesForCurrentThread() - start;
                });

                quietest = Math.Min(quietest, callers + scheduler.AllocatedBytes + pool.WorkerAllocatedBytes - before);
            }

            quietest.Should().Be(0, "neither the callers, the scheduler nor the pool's workers may allocate while decoding");
        }
        finally
        {
            foreach (var context in contexts)
            {
                context.Dispose();
            }
        }
    }

    /// <summary>Runs <paramref name="work"/> on every context at once, one thread each, released together; returns the sum of what they return.</summary>
    private static long RunTogether(InferenceContext[] contexts, Func<InferenceContext, int, long> work)
    {
        using var start = new Barrier(contexts.Length);
        var results = new long[contexts.Length];
        var threads = contexts.Select((ctx, i) => new Thread(() =>
        {
            start.SignalAndWait();
            results[i] = work(ctx, i);
        })).ToArray();
        foreach (var thread in threads)
        {
            thread.Start();
        }

        foreach (var thread in threads)
        {
            thread.Join();
        }

        return results.Sum();
    }
}
