using Qwen3.Net.Kernels;

namespace Qwen3.Net.Tests.Kernels;

public sealed class BFloat16Tests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(17)]
    [InlineData(33)]
    [InlineData(130)]
    public void VectorizedWideningMatchesOneAtATime(int length)
    {
        var random = new Random(length);
        ushort[] source = Enumerable.Range(0, length).Select(_ => (ushort)random.Next(0, 65536)).ToArray();
        // One float of slack, poisoned: the vector loop must not write past the source's length.
        float[] actual = Enumerable.Repeat(float.NaN, length + 1).ToArray();
        BFloat16.ToSingle(source, actual);
        for (int i = 0; i < length; i++)
        {
            BitConverter.SingleToInt32Bits(actual[i]).Should().Be(source[i] << 16, $"element {i} of {length}");
        }

        float.IsNaN(actual[length]).Should().BeTrue();
    }
}
