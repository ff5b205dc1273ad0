using Qwen3.Net.Kernels;
using Qwen3.Net.Model;

namespace Qwen3.Net.Tests.Model;

public sealed class KvCacheTests
{
    [Fact]
    public void Grows_a_page_at_a_time_and_never_moves_a_page()
    {
        using var pool = new WorkerPool(2);
        using var pages = new KvPagePool(2, 2, 4, retainedBytesLimit: 0);
        using var cache = new KvCache(pages, 2, 4, maxCapacity: 1000);
        cache.Capacity.Should().Be(0);
        cache.PrepareWrite(0, 1, pool);
        cache.Capacity.Should().Be(KvCache.PagePositions);
        nint first = cache.KeyPages(1)[0];

        cache.PrepareWrite(0, KvCache.PagePositions * 2 + 1, pool);
        cache.Capacity.Should().Be(KvCache.PagePositions * 3);
        cache.KeyPages(1).Length.Should().Be(3);
        cache.KeyPages(1)[0].Should().Be(first, "positions already written stay where attention was told they are");
    }

    [Fact]
    public void Rents_the_next_page_past_half_of_the_last_and_faults_it_in_before_writes_reach_it()
    {
        using var large = new SixteenMiBPages(maxCapacity: 1000);
        var (pool, cache, bytes) = (large.Pool, large.Cache, large.PageBytes);
        cache.PrepareWrite(0, 128, pool);
        cache.Capacity.Should().Be(KvCache.PagePositions, "half a page written is not past half");
        cache.Page(0).FaultedBytes.Should().Be(bytes);

        cache.PrepareWrite(128, 129, pool);
        cache.Capacity.Should().Be(2 * KvCache.PagePositions);
        cache.Page(1).FaultedBytes.Should().Be(0, "a prompt that ends in the first page pays nothing for the second");

        // Eight-position writes, as prompt chunks beside decoding streams: the page faults in a huge page at a time.
        long before = 0;
        int grew = 0;
        for (int start = 129, end = 137; start < KvCache.PagePositions; start = end, end = Math.Min(end + 8, KvCache.PagePositions))
        {
            cache.PrepareWrite(start, end, pool);
            long faulted = cache.Page(1).FaultedBytes;
            faulted.Should().BeInRange(before, before + bytes / 8, $"the write ending at {end} faults in at most one 2 MiB huge page");
            grew += faulted > before ? 1 : 0;
            before = faulted;
            if (end == 137)
            {
                faulted.Should().Be(0, "the first write's share (8 of 127 positions, 1 MiB) is less than a huge page");
            }
        }

        grew.Should().Be(8, "the eight huge pages come in one write at a time");
        cache.Page(1).FaultedBytes.Should().Be(bytes, "the page is whole before the first write into it");
        cache.Capacity.Should().Be(2 * KvCache.PagePositions, "the third page waits for the second to be half written");
    }

    [Fact]
    public void Pages_for_a_write_beside_other_sequences_fault_in_a_share_per_call()
    {
        using var large = new SixteenMiBPages(maxCapacity: 1000);
        var (pool, cache, bytes) = (large.Pool, large.Cache, large.PageBytes);

        cache.FaultTowards(0, 8, pool).Should().BeFalse("a fresh page is not whole after one share");
        cache.Capacity.Should().Be(KvCache.PagePositions);
        cache.Page(0).FaultedBytes.Should().Be(bytes / 2);
        cache.FaultTowards(0, 8, pool).Should().BeTrue();
        cache.Page(0).FaultedBytes.Should().Be(bytes);
        cache.FaultTowards(0, 8, pool).Should().BeTrue("nothing is left to fault in");

        // A write across a page boundary waits for both pages.
        cache.PrepareWrite(0, 8, pool);
        var calls = 0;
        while (!cache.FaultTowards(250, 520, pool))
        {
            calls++;
            calls.Should().BeLessThan(10);
        }

        calls.Should().Be(3, "two fresh pages of two shares each, the last share's call returning true");
        cache.Page(1).FaultedBytes.Should().Be(bytes);
        cache.Page(2).FaultedBytes.Should().Be(bytes);
    }

    [Fact]
    public void A_page_reached_before_it_is_whole_is_faulted_in_at_once()
    {
        using var large = new SixteenMiBPages(maxCapacity: 400);
        var (pool, cache, bytes) = (large.Pool, large.Cache, large.PageBytes);
        cache.PrepareWrite(0, 200, pool);
        cache.Page(1).FaultedBytes.Should().Be(0);
        cache.PrepareWrite(200, 260, pool);
        cache.Page(1).FaultedBytes.Should().Be(bytes);
    }

    [Fact]
    public void A_page_that_only_the_last_positions_of_the_capacity_would_use_is_rented_ahead_too()
    {
        using var large = new SixteenMiBPages(maxCapacity: 300);
        var (pool, cache, bytes) = (large.Pool, large.Cache, large.PageBytes);
        cache.PrepareWrite(0, 250, pool);
        cache.Capacity.Should().Be(2 * KvCache.PagePositions, "the capacity reaches 44 positions into the second page");
        cache.Page(1).FaultedBytes.Should().Be(0, "six one-position writes can fault in its 16 MiB at 8 MiB a write");

        for (int end = 251; end <= KvCache.PagePositions; end++)
        {
            long before = cache.Page(1).FaultedBytes;
            cache.PrepareWrite(end - 1, end, pool);
            (cache.Page(1).FaultedBytes - before).Should().BeLessThanOrEqualTo(bytes / 2, $"the write ending at {end} faults in a share");
        }

        cache.Page(1).FaultedBytes.Should().Be(bytes, "the page is whole before the first write into it");
    }

