using System.Runtime.Intrinsics;

namespace Qwen3.Net.Benchmarks.Probes;

/// <summary>
/// Peak float32 fused multiply-add throughput: register-resident FMAs on many independent accumulators, so neither
/// memory nor FMA latency limits the loop. It is the compute ceiling prefill speed is judged against.
/// </summary>
public static class FmaPeakProbe
{
    private const long Iterations = 50_000_000;

    /// <summary>Vector width used, for the report.</summary>
    public static string Isa => Vector512.IsHardwareAccelerated ? "Vector512 (AVX-512F)" : "Vector256 (AVX2/FMA)";

    /// <summary>Best of <paramref name="repetitions"/>, in GFLOP/s (an FMA counts as two), all threads together.</summary>
    public static double MeasureGflops(int threads, int repetitions = 3)
    {
        double best = 0;
        for (int r = 0; r < repetitions; r++)
        {
            double seconds = SimultaneousThreads.Time(
                threads, _ => Vector512.IsHardwareAccelerated ? Run512(Iterations) : Run256(Iterations), out double flops);
            best = Math.Max(best, flops / seconds / 1e9);
        }
        return best;
    }

    // Twelve chains cover FMA latency (4 cycles) times issue width (up to 2 per cycle) with margin. The multiplier
    // below 1 and the small addend keep every value normal: denormals would slow the loop down.
    internal static double Run512(long iterations)
    {
        var m = Vector512.Create(0.99999994f);
        var c = Vector512.Create(1e-6f);
        Vector512<float> a0 = Vector512.Create(1.0f), a1 = Vector512.Create(1.1f), a2 = Vector512.Create(1.2f),
            a3 = Vector512.Create(1.3f), a4 = Vector512.Create(1.4f), a5 = Vector512.Create(1.5f),
            a6 = Vector512.Create(1.6f), a7 = Vector512.Create(1.7f), a8 = Vector512.Create(1.8f),
            a9 = Vector512.Create(1.9f), a10 = Vector512.Create(2.0f), a11 = Vector512.Create(2.1f);
        for (long i = 0; i < iterations; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, m, c);
            a1 = Vector512.FusedMultiplyAdd(a1, m, c);
            a2 = Vector512.FusedMultiplyAdd(a2, m, c);
            a3 = Vector512.FusedMultiplyAdd(a3, m, c);
            a4 = Vector512.FusedMultiplyAdd(a4, m, c);
            a5 = Vector512.FusedMultiplyAdd(a5, m, c);
            a6 = Vector512.FusedMultiplyAdd(a6, m, c);
            a7 = Vector512.FusedMultiplyAdd(a7, m, c);
            a8 = Vector512.FusedMultiplyAdd(a8, m, c);
            a9 = Vector512.FusedMultiplyAdd(a9, m, c);
            a10 = Vector512.FusedMultiplyAdd(a10, m, c);
            a11 = Vector512.FusedMultiplyAdd(a11, m, c);
        }
        float total = Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
        // A non-finite total means the loop did not compute what it claims; never report such a run.
        return float.IsFinite(total) ? iterations * 12.0 * Vector512<float>.Count * 2 : 0;
    }

    internal static double Run256(long iterations)
    {
        var m = Vector256.Create(0.99999994f);
        var c = Vector256.Create(1e-6f);
        Vector256<float> a0 = Vector256.Create(1.0f), a1 = Vector256.Create(1.1f), a2 = Vector256.Create(1.2f),
            a3 = Vector256.Create(1.3f), a4 = Vector256.Create(1.4f), a5 = Vector256.Create(1.5f),
            a6 = Vector256.Create(1.6f), a7 = Vector256.Create(1.7f), a8 = Vector256.Create(1.8f),
            a9 = Vector256.Create(1.9f), a10 = Vector256.Create(2.0f), a11 = Vector256.Create(2.1f);
        for (long i = 0; i < iterations; i++)
        {
            a0 = Vector256.FusedMultiplyAdd(a0, m, c);
            a1 = Vector256.FusedMultiplyAdd(a1, m, c);
            a2 = Vector256.FusedMultiplyAdd(a2, m, c);
            a3 = Vector256.FusedMultiplyAdd(a3, m, c);
            a4 = Vector256.FusedMultiplyAdd(a4, m, c);
            a5 = Vector256.FusedMultiplyAdd(a5, m, c);
            a6 = Vector256.FusedMultiplyAdd(a6, m, c);
            a7 = Vector256.FusedMultiplyAdd(a7, m, c);
            a8 = Vector256.FusedMultiplyAdd(a8, m, c);
            a9 = Vector256.FusedMultiplyAdd(a9, m, c);
            a10 = Vector256.FusedMultiplyAdd(a10, m, c);
            a11 = Vector256.FusedMultiplyAdd(a11, m, c);
        }
        float total = Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
        return float.IsFinite(total) ? iterations * 12.0 * Vector256<float>.Count * 2 : 0;
    }
}
