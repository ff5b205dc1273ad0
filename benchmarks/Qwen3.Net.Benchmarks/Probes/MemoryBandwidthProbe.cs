using System.Runtime.Intrinsics;
using Qwen3.Net.Kernels;

namespace Qwen3.Net.Benchmarks.Probes;

/// <summary>
/// Sustained memory read bandwidth: a vectorised sum over a buffer far larger than the caches, the access pattern of
/// a decode step streaming its weights. It is the ceiling decode speed is judged against. The buffer asks for huge
/// pages, as the library's maps of model files do: where transparent huge pages are only given on request, a buffer
/// of 4 KiB pages reads slower on AMD Zen, whose prefetchers stop at each page boundary.
/// </summary>
public sealed unsafe class MemoryBandwidthProbe : IDisposable
{
    private readonly HugePageBlock _block;
    private readonly float* _buffer;
    private readonly long _floatCount;
    // Results land here so the JIT cannot drop the sums as dead code.
    private float _sink;

    public MemoryBandwidthProbe(long bytes = 1L << 30)
    {
        _floatCount = bytes / sizeof(float) / 64 * 64;
        _block = new HugePageBlock(_floatCount * sizeof(float));
        _buffer = _block.Pointer;
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

    // count is a multiple of 64 floats; data may sit at any address (mapped tensors do), and on aligned data an
    // unaligned load costs the same.
    internal static float Sum(float* data, long count) =>
        Vector512.IsHardwareAccelerated ? Sum<Width512, Vector512<float>>(data, count) : Sum<Width256, Vector256<float>>(data, count);

    // Four independent accumulators keep the adds off the critical path, so only the loads limit the loop.
    private static float Sum<TWidth, TVector>(float* data, long count)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
    {
        int n = TWidth.Count;
        TVector a0 = default, a1 = default, a2 = default, a3 = default;
        for (long i = 0; i < count; i += 4 * n)
        {
            a0 = TWidth.Add(a0, TWidth.Load(data + i));
            a1 = TWidth.Add(a1, TWidth.Load(data + i + n));
            a2 = TWidth.Add(a2, TWidth.Load(data + i + 2 * n));
            a3 = TWidth.Add(a3, TWidth.Load(data + i + 3 * n));
        }

        return TWidth.Sum(TWidth.Add(TWidth.Add(TWidth.Add(a0, a1), a2), a3));
    }

    public void Dispose()
    {
        _block.Dispose();
    }
}
