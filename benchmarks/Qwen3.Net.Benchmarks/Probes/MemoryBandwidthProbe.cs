using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Qwen3.Net.Benchmarks.Probes;

/// <summary>
/// Sustained memory read bandwidth: a vectorised sum over a buffer far larger than the caches, the access pattern of
/// a decode step streaming its weights. It is the ceiling decode speed is judged against.
/// </summary>
public sealed unsafe class MemoryBandwidthProbe : IDisposable
{
    private readonly float* _buffer;
    private readonly long _floatCount;
    // Results land here so the JIT cannot drop the sums as dead code.
    private float _sink;

    public MemoryBandwidthProbe(long bytes = 1L << 30)
    {
        _floatCount = bytes / sizeof(float) / 64 * 64;
        _buffer = (float*)NativeMemory.AlignedAlloc((nuint)(_floatCount * sizeof(float)), 64);
        // Touch every page first, so page faults are not timed as bandwidth.
        for (long i = 0; i < _floatCount; i += int.MaxValue / 2)
        {
            new Span<float>(_buffer + i, (int)Math.Min(int.MaxValue / 2, _floatCount - i)).Fill(1f);
        }
    }

    public long Bytes => _floatCount * sizeof(float);

    public float Checksum => _sink;

    /// <summary>Best of <paramref name="repetitions"/> full passes, in GB/s (1e9 bytes), with the buffer split across threads.</summary>
    public double MeasureGBps(int threads, int repetitions = 5)
    {
        double best = 0;
        for (int r = 0; r < repetitions; r++)
        {
            best = Math.Max(best, Bytes / TimeOnePass(threads) / 1e9);
        }
        return best;
    }

    private double TimeOnePass(int threadCount)
    {
        long per = _floatCount / threadCount / 64 * 64;
        double seconds = SimultaneousThreads.Time(threadCount, t =>
        {
            long begin = t * per;
            long count = t == threadCount - 1 ? _floatCount - begin : per;
            return Sum(_buffer + begin, count);
        }, out double sum);
        _sink += (float)sum;
        return seconds;
    }

    // Four independent accumulators keep the adds off the critical path, so only the loads limit the loop.
    // count is a multiple of 64 floats; data may sit at any address (mapped tensors do), and on aligned data an
    // unaligned load costs the same.
    internal static float Sum(float* data, long count)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (long i = 0; i < count; i += 64)
            {
                a0 += Vector512.Load(data + i);
                a1 += Vector512.Load(data + i + 16);
                a2 += Vector512.Load(data + i + 32);
                a3 += Vector512.Load(data + i + 48);
            }
            return Vector512.Sum(a0 + a1 + a2 + a3);
        }
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
        for (long i = 0; i < count; i += 32)
        {
            b0 += Vector256.Load(data + i);
            b1 += Vector256.Load(data + i + 8);
            b2 += Vector256.Load(data + i + 16);
            b3 += Vector256.Load(data + i + 24);
        }
        return Vector256.Sum(b0 + b1 + b2 + b3);
    }

    public void Dispose()
    {
        NativeMemory.AlignedFree(_buffer);
    }
}