    [Theory]
    [InlineData(256, 16)]
    [InlineData(255, 8)]
    [InlineData(254, 0)]
    public void A_prompt_that_ends_near_a_page_end_faults_in_what_the_positions_left_could_not(int promptEnd, int faultedMiB)
    {
        using var large = new SixteenMiBPages(maxCapacity: 1000);
        var (pool, cache, _) = (large.Pool, large.Cache, large.PageBytes);
        cache.PrepareWrite(0, promptEnd, pool);
        cache.Capacity.Should().Be(2 * KvCache.PagePositions);
        cache.Page(1).FaultedBytes.Should().Be(faultedMiB * 1024L * 1024, "each position left before the page faults in 8 MiB of it a write");
    }

    [Fact]
    public unsafe void Writes_each_position_into_its_page_and_head()
    {
        const int kvHeads = 2, headDim = 4, tokens = 4;
        using var pool = new WorkerPool(2);
        using var pages = new KvPagePool(2, kvHeads, headDim, retainedBytesLimit: 0);
        using var cache = new KvCache(pages, kvHeads, headDim, maxCapacity: 1000);
        int start = KvCache.PagePositions - 2; // two positions at the end of page 0, two at the start of page 1
        cache.PrepareWrite(0, start + tokens, pool);
        float[] keys = [.. Enumerable.Range(0, tokens * kvHeads * headDim).Select(i => (float)i)];
        float[] values = [.. keys.Select(k => -k)];
        cache.Write(pool, 1, start, tokens, keys, values);

        for (int t = 0; t < tokens; t++)
        {
            int position = start + t;
            for (int h = 0; h < kvHeads; h++)
            {
                long row = ((long)h * KvCache.PagePositions + position % KvCache.PagePositions) * headDim;
                var key = new ReadOnlySpan<float>((float*)cache.KeyPages(1)[position / KvCache.PagePositions] + row, headDim);
                var value = new ReadOnlySpan<float>((float*)cache.ValuePages(1)[position / KvCache.PagePositions] + row, headDim);
                key.ToArray().Should().Equal(keys.AsSpan((t * kvHeads + h) * headDim, headDim).ToArray(), $"key of position {position}, head {h}");
                value.ToArray().Should().Equal(values.AsSpan((t * kvHeads + h) * headDim, headDim).ToArray(), $"value of position {position}, head {h}");
            }
        }
    }

    [Fact]
    public unsafe void A_long_write_shared_out_over_threads_puts_every_row_in_place()
    {
        const int kvHeads = 2, headDim = 64, tokens = 300; // 76 800 values: enough to be shared out
        using var pool = new WorkerPool(2);
        using var pages = new KvPagePool(1, kvHeads, headDim, retainedBytesLimit: 0);
        using var cache = new KvCache(pages, kvHeads, headDim, maxCapacity: 1000);
        int start = 100; // crosses into the second page
        cache.PrepareWrite(0, start + tokens, pool);
        float[] keys = [.. Enumerable.Range(0, tokens * kvHeads * headDim).Select(i => (float)i)];
        float[] values = [.. keys.Select(k => k + 0.5f)];
        cache.Write(pool, 0, start, tokens, keys, values);

        for (int t = 0; t < tokens; t++)
        {
            int position = start + t;
            for (int h = 0; h < kvHeads; h++)
            {
                long row = ((long)h * KvCache.PagePositions + position % KvCache.PagePositions) * headDim;
                float* key = (float*)cache.KeyPages(0)[position / KvCache.PagePositions] + row;
                float* value = (float*)cache.ValuePages(0)[position / KvCache.PagePositions] + row;
                int source = (t * kvHeads + h) * headDim;
                for (int i = 0; i < headDim; i++)
                {
                    if (key[i] != keys[source + i] || value[i] != values[source + i])
                    {
                        throw new InvalidOperationException($"position {position}, head {h}, element {i} is wrong");
                    }
                }
            }
        }
    }

    [Fact]
    public void Rejects_positions_past_its_capacity()
    {
        using var pool = new WorkerPool(2);
        using var pages = new KvPagePool(1, 1, 4, retainedBytesLimit: 0);
        using var cache = new KvCache(pages, 1, 4, maxCapacity: 300);
        var tooLong = () => cache.PrepareWrite(0, 301, pool);
        tooLong.Should().Throw<ArgumentOutOfRangeException>();
        cache.PrepareWrite(0, 10, pool);
        var outside = () => cache.Write(pool, 0, KvCache.PagePositions - 1, 2, new float[8], new float[8]);
        outside.Should().Throw<ArgumentException>("position 256 has no page yet");
    }

    /// <summary>8 layers × 8 heads × 128 × 2 × 256 positions × 4 bytes: a cache of 16 MiB pages, eight huge pages each.</summary>
    private sealed class SixteenMiBPages : IDisposable
    {
        private readonly KvPagePool _pages = new(8, 8, 128, retainedBytesLimit: 0);

        public SixteenMiBPages(int maxCapacity) => Cache = new KvCache(_pages, 8, 128, maxCapacity);

        public WorkerPool Pool { get; } = new(2);

        public KvCache Cache { get; }

        public long PageBytes => _pages.PageBytes;

        public void Dispose()
        {
            Cache.Dispose();
            _pages.Dispose();
            Pool.Dispose();
        }
    }
}
