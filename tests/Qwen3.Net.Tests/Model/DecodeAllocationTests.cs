namespace Qwen3.Net.Tests.Model;

/// <summary>Alone in its collection: it measures process-wide allocation, which tests running alongside would pollute.</summary>
[CollectionDefinition(nameof(DecodeAllocationTests), DisableParallelization = true)]
public sealed class DecodeAllocationCollection;

[Collection(nameof(DecodeAllocationTests))]
public sealed class DecodeAllocationTests
{
    [Fact]
    public void Decoding_a_token_allocates_nothing_once_warm()
    {
        using var tiny = new TinyModel();
        using var ctx = tiny.Model.CreateContext();
        // 520 prompt tokens grow the KV cache (to 1024), scores and RoPE table past the 470 decode steps that follow,
        // so only steady-state decoding is measured.
        var prompt = new int[520];
        for (int i = 0; i < prompt.Length; i++)
        {
            prompt[i] = 1000 + i;
        }

        ctx.Evaluate(prompt);
        // Warm up twice, with a pause between, so tiered compilation has recompiled the hot methods (it waits for a
        // quiet 100 ms) before anything is measured: its work once allocated in every window of a CI run.
        var token = new int[1];
        for (int round = 0; round < 2; round++)
        {
            for (int i = 0; i < 10; i++)
            {
                token[0] = 2000 + round * 10 + i;
                ctx.Evaluate(token);
            }

            Thread.Sleep(300);
        }

        // A per-token allocation shows up in every window; a one-off elsewhere in the process (the runner's threads,
        // a lazily created runtime object on first block of a semaphore) shows up in one at most, so take the quietest.
        const int steps = 90;
        long thread = long.MaxValue, process = long.MaxValue;
        for (int window = 0; window < 5; window++)
        {
            long threadBefore = GC.GetAllocatedBytesForCurrentThread();
            long processBefore = GC.GetTotalAllocatedBytes(precise: true);
            for (int i = 0; i < steps; i++)
            {
                token[0] = 3000 + window * steps + i;
                ctx.Evaluate(token);
            }

            process = Math.Min(process, GC.GetTotalAllocatedBytes(precise: true) - processBefore);
            thread = Math.Min(thread, GC.GetAllocatedBytesForCurrentThread() - threadBefore);
        }

        thread.Should().Be(0, "the calling thread runs part of every kernel and must not allocate");
        // Pool workers allocate on their own threads, so they are only visible process-wide, where the runtime and the
        // test runner may add a little. 2 KiB over 90 steps admits that and rejects any per-token allocation of
        // 24 bytes (the smallest object) or more.
        process.Should().BeLessThan(2 * 1024, $"decoding {steps} tokens allocated {process} bytes across all threads");
    }
}
