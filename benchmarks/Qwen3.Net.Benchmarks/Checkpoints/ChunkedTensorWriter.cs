using System.Runtime.InteropServices;

namespace Qwen3.Net.Benchmarks.Checkpoints;

/// <summary>
/// Streams one tensor from an <see cref="IWeightSource"/> to a file in fixed-size chunks, so writing a multi-gigabyte
/// checkpoint needs only a few megabytes of memory; the chunks of one batch are filled in parallel.
/// </summary>
public sealed class ChunkedTensorWriter(IWeightSource source)
{
    private const int ChunkElements = 1 << 20;
    private readonly ushort[][] _chunks = Enumerable.Range(0, Math.Max(2, Environment.ProcessorCount * 2))
        .Select(_ => new ushort[ChunkElements]).ToArray();
    private readonly float[] _singles = new float[ChunkElements];

    public static long Bf16ByteCount(CheckpointTensor tensor) => tensor.ElementCount * sizeof(ushort);

    public static long F32ByteCount(CheckpointTensor tensor) => tensor.ElementCount * sizeof(float);

    public void WriteBf16(Stream output, CheckpointTensor tensor) =>
        Stream(tensor, chunk => output.Write(MemoryMarshal.AsBytes(chunk)));

    /// <summary>Widens BF16 to F32 exactly, so an F32 copy holds the very same values as the BF16 checkpoint.</summary>
    public void WriteF32(Stream output, CheckpointTensor tensor) =>
        Stream(tensor, chunk =>
        {
            Span<float> singles = _singles.AsSpan(0, chunk.Length);
            Qwen3.Net.Kernels.BFloat16.ToSingle(chunk, singles);
            output.Write(MemoryMarshal.AsBytes(singles));
        });

    private void Stream(CheckpointTensor tensor, Action<ReadOnlySpan<ushort>> sink)
    {
        long total = tensor.ElementCount;
        long batchElements = (long)ChunkElements * _chunks.Length;
        for (long batchStart = 0; batchStart < total; batchStart += batchElements)
        {
            int chunkCount = (int)Math.Min(_chunks.Length, (total - batchStart + ChunkElements - 1) / ChunkElements);
            Parallel.For(0, chunkCount, c =>
            {
                long start = batchStart + (long)c * ChunkElements;
                int length = (int)Math.Min(ChunkElements, total - start);
                source.ReadBf16(tensor, start, _chunks[c].AsSpan(0, length));
            });
            for (int c = 0; c < chunkCount; c++)
            {
                long start = batchStart + (long)c * ChunkElements;
                int length = (int)Math.Min(ChunkElements, total - start);
                sink(_chunks[c].AsSpan(0, length));
            }
        }
    }
}
