using System.Runtime.InteropServices;
using Qwen3.Net.Kernels;

namespace Qwen3.Net.Tests.Kernels;

public sealed class HugePageBlockTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(4096 * 3 + 5)]
    [InlineData(5 * 1024 * 1024)]
    public unsafe void Is_aligned_to_2_MiB_and_writable_end_to_end(long bytes)
    {
        using var block = new HugePageBlock(bytes);
        ((nint)block.Pointer % (2 * 1024 * 1024)).Should().Be(0);
        var memory = new Span<byte>(block.Pointer, checked((int)bytes));
        memory.Fill(0xA5);
        memory[^1].Should().Be(0xA5);
    }

    [Fact]
    public unsafe void Refuses_use_after_dispose_and_tolerates_a_second_dispose()
    {
        var block = new HugePageBlock(64);
        block.Dispose();
        var use = () => (nint)block.Pointer;
        use.Should().Throw<ObjectDisposedException>();
        block.Invoking(b => b.Dispose()).Should().NotThrow();
    }

    [Theory]
    [InlineData(1, 0, 4096)]
    [InlineData(2, 100, 4096 * 3 + 5)]
    [InlineData(2, 4095, 5 * 1024 * 1024 + 77)]
    public unsafe void Faulting_in_keeps_the_contents(int threads, long offset, long length)
    {
        using var pool = new WorkerPool(threads);
        long bytes = offset + length + 4096;
        using var block = new HugePageBlock(bytes);
        var memory = new Span<byte>(block.Pointer, checked((int)bytes));
        for (int i = 0; i < memory.Length; i++)
        {
            memory[i] = (byte)(i * 31 + 7);
        }

        block.FaultIn(pool, offset, length);

        for (int i = 0; i < memory.Length; i++)
        {
            if (memory[i] != (byte)(i * 31 + 7))
            {
                throw new InvalidOperationException($"byte {i} changed");
            }
        }
    }

    [LinuxFact("mincore is the Linux way to ask which pages are resident; FaultIn itself is portable and tested above")]
    public unsafe void Faulting_in_makes_every_page_of_the_range_resident()
    {
        using var pool = new WorkerPool(2);
        const long Page = 4096, Bytes = 12 * 1024 * 1024;
        using var block = new HugePageBlock(Bytes);
        long offset = 3 * Page + 100, length = 7 * 1024 * 1024 + 5;
        block.FaultIn(pool, offset, length);

        long firstPage = offset / Page, lastPage = (offset + length - 1) / Page;
        var resident = new byte[Bytes / Page];
        fixed (byte* vector = resident)
        {
            Mincore(block.Pointer, (nuint)Bytes, vector).Should().Be(0);
        }

        for (long page = firstPage; page <= lastPage; page++)
        {
            (resident[page] & 1).Should().Be(1, $"page {page} lies in the range faulted in");
        }
    }

    [LinuxFact("mincore is the Linux way to ask which pages are resident")]
    public unsafe void Memory_about_to_be_freed_leaves_the_resident_set_at_once()
    {
        // What HugePageBlock.Dispose does before freeing, on a block kept allocated so that its pages can still be asked
        // about (freed, the C allocator may keep it in its heap, resident, or unmap it).
        const long Page = 4096, Bytes = 8 * 1024 * 1024;
        using var pool = new WorkerPool(1);
        using var block = new HugePageBlock(Bytes);
        block.FaultIn(pool, 0, Bytes);
        var resident = new byte[Bytes / Page];
        fixed (byte* vector = resident)
        {
            Mincore(block.Pointer, (nuint)Bytes, vector).Should().Be(0);
            resident.Count(r => (r & 1) == 1).Should().Be(resident.Length, "the test needs resident pages to start from");

            Qwen3.Net.Loading.MemoryAdvice.DiscardFreed(block.Pointer, Bytes);
            Mincore(block.Pointer, (nuint)Bytes, vector).Should().Be(0);
        }

        resident.Count(r => (r & 1) == 1).Should().Be(0);
    }

    [Fact]
    public void Faulting_in_refuses_a_range_outside_the_block()
    {
        using var pool = new WorkerPool(1);
        using var block = new HugePageBlock(8192);
        block.Invoking(b => b.FaultIn(pool, 4096, 4097)).Should().Throw<ArgumentOutOfRangeException>();
        block.Invoking(b => b.FaultIn(pool, -1, 10)).Should().Throw<ArgumentOutOfRangeException>();
        using var buffer = new AlignedBuffer(100);
        buffer.Invoking(b => b.FaultIn(pool, 90, 11)).Should().Throw<ArgumentOutOfRangeException>();
    }

    [DllImport("libc", EntryPoint = "mincore")]
    private static extern unsafe int Mincore(void* address, nuint length, byte* vector);

    [Fact]
    public void An_aligned_buffer_spans_exactly_its_length()
    {
        using var buffer = new AlignedBuffer(100);
        buffer.AsSpan(0, 100).Length.Should().Be(100);
        buffer.Invoking(b => b.AsSpan(90, 11)).Should().Throw<ArgumentOutOfRangeException>();
    }
}
