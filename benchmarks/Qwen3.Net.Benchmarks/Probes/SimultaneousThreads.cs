using System.Diagnostics;

namespace Qwen3.Net.Benchmarks.Probes;

/// <summary>Runs one body per thread, all released together, and times them from the first start to the last end.</summary>
public static class SimultaneousThreads
{
    /// <param name="threadCount">How many threads run the body.</param>
    /// <param name="body">Given the thread's index; returns a value the caller sums, so the work cannot be dropped as dead code.</param>
    /// <param name="total">The sum of what the bodies returned.</param>
    /// <returns>Seconds from the earliest start to the latest finish.</returns>
    public static double Time(int threadCount, Func<int, double> body, out double total)
    {
        var starts = new long[threadCount];
        var ends = new long[threadCount];
        var results = new double[threadCount];
        using var barrier = new Barrier(threadCount);
        var workers = Enumerable.Range(0, threadCount).Select(t => new Thread(() =>
        {
            barrier.SignalAndWait();
            starts[t] = Stopwatch.GetTimestamp();
            results[t] = body(t);
            ends[t] = Stopwatch.GetTimestamp();
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        total = results.Sum();
        return Stopwatch.GetElapsedTime(starts.Min(), ends.Max()).TotalSeconds;
    }
}
