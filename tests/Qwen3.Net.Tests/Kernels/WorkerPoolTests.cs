using Qwen3.Net.Kernels;

namespace Qwen3.Net.Tests.Kernels;

public sealed class WorkerPoolTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    public void CoversEveryIndexExactlyOnce(int threads)
    {
        using var pool = new WorkerPool(threads);
        foreach (int count in new[] { 1, 2, 3, 7, 8, 63, 64, 65, 1000, 4097 })
        {
            var hits = new int[count];
            var threadsSeen = new int[threads];
            var job = new CountingJob(hits, threadsSeen);
            pool.Run(ref job, count);
            hits.Should().OnlyContain(h => h == 1, $"every index of {count} runs once on {threads} threads");
        }
    }

    [Fact]
    public void ManyRunsInARowStayCorrect()
    {
        // Back-to-back runs are where a wake-up or completion can be lost.
        using var pool = new WorkerPool(2);
        var hits = new int[37];
        var threadsSeen = new int[2];
        var job = new CountingJob(hits, threadsSeen);
        for (int i = 0; i < 20_000; i++)
        {
            pool.Run(ref job, hits.Length);
        }

        hits.Should().OnlyContain(h => h == 20_000);
    }

    [Fact]
    public void RunsAfterWorkersHaveGoneToSleep()
    {
        using var pool = new WorkerPool(3);
        var hits = new int[100];
        var job = new CountingJob(hits, new int[3]);
        for (int i = 0; i < 3; i++)
        {
            // Past the spin phase the workers block on their semaphores; the timeout only bounds a failure.
            SpinWait.SpinUntil(() => pool.SleepingWorkers == 2, TimeSpan.FromSeconds(30)).Should().BeTrue();
            pool.Run(ref job, hits.Length);
        }

        hits.Should().OnlyContain(h => h == 3);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void PropagatesExceptionsAndStaysUsable(int threads)
    {
        using var pool = new WorkerPool(threads);
        foreach (int failing in new[] { 0, 50, 99 })
        {
            var throwing = new ThrowingJob(failing);
            var act = () => pool.Run(ref throwing, 100);
            act.Should().Throw<InvalidOperationException>().WithMessage($"item {failing}");
        }

        var hits = new int[100];
        var job = new CountingJob(hits, new int[threads]);
        pool.Run(ref job, hits.Length);
        hits.Should().OnlyContain(h => h == 1, "a failed run leaves the pool ready for the next");
    }

    [Fact]
    public void DisposeStopsTheThreadsAndRejectsFurtherRuns()
    {
        var pool = new WorkerPool(3);
        var job = new CountingJob(new int[10], new int[3]);
        pool.Run(ref job, 10);
        pool.Dispose();
        pool.Dispose();
        var act = () => pool.Run(ref job, 10);
        act.Should().Throw<ObjectDisposedException>();
    }

    [Fact]
    public void UsesMoreThanOneThreadWhenThereIsEnoughWork()
    {
        using var pool = new WorkerPool(2);
        var threadsSeen = new int[2];
        using var bothStarted = new CountdownEvent(2);
        var job = new RendezvousJob(threadsSeen, bothStarted);
        pool.Run(ref job, 64);
        threadsSeen.Should().OnlyContain(n => n > 0, "each thread's first chunk waits for the other's, so the worker must claim one while the caller waits");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void ChunksShrinkToSingleItemsAtTheEnd(int threads)
    {
        using var pool = new WorkerPool(threads);
        var claims = new List<(int Start, int End)>();
        var job = new RecordingJob(claims);
        pool.Run(ref job, 1000);

        claims.Sort();
        claims[0].End.Should().Be(1000 / (2 * threads), "the first claim takes a large share, for long sequential reads");
        claims.Zip(claims.Skip(1)).Should().OnlyContain(p => p.First.End - p.First.Start >= p.Second.End - p.Second.Start, "each claim is a share of what is left");
        claims[^1].Should().Be((999, 1000), "the tail is claimed one item at a time, so the threads finish together");
    }

    [Fact]
    public void RunDoesNotAllocate()
    {
        using var pool = new WorkerPool(2);
        var job = new CountingJob(new int[64], new int[2]);
        for (int i = 0; i < 100; i++)
        {
            pool.Run(ref job, 64);
        }

        // A per-run allocation would show in every window; a one-off (the runtime lazily creating a wait object the
        // first time the caller blocks, say) shows in one at most. So the quietest of three windows must be zero.
        long quietest = long.MaxValue;
        for (int window = 0; window < 3; window++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 1000; i++)
            {
                pool.Run(ref job, 64);
            }

            quietest = Math.Min(quietest, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        quietest.Should().Be(0);
    }

    private readonly struct CountingJob(int[] hits, int[] threadsSeen) : IRangeJob
    {
        public void Execute(int start, int end, int worker)
        {
            for (int i = start; i < end; i++)
            {
                Interlocked.Increment(ref hits[i]);
            }

            Interlocked.Increment(ref threadsSeen[worker]);
        }
    }

    private readonly struct RecordingJob(List<(int Start, int End)> claims) : IRangeJob
    {
        public void Execute(int start, int end, int worker)
        {
            lock (claims)
            {
                claims.Add((start, end));
            }
        }
    }

    private readonly struct ThrowingJob(int failing) : IRangeJob
    {
        public void Execute(int start, int end, int worker)
        {
            if (failing >= start && failing < end)
            {
                throw new InvalidOperationException($"item {failing}");
            }
        }
    }

    private readonly struct RendezvousJob(int[] threadsSeen, CountdownEvent bothStarted) : IRangeJob
    {
        public void Execute(int start, int end, int worker)
        {
            // Each worker index belongs to one thread, so its count is 0 only on that thread's first chunk. The timeout
            // only bounds a failure: a pool that never wakes its worker then finishes with threadsSeen[1] == 0.
            if (Interlocked.Increment(ref threadsSeen[worker]) == 1)
            {
                bothStarted.Signal();
                bothStarted.Wait(TimeSpan.FromSeconds(30));
            }
        }
    }
}
