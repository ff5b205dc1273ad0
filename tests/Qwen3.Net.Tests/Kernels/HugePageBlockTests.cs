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

    [Fact]
    public void An_aligned_buffer_spans_exactly_its_length()
    {
        using var buffer = new AlignedBuffer(100);
        buffer.AsSpan(0, 100).Length.Should().Be(100);
        buffer.Invoking(b => b.AsSpan(90, 11)).Should().Throw<ArgumentOutOfRangeException>();
    }
}
