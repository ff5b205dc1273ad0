using System.Runtime.Intrinsics;
using Qwen3.Net.Kernels;

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
                threads, _ => Vector512.IsHardwareAccelerated ? Run<Width512, Vector512<float>>(Iterations) : Run<Width256, Vector256<float>>(Iterations),
                out double flops);
            best = Math.Max(best, flops / seconds / 1e9);
        }
        return best;
    }

    // Twelve chains cover FMA latency (4 cycles) times issue width (up to 2 per cycle) with margin. The multiplier
    // below 1 and the small addend keep every value normal: denormals would slow the loop down. TWidth is the kernels'
    // own vector width type, so each width gets a loop of its own, as written out by hand.
    internal static double Run<TWidth, TVector>(long iterations)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
    {
        var m = TWidth.Broadcast(0.99999994f);
        var c = TWidth.Broadcast(1e-6f);
        TVector a0 = TWidth.Broadcast(1.0f), a1 = TWidth.Broadcast(1.1f), a2 = TWidth.Broadcast(1.2f),
            a3 = TWidth.Broadcast(1.3f), a4 = TWidth.Broadcast(1.4f), a5 = TWidth.Broadcast(1.5f),
            a6 = TWidth.Broadcast(1.6f), a7 = TWidth.Broadcast(1.7f), a8 = TWidth.Broadcast(1.8f),
            a9 = TWidth.Broadcast(1.9f), a10 = TWidth.Broadcast(2.0f), a11 = TWidth.Broadcast(2.1f);
        for (long i = 0; i < iterations; i++)
        {
            a0 = TWidth.MultiplyAdd(a0, m, c);
            a1 = TWidth.MultiplyAdd(a1, m, c);
            a2 = TWidth.MultiplyAdd(a2, m, c);
            a3 = TWidth.MultiplyAdd(a3, m, c);
            a4 = TWidth.MultiplyAdd(a4, m, c);
            a5 = TWidth.MultiplyAdd(a5, m, c);
            a6 = TWidth.MultiplyAdd(a6, m, c);
            a7 = TWidth.MultiplyAdd(a7, m, c);
            a8 = TWidth.MultiplyAdd(a8, m, c);
            a9 = TWidth.MultiplyAdd(a9, m, c);
            a10 = TWidth.MultiplyAdd(a10, m, c);
            a11 = TWidth.MultiplyAdd(a11, m, c);
        }

        // Added pairwise, not through a span of the twelve: a span would keep them in memory inside the loop too.
        var sum = TWidth.Add(
            TWidth.Add(TWidth.Add(TWidth.Add(a0, a1), TWidth.Add(a2, a3)), TWidth.Add(TWidth.Add(a4, a5), TWidth.Add(a6, a7))),
            TWidth.Add(TWidth.Add(a8, a9), TWidth.Add(a10, a11)));

        // A non-finite total means the loop did not compute what it claims; never report such a run.
        return float.IsFinite(TWidth.Sum(sum)) ? iterations * 12.0 * TWidth.Count * 2 : 0;
    }
}
