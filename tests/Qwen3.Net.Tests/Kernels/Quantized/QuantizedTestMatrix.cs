using System.Buffers.Binary;
using Qwen3.Net.Kernels.Quantized;
using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Tests.Kernels.Quantized;

/// <summary>
/// A quantized matrix of random blocks: every quant bit random, the f16 scales finite and moderate, or with
/// extremeScales a third of them the extremes of f16 (±65504, the smallest subnormal and normal, ±0, 1).
/// </summary>
internal sealed unsafe class QuantizedTestMatrix
{
    private static readonly float[] ExtremeScales = [65504f, -65504f, 5.9604645e-8f, 6.1035156e-5f, 0f, -0f, 1f];

    private readonly byte[] _bytes;

    /// <summary>Random blocks, or with <paramref name="fill"/> every byte but the f16 scales that byte (quants and integer scales at one value).</summary>
    public QuantizedTestMatrix(GgmlType type, int rows, int columns, int seed, bool extremeScales = false, byte? fill = null)
    {
        var random = new Random(seed);
        long rowBytes = GgmlTypes.RowBytes(type, columns);
        _bytes = GC.AllocateArray<byte>((int)(rows * rowBytes), pinned: true);
        random.NextBytes(_bytes);
        if (fill is byte value)
        {
            _bytes.AsSpan().Fill(value);
        }

        int blockBytes = GgmlTypes.BytesPerBlock(type);
        int[] halves = type switch
        {
            GgmlType.Q4_K or GgmlType.Q5_K => [0, 2],
            GgmlType.Q6_K => [208],
            GgmlType.Q3_K => [108],
            GgmlType.Q2_K => [80, 82],
            _ => [0],
        };
        for (int b = 0; b < _bytes.Length; b += blockBytes)
        {
            foreach (int offset in halves)
            {
                float scale = extremeScales && random.Next(3) == 0
                    ? ExtremeScales[random.Next(ExtremeScales.Length)]
                    : (float)(random.NextDouble() * 0.05 + 1e-4) * (random.Next(2) == 0 ? -1 : 1);
                BinaryPrimitives.WriteUInt16LittleEndian(_bytes.AsSpan(b + offset), BitConverter.HalfToUInt16Bits((Half)scale));
            }
        }

        fixed (byte* p = _bytes)
        {
            Matrix = new QuantizedMatrix(p, type, rows, columns);
        }
    }

    /// <summary>Valid while this object is alive (the buffer is on the pinned heap).</summary>
    public QuantizedMatrix Matrix { get; }
}
