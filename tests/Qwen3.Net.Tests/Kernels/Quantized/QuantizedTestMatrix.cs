using System.Buffers.Binary;
using Qwen3.Net.Kernels.Quantized;

namespace Qwen3.Net.Tests.Kernels.Quantized;

/// <summary>A quantized matrix of random blocks: every quant and scale bit random, the f16 scales finite and moderate.</summary>
internal sealed unsafe class QuantizedTestMatrix
{
    private readonly byte[] _bytes;

    public QuantizedTestMatrix(QuantizedType type, int rows, int columns, int seed)
    {
        var random = new Random(seed);
        long rowBytes = QuantizedFormat.RowBytes(type, columns);
        _bytes = GC.AllocateArray<byte>((int)(rows * rowBytes), pinned: true);
        random.NextBytes(_bytes);
        int blockBytes = QuantizedFormat.BlockBytes(type);
        int[] halves = type switch
        {
            QuantizedType.Q4_K or QuantizedType.Q5_K => [0, 2],
            QuantizedType.Q6_K => [208],
            _ => [0],
        };
        for (int b = 0; b < _bytes.Length; b += blockBytes)
        {
            foreach (int offset in halves)
            {
                float scale = (float)(random.NextDouble() * 0.05 + 1e-4) * (random.Next(2) == 0 ? -1 : 1);
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

    /// <summary>Σ_c |W[r, c]·x[t, c]| for every output: the scale of the float rounding a sum of these terms can carry.</summary>
    public float[] Magnitudes(float[] x, int tokens)
    {
        QuantizedMatrix m = Matrix;
        var row = new float[m.Columns];
        var result = new float[tokens * m.Rows];
        for (int r = 0; r < m.Rows; r++)
        {
            m.ReadRow(r, row);
            for (int t = 0; t < tokens; t++)
            {
                double sum = 0;
                for (int c = 0; c < m.Columns; c++)
                {
                    sum += Math.Abs((double)row[c] * x[t * m.Columns + c]);
                }

                result[t * m.Rows + r] = (float)sum;
            }
        }

        return result;
    }
}
