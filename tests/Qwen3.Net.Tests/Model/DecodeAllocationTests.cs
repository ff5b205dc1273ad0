using Qwen3.Net.Kernels;

namespace Qwen3.Net.Tests.Model;

public sealed class DecodeAllocationTests
{
    [Fact]
    public void Decoding_a_token_allocates_nothing_once_warm()
    {
        using var tiny = new TinyModel();
        using var ctx = tiny.Model.CreateContext();
        // 500 prompt tokens and 5 decoded ones grow the KV cache (three pages, 768 positions), the scores and the RoPE
        // table past the 250 decode steps that follow, so only steady-state decoding is measured.
        var prompt = new int[500];
        for (int i = 0; i < prompt.Length; i++)
        {
            prompt[i] = 1000 + i;
        }

        ctx.Evaluate(prompt);
        var token = new int[1];
        for (int i = 0; i < 5; i++)
        {
            token[0] = 2000 + i;
            ctx.Evaluate(token);
        }

        // Only the threads that run the forward pass are counted: the caller, which runs part of every kernel, and the
        // pool's workers. Process-wide totals also count the test runner, which on a busy CI machine allocated a few KB
        // in every window. Each of these threads may still allocate once, lazily, the first time it blocks on a
        // semaphore (120 bytes seen), so take the quietest of more windows than there are threads: a per-token
        // allocation shows in every window.
        WorkerPool pool = ctx.State.Pool;
        long quietest = long.MaxValue;
        for (int window = 0; window < pool.ThreadCount + 3; window++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread() + pool.WorkerAllocatedBytes;
            for (int i = 0; i < 50; i++)
            {
                token[0] = 3000 + window * 50 + i;
                ctx.Evaluate(token);
            }

            quietest = Math.Min(quietest, GC.GetAllocatedBytesForCurrentThread() + pool.WorkerAllocatedBytes - before);
        }

        quietest.Should().Be(0, "neither the calling thread nor the pool's workers may allocate while decoding");
    }
}
